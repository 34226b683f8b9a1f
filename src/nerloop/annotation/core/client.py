"""What every tool's connection shares: its family of errors, credentials read on first use, the URL, the
guard that turns a network failure into an error naming the URL and the fix, and the wording of HTTP errors.

A tool's ``client`` makes its errors with :func:`tool_errors` and subclasses :class:`ToolConnection` with
its wording, how its credentials are read, how it words a refused account, and what it speaks
(doccano-client or plain ``requests``); nothing here carries a secret into a message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import requests

from nerloop.errors import NerloopError

CREDENTIALS_FILE = "credentials.json"  # under the tool's home, written by `nerloop <tool> up`


class _WithStatus:
    """Gives an HTTP error the status code the server answered (None when there was no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class ToolErrors(NamedTuple):
    """One tool's errors: every one is a subclass of ``base``, so a caller can catch all of a tool's at once."""

    base: type[NerloopError]
    unreachable: type[NerloopError]
    timeout: type[NerloopError]
    auth: type[NerloopError]
    http: type[NerloopError]
    config: type[NerloopError]
    data: type[NerloopError]


def tool_errors(tool: str, prefix: str, module: str) -> ToolErrors:
    """The error classes of ``tool`` (``<prefix>Error``, ``<prefix>AuthError``, ...), made as classes of ``module``.

    Every tool fails in the same ways, so the family is written once; the tool's client binds each class to
    its name (``DoccanoAuthError``), by which callers import, raise and catch it, and pickle finds it.
    """
    def make(kind: str, bases: tuple[type, ...], doc: str) -> Any:
        name = f"{prefix}{kind}Error"
        return type(name, bases, {"__doc__": doc, "__module__": module, "__qualname__": name})

    base = make("", (NerloopError,), f"Talking to {tool} failed; the message says what happened and what to do.")
    return ToolErrors(
        base=base,
        unreachable=make("Unreachable", (base,), "No server answers at the URL (connection refused, DNS, ...)."),
        timeout=make("Timeout", (base,), "The server did not answer within ``timeout_s``."),
        auth=make("Auth", (base,), "Wrong credentials, or an account without the rights nerloop needs."),
        http=make("HTTP", (_WithStatus, base), "The server answered with an HTTP error; ``status`` is its code."),
        config=make("Config", (base,), f"Credentials missing, or {tool} projects or a team that do not fit nerloop."),
        data=make("Data", (base,), "Data that nerloop cannot send or read (a bad pre-annotation)."),
    )


@dataclass(frozen=True)
class Credentials:
    """Where a tool's credentials come from: its environment variables for an existing server, else the file
    ``nerloop <tool> up`` wrote. Read the same way for every tool; the tool names its variables and keys."""

    tool: str  # in messages: "Doccano"
    command: str  # `nerloop <command> up`
    env_url: str  # overrides the URL in either case
    env_secrets: tuple[str, ...]  # all set: an existing server's account (username and password, a token)
    file_keys: tuple[str, ...]  # the same secrets in the file
    env_hint: str  # what to set for an existing server, in words
    error: type[NerloopError]  # the tool's config error

    def read(self, home: Path, default_url: str | None = None) -> tuple[str, ...]:
        """(url, secrets ...): from the environment, else from ``<home>/credentials.json``."""
        env_url = os.environ.get(self.env_url) or None
        secrets = [os.environ.get(name) for name in self.env_secrets]
        names = "/".join(self.env_secrets)
        if all(secrets):
            url = env_url or default_url
            if not url:
                verb = "are" if len(secrets) > 1 else "is"
                raise self.error(f"{names} {verb} set but no {self.tool} URL: set {self.env_url}")
            return (url, *(str(secret) for secret in secrets))
        if any(secrets):
            missing = next(name for name, secret in zip(self.env_secrets, secrets, strict=True) if not secret)
            raise self.error(f"only one of {names} is set: set {missing} too")
        path = Path(home) / CREDENTIALS_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return (env_url or data.get("url") or default_url or "", *(data[key] for key in self.file_keys))
        except FileNotFoundError:
            raise self.error(
                f"no {self.tool} credentials: run `nerloop {self.command} up` (writes {path}) or set {self.env_hint} "
                "for an existing server"
            ) from None
        except (json.JSONDecodeError, KeyError, TypeError):
            raise self.error(f"{path} is corrupt: delete it and run `nerloop {self.command} up` again") from None


class ToolConnection:
    """One session with a tool's server, made on first use; subclasses set the attributes below."""

    source: Credentials  # where its credentials come from; also its name, its verb group and its URL variable
    errors: ToolErrors
    params_key: str  # its section under ``annotation`` in params.yaml
    rerun: str  # what the user runs again to resume: "stage", "command"
    sent: str  # what is not sent twice: "sentences", "tasks"
    server_log: str  # where the local server logs, and which server that is, in words

    def __init__(self, creds: tuple[str, ...] | None, *, home: Path, default_url: str, timeout_s: float) -> None:
        """``creds`` = (url, secrets ...) as the tool's ``credentials`` reads them; None reads them on first use."""
        self._creds = creds
        self.home = Path(home)
        self.default_url = default_url
        self.timeout_s = timeout_s

    def credentials(self) -> Any:
        if self._creds is None:
            self._creds = self.source.read(self.home, default_url=self.default_url)
        return self._creds

    @property
    def url(self) -> str:
        return self.credentials()[0].rstrip("/")

    @contextmanager
    def guard(self, action: str) -> Iterator[None]:
        """Turn network failures into NerloopErrors that name the URL and the fix."""
        url, tool = self.url, self.source.tool
        try:
            yield
        except requests.exceptions.Timeout:
            raise self.errors.timeout(
                f"{tool} at {url} did not answer within {self.timeout_s:g} s while {action}. Nothing already in "
                f"the ledger is affected; run the {self.rerun} again to resume ({self.sent} already in {tool} "
                f"are not sent twice). If the server is slow, raise annotation.{self.params_key}.timeout_s."
            ) from None
        except requests.exceptions.ConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else type(exc).__name__
            raise self.errors.unreachable(
                f"cannot reach {tool} at {url} while {action} ({reason}). Start the local server with "
                f"`nerloop {self.source.command} up`, or point {self.source.env_url} at a running one."
            ) from None

    def refusal(self, code: int | None, action: str, body: str) -> NerloopError | None:
        """The tool's own words for an HTTP status that refuses nerloop's account (None: not a refusal)."""
        raise NotImplementedError

    def http_error(self, code: int | None, action: str, body: str) -> NerloopError:
        """The error for an HTTP failure while ``action``: a refusal as the tool words it, any other status alike
        for every tool (``body``, the start of the answer, is already scrubbed of secrets)."""
        refused = self.refusal(code, action, body)
        if refused is not None:
            return refused
        tool = self.source.tool
        if code is not None and code >= 500:
            return self.errors.http(
                f"{tool} at {self.url} failed with HTTP {code} while {action}. This is a server-side error: see "
                f"the server log ({self.server_log}), fix it and run the {self.rerun} again; nothing already in the "
                "ledger is affected.",
                code,
            )
        return self.errors.http(f"{tool} at {self.url} answered HTTP {code} while {action}: {body}", code)
