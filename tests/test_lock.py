"""One command at a time: the project lock, what `nerloop status` says meanwhile, and kills (as users type them)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import yaml

from conftest import project_env, run_in
from nerloop.loop.lock import orphans
from test_pipeline import _ctrl_c_works_as_in_a_terminal, _wait_for


def slow_training(project: Path) -> None:
    """Params under which cycle 0 trains long enough to be caught in the act."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"].update(epochs=100, early_stopping_patience=100)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def training(project: Path) -> bool:
    """A train stage of this project is running."""
    try:
        return any(b"train" in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in orphans(project))
    except OSError:
        return False


def nerloop(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nerloop", *args], cwd=project, env=project_env(), text=True, capture_output=True,
                          timeout=timeout)


def start_cycle(project: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(["nerloop", "cycle"], cwd=project, env=project_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_works_as_in_a_terminal)


def test_a_second_command_is_refused_while_a_cycle_runs_and_a_killed_ones_leftovers_are_named(
        tiny_project: Path) -> None:
    slow_training(tiny_project)
    first = start_cycle(tiny_project)
    _wait_for(lambda: training(tiny_project), 300, "cycle 0's training")
    under_it = orphans(tiny_project)  # dvc repro and the train stage: frozen, so the tiny training cannot end
    for pid in under_it:  # while the checks below run (the lock and the PIDs stay as they are)
        os.kill(pid, signal.SIGSTOP)

    t0 = time.monotonic()
    second = nerloop(tiny_project, "cycle", timeout=60)
    assert second.returncode == 1 and time.monotonic() - t0 < 30
    assert f"`nerloop cycle` (pid {first.pid}, since " in second.stderr
    assert "is running in this project" in second.stderr
    assert "rwlock" not in second.stderr and "Traceback" not in second.stderr
    assert nerloop(tiny_project, "simulate", "--cycles", "1", timeout=60).returncode == 1
    status = json.loads(run_in(tiny_project, "nerloop", "status", "--json").stdout)
    assert status["running"]["pid"] == first.pid and status["running"]["step"] == "repro"
    assert status["interrupted"] is None and status["next"].startswith("wait:")
    text = run_in(tiny_project, "nerloop", "status").stdout
    assert f"running:             `nerloop cycle` (pid {first.pid}" in text and "interrupted" not in text

    for pid in under_it:  # running again (a group left stopped when its parent dies gets SIGHUP from the kernel)
        os.kill(pid, signal.SIGCONT)
    os.kill(first.pid, signal.SIGKILL)  # nerloop alone: its dvc repro and the training under it run on
    first.wait(timeout=60)  # (its output pipes stay open: the orphans hold them)
    left = nerloop(tiny_project, "cycle", timeout=60)
    assert left.returncode == 1 and "was killed, but what it started still runs here" in left.stderr
    status = json.loads(run_in(tiny_project, "nerloop", "status", "--json").stdout)
    assert status["orphans"] == under_it and status["next"].startswith(f"wait for pid {under_it[0]}")
    for pid in under_it:
        os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not training(tiny_project), 60, "the orphans to go")

    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    params["train"].update(epochs=2, early_stopping_patience=3)
    (tiny_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run_in(tiny_project, "nerloop", "cycle").stdout
    assert "took over the project lock of `nerloop cycle`" in out and "resuming the cycle interrupted" in out
    assert run_in(tiny_project, "git", "log", "-1", "--format=%s").stdout.startswith("nerloop cycle 0")


def test_sigterm_to_nerloop_alone_stops_the_whole_cycle_with_one_line(tiny_project: Path) -> None:
    slow_training(tiny_project)
    proc = start_cycle(tiny_project)
    _wait_for(lambda: training(tiny_project), 300, "cycle 0's training")
    os.kill(proc.pid, signal.SIGTERM)  # `kill PID`, as a scheduler or a closing terminal sends it
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    # one line, as the README promises: no stage message, no DVC error, no warnings after the progress bars
    assert err.rstrip("\n").rsplit("\n", 1)[-1].endswith(
        "interrupted during `dvc repro`: nothing is lost; run `nerloop cycle` again to finish and commit it")
    assert "WARNING" not in err and "ERROR" not in err and "previous outputs are kept" not in err
    assert not training(tiny_project) and orphans(tiny_project) == []
    status = json.loads(run_in(tiny_project, "nerloop", "status", "--json").stdout)
    assert status["running"] is None and status["interrupted"]["step"] == "repro"


def test_simulate_takes_one_or_more_cycles(tiny_project: Path) -> None:
    for bad in ("0", "-2", "two"):
        proc = nerloop(tiny_project, "simulate", "--cycles", bad, timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert "argument --cycles" in proc.stderr and proc.stderr.count("\n") <= 3
