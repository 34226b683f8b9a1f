"""What every tool's connection shares: credentials read on first use, the URL, and the guard that turns a
network failure into an error naming the URL and the fix.

A tool's ``client`` subclasses :class:`ToolConnection` with its wording, its errors, how its credentials
are read, and what it speaks (doccano-client or plain ``requests``); nothing here carries a secret into
a message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from nerloop.errors import NerloopError


class ToolConnection:
    """One session with a tool's server, made on first use; subclasses set the attributes below."""

    tool: str  # the tool, in messages: "Doccano"
    command: str  # its verb group: `nerloop <command> up`
    params_key: str  # its section under ``annotation`` in params.yaml
    env_url: str  # the variable that points nerloop at a running server
    rerun: str  # what the user runs again to resume: "stage", "command"
    sent: str  # what is not sent twice: "sentences", "tasks"
    timeout_error: type[NerloopError]
    unreachable_error: type[NerloopError]
    read_credentials: Callable[..., tuple[str, ...]]  # (home, default_url=...) -> (url, secrets ...)

    def __init__(self, creds: tuple[str, ...] | None, *, home: Path, default_url: str, timeout_s: float) -> None:
        """``creds`` = (url, secrets ...) as the tool's ``credentials`` reads them; None reads them on first use."""
        self._creds = creds
        self.home = Path(home)
        self.default_url = default_url
        self.timeout_s = timeout_s

    def credentials(self) -> Any:
        if self._creds is None:
            self._creds = type(self).read_credentials(self.home, default_url=self.default_url)
        return self._creds

    @property
    def url(self) -> str:
        return self.credentials()[0].rstrip("/")

    @contextmanager
    def guard(self, action: str) -> Iterator[None]:
        """Turn network failures into NerloopErrors that name the URL and the fix."""
        url = self.url
        try:
            yield
        except requests.exceptions.Timeout:
            raise self.timeout_error(
                f"{self.tool} at {url} did not answer within {self.timeout_s:g} s while {action}. Nothing already in "
                f"the ledger is affected; run the {self.rerun} again to resume ({self.sent} already in {self.tool} "
                f"are not sent twice). If the server is slow, raise annotation.{self.params_key}.timeout_s."
            ) from None
        except requests.exceptions.ConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else type(exc).__name__
            raise self.unreachable_error(
                f"cannot reach {self.tool} at {url} while {action} ({reason}). Start the local server with "
                f"`nerloop {self.command} up`, or point {self.env_url} at a running one."
            ) from None
