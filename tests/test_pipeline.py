"""End to end in temporary git+DVC projects: dvc repro, whole cycles, and DVC users' habits.

Each test drives the commands a user types (``nerloop cycle``, ``dvc repro``, ``dvc exp run``,
``dvc status``...) as subprocesses in a throw-away project with a tiny BERT. A cycle costs most of a
minute (ten stage processes, each loading its libraries), so the tests that start after two cycles
share one such project, built once, and each works in its own copy of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from datasets import load_from_disk

from conftest import make_tiny_project, project_env, run_in
from nerloop.data.annotations import manual_effort, summed

pytestmark = pytest.mark.slow

# What annotators and the ledger hold: `dvc repro` and `dvc exp run` must leave these untouched.
OUTSIDE_WORLD = ["data/annotations/ledger.jsonl", "data/annotations/inbox.json", "data/export/manifest.json",
                 "annotation/simulated/exported.jsonl"]


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def digest(project: Path, names: list[str]) -> dict[str, str]:
    return {n: hashlib.md5((project / n).read_bytes()).hexdigest() for n in names if (project / n).exists()}


def ran_stages(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")]


def subjects(project: Path) -> list[str]:
    return run_in(project, "git", "log", "--format=%s").stdout.splitlines()


def set_params(project: Path, section: str, **values: object) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params[section].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def two_cycles_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project after two committed `nerloop cycle`s (cycle 1's batch of 6 is out), built once."""
    project = make_tiny_project(tmp_path_factory.mktemp("two-cycles"))
    run_in(project, "nerloop", "cycle")
    run_in(project, "nerloop", "cycle")
    return project


@pytest.fixture
def two_cycles(two_cycles_built: Path, tmp_path: Path) -> Path:
    """This test's own copy of the two-cycle project and its DVC remote (the tiny BERT stays shared, read-only)."""
    project = tmp_path / "project"
    shutil.copytree(two_cycles_built, project, symlinks=True)
    shutil.copytree(two_cycles_built.parent / "remote", tmp_path / "remote")
    run_in(project, "dvc", "remote", "modify", "--local", "local", "url", str(tmp_path / "remote"))
    return project


def test_repro_prepare_train_evaluate(tiny_project: Path) -> None:
    run_in(tiny_project, "dvc", "repro", "evaluate")
    assert (tiny_project / "models/current/config.json").exists()
    assert not (tiny_project / "models/current/training_args.bin").exists()  # it pickles a temporary path
    ev = read_json(tiny_project / "metrics/eval.json")
    assert ev["cycle"] == 0 and ev["labelled_sentences"] == 24 and ev["gold_sentences"] == 16
    assert 0.0 <= ev["f1"] <= 1.0 and 0.0 <= ev["token_accuracy"] <= 1.0
    assert set(ev["per_type"]) <= {"Chemical", "Disease"}
    train = read_json(tiny_project / "metrics/train.json")
    # the shipped recipe: with no probe yet, a probe held out a fifth to pick the epochs, then the model learnt
    # from all 24; the probe is kept for the next cycles (which train once while the probes suffice)
    assert train["recipe"] == "fitted" and train["probed"] and train["train_sentences"] == 24
    assert train["validation_sentences"] == 5 and 1 <= train["epochs_run"] <= train["probe_epochs_run"]
    assert [p["labelled"] for p in read_json(tiny_project / "metrics/probes.json")] == [24]
    # nothing changed: a second repro runs nothing at all (import is an ordinary stage now)
    assert ran_stages(run_in(tiny_project, "dvc", "repro", "evaluate").stdout) == []
    # the same data, params and seed give the same model, byte for byte (the remote stores it once)
    lock = read_json_yaml(tiny_project / "dvc.lock")
    run_in(tiny_project, "dvc", "repro", "-f", "-s", "train")
    assert out_md5(read_json_yaml(tiny_project / "dvc.lock"), "train", "models/current") == \
        out_md5(lock, "train", "models/current")


def read_json_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def out_md5(lock: dict, stage: str, path: str) -> str:
    return next(o["md5"] for o in lock["stages"][stage]["outs"] if o["path"] == path)


