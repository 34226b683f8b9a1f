"""Talking to Doccano: credentials, one logged-in session, errors that name the URL and the fix.

Why a thin layer over doccano-client instead of its high-level calls: the client sets no timeout
(a hung server would hang nerloop), waits up to an hour for a Celery task, and has no PATCH (needed
to write a span's confidence into Doccano's own ``prob``). Everything else in the Doccano backend
goes through :class:`Connection`, so every failure is turned into one of the errors below, and no
message ever carries the password.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from nerloop.annotation.core.client import ToolConnection
from nerloop.errors import NerloopError

DEFAULT_HOME = Path(".doccano")
ENV_URL = "NERLOOP_DOCCANO_URL"
ENV_USERNAME = "NERLOOP_DOCCANO_USERNAME"
ENV_PASSWORD = "NERLOOP_DOCCANO_PASSWORD"


class DoccanoError(NerloopError):
    """Talking to Doccano failed; the message says what happened and what to do."""


class DoccanoUnreachableError(DoccanoError):
    """No server answers at the URL (connection refused, DNS, ...)."""


class DoccanoTimeoutError(DoccanoError):
    """The server did not answer within ``timeout_s``."""


class DoccanoAuthError(DoccanoError):
    """Wrong credentials, or the account lacks the rights nerloop needs."""


class DoccanoHTTPError(DoccanoError):
    """The server answered with an HTTP error (5xx or an unexpected 4xx)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class DoccanoConfigError(DoccanoError):
    """Credentials missing, or the Doccano projects or team do not fit nerloop."""


class DoccanoDataError(DoccanoError):
    """Data that nerloop cannot send or read (a bad pre-annotation, meta that breaks Doccano)."""


