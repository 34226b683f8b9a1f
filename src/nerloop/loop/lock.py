"""One nerloop command at a time per project: the project lock.

``nerloop cycle``, ``simulate``, ``finalize`` and the commands that touch an annotation server hold
``.nerloop/lock`` for as long as they run. The lock is an advisory ``flock`` on that file, so the
kernel releases it when its holder dies, however it dies; the file itself says who holds it
(command, pid, since), for the message a second command prints and for ``nerloop status``.

A holder killed with SIGKILL cannot stop what it started: its ``dvc repro`` and the stage under it
run on. The next command that takes the lock looks for them and stops with their pids rather
than meet DVC's own lock (whose advice, to delete ``.dvc/tmp/rwlock``, would be harmful then).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nerloop.annotation.core.local_server import pid_alive
from nerloop.errors import NerloopError
from nerloop.loop import repo

LOCK = Path(".nerloop/lock")


class ProjectBusyError(NerloopError):
    """Another nerloop command runs in this project, or its orphaned processes still do."""


def holder() -> dict[str, Any] | None:
    """Who holds the lock now (command, pid, since), or None when nobody does."""
    if not LOCK.exists():
        return None
    fd = os.open(LOCK, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read() or {"command": "?", "pid": None, "since": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read() -> dict[str, Any] | None:
    with suppress(OSError, json.JSONDecodeError):
        data = json.loads(LOCK.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    return None


def describe(h: dict[str, Any]) -> str:
    return f"`nerloop {h.get('command')}` (pid {h.get('pid')}, since {h.get('since')})"


def orphans(root: Path = Path(".")) -> list[int]:
    """DVC and stage processes running in the project at ``root`` (orphans when no nerloop holds it)."""
    return sorted(set(repo.processes_here("dvc", root)) | set(repo.processes_here("nerloop.stages", root)))


@contextmanager
def project_lock(command: str) -> Iterator[None]:
    """Hold the project for ``command``; fail at once, naming the holder, when another command has it."""
    LOCK.parent.mkdir(exist_ok=True)
    ignore = LOCK.parent / ".gitignore"
    if not ignore.exists():  # the folder is this machine's state, never versioned, whatever .gitignore says
        ignore.write_text("*\n", encoding="utf-8")
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            h = _read() or {}
            raise ProjectBusyError(f"{describe(h)} is running in this project; wait for it to finish (`nerloop "
                                   "status` shows its step), or stop it with Ctrl-C in its terminal or "
                                   f"`kill {h.get('pid')}`") from None
        before = _read()
        if before and before.get("pid") and not pid_alive(int(before["pid"])):
            left = orphans()
            if left:
                pids = " ".join(map(str, left))
                raise ProjectBusyError(
                    f"{describe(before)} was killed, but what it started still runs here (pid {pids}): wait for "
                    f"it to end, or stop it with `kill {pids}`; then run the command again (the cycle resumes "
                    "where it stopped)")
            print(f"note: took over the project lock of {describe(before)}, which is gone")
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"command": command, "pid": os.getpid(),
                                 "since": datetime.now(UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")}).encode())
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # released: an empty file names nobody
    finally:
        os.close(fd)  # closing releases the flock
