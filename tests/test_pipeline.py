"""End to end: dvc repro through the real stages, and whole cycles with git commits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import load_from_disk

from conftest import run_in

pytestmark = pytest.mark.slow


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_repro_prepare_train_evaluate(tiny_project: Path) -> None:
    run_in(tiny_project, "dvc", "repro", "evaluate")
    assert (tiny_project / "models/current/config.json").exists()
    ev = read_json(tiny_project / "metrics/eval.json")
    assert ev["cycle"] == 0 and ev["labelled_sentences"] == 24 and ev["gold_sentences"] == 16
    assert 0.0 <= ev["f1"] <= 1.0 and 0.0 <= ev["token_accuracy"] <= 1.0
    assert set(ev["per_type"]) <= {"Chemical", "Disease"}
    train = read_json(tiny_project / "metrics/train.json")
    assert train["train_sentences"] + train["validation_sentences"] == 24
    # nothing changed: a second repro reruns nothing but the always-changed import
    out = run_in(tiny_project, "dvc", "repro", "evaluate").stdout
    assert "Running stage 'train'" not in out and "Running stage 'prepare'" not in out


def test_cycles_commit_and_never_ask_twice(tiny_project: Path) -> None:
    for _ in range(3):
        run_in(tiny_project, "nerloop", "cycle")
    log = run_in(tiny_project, "git", "log", "--format=%s").stdout.splitlines()
    assert [m.split(":")[0] for m in log[:3]] == ["nerloop cycle 2", "nerloop cycle 1", "nerloop cycle 0"]
    assert "24 labelled sentences" in log[2] and "36 labelled sentences" in log[0]

    ledger = [json.loads(line) for line in (tiny_project / "data/annotations/ledger.jsonl").read_text().splitlines()]
    ids = [e["id"] for e in ledger]
    assert len(ids) == len(set(ids)) == 12 and sorted({e["cycle"] for e in ledger}) == [1, 2]
    manifest = read_json(tiny_project / "data/export/manifest.json")["examples"]
    assert len(manifest) == 18  # three batches of 6, none sent twice
    gold_ids = {json.loads(line)["id"] for line in (tiny_project / "data/prepared/gold.jsonl").read_text().splitlines()}
    assert not gold_ids & set(manifest)

    history = read_json(tiny_project / "metrics/history.json")
    assert [h["labelled_sentences"] for h in history] == [24, 30, 36]
    assert history[0]["selection"] is None and history[2]["selection"]["strategy"] == "hybrid"
    diff = json.loads(run_in(tiny_project, "dvc", "metrics", "diff", "HEAD~1", "--json").stdout)
    assert diff["metrics/eval.json"]["labelled_sentences"]["diff"] == 6
    assert (tiny_project / "metrics/learning_curve.png").stat().st_size > 1000
    assert any((tiny_project.parent / "remote").rglob("*")), "dvc push stored nothing in the remote"

    status = run_in(tiny_project, "nerloop", "status").stdout
    assert "waiting_for_annotation: 6" in status and "cycle: 2" in status

    # the final stages: splits loadable offline, a card, one more commit
    run_in(tiny_project, "nerloop", "finalize")
    final = load_from_disk(str(tiny_project / "data/final/dataset"))
    assert sum(len(final[s]) for s in ("train", "validation", "test")) > 0
    card = (tiny_project / "data/final/README.md").read_text()
    assert card.startswith("---") and "How each cycle's batch was chosen" in card
    assert run_in(tiny_project, "git", "log", "-1", "--format=%s").stdout.startswith("nerloop: final dataset")


def test_interrupted_cycle_resumes_without_duplicates(tiny_project: Path) -> None:
    run_in(tiny_project, "nerloop", "cycle")
    run_in(tiny_project, "dvc", "repro", "import")  # the next cycle stops after import...
    run_in(tiny_project, "python", "-m", "nerloop.stages.import_annotations")  # ...and import runs twice
    head = run_in(tiny_project, "git", "rev-parse", "HEAD").stdout
    run_in(tiny_project, "nerloop", "cycle")
    ledger = (tiny_project / "data/annotations/ledger.jsonl").read_text().splitlines()
    assert len(ledger) == 6 == len({json.loads(line)["id"] for line in ledger})
    assert run_in(tiny_project, "git", "rev-parse", "HEAD~1").stdout == head
    assert run_in(tiny_project, "git", "status", "--porcelain", "data", "metrics", "dvc.lock").stdout == ""
