"""The two steps of a cycle that reach the outside world: fetch into the inbox, send the outbox; and the
gate between the fetch and the training.

Run here against the simulated annotator in a bare folder (no DVC); the whole cycle, with DVC
and git, is in test_pipeline.py, and the review case against a real Doccano in test_doccano.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nerloop import paths
from nerloop.annotation.core.base import FetchResult
from nerloop.data.files import write_conll, write_json, write_records
from nerloop.data.records import Record
from nerloop.loop import cycle, held_back, inbox
from nerloop.params import load_params


def sentence(i: int) -> Record:
    rec = Record.from_tokens([f"Drug{i}", "causes", "pain", "."])
    rec.tags = ["B-Chemical", "O", "B-Disease", "O"]
    return rec


def batch(ids: range, cycle_no: int) -> list[Record]:
    out = []
    for i in ids:
        rec = sentence(i)
        rec.tags = None
        rec.meta = {"cycle": cycle_no, "pre_tags": ["B-Chemical", "O", "O", "O"], "selection": {"strategy": "random"}}
        out.append(rec)
    return out


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_conll("answers.conll", [sentence(i) for i in range(20)])
    Path("params.yaml").write_text(yaml.safe_dump({
        "data": {"seed": "s.conll", "pool": "p.jsonl", "gold": "g.conll", "labels": ["Chemical", "Disease"]},
        "annotation": {"backend": "simulated", "simulated": {"answers": "answers.conll", "state_dir": "state"}},
    }))
    write_json(paths.LABELS, {"entity_types": ["Chemical", "Disease"]})
    return tmp_path


def manifest() -> dict:
    return json.loads(paths.EXPORT_MANIFEST.read_text())["examples"]


def test_send_records_what_was_sent_and_never_sends_twice(workdir: Path) -> None:
    params = load_params()
    write_records(paths.OUTBOX, batch(range(3), 1))
    assert cycle.send(params) == 3
    assert {e["cycle"] for e in manifest().values()} == {1} and len(manifest()) == 3
    assert cycle.send(params) == 0  # a resumed cycle sends nothing twice
    assert len(Path("state/exported.jsonl").read_text().splitlines()) == 3


def test_a_reselected_batch_for_a_cycle_already_sent_is_not_sent(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    params = load_params()
    write_records(paths.OUTBOX, batch(range(3), 1))
    cycle.send(params)
    write_records(paths.OUTBOX, batch(range(2, 5), 1))  # e.g. `select.alpha` changed before the next import
    assert cycle.send(params) == 0
    assert "already sent" in capsys.readouterr().out and len(manifest()) == 3
    write_records(paths.OUTBOX, batch(range(3, 6), 2))  # the next cycle's batch goes out
    assert cycle.send(params) == 3 and len(manifest()) == 6


def test_fetch_writes_the_inbox_only_when_something_is_new(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    params = load_params()
    assert cycle.fetch(params) == 0 and not paths.INBOX.exists()  # nothing sent yet: the backend is not asked
    write_records(paths.OUTBOX, batch(range(3), 1))
    cycle.send(params)
    assert cycle.fetch(params) == 3
    result, exported = inbox.read()
    assert sorted(a.record.id for a in result.done) == sorted(exported) and set(exported.values()) == {1}
    assert all(a.record.tags == ["B-Chemical", "O", "B-Disease", "O"] for a in result.done)

    from nerloop.data.ledger import Ledger

    Ledger(paths.LEDGER).append(result.done)  # what the import stage does
    before = paths.INBOX.read_bytes()
    assert cycle.fetch(params) == 0 and paths.INBOX.read_bytes() == before
    assert "nothing new from the annotators (0 sentences still waiting)" in capsys.readouterr().out


def test_counts_in_messages_agree_with_their_noun() -> None:
    assert [cycle.counted(n, "sentence") for n in (0, 1, 2)] == ["0 sentences", "1 sentence", "2 sentences"]


def test_fetch_rewrites_the_inbox_when_only_what_waits_changed(workdir: Path) -> None:
    from nerloop.data.ledger import Ledger

    params = load_params()
    write_records(paths.OUTBOX, batch(range(18, 22), 1))  # 20 and 21 have no answer
    cycle.send(params)
    assert cycle.fetch(params) == 2 and len(inbox.read()[0].problems) == 2
    Ledger(paths.LEDGER).append(inbox.read()[0].done)  # what the import stage does
    held_back.gate(1.0)
    held_back.release([sentence(21).id])  # rewrites the inbox itself
    after_release = paths.INBOX.read_bytes()
    assert cycle.fetch(params) == 0 and paths.INBOX.read_bytes() == after_release  # the same still waits
    stale = FetchResult(pending=[sentence(20).id], problems=[f"sentence {sentence(20).id}: an older reason"])
    inbox.write(stale, {sentence(20).id: 1})
    assert cycle.fetch(params) == 0  # nothing new, but the reason changed: the inbox says so now
    (problem,) = inbox.read()[0].problems
    assert problem.startswith(f"sentence {sentence(20).id}: no gold answer")


class ReproReachedError(Exception):
    """Raised instead of `dvc repro`: the test only needs to know whether the cycle got that far."""


@pytest.fixture
def project(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``workdir`` as a project whose cycle 1 sent ten sentences, two of them without an answer; ``repro``
    records its calls (and stops the cycle there). Returns the calls."""
    (workdir / ".dvc").mkdir()
    Path("dvc.yaml").write_text("stages: {}\n")
    for name in ("s.conll", "p.jsonl", "g.conll"):
        Path(name).write_text("")
    write_conll("answers.conll", [sentence(i) for i in range(8)])
    write_records(paths.OUTBOX, batch(range(10), 1))
    cycle.send(load_params())
    paths.OUTBOX.unlink()
    calls: list[str] = []

    def repro() -> None:
        calls.append(cycle.journal()["step"])
        raise ReproReachedError

    monkeypatch.setattr(cycle, "repro", repro)
    return calls


