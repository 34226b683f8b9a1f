"""The simulated annotator: idempotent export, answers from the gold file, pending sentences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerloop.annotation.simulated import SimulatedBackend
from nerloop.data.annotations import Annotation
from nerloop.data.formats import read_any, record_from_text
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record
from nerloop.data.tags import tags_to_spans
from nerloop.errors import DataError

ANSWERS = "Ada\tB-PER\nmet\tO\nBob\tB-PER\n\nParis\tI-LOC\nis\tO\nbig\tO\n\nin\tO\nNew\tB-LOC\nYork\tI-LOC\n"


def _pool(tokens: list[str], cycle: int = 1, pre: list[str] | None = None) -> Record:
    meta = {"cycle": cycle, "scores": {"mnlp": 0.5}}
    if pre is not None:
        meta["pre_tags"] = pre
    return Record.from_tokens(tokens, meta=meta)


ADA = _pool(["Ada", "met", "Bob"], pre=["B-PER", "O", "O"])
PARIS = _pool(["Paris", "is", "big"])
YORK = _pool(["in", "New", "York"], cycle=2)
MISSING = _pool(["Nobody", "knows", "this"])


@pytest.fixture
def backend(tmp_path: Path) -> SimulatedBackend:
    answers = tmp_path / "answers.conll"
    answers.write_text(ANSWERS, encoding="utf-8")
    return SimulatedBackend(answers, tmp_path / "state")


def _state(backend: SimulatedBackend) -> list[dict]:
    return [json.loads(line) for line in backend.exported_path.read_text(encoding="utf-8").splitlines()]


def test_export_writes_state_and_maps_ids(backend: SimulatedBackend) -> None:
    assert not backend.exported_path.exists()
    mapping = backend.export([ADA, PARIS], cycle=1)
    assert mapping == {ADA.id: ADA.id, PARIS.id: PARIS.id}
    state = _state(backend)
    assert [(e["id"], e["cycle"]) for e in state] == [(ADA.id, 1), (PARIS.id, 1)]
    assert Record.from_dict(state[0]["record"]) == ADA


def test_export_is_idempotent(backend: SimulatedBackend) -> None:
    backend.export([ADA, PARIS], cycle=1)
    before = backend.exported_path.read_bytes()
    assert backend.export([ADA, PARIS], cycle=1) == {ADA.id: ADA.id, PARIS.id: PARIS.id}
    assert backend.exported_path.read_bytes() == before
    # a later batch adds only what is new; the first export's cycle stays
    backend.export([PARIS, YORK], cycle=2)
    assert [(e["id"], e["cycle"]) for e in _state(backend)] == [(ADA.id, 1), (PARIS.id, 1), (YORK.id, 2)]


def test_export_a_sentence_twice_in_one_batch_keeps_one_copy(backend: SimulatedBackend) -> None:
    backend.export([ADA, ADA, PARIS], cycle=1)
    assert [e["id"] for e in _state(backend)] == [ADA.id, PARIS.id]


def _ledger(backend: SimulatedBackend, *known: Record) -> Ledger:
    """A ledger (beside the backend's state) holding ``known`` sentences, as import passes to fetch."""
    ledger = Ledger(backend.exported_path.parent / f"ledger-{len(known)}.jsonl")
    ledger.append(Annotation(record=Record.from_dict({**r.to_dict(), "tags": ["O"] * len(r.tokens)}), cycle=1,
                             annotator="t") for r in known)
    return ledger


def test_fetch_answers_from_gold(backend: SimulatedBackend) -> None:
    assert backend.fetch(_ledger(backend)).done == []  # nothing exported yet
    backend.export([ADA, PARIS], cycle=1)
    backend.export([YORK], cycle=2)
    result = backend.fetch(_ledger(backend))
    assert result.pending == [] and result.problems == []
    by_id = {a.record.id: a for a in result.done}
    assert set(by_id) == {ADA.id, PARIS.id, YORK.id}
    assert by_id[ADA.id].record.tags == ["B-PER", "O", "B-PER"]
    assert by_id[PARIS.id].record.tags == ["B-LOC", "O", "O"]  # the IOB1 answer comes back as IOB2
    assert by_id[YORK.id].cycle == 2 and by_id[ADA.id].cycle == 1
    assert by_id[ADA.id].pre_tags == ["B-PER", "O", "O"] and by_id[PARIS.id].pre_tags is None
    assert by_id[ADA.id].annotator == "simulated"
    assert by_id[ADA.id].record.meta == {}  # selection scores are not part of the annotation
    assert by_id[ADA.id].record.tokens == ADA.tokens and by_id[ADA.id].record.text == ADA.text


def test_fetch_skips_known(backend: SimulatedBackend) -> None:
    backend.export([ADA, PARIS, YORK], cycle=1)
    result = backend.fetch(_ledger(backend, ADA, YORK))
    assert [a.record.id for a in result.done] == [PARIS.id]
    assert backend.fetch(_ledger(backend, ADA, PARIS, YORK)).done == []


def test_missing_answer_stays_pending(backend: SimulatedBackend) -> None:
    backend.export([ADA, MISSING], cycle=1)
    result = backend.fetch(_ledger(backend))
    assert [a.record.id for a in result.done] == [ADA.id]
    assert result.pending == [MISSING.id]
    assert len(result.problems) == 1
    assert MISSING.id in result.problems[0] and "answers.conll" in result.problems[0]
    assert "pending" in result.problems[0]
    # still pending (not lost) at the next fetch
    assert backend.fetch(_ledger(backend, ADA)).pending == [MISSING.id]


def test_answer_tokenised_differently_is_mapped_by_characters(backend: SimulatedBackend) -> None:
    # one token where the answers file has three: the entities fall on its boundaries only if whole
    whole = Record(id=ADA.id, tokens=["Ada met Bob"], text="Ada met Bob", offsets=[(0, 11)], meta={})
    coarse = Record(id=YORK.id, tokens=["in", "New York"], text="in New York", offsets=[(0, 2), (3, 11)], meta={})
    backend.export([whole, coarse], cycle=1)
    result = backend.fetch(_ledger(backend))
    assert [a.record.tags for a in result.done] == [["O", "B-LOC"]]
    assert result.done[0].record.tokens == ["in", "New York"]  # the pool's tokens, not the answer's
    assert result.pending == [ADA.id] and len(result.problems) == 1
    problem = result.problems[0]
    assert problem.startswith(f"sentence {ADA.id}:") and "'Ada' (PER)" in problem and "answers.conll:1" in problem
    assert "pool tokens: ['Ada met Bob']" in problem and "answer tokens: ['Ada', 'met', 'Bob']" in problem


TWEETS_CONLL = """@ada_l\tB-PER
loves\tO
#NewYork\tB-LOC
:)\tO

RT\tO
@bob\tB-PER
:\tO
Paris\tB-LOC
,\tO
again\tO
!\tO
http://t.co/x1\tO

Meet\tO
Apple\tB-ORG
Inc.\tI-ORG
at\tO
#WWDC2016\tB-EVENT
"""
TWEETS_TXT = "@ada_l loves #NewYork :)\nRT @bob: Paris, again! http://t.co/x1\nMeet Apple Inc. at #WWDC2016\n"


@pytest.mark.parametrize("tokenizer", ["default", "social"])
def test_plain_text_pool_of_tweets_with_conll_answers_loses_nothing(tmp_path: Path, tokenizer: str) -> None:
    (tmp_path / "answers.conll").write_text(TWEETS_CONLL, encoding="utf-8")
    (tmp_path / "pool.txt").write_text(TWEETS_TXT, encoding="utf-8")
    pool = read_any(tmp_path / "pool.txt", tokenizer=tokenizer)
    backend = SimulatedBackend(tmp_path / "answers.conll", tmp_path / "state", tokenizer)
    backend.export(pool, cycle=1)
    result = backend.fetch(_ledger(backend), {r.id: r.id for r in pool})
    assert result.problems == [] and result.pending == [] and len(result.done) == 3
    entities = [[(" ".join(a.record.tokens[s:e]), t) for s, e, t in tags_to_spans(a.record.tags)] for a in result.done]
    if tokenizer == "social":
        assert entities[0] == [("@ada_l", "PER"), ("#NewYork", "LOC")]
        assert result.done[1].record.tokens == ["RT", "@bob", ":", "Paris", ",", "again", "!", "http://t.co/x1"]
    else:  # the default splits @ and # off: the entity covers both tokens
        assert entities[0] == [("@ ada_l", "PER"), ("# NewYork", "LOC")]
    assert entities[2][0] == ("Apple Inc.", "ORG") or entities[2][0] == ("Apple Inc .", "ORG")


def test_released_sentence_is_not_answered(backend: SimulatedBackend) -> None:
    backend.export([ADA, PARIS], cycle=1)
    result = backend.fetch(_ledger(backend), {PARIS.id: PARIS.id})  # ADA was released from the manifest
    assert [a.record.id for a in result.done] == [PARIS.id] and result.pending == []


def test_unlabelled_answer_stays_pending(tmp_path: Path) -> None:
    answers = tmp_path / "answers.txt"
    answers.write_text("Ada met Bob.\n", encoding="utf-8")
    backend = SimulatedBackend(answers, tmp_path / "state")
    rec = record_from_text("Ada met Bob.")
    backend.export([rec], cycle=1)
    result = backend.fetch(_ledger(backend))
    assert result.done == [] and result.pending == [rec.id] and "no tags" in result.problems[0]


def test_fetch_then_ledger_round(backend: SimulatedBackend, tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    backend.export([ADA, PARIS], cycle=1)
    assert len(ledger.append(backend.fetch(ledger).done)) == 2
    assert backend.fetch(ledger).done == []
    entry = next(e for e in ledger.entries if e["id"] == ADA.id)
    assert entry["effort"] == {"kept": 1, "added": 1, "deleted": 0, "relabelled": 0}


def test_corrupt_state_names_the_line(backend: SimulatedBackend) -> None:
    backend.export([ADA], cycle=1)
    with backend.exported_path.open("a", encoding="utf-8") as fh:
        fh.write('{"id": "x"}\n')
    with pytest.raises(DataError) as info:
        backend.fetch(_ledger(backend))
    assert f"{backend.exported_path}:2:" in str(info.value)


def test_missing_answers_file(tmp_path: Path) -> None:
    backend = SimulatedBackend(tmp_path / "nope.conll", tmp_path / "state")
    backend.export([ADA], cycle=1)
    with pytest.raises(DataError, match=r"nope\.conll"):
        backend.fetch(_ledger(backend))


def test_a_windowed_sentence_is_answered_inside_the_window_only(backend: SimulatedBackend, tmp_path: Path) -> None:
    """select.unit: window: the true tags inside the window, the pre-annotation as shown outside it; the window
    travels into the ledger entry, whose effort and tokens count the window's words."""
    rec = _pool(["in", "New", "York"], pre=["B-LOC", "O", "O"])
    rec.meta["window"] = [1, 3]
    backend.export([rec], cycle=1)
    ann, = backend.fetch(_ledger(backend)).done
    assert ann.window == [1, 3]
    assert ann.record.tags == ["B-LOC", "B-LOC", "I-LOC"]  # word 0 wrongly pre-annotated, not asked: kept
    entry, = Ledger(tmp_path / "ledger.jsonl").append([ann])
    assert entry["window"] == [1, 3] and entry["record"]["tags"] == ann.record.tags
    assert entry["effort"] == {"kept": 0, "added": 1, "deleted": 0, "relabelled": 0}
