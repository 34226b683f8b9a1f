"""Helpers for the local servers nerloop starts and stops (Doccano, Label Studio): venvs, pins, pids, ports.

Both servers run in their own virtual environment, bound to 127.0.0.1 unless asked, in a process
group of their own so that they are stopped by process id (never by name), with every state file
owner-only. The server's life built from these (install, up, down, status) is
``nerloop.annotation.core.server``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from nerloop import paths

STOP_GRACE_S = 10.0
PRIVATE_UMASK = 0o077  # every file a server writes (sqlite with API tokens, media, logs) is owner-only
PINS_FILE = "nerloop-requirements.txt"  # written into a server venv after a finished install


def make_private(home: Path) -> None:
    """Owner-only permissions on the server's state: the home and every file and folder in it but the venv.

    The sqlite database holds every user's API token and all annotations; Doccano creates it
    world-readable. Server processes also run with umask 077, so what they create later is private.
    """
    home = Path(home)
    home.chmod(0o700)
    for path in home.iterdir():
        if path.name == "venv":
            continue
        if path.is_dir() and not path.is_symlink():
            for sub in [path, *path.rglob("*")]:
                if not sub.is_symlink():
                    sub.chmod(0o700 if sub.is_dir() else 0o600)
        elif path.is_file():
            path.chmod(0o600)


def write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by the owner only (the file is created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def open_log(path: Path) -> Any:
    """Open a log for appending, created owner-only (a log can show usernames and request paths)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a", encoding="utf-8")


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


PINS_DIR = paths.PINS


def server_pins(requirements: list[str], constraints: Path) -> list[str]:
    """The requirements plus every version pin of a known-good install (a pip constraints file).

    Pinning the whole dependency tree is what keeps a server installable: label-studio 1.23.2 itself
    only asks for ``sentry-sdk>=2``, and sentry-sdk 3.0 broke its database migration on a fresh machine.
    """
    lines = constraints.read_text(encoding="utf-8").split()
    return [*requirements, *(line for line in lines if not line.startswith("#"))]


def pins_recorded(venv: Path, requirements: list[str]) -> bool:
    """True when a finished install into ``venv`` recorded exactly these pins.

    The record is written last, so a venv whose install was interrupted, or made with older pins
    (e.g. before ``marshmallow<4`` was needed), is brought up to date instead of failing at start.
    """
    pins = venv / PINS_FILE
    return pins.exists() and pins.read_text(encoding="utf-8").split() == requirements


def record_pins(venv: Path, requirements: list[str]) -> None:
    (venv / PINS_FILE).write_text("\n".join(requirements) + "\n", encoding="utf-8")


def pip_install(venv: Path, requirements: list[str], log: Path, *, constraints: Path | None = None,
                quiet: bool = True) -> str:
    """Create ``venv`` with this Python if it is missing, then pip-install ``requirements`` (within the
    ``constraints`` file's versions), each command and its output appended to ``log``.

    Returns "" on success, else the failed command's exit status for the caller's error message.
    """
    steps = [] if venv_python(venv).exists() else [[sys.executable, "-m", "venv", str(venv)]]
    constrain = ["-c", str(constraints)] if constraints else []
    steps.append([str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check", *constrain,
                  *requirements])
    with open_log(log) as fh:
        for cmd in steps:
            fh.write(f"$ {' '.join(cmd)}\n")
            fh.flush()
            proc = subprocess.run(cmd, stdout=fh if quiet else None, stderr=subprocess.STDOUT, check=False)
            if proc.returncode != 0:
                return f"exit {proc.returncode}"
    return ""


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a zombie (our exited child not yet reaped) counts as dead
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now (for tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def log_tail(path: Path, n: int = 15) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(lines[-n:])


def stop_pid(pid: int, grace_s: float = STOP_GRACE_S) -> bool:
    """SIGTERM the server (a gunicorn master stops its workers), SIGKILL its process group after ``grace_s``.

    Returns True if the process was running.
    """
    if not pid_alive(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:  # reap it if it is our child (tests start and stop in one process)
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:
            pass
        if not pid_alive(pid):
            break
        time.sleep(0.1)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)  # start_new_session made pid the group id
        except (ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # workers left behind share its group
        os.killpg(pid, signal.SIGKILL)
    return True
