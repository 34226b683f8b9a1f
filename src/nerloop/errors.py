"""Errors that name what is wrong and where, so a user can fix their input."""

from __future__ import annotations

import re
from pathlib import Path


class NerloopError(Exception):
    """Base class: anything nerloop reports to the user as a clear message, not a traceback."""


class DataError(NerloopError):
    """Bad input data: carries the file and (when known) the 1-based line number."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class TagError(NerloopError):
    """An invalid tag sequence; ``index`` is the 0-based token position."""

    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(message)


class ParamsError(NerloopError):
    """A bad value in params.yaml; ``key`` is the dotted path of the offending key."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"params.yaml: {key}: {message}")


_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


def scrub(text: str) -> str:
    """Remove credentials embedded in URLs (``http://user:secret@host`` -> ``http://***@host``).

    Every message nerloop prints goes through this, so a URL from the environment never leaks a
    password into a terminal, a CI log or a bug report.
    """
    return _URL_USERINFO.sub(r"\1***@", text)