def test_cycles_commit_and_never_ask_twice(two_cycles: Path) -> None:
    run_in(two_cycles, "nerloop", "cycle")
    log = subjects(two_cycles)
    assert [m.split(":")[0] for m in log[:3]] == ["nerloop cycle 2", "nerloop cycle 1", "nerloop cycle 0"]
    assert "24 labelled sentences" in log[2] and "36 labelled sentences" in log[0]

    ledger = [json.loads(line) for line in (two_cycles / "data/annotations/ledger.jsonl").read_text().splitlines()]
    ids = [e["id"] for e in ledger]
    assert len(ids) == len(set(ids)) == 12 and sorted({e["cycle"] for e in ledger}) == [1, 2]
    manifest = read_json(two_cycles / "data/export/manifest.json")["examples"]
    assert len(manifest) == 18  # three batches of 6, none sent twice
    gold_ids = {json.loads(line)["id"] for line in (two_cycles / "data/prepared/gold.jsonl").read_text().splitlines()}
    assert not gold_ids & set(manifest)

    history = read_json(two_cycles / "metrics/history.json")
    assert [h["labelled_sentences"] for h in history] == [24, 30, 36]
    assert history[0]["selection"] is None and history[2]["selection"]["strategy"] == "hybrid"
    # manual effort (edits from the pre-annotation / edits from nothing) per import and over all, from the ledger
    assert history[0]["manual_effort_share"] is None
    assert history[2]["manual_effort_share"] == manual_effort(summed([e["effort"] for e in ledger if e["cycle"] == 2]))
    assert history[2]["manual_effort_share_cumulative"] == manual_effort(summed([e["effort"] for e in ledger]))
    diff = json.loads(run_in(two_cycles, "dvc", "metrics", "diff", "HEAD~1", "--json").stdout)
    assert diff["metrics/eval.json"]["labelled_sentences"]["diff"] == 6
    assert (two_cycles / "metrics/learning_curve.png").stat().st_size > 1000
    assert any((two_cycles.parent / "remote").rglob("*")), "dvc push stored nothing in the remote"

    status = json.loads(run_in(two_cycles, "nerloop", "status", "--json").stdout)
    assert status["cycle"] == 2 and status["waiting_for_annotation"] == 6 and status["labelled_sentences"] == 36
    assert status["pool_left"] == 40 - 18 and status["uncommitted"] == [] and status["interrupted"] is None
    assert status["manual_effort"] == read_json(two_cycles / "metrics/annotation.json")["manual_effort"] == {
        "cycle": 2, "last_cycle": history[2]["manual_effort_share"],
        "cumulative": history[2]["manual_effort_share_cumulative"]}
    assert status["next"].startswith("nerloop cycle")

    # the last cycle sends nothing; then there is nothing new: no training, no commit
    run_in(two_cycles, "nerloop", "cycle", "--no-send")
    assert subjects(two_cycles)[0].startswith("nerloop cycle 3: 42 labelled sentences")
    assert len(read_json(two_cycles / "data/export/manifest.json")["examples"]) == 18
    out = run_in(two_cycles, "nerloop", "cycle", "--no-send").stdout
    assert "nothing new from the annotators" in out and "no training, no commit" in out
    assert ran_stages(out) == [] and subjects(two_cycles)[0].startswith("nerloop cycle 3")

    # the final dataset and card are those of the last committed cycle; finalize imports and trains nothing
    out = run_in(two_cycles, "nerloop", "finalize").stdout
    assert ran_stages(out) == [] and "up to date: nothing to commit" in out
    final = load_from_disk(str(two_cycles / "data/final/dataset"))
    assert sum(len(final[s]) for s in ("train", "validation", "test")) == 42 + 16  # labelled + gold
    card = (two_cycles / "data/final/README.md").read_text()
    assert card.startswith("---") and "How each cycle's batch was chosen" in card
    assert read_json(two_cycles / "metrics/history.json")[-1]["cycle"] == 3


