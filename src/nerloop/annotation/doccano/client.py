"""Talking to Doccano: credentials, one logged-in session, errors that name the URL and the fix.

Why a thin layer over doccano-client instead of its high-level calls: the client sets no timeout
(a hung server would hang nerloop), waits up to an hour for a Celery task, and has no PATCH (needed
to write a span's confidence into Doccano's own ``prob``). Everything else in the Doccano backend
goes through :class:`Connection`, so every failure is turned into one of the errors below, and no
message ever carries the password.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from nerloop.annotation.core.client import Credentials, ToolConnection, tool_errors
from nerloop.errors import NerloopError

DEFAULT_HOME = Path(".doccano")
ENV_URL = "NERLOOP_DOCCANO_URL"
ENV_USERNAME = "NERLOOP_DOCCANO_USERNAME"
ENV_PASSWORD = "NERLOOP_DOCCANO_PASSWORD"


ERRORS = tool_errors("Doccano", "Doccano", __name__)
(DoccanoError, DoccanoUnreachableError, DoccanoTimeoutError, DoccanoAuthError, DoccanoHTTPError, DoccanoConfigError,
 DoccanoDataError) = ERRORS


CREDENTIALS = Credentials(
    tool="Doccano", command="doccano", env_url=ENV_URL, env_secrets=(ENV_USERNAME, ENV_PASSWORD),
    file_keys=("username", "password"), env_hint=f"{ENV_URL}, {ENV_USERNAME} and {ENV_PASSWORD}",
    error=DoccanoConfigError,
)


def credentials(home: Path = DEFAULT_HOME, default_url: str | None = None) -> tuple[str, ...]:
    """(url, username, password): from the environment, else from ``<home>/credentials.json``.

    ``NERLOOP_DOCCANO_USERNAME`` and ``NERLOOP_DOCCANO_PASSWORD`` (both) select an existing
    server's account; ``NERLOOP_DOCCANO_URL`` overrides the URL in either case. Without env
    credentials the file written by ``nerloop doccano up`` is used, with its URL.
    """
    return CREDENTIALS.read(home, default_url)


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

    source, errors, params_key, rerun, sent = CREDENTIALS, ERRORS, "doccano", "stage", "sentences"
    server_log = ".doccano/gunicorn.log for the server started by `nerloop doccano up`"

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
                code = exc.response.status_code if exc.response is not None else None
                body = self.scrub(exc.response.text[:300].strip()) if exc.response is not None else ""
                raise self.http_error(code, action, body) from None

    def refusal(self, code: int | None, action: str, body: str) -> NerloopError | None:
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
        return None

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
