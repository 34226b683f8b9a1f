"""The two steps of a cycle that reach the outside world: fetch into the inbox, send the outbox.

Run here against the simulated annotator in a bare folder (no DVC); the whole cycle, with DVC
and git, is in test_pipeline.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nerloop import cycle, inbox, paths
from nerloop.formats import write_conll, write_json, write_records
from nerloop.params import load_params
from nerloop.records import Record


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

    from nerloop.ledger import Ledger

    Ledger(paths.LEDGER).append(result.done)  # what the import stage does
    before = paths.INBOX.read_bytes()
    assert cycle.fetch(params) == 0 and paths.INBOX.read_bytes() == before
    assert "nothing new from the annotators (0 sentences still waiting)" in capsys.readouterr().out


def test_counts_in_messages_agree_with_their_noun() -> None:
    assert [cycle.counted(n, "sentence") for n in (0, 1, 2)] == ["0 sentences", "1 sentence", "2 sentences"]
