"""Talking to Label Studio's REST API: credentials, one authenticated session, errors that name the fix.

Why plain ``requests`` and not ``label-studio-sdk``: the SDK 2.x needs pydantic 2, and the project
environment holds pydantic 1 (doccano-client). The API nerloop needs is small (projects, task import
with predictions, task listing with annotations, users, the invite link), every call gets a timeout,
and every failure becomes one of the errors below. No message ever carries the token.

Authentication: a legacy API token (``Authorization: Token ...``, what ``nerloop label-studio up``
makes and enables), or a personal access token of Label Studio 1.23 (a JWT refresh token): that one
is exchanged for a short-lived access token at ``/api/token/refresh``, again when it expires.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from nerloop.annotation.core.client import Credentials, ToolConnection, tool_errors
from nerloop.errors import NerloopError

DEFAULT_HOME = Path(".label-studio")
ENV_URL = "NERLOOP_LABEL_STUDIO_URL"
ENV_TOKEN = "NERLOOP_LABEL_STUDIO_TOKEN"


ERRORS = tool_errors("Label Studio", "LabelStudio", __name__)
(LabelStudioError, LabelStudioUnreachableError, LabelStudioTimeoutError, LabelStudioAuthError, LabelStudioHTTPError,
 LabelStudioConfigError, LabelStudioDataError) = ERRORS


CREDENTIALS = Credentials(
    tool="Label Studio", command="label-studio", env_url=ENV_URL, env_secrets=(ENV_TOKEN,), file_keys=("token",),
    env_hint=f"{ENV_URL} and {ENV_TOKEN} (an account's API token, from Account & Settings in Label Studio)",
    error=LabelStudioConfigError,
)


def credentials(home: Path = DEFAULT_HOME, default_url: str | None = None) -> tuple[str, ...]:
    """(url, token): ``NERLOOP_LABEL_STUDIO_TOKEN`` (+ ``_URL``) for an existing server, else the file
    ``<home>/credentials.json`` written by ``nerloop label-studio up``. ``_URL`` overrides either URL."""
    return CREDENTIALS.read(home, default_url)


class Connection(ToolConnection):
    """One authenticated Label Studio session, made on first use, with bounded waits and clear errors."""

    source, errors, params_key, rerun, sent = CREDENTIALS, ERRORS, "label_studio", "command", "tasks"
    server_log = ".label-studio/server.log for the server `nerloop label-studio up` started"

    def __init__(self, creds: tuple[str, str] | None, *, home: Path, default_url: str, timeout_s: float) -> None:
        """``creds`` = (url, token); None reads :func:`credentials` on first use."""
        super().__init__(creds, home=home, default_url=default_url, timeout_s=timeout_s)
        self._session: requests.Session | None = None

    def scrub(self, text: str) -> str:
        """``text`` without the token (or the access token made from it)."""
        token = self.credentials()[1]
        text = text.replace(token, "***") if token else text
        if self._session is not None:
            auth = self._session.headers.get("Authorization", "")
            secret = str(auth).split(" ", 1)[-1]
            if secret:
                text = text.replace(secret, "***")
        return text

    def _error(self, resp: requests.Response, action: str) -> NerloopError:
        return self.http_error(resp.status_code, action, self.scrub(resp.text[:300].strip()))

    def refusal(self, code: int | None, action: str, body: str) -> NerloopError | None:
        where = f"{ENV_TOKEN}, or {self.home / 'credentials.json'} for the server `nerloop label-studio up` started"
        if code == 401:
            return LabelStudioAuthError(
                f"Label Studio at {self.url} refused nerloop's API token while {action} (HTTP 401): the token is "
                "wrong, "
                f"revoked, or a legacy token with legacy tokens turned off in the organization (Organization > API "
                f"Tokens Settings). Check {where}. {body}"
            )
        if code == 403:
            return LabelStudioAuthError(
                f"Label Studio at {self.url} denied nerloop's account while {action} (HTTP 403): it must be an "
                f"owner or administrator of the organization to manage projects and the team. {body}"
            )
        return None

    @property
    def session(self) -> requests.Session:
        """The authenticated session (a JWT refresh token is exchanged for an access token first)."""
        if self._session is None:
            url, token = self.credentials()
            if not url:
                raise LabelStudioConfigError(f"no Label Studio URL: set {ENV_URL} or annotation.label_studio.url")
            self._session = requests.Session()
            self._authorize(token)
        return self._session

    def _authorize(self, token: str) -> None:
        assert self._session is not None
        if token.count(".") == 2:  # a JWT personal access token (refresh token): get an access token
            with self.guard("exchanging the personal access token"):
                resp = requests.post(f"{self.url}/api/token/refresh", json={"refresh": token}, timeout=self.timeout_s)
            if not resp.ok:
                raise self._error(resp, "exchanging the personal access token")
            self._session.headers["Authorization"] = f"Bearer {resp.json()['access']}"
        else:
            self._session.headers["Authorization"] = f"Token {token}"

    def request(self, method: str, resource: str, action: str, **kwargs: Any) -> Any:
        """One call under ``/api``; the decoded JSON answer (None when empty)."""
        url = resource if resource.startswith("http") else f"{self.url}/api/{resource.lstrip('/')}"
        session = self.session
        kwargs.setdefault("timeout", self.timeout_s)
        with self.guard(action):
            resp = session.request(method, url, **kwargs)
            if resp.status_code == 401 and session.headers.get("Authorization", "").startswith("Bearer "):
                self._authorize(self.credentials()[1])  # the access token expired: refresh once
                resp = session.request(method, url, **kwargs)
        if not resp.ok:
            raise self._error(resp, action)
        return resp.json() if resp.content else None

    def pages(self, resource: str, action: str, page_size: int, key: str, *, threads: int = 1,
              **params: Any) -> list[dict[str, Any]]:
        """Every row of a list Label Studio pages by ``page``/``page_size`` (rows under ``key``), in order.

        After the first page has told the total, the other pages are read ``threads`` at a time: the
        task list costs the server a few milliseconds a task, and several requests in flight keep
        its threads busy instead of idle between round trips.
        """
        def page(n: int) -> Any:
            return self.request("GET", resource, action, params={**params, "page": n, "page_size": page_size})

        first = page(1)
        if isinstance(first, list):  # an unpaged answer
            return first
        rows = list(first.get(key) or [])
        total = first.get("total", first.get("count"))
        if not rows or total is None or len(rows) >= int(total):
            return rows
        rest = range(2, -(-int(total) // page_size) + 1)
        with ThreadPoolExecutor(max(1, threads)) as pool:
            for data in pool.map(page, rest):
                rows.extend(data.get(key) or [])
        return rows