def credentials(home: Path = DEFAULT_HOME, default_url: str | None = None) -> tuple[str, str, str]:
    """(url, username, password): from the environment, else from ``<home>/credentials.json``.

    ``NERLOOP_DOCCANO_USERNAME`` and ``NERLOOP_DOCCANO_PASSWORD`` (both) select an existing
    server's account; ``NERLOOP_DOCCANO_URL`` overrides the URL in either case. Without env
    credentials the file written by ``nerloop doccano up`` is used, with its URL.
    """
    env_url = os.environ.get(ENV_URL) or None
    user, password = os.environ.get(ENV_USERNAME), os.environ.get(ENV_PASSWORD)
    if user and password:
        url = env_url or default_url
        if not url:
            raise DoccanoConfigError(f"{ENV_USERNAME}/{ENV_PASSWORD} are set but no Doccano URL: set {ENV_URL}")
        return url, user, password
    if user or password:
        missing = ENV_PASSWORD if user else ENV_USERNAME
        raise DoccanoConfigError(f"only one of {ENV_USERNAME}/{ENV_PASSWORD} is set: set {missing} too")
    path = Path(home) / "credentials.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return env_url or data.get("url") or default_url or "", data["username"], data["password"]
    except FileNotFoundError:
        raise DoccanoConfigError(
            f"no Doccano credentials: run `nerloop doccano up` (writes {path}) or set "
            f"{ENV_URL}, {ENV_USERNAME} and {ENV_PASSWORD} for an existing server"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DoccanoConfigError(f"{path} is corrupt: delete it and run `nerloop doccano up` again") from None


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout: doccano-client sets none, so a hung server would hang nerloop."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().send(request, **kwargs)


class Connection(ToolConnection):
    """One logged-in Doccano session (created on first use) with bounded waits and clear errors."""

    tool, command, params_key, env_url = "Doccano", "doccano", "doccano", ENV_URL
    rerun, sent = "stage", "sentences"
    timeout_error, unreachable_error = DoccanoTimeoutError, DoccanoUnreachableError
    read_credentials = staticmethod(credentials)

    def __init__(self, creds: tuple[str, str, str] | None, *, home: Path, default_url: str, timeout_s: float) -> None:
        """``creds`` = (url, username, password); None reads :func:`credentials` on first use."""
        super().__init__(creds, home=home, default_url=default_url, timeout_s=timeout_s)
        self._client: Any = None

    @property
    def username(self) -> str:
        return self.credentials()[1]

    def scrub(self, text: str) -> str:
        """``text`` with the password replaced by ``***`` (server answers can echo request data)."""
        password = self.credentials()[2]
        return text.replace(password, "***") if password else text

    @contextmanager
    def guard(self, action: str) -> Iterator[None]:
        """Network failures as for every tool; doccano-client's HTTP errors too, naming the account's rights."""
        with super().guard(action):
            try:
                yield
            except requests.exceptions.HTTPError as exc:
                raise self._http_error(exc, action) from None

    def _http_error(self, exc: requests.exceptions.HTTPError, action: str) -> DoccanoError:
        code = exc.response.status_code if exc.response is not None else None
        body = self.scrub(exc.response.text[:300].strip()) if exc.response is not None else ""
        where = f"Check {ENV_USERNAME}/{ENV_PASSWORD}, or {self.home / 'credentials.json'}"
        if code in (400, 401, 403) and action == "logging in":
            return DoccanoAuthError(
                f"Doccano at {self.url} refused the login of user {self.username!r} (HTTP {code}): wrong username or "
                f"password. {where} for the server started by `nerloop doccano up`."
            )
        if code in (401, 403):
            return DoccanoAuthError(
                f"Doccano at {self.url} denied user {self.username!r} while {action} (HTTP {code}): the account "
                f"must be a Doccano administrator (superuser) to manage nerloop's projects and team. {body}"
            )
        if code is not None and code >= 500:
            return DoccanoHTTPError(
                f"Doccano at {self.url} failed with HTTP {code} while {action}. This is a server-side error: see "
                "the server log (.doccano/gunicorn.log for the server started by `nerloop doccano up`), fix it and "
                "run the stage again; nothing already in the ledger is affected.",
                code,
            )
        return DoccanoHTTPError(f"Doccano at {self.url} answered HTTP {code} while {action}: {body}", code)

    @property
    def client(self) -> Any:
        """A logged-in ``DoccanoClient``."""
        if self._client is None:
            from doccano_client import DoccanoClient  # imported late: pydantic-1 package, only for this backend

            url, user, password = self.credentials()
            if not url:
                raise DoccanoConfigError(f"no Doccano URL: set {ENV_URL} or annotation.doccano.url")
            client = DoccanoClient(url)
            session: requests.Session = client._base_repository._session
            adapter = _TimeoutAdapter(self.timeout_s)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            with self.guard("logging in"):
                client.login(username=user, password=password)
            self._client = client
        return self._client

    def request(self, method: str, resource: str, action: str, **kwargs: Any) -> Any:
        """One REST call under ``/v1``; the decoded JSON answer (None when empty)."""
        base = self.client._base_repository
        url = resource if resource.startswith("http") else f"{base.api_url}/{resource}"
        with self.guard(action):
            resp = base._session.request(method, url, **kwargs)
            resp.raise_for_status()
        return resp.json() if resp.content else None

    def pages(self, resource: str, action: str, page_size: int, **params: Any) -> Iterator[dict[str, Any]]:
        """Every row of a paged list (Doccano pages by 5 unless told otherwise)."""
        url: str | None = resource
        query: dict[str, Any] | None = {"limit": page_size, "offset": 0, **params}
        while url:
            page = self.request("GET", url, action, params=query)
            yield from page["results"]
            url, query = page.get("next"), None  # `next` carries limit, offset and filters

    def wait_task(self, task_id: str, what: str) -> Any:
        """Wait for a Doccano Celery task, bounded: the client's own wait is one hour.

        On a server started by nerloop tasks run eagerly and are done at once; on another server a
        missing ``doccano task`` worker would otherwise hang the stage.
        """
        limit = max(60.0, 10 * self.timeout_s)
        deadline = time.monotonic() + limit
        delay = 0.05
        while True:
            with self.guard(f"waiting for the {what} task"):
                status = self.client._task_status_repository.get(task_id)
            if status.ready:
                return status
            if time.monotonic() > deadline:
                raise DoccanoTimeoutError(
                    f"Doccano at {self.url} did not finish the {what} task within {limit:g} s: is its Celery worker "
                    "(`doccano task`) running? Run the stage again when it is; nothing is sent twice."
                )
            time.sleep(delay)
            delay = min(1.0, delay * 2)

    def upload(self, pid: int, lines: list[dict[str, Any]]) -> None:
        """One bulk upload (JSONL file -> Doccano's import task) of examples with their spans."""
        repo = self.client._data_import_repository
        with tempfile.TemporaryDirectory(prefix="nerloop-doccano-") as tmp:
            path = Path(tmp) / "batch.jsonl"
            with path.open("w", encoding="utf-8") as fh:
                for line in lines:
                    fh.write(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n")
            with self.guard(f"uploading {len(lines)} examples"):
                upload_id = repo.upload(str(path))
                task_id = repo.ingest(
                    pid, [upload_id], "SequenceLabeling", "JSONL", column_data="text", column_label="label"
                )
        status = self.wait_task(task_id, "upload")
        errors = status.result.get("error") if isinstance(status.result, dict) else None
        if status.error or errors:
            raise DoccanoHTTPError(f"Doccano at {self.url} rejected the upload: {status.error or errors}")
