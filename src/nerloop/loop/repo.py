"""The project as git and DVC see it: running their commands, committing, and DVC's lock files.

Kept apart from the loop logic so that ``nerloop.loop.cycle`` reads as the steps of a cycle.

* Commands run with this venv's ``bin`` first on PATH (DVC stage commands then find the right
  Python even when the venv is not activated).
* Ctrl-C, SIGINT or SIGTERM to nerloop alone: children run in a process group of their own, so
  the terminal's Ctrl-C reaches nerloop only, and nerloop passes exactly one SIGINT to the whole
  group (DVC and the stage under it), then gives them time to stop cleanly; ``subprocess.run``
  would SIGKILL DVC after a quarter of a second, which is what left DVC's lock files empty or
  stale. DVC ignores SIGINT while a stage runs, so a Ctrl-C that lands just as one stage ends
  would let it start the next: every stage process it starts during the grace period gets its
  own SIGINT, and whatever of the group still runs at the end is killed (never left training on
  in the background). A SIGKILL to nerloop cannot be passed on: the project lock
  (``nerloop.loop.lock``) finds what it left running.
* A stale DVC lock (an empty or corrupt ``.dvc/tmp/rwlock``, or one naming only dead processes)
  is cleared when no DVC process runs in this project, and explained when one does.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO, TextIO

from nerloop.errors import NerloopError

DVC = [sys.executable, "-m", "dvc"]  # the venv's dvc, even when the venv is not activated
RWLOCK = Path(".dvc/tmp/rwlock")
INTERRUPT_GRACE_S = 30.0


class CycleInterruptedError(NerloopError):
    """Ctrl-C: the command was stopped; the message says how to resume."""


# What DVC prints that is noise under nerloop, line by line: its git hints (nerloop commits for you) and its
# warning for each output that is empty (an empty ledger or held-back list is normal before the first answers).
NOISE = re.compile(r"WARNING: '[^']*' is empty\.|To track the changes with git, run:|\tgit add |"
                   r"To enable auto staging, run:|\tdvc config core\.autostage")
# After a Ctrl-C, DVC's report that the interrupted stage failed: nerloop's own line says what happened.
INTERRUPT_NOISE = re.compile(r"ERROR: failed to reproduce ")


def _env() -> dict[str, str]:
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                NERLOOP_COMMAND="1")


def _forward(src: IO[bytes], dst: TextIO, interrupted: threading.Event) -> None:
    """Copy a child's output as it comes, minus DVC's noise.

    Whole lines are passed on (a line ends at ``\n``, or at ``\r`` for a progress bar's update), so a
    line is judged whole even when it arrives in two reads.
    """
    pending, decoder = "", codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span reads
    for chunk in iter(lambda: os.read(src.fileno(), 65536), b""):
        pending += decoder.decode(chunk)
        cut = max(pending.rfind("\n"), pending.rfind("\r")) + 1
        ready, pending = pending[:cut], pending[cut:]
        dst.write("".join(line for line in ready.splitlines(keepends=True) if not _noise(line, interrupted)))
        dst.flush()
    dst.write(pending)
    dst.flush()


def _noise(line: str, interrupted: threading.Event) -> bool:
    return bool(NOISE.match(line) or (interrupted.is_set() and INTERRUPT_NOISE.match(line)))


def _shown(cmd: list[str]) -> str:
    """A command as a person would type it (``dvc repro``, not ``/path/python -m dvc repro``)."""
    return " ".join(["dvc", *cmd[3:]] if cmd[:3] == DVC else cmd)


def run(cmd: list[str], check: bool = True, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    """Run a command, streaming its output (or capturing it when ``quiet``); fail naming it.

    On Ctrl-C the child has ``INTERRUPT_GRACE_S`` to finish on its own SIGINT before it is killed.
    """
    if not quiet:
        print(f"$ {_shown(cmd)}", flush=True)
    interrupted = threading.Event()
    with subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          process_group=0) as proc:
        if quiet:
            readers: list[threading.Thread] = []
        else:
            readers = [threading.Thread(target=_forward, args=(pipe, dst, interrupted), daemon=True)
                       for pipe, dst in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr))]
            for reader in readers:
                reader.start()
        try:
            stdout, stderr = proc.communicate() if quiet else (b"", b"")
            proc.wait()
        except KeyboardInterrupt:
            interrupted.set()
            _stop_after_ctrl_c(proc)
            for reader in readers:
                reader.join(timeout=5)
            raise CycleInterruptedError(f"interrupted during `{_shown(cmd)}`") from None
        for reader in readers:
            reader.join()
    out, err = stdout.decode(errors="replace"), stderr.decode(errors="replace")
    if proc.returncode in (-signal.SIGINT, 130):
        raise CycleInterruptedError(f"interrupted during `{_shown(cmd)}`")
    if check and proc.returncode != 0:
        detail = f":\n{err.strip()[-2000:]}" if quiet else ""
        raise NerloopError(f"`{_shown(cmd)}` failed with exit code {proc.returncode}{detail}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out if quiet else None, err if quiet else None)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, children first (Linux /proc; [] elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            found.append(child)
            todo.append(child)
    return found


def _signal(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _answers(send: Callable[[int, int], None], target: int) -> bool:
    """Whether a process (``send=os.kill``) or process group (``os.killpg``) is there: signal 0 is delivered,
    or refused for want of permission (it is someone else's)."""
    try:
        send(target, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int) -> bool:
    return _answers(os.killpg, pgid)


def _stop_after_ctrl_c(proc: subprocess.Popen[str]) -> None:
    """Pass one SIGINT to ``proc``'s process group; interrupt stages it starts meanwhile; kill the rest.

    Each process that appears later gets exactly one SIGINT too (a second would turn a clean exit
    into a traceback).
    """
    signalled = {proc.pid, *descendants(proc.pid)}
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    while (proc.poll() is None or _group_alive(proc.pid)) and time.monotonic() < deadline:
        late = [pid for pid in descendants(proc.pid) if pid not in signalled]
        _signal(late, signal.SIGINT)
        signalled.update(late)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
    if proc.poll() is None or _group_alive(proc.pid):
        left = descendants(proc.pid)
        _signal(left, signal.SIGKILL)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5.0  # SIGKILL is delivered asynchronously: return once it has been
        while any(_running(pid) for pid in left) and time.monotonic() < deadline:
            time.sleep(0.05)


def _running(pid: int) -> bool:
    """Alive and not a zombie (Linux /proc)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def dvc(*args: str, quiet: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run([*DVC, *args], check=check, quiet=quiet)


def git(*args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", *args], text=True, capture_output=True)
    if check and proc.returncode != 0:
        raise NerloopError(f"`git {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def is_project(root: Path = Path(".")) -> bool:
    return (root / "dvc.yaml").exists() and (root / ".dvc").is_dir()


def require_project() -> None:
    if not is_project():
        raise NerloopError(f"{Path.cwd()} is not a nerloop project (no dvc.yaml and .dvc/ here): "
                           "run nerloop from the project root")


def uncommitted(paths: list[str]) -> list[str]:
    """Files among ``paths`` that differ from the last commit (or are new)."""
    existing = [p for p in paths if Path(p).exists()]
    if not existing or not Path(".git").exists():
        return []
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", *existing],
                         text=True, capture_output=True, check=True).stdout
    return [line[3:] for line in out.splitlines() if line.strip()]


def ignore_cached_outputs() -> None:
    """Make sure git ignores every DVC-cached output before anything is staged.

    DVC writes those ``.gitignore`` entries when a stage runs, but takes them back when the repro
    fails later on (its scm context undoes them); a resumed repro skips the stages that had run, so
    without this the next commit would put models and data into git.
    """
    from dvc.repo import Repo

    with Repo(".") as dvc_repo:
        for out in dvc_repo.index.outs:
            if out.use_cache and out.is_in_repo:
                dvc_repo.scm.ignore(out.fs_path)


def clear_stale_git_lock() -> None:
    """A git command killed mid-commit leaves ``.git/index.lock``; remove it when no git process runs here."""
    lock = Path(".git/index.lock")
    if lock.exists() and not processes_here("git"):
        lock.unlink()
        print(f"note: removed {lock}, left by a git command that was killed (no git process runs here)")


def commit(message: str, paths: list[str]) -> bool:
    """Commit ``paths`` (what exists of them) in one commit; False if nothing changed."""
    clear_stale_git_lock()
    ignore_cached_outputs()
    files = [p for p in paths if Path(p).exists()]
    git("add", "-A", "--", *files)
    if subprocess.run(["git", "diff", "--cached", "--quiet"]).returncode == 0:
        return False
    # A fresh clone may have no git identity: commit as "nerloop" rather than fail the cycle.
    ok = subprocess.run(["git", "config", "user.email"], capture_output=True).returncode == 0
    identity = [] if ok else ["-c", "user.name=nerloop", "-c", "user.email=nerloop@localhost"]
    git(*identity, "commit", "-q", "-m", message)
    return True


def push() -> None:
    """``dvc push`` to the default remote, if there is one; a failure is a warning (the commit stands)."""
    if not dvc("remote", "list", quiet=True).stdout.strip():
        print("no DVC remote configured: data stays in the local cache (dvc remote add -d ...)")
        return
    if dvc("push", "-q", check=False).returncode != 0:
        print("warning: dvc push failed; the commit is made, run `dvc push` again later", file=sys.stderr)


# ---------------------------------------------------------------- DVC's lock


def _pid_alive(pid: int) -> bool:
    return _answers(os.kill, pid)


def processes_here(program: str, root: Path = Path(".")) -> list[int]:
    """Pids of ``program`` (``dvc``, ``git``) running in this project (Linux /proc; [] elsewhere)."""
    root = root.resolve()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0")[:4]]
            cwd = (proc / "cwd").resolve()
        except OSError:
            continue
        named = any(Path(a).name == program for a in argv[:3]) or argv[1:3] == ["-m", program]
        if named and int(proc.name) != os.getpid() and (cwd == root or root in cwd.parents):
            found.append(int(proc.name))
    return found


def lock_problem() -> str | None:
    """Why DVC would refuse to run here because of its lock, or None when it would run."""
    if not RWLOCK.exists():
        return None
    text = RWLOCK.read_text(encoding="utf-8", errors="replace")
    try:
        lock = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        lock = None
    if lock is None:
        return f"{RWLOCK} is empty or corrupt (a DVC command was killed while writing it)"
    holders = [e for e in lock.get("write", {}).values()] + [e for es in lock.get("read", {}).values() for e in es]
    pids = {int(h["pid"]) for h in holders if isinstance(h, dict) and "pid" in h}
    if pids and not any(_pid_alive(p) for p in pids):
        return f"{RWLOCK} names DVC processes that are gone ({', '.join(map(str, sorted(pids)))})"
    return None


def clear_stale_lock() -> None:
    """Remove a stale DVC lock when no DVC process runs here; otherwise say what to do."""
    problem = lock_problem()
    if problem is None:
        return
    running = processes_here("dvc")
    if running:
        raise NerloopError(f"{problem}, and DVC is running here (pid {', '.join(map(str, running))}): wait for it "
                           f"to finish, or stop it and run the command again")
    RWLOCK.unlink()
    print(f"note: {problem}; no DVC process runs here, so nerloop removed it")