def test_the_gate_stops_a_cycle_after_the_fetch_before_any_training(project: list[str]) -> None:
    with pytest.raises(held_back.HeldBackError) as err:
        cycle.run_cycle()  # 2 of 10 held back: 20% > annotation.max_held_back_share (10%)
    assert project == [] and cycle.journal() is None  # nothing trained; no cycle to resume
    msg = str(err.value)
    assert "cycle 1: 2 of 10 exported sentences (20%)" in msg and "before training" in msg
    for i in (8, 9):
        assert f"sentence {sentence(i).id}: no gold answer in answers.conll" in msg
    assert f"nerloop held-back release {sentence(8).id} {sentence(9).id}" in msg
    assert len(inbox.read()[0].done) == 8 and len(held_back.load()) == 2  # what the fetch saw, listed

    write_conll("answers.conll", [sentence(i) for i in range(9)])  # one fixed: 10% is within the limit
    with pytest.raises(ReproReachedError):
        cycle.run_cycle()  # the next cycle fetches again and goes on to train
    assert project == ["repro"] and [h.id for h in held_back.load()] == [sentence(9).id]


def test_a_cycle_resumed_at_repro_fetches_and_passes_the_gate_again(project: list[str]) -> None:
    write_conll("answers.conll", [sentence(i) for i in range(9)])
    with pytest.raises(ReproReachedError):
        cycle.run_cycle()  # interrupted in the repro
    assert cycle.journal()["step"] == "repro" and len(inbox.read()[0].done) == 9
    write_conll("answers.conll", [sentence(i) for i in range(10)])  # fixed while the cycle was stopped
    with pytest.raises(ReproReachedError):
        cycle.run_cycle()
    assert len(inbox.read()[0].done) == 10 and held_back.load() == []  # the resumed cycle saw the fix
    write_conll("answers.conll", [sentence(i) for i in range(7)])  # (cannot happen to a real team: a test of the
    with pytest.raises(held_back.HeldBackError):  # gate) the resumed cycle is stopped by its gate too
        cycle.run_cycle()
    assert project == ["repro", "repro"] and cycle.journal()["step"] == "repro"