def test_dvc_commands_do_what_dvc_users_expect(two_cycles: Path) -> None:
    # after a committed cycle: status is clean, repro does nothing
    assert "up to date" in run_in(two_cycles, "dvc", "status").stdout
    before = digest(two_cycles, OUTSIDE_WORLD)
    assert len(before) == 4
    assert ran_stages(run_in(two_cycles, "dvc", "repro").stdout) == []
    assert run_in(two_cycles, "git", "status", "--porcelain").stdout == ""

    # an experiment recomputes what the param changes, on the current state, and nothing else
    batch = (two_cycles / "data/selection/batch.jsonl").read_text()
    out = run_in(two_cycles, "dvc", "exp", "run", "-S", "select.alpha=0.1", "-S",
                 "select.strategy=uncertainty").stdout
    assert set(ran_stages(out)) == {"select", "export", "datacard"}
    assert digest(two_cycles, OUTSIDE_WORLD) == before, "an experiment touched the ledger or the annotators"
    assert (two_cycles / "data/selection/batch.jsonl").read_text() != batch
    exps = json.loads(run_in(two_cycles, "dvc", "exp", "show", "--json").stdout)
    assert "0.1" in json.dumps(exps) and "uncertainty" in json.dumps(exps)
    run_in(two_cycles, "git", "checkout", "--", ".")  # back to the committed state, as a user would
    run_in(two_cycles, "dvc", "checkout")

    # plots: each once, no default renderings of raw JSON; metrics load without warnings
    plots = json.loads(run_in(two_cycles, "dvc", "plots", "show", "--json").stdout)["data"]
    assert sorted(plots) == sorted(["learning curve (sentences)", "learning curve (tokens)", "per-type F1",
                                    "confusion", "forecast (sentences, 90% band)",
                                    "manual effort (edits made / edits from nothing)", "metrics/learning_curve.png",
                                    "metrics/per_type_f1.png", "metrics/forecast.png"])
    # the forecast plot stays empty until a third cycle gives the curve its three points
    assert {k: len(v) for k, v in plots.items()} == {**{k: 1 for k in plots}, "forecast (sentences, 90% band)": 0}
    shown = run_in(two_cycles, "dvc", "metrics", "show")
    assert "failed to load" not in shown.stdout + shown.stderr


def test_forecast_and_stopping_rule_reach_status_and_card(two_cycles: Path) -> None:
    """Two cycles: a kappa, no forecast yet (tests/test_forecast.py has the fitted path); status and card show it."""
    stop_set = read_json(two_cycles / "metrics/stop_set.json")
    assert len(stop_set["ids"]) == 40 and sorted(stop_set["predictions"]) == ["0", "1"]  # the tiny pool, all of it
    history = read_json(two_cycles / "metrics/history.json")
    f = read_json(two_cycles / "metrics/forecast.json")
    assert [h["stop_kappa"] for h in history] == [None, f["kappa"]] and -1 <= f["kappa"] <= 1
    assert f["cycle"] == 1 and f["sentences"] is None and f["stop_set"] == {"sentences": 40, "labelled": 6}
    # the shipped rule (kappa >= 0.96 for 1 cycle) may already stop on the first kappa: the tiny model's two
    # cycles can predict the stop set alike (0.90 in one run, >= 0.96 in another); otherwise no forecast yet
    stops = f["kappa"] >= f["kappa_threshold"] and f["window"] == 1
    why = "predictions have stabilised: more annotation no longer changes what the model predicts" if stops else \
        "too few cycles for a forecast yet"
    assert (f["decision"], f["why"]) == ("stop" if stops else "continue", why)
    assert read_json(two_cycles / "metrics/forecast_curve.json") == []
    assert (two_cycles / "metrics/forecast.png").stat().st_size > 1000
    assert run_in(two_cycles, "git", "status", "--porcelain").stdout == ""  # all of it committed with the cycle

    out = run_in(two_cycles, "nerloop", "status").stdout
    assert f"stop or continue:    {f['decision']}: {why} (cycle 1)" in out
    assert f"stop-set kappa:      {f['kappa']:.3f} (stop at >= 0.96 for 1 cycle: " in out
    run_in(two_cycles, "nerloop", "finalize")
    card = (two_cycles / "data/final/README.md").read_text()
    assert "### Stopping Decision" in card and f"Decision recorded then: **{f['decision']}**" in card
    assert f"| 1 | 30 | {history[-1]['f1']:.3f} | {f['kappa']:.3f} |" in card


