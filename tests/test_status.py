"""`nerloop status` as a person reads it: right on a fresh clone, clear outside a project.

The states reached by running cycles (after a cycle, interrupted, killed) are checked in
test_pipeline.py, where those states are produced for real.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import project_env, run_in


def test_outside_a_project_it_says_so_and_fails(tmp_path: Path) -> None:
    proc = subprocess.run(["nerloop", "status"], cwd=tmp_path, env=project_env(), text=True, capture_output=True)
    assert proc.returncode == 1
    assert f"error: {tmp_path} is not a nerloop project" in proc.stderr and proc.stdout == ""


def test_on_a_fresh_clone_it_counts_the_raw_files_and_says_what_to_run(tiny_project: Path) -> None:
    out = run_in(tiny_project, "nerloop", "status").stdout
    assert "pool left:           40 sentences never selected" in out
    assert "labelled sentences:  24 (24 seed)" in out and "gold F1:             not yet trained" in out
    assert "next:                nerloop cycle   # trains on the seed set" in out
    assert "manual effort:       not measured yet (nothing imported from annotators)" in out
    s = json.loads(run_in(tiny_project, "nerloop", "status", "--json").stdout)
    assert s["backend"] == "simulated" and s["cycle"] == 0 and s["waiting_for_annotation"] == 0
    assert s["uncommitted"] == [] and s["interrupted"] is None and s["dvc_lock_problem"] is None


def test_a_stale_dvc_lock_and_uncommitted_params_are_shown(tiny_project: Path) -> None:
    (tiny_project / ".dvc/tmp").mkdir(exist_ok=True)
    (tiny_project / ".dvc/tmp/rwlock").write_text("")  # what a SIGKILLed DVC can leave
    params = tiny_project / "params.yaml"
    params.write_text(params.read_text().replace("alpha: 0.7", "alpha: 0.5"))
    out = run_in(tiny_project, "nerloop", "status").stdout
    assert "DVC lock:            .dvc/tmp/rwlock is empty or corrupt" in out
    assert "uncommitted:         params.yaml (the next cycle commits them)" in out
    assert "next:                nerloop cycle   # clears the stale DVC lock" in out


def test_forecast_lines_say_stop_or_continue_and_read_well_out_of_reach() -> None:
    from nerloop.loop.status import forecast_lines

    f = {"cycle": 3, "decision": "continue", "why": "about 1,200 more sentences to F1 0.750", "target_f1": 0.75,
         "kappa": 0.97, "stable_cycles": 0, "kappa_threshold": 0.99, "window": 3, "gain_per_100_sentences": 1.234,
         "hours_more": 4.2, "seconds_per_sentence": 12.5,
         "sentences": {"needed": 1800, "needed_low": 1500, "needed_high": None, "ceiling": 0.8, "ceiling_low": 0.74,
                       "ceiling_high": 0.9, "capacity": 3200, "reachable": True, "why": None}}
    assert forecast_lines(None) == []
    assert forecast_lines(f) == [
        "stop or continue:    continue: about 1,200 more sentences to F1 0.750 (cycle 3)",
        "forecast:            F1 0.750 at 1,800 labelled sentences (90% band 1,500-never), ~4.2 h more at 12.5 "
        "s/sentence; ceiling 0.800 (0.740-0.900)",
        "stop-set kappa:      0.970 (stop at >= 0.99 for 3 cycles: 0 so far); gold F1 +1.23 points per 100 sentences "
        "over the last 3 cycles",
    ]
    f["sentences"]["needed_high"] = 5000  # more than seed and pool hold
    assert "(90% band 1,500-beyond the pool)" in forecast_lines(f)[1]
    f.update(kappa=None, gain_per_100_sentences=None, hours_more=None)
    f["sentences"].update(needed=None, reachable=None, why="too early to tell: the fitted ceiling is F1 0.700, below "
                          "the target 0.750, but the 90% band reaches it at 2,300 sentences")
    lines = forecast_lines(f)
    assert lines[1].startswith("forecast:            F1 0.750 - too early to tell: the fitted ceiling is F1 0.700")
    assert lines[2] == "stop-set kappa:      not yet (needs two cycles) (stop at >= 0.99 for 3 cycles: 0 so far)"


def test_the_next_step_names_the_way_out_when_stopped_and_the_lead_when_some_are_in_review() -> None:
    from nerloop.loop.held_back import way_out
    from nerloop.loop.status import next_step

    s = {"running": None, "orphans": [], "interrupted": None, "dvc_lock_problem": None, "last_f1": 0.5,
         "forecast": None, "waiting_for_annotation": 3, "backend": "doccano", "pool_left": 10, "in_review": [],
         "blocked": None}
    stop = {"cycles": {"3": [2, 10]}, "sentences": ["a1", "b2"], "way_out": way_out(["a1", "b2"])}
    told = next_step({**s, "blocked": stop})
    assert told.startswith("the loop is stopped by too many held-back sentences (a1, b2; each reason under held back")
    assert "then run `nerloop cycle`" in told and "`nerloop held-back release a1 b2`" in told
    # a cycle interrupted in its repro passes the gate again when resumed; one interrupted later only finishes
    assert next_step({**s, "blocked": stop, "interrupted": {"step": "repro"}}) == told
    assert next_step({**s, "blocked": stop, "interrupted": {"step": "send"}}).startswith("nerloop cycle   # finishes")
    assert next_step({**s, "in_review": ["x"]}) == (
        "annotate the 3 waiting sentences in doccano (1 of them disagreements for the lead to resolve in the review "
        "project, as listed under in review), then: nerloop cycle   # imports what was confirmed, retrains and sends "
        "the next batch")
