"""Bad input is caught before any training, naming its key: `nerloop cycle` as a user types it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from conftest import run_in
from test_lock import nerloop


def edit(project: Path, section: str, key: str, value: object) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params[section][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.parametrize(("section", "key", "value", "named"), [
    ("select", "strategy", "hybird", "select.strategy: 'hybird' is not a strategy; choose one of random"),
    ("select", "measure", "bald", "select: measure 'bald' needs score.mc_dropout_passes > 0"),
    ("data", "pool", "data/raw/missing.jsonl", "data.pool: data/raw/missing.jsonl does not exist"),
    ("model", "base", "acme/not-cached", "model.base: 'acme/not-cached' is not in the model-hub cache"),
])
def test_a_bad_value_stops_the_cycle_in_seconds_naming_the_key(tiny_project: Path, section: str, key: str,
                                                               value: object, named: str) -> None:
    edit(tiny_project, section, key, value)
    t0 = time.monotonic()
    proc = nerloop(tiny_project, "cycle", timeout=120)
    assert proc.returncode == 1 and named in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert time.monotonic() - t0 < 60 and "dvc repro" not in proc.stdout  # nothing ran, nothing trained
    assert not (tiny_project / "models").exists()


def test_a_missing_or_broken_answers_file_is_named_before_cycle_0_trains(tiny_project: Path) -> None:
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    params["annotation"]["simulated"]["answers"] = "data/raw/nope.conll"
    (tiny_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = nerloop(tiny_project, "cycle", timeout=120)
    assert proc.returncode == 1 and "annotation.simulated.answers: data/raw/nope.conll does not exist" in proc.stderr
    (tiny_project / "data/raw/nope.conll").write_text("Aspirin B-Chemical\ncauses\n")  # a line with one column
    proc = nerloop(tiny_project, "cycle", timeout=120)
    assert proc.returncode == 1 and "annotation.simulated.answers" in proc.stderr and "nope.conll" in proc.stderr
    assert not (tiny_project / "models").exists()


def test_seed_sentences_also_in_gold_are_reported_with_a_count_and_an_example(tiny_project: Path) -> None:
    seed, gold = tiny_project / "data/raw/seed.conll", tiny_project / "data/raw/gold.conll"
    first_gold = gold.read_text().split("\n\n")[0]
    seed.write_text(seed.read_text().rstrip("\n") + "\n\n" + first_gold + "\n")
    proc = run_in(tiny_project, "dvc", "repro", "prepare")
    assert "1 seed sentence(s) are also in the gold set" in proc.stdout + proc.stderr
    prepared = json.loads((tiny_project / "metrics/prepare.json").read_text())
    assert prepared["seed_sentences_in_gold"] == 1 and prepared["seed_sentences"] == 24
    assert "1 more seed sentences are in the gold set and left out" in run_in(tiny_project, "nerloop", "status").stdout