def test_failing_stage_keeps_outputs_and_venv_need_not_be_active(two_cycles: Path) -> None:
    kept = ["models/current/model.safetensors", "metrics/train.json", "data/annotations/pending.json",
            "data/prepared/labels.json", "metrics/eval.json", "data/selection/batch.jsonl"]
    before = digest(two_cycles, kept)
    set_params(two_cycles, "train", epochs=2.5)
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=two_cycles, text=True, capture_output=True,
                          env=project_env())
    assert proc.returncode != 0 and "params.yaml: train.epochs: must be a whole number, got 2.5" in proc.stderr
    assert digest(two_cycles, kept) == before  # DVC did not delete the failed stage's outputs

    # `.venv/bin/dvc repro` with the venv not activated: nothing of the venv on PATH
    set_params(two_cycles, "train", epochs=1)
    (two_cycles / ".venv").symlink_to(Path(sys.executable).parent.parent)  # the project's .venv, as setup makes it
    env = {k: v for k, v in project_env().items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"
    proc = subprocess.run([str(two_cycles / ".venv/bin/dvc"), "repro"], cwd=two_cycles, text=True,
                          capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "No module named" not in proc.stderr and "train" in ran_stages(proc.stdout)


def write_pool(project: Path, conll: str, n: int) -> None:
    """A JSONL pool of the first ``n`` sentences (tokens only) of a CoNLL file in data/raw."""
    blocks = (project / "data/raw" / conll).read_text().strip().split("\n\n")[:n]
    with (project / "data/raw/pool.jsonl").open("w") as fh:
        for block in blocks:
            fh.write(json.dumps({"tokens": [line.split()[0] for line in block.splitlines()]}) + "\n")


def repro_prepare(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dvc", "repro", "prepare"], cwd=project, text=True,
                          capture_output=True, env=project_env())


def test_prepare_stops_on_an_unusable_pool_or_seed(tiny_project: Path) -> None:
    write_pool(tiny_project, "gold.conll", 5)  # a pool lying wholly inside the gold set
    proc = repro_prepare(tiny_project)
    assert proc.returncode != 0 and "data/raw/pool.jsonl: no pool sentence is left" in proc.stderr

    write_pool(tiny_project, "pool_answers.conll", 40)
    seed = tiny_project / "data/raw/seed.conll"
    lines = seed.read_text().splitlines()
    seed.write_text("\n".join(f"{line.split()[0]}\tO" if line.strip() else "" for line in lines))
    proc = repro_prepare(tiny_project)
    assert proc.returncode != 0 and "data/raw/seed.conll: the seed set has no entity at all" in proc.stderr


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _ctrl_c_works_as_in_a_terminal() -> None:
    """Run in the child before exec: SIGINT back to its default.

    A shell that starts the tests in the background (``bash .ci/run &``) sets SIGINT to ignored, and
    every process below inherits that: Python then installs no KeyboardInterrupt handler, and a
    Ctrl-C would be lost. A command typed in a terminal always gets the default.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_then_a_kill_between_send_and_commit_and_the_cycle_resumes_each_time(two_cycles: Path) -> None:
    """Ctrl-C during training, then the resumed cycle killed between sending the batch and committing:
    each time `nerloop status` names the step, and the next `nerloop cycle` finishes and commits cycle 2
    only, nothing asked twice. (One test: each resume is a whole cycle.)"""
    set_params(two_cycles, "train", epochs=30, early_stopping_patience=30)  # long enough to be interrupted
    ledger = two_cycles / "data/annotations/ledger.jsonl"
    manifest = two_cycles / "data/export/manifest.json"
    proc = subprocess.Popen(["nerloop", "cycle"], cwd=two_cycles, env=project_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_works_as_in_a_terminal)
    _wait_for(lambda: len(ledger.read_text().splitlines()) == 12, 300, "cycle 2's import of the answers")
    time.sleep(5)  # now in train
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err, err[-3000:]
    # one line, as the README promises: no stage message, no DVC error, no warnings after the progress bars
    assert err.rstrip("\n").rsplit("\n", 1)[-1].endswith(
        "interrupted during `dvc repro`: nothing is lost; run `nerloop cycle` again to finish and commit it")
    assert "ERROR" not in err and "previous outputs are kept" not in err
    status = json.loads(run_in(two_cycles, "nerloop", "status", "--json").stdout)
    assert status["interrupted"]["step"] == "repro" and status["dvc_lock_problem"] is None
    set_params(two_cycles, "train", epochs=2, early_stopping_patience=3)

    # the resumed cycle, killed between send and commit (a slow commit hook widens that window)
    hook = two_cycles / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\nsleep 120\n")
    hook.chmod(0o755)
    proc = subprocess.Popen(["nerloop", "cycle"], cwd=two_cycles, env=project_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: len(read_json(manifest)["examples"]) == 18, 600, "cycle 2's batch to be sent")
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    hook.unlink()
    assert subjects(two_cycles)[0].startswith("nerloop cycle 1")
    status = json.loads(run_in(two_cycles, "nerloop", "status", "--json").stdout)
    assert status["interrupted"]["step"] == "commit" and status["next"].startswith("nerloop cycle")

    out = run_in(two_cycles, "nerloop", "cycle").stdout
    assert "resuming the cycle interrupted at step 'commit'" in out and "took over the project lock" in out
    # the resume finishes and commits cycle 2 only; the next command runs cycle 3
    assert [s.split(":")[0] for s in subjects(two_cycles)[:2]] == ["nerloop cycle 2", "nerloop cycle 1"]
    run_in(two_cycles, "nerloop", "cycle")
    assert [s.split(":")[0] for s in subjects(two_cycles)[:3]] == ["nerloop cycle 3", "nerloop cycle 2",
                                                                     "nerloop cycle 1"]
    lines = ledger.read_text().splitlines()
    assert len(lines) == len({json.loads(line)["id"] for line in lines}) == 18
    assert len(read_json(manifest)["examples"]) == 24
    assert run_in(two_cycles, "git", "status", "--porcelain").stdout == ""


def test_a_gazetteer_pre_annotates_the_first_batch_and_its_spans_come_back_through_the_ledger(
        tiny_project: Path) -> None:
    from nerloop.data.formats import read_conll
    from nerloop.data.tags import check_iob2, tags_to_spans

    # the seed's entity names as a type no sentence is labelled with yet: its spans always come from the patterns
    # (the tiny random model proposes spans everywhere, so a learned type's pattern spans would give way to it)
    seed = read_conll(tiny_project / "data/raw/seed.conll")
    names = sorted({" ".join(r.tokens[s:e]) for r in seed for s, e, _ in tags_to_spans(r.tags or [])})
    (tiny_project / "data/raw/names.txt").write_text("".join(f"{n}\tGene\n" for n in names), encoding="utf-8")
    set_params(tiny_project, "data", patterns="data/raw/names.txt", labels=["Chemical", "Disease", "Gene"])
    set_params(tiny_project, "select", pattern_bonus=1.0)
    run_in(tiny_project, "nerloop", "cycle")

    batch = [json.loads(line) for line in (tiny_project / "data/selection/batch.jsonl").read_text().splitlines()]
    assert len(batch) == 6
    for rec in batch:
        meta = rec["meta"]
        assert len(meta["pre_sources"]) == len(meta["pre_spans"])
        assert all(s == "model" or s.startswith("pattern:") for s in meta["pre_sources"])
        check_iob2(meta["pre_tags"], ["Chemical", "Disease", "Gene"])
        assert len(meta["pre_tags"]) == len(rec["tokens"])
        for (_, _, label, _), source in zip(meta["pre_spans"], meta["pre_sources"], strict=True):
            assert (label == "Gene") == (source == "pattern:Gene")
    assert any(s == "pattern:Gene" for rec in batch for s in rec["meta"]["pre_sources"])  # seed names recur in the pool
    assert "## Patterns" in (tiny_project / "data/selection/report.md").read_text()
    assert (tiny_project / "data/export/outbox.jsonl").exists()

    run_in(tiny_project, "nerloop", "cycle")  # the simulated annotator answers; the ledger keeps what it was shown
    ledger = [json.loads(line) for line in (tiny_project / "data/annotations/ledger.jsonl").read_text().splitlines()]
    shown = {rec["id"]: rec["meta"]["pre_tags"] for rec in batch}
    assert len(ledger) == 6 and all(e["pre_tags"] == shown[e["id"]] for e in ledger)
