"""DVC's and git's locks left by killed commands, and credentials scrubbed from messages."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nerloop.errors import NerloopError, scrub
from nerloop.loop import repo


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / ".dvc/tmp").mkdir(parents=True)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_no_lock_or_a_released_one_is_fine(project: Path) -> None:
    assert repo.lock_problem() is None
    repo.RWLOCK.write_text("{}")
    assert repo.lock_problem() is None


@pytest.mark.parametrize("content", ["", "{\"write\": {"])
def test_an_empty_or_corrupt_lock_is_cleared_when_no_dvc_runs(project: Path, content: str,
                                                              capsys: pytest.CaptureFixture) -> None:
    repo.RWLOCK.write_text(content)
    assert "empty or corrupt" in repo.lock_problem()
    repo.clear_stale_lock()
    assert not repo.RWLOCK.exists() and "nerloop removed it" in capsys.readouterr().out


def test_a_lock_held_by_dead_processes_is_stale_and_by_a_live_one_is_not(project: Path) -> None:
    dead = _dead_pid()
    repo.RWLOCK.write_text(json.dumps({"write": {"/x": {"pid": dead, "cmd": "dvc repro"}}, "read": {}}))
    assert f"gone ({dead})" in repo.lock_problem()
    repo.RWLOCK.write_text(json.dumps({"write": {"/x": {"pid": os.getpid(), "cmd": "dvc repro"}}, "read": {}}))
    assert repo.lock_problem() is None  # DVC itself will say who holds it


def test_a_corrupt_lock_is_left_alone_while_dvc_runs_here(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo.RWLOCK.write_text("")
    monkeypatch.setattr(repo, "processes_here", lambda program, root=Path("."): [4242])
    with pytest.raises(NerloopError, match=r"DVC is running here \(pid 4242\): wait for it"):
        repo.clear_stale_lock()
    assert repo.RWLOCK.exists()


def test_processes_here_finds_a_program_running_in_the_project(project: Path) -> None:
    proc = subprocess.Popen(["sleep", "30"], cwd=project)
    try:
        assert proc.pid in repo.processes_here("sleep")
        assert proc.pid not in repo.processes_here("sleep", root=project / "elsewhere")
    finally:
        proc.kill()
        proc.wait()


def test_require_project_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NerloopError, match="is not a nerloop project"):
        repo.require_project()


def test_scrub_removes_credentials_from_urls() -> None:
    text = "cannot reach http://lead:s3cret@10.0.0.5:8000/v1 or https://tok@host/x; see http://127.0.0.1:8000"
    assert scrub(text) == "cannot reach http://***@10.0.0.5:8000/v1 or https://***@host/x; see http://127.0.0.1:8000"
    assert "s3cret" not in scrub(text)


# Stands in for DVC after a Ctrl-C: it ignores SIGINT (as DVC does while a stage runs) and starts a
# "stage" that would run for a minute, after the Ctrl-C has come and gone.
LATE_STAGE = """
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
time.sleep(0.5)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(child.pid, flush=True)
child.wait()
time.sleep(60)
"""


def test_ctrl_c_interrupts_a_stage_started_late_and_kills_what_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repo, "INTERRUPT_GRACE_S", 3.0)
    proc = subprocess.Popen([sys.executable, "-c", LATE_STAGE], text=True, stdout=subprocess.PIPE,
                            process_group=0)  # as repo.run starts DVC
    stage = int(proc.stdout.readline())
    assert repo.descendants(proc.pid) == [stage]
    started = time.monotonic()
    repo._stop_after_ctrl_c(proc)
    # the stage got the SIGINT passed to the group (exit by KeyboardInterrupt, long before its minute);
    # the parent ignored it and was killed when the grace ran out: nothing is left running
    assert proc.returncode == -signal.SIGKILL and time.monotonic() - started < 10
    assert not Path(f"/proc/{stage}").exists() or "Z" in Path(f"/proc/{stage}/stat").read_text().split()[2]
