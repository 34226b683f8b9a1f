"""The inbox between `nerloop cycle`'s fetch and the import stage: a faithful round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerloop.annotation.core.base import FetchResult
from nerloop.data.annotations import Annotation
from nerloop.data.records import Record
from nerloop.errors import DataError
from nerloop.loop import inbox


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    rec = Record.from_tokens(["Aspirin", "helps", "."])
    rec.tags = ["B-Chemical", "O", "O"]
    rec.meta = {"selection": {"strategy": "hybrid"}}
    ann = Annotation(record=rec, cycle=3, annotator="alice", pre_tags=["O", "O", "O"])
    result = FetchResult(done=[ann], pending=["b", "a"], problems=["x held back"], metrics={"kappa": 0.9},
                         in_review=["sentence b: resolve it in project 'p-review'"], work={"b": ["alice's version"]})
    path = tmp_path / "inbox.json"
    inbox.write(result, {rec.id: 3, "other": 2}, path)
    back, exported = inbox.read(path)
    assert back.done == [ann] and back.pending == ["a", "b"] and back.problems == ["x held back"]
    assert back.metrics == {"kappa": 0.9} and exported == {"other": 2, rec.id: 3}
    assert back.in_review == result.in_review and back.work == {"b": ["alice's version"]}


def test_an_inbox_from_before_review_states_reads_as_none_in_review(tmp_path: Path) -> None:
    path = tmp_path / "inbox.json"
    path.write_text('{"exported": {"a": 1}, "done": [], "pending": ["a"], "problems": ["sentence a: x"], '
                    '"metrics": {}}')
    back, _ = inbox.read(path)
    assert back.in_review == [] and back.work == {} and back.problems == ["sentence a: x"]


def test_same_waiting_compares_what_still_waits_not_what_is_done(tmp_path: Path) -> None:
    path = tmp_path / "inbox.json"
    rec = Record.from_tokens(["Paris"])
    rec.tags = ["B-LOC"]
    inbox.write(FetchResult(done=[Annotation(record=rec, cycle=1, annotator="a")], pending=["b", "a"],
                            problems=["p"]), {}, path)
    assert inbox.same_waiting(FetchResult(pending=["a", "b"], problems=["p"]), path)  # done was imported since
    assert not inbox.same_waiting(FetchResult(pending=["a", "b"], problems=["p"], in_review=["r"]), path)
    assert not inbox.same_waiting(FetchResult(pending=["a"], problems=["p"]), path)
    assert not inbox.same_waiting(FetchResult(pending=["a", "b"], problems=["p"], work={"a": ["w"]}), path)
    assert inbox.same_waiting(FetchResult(), tmp_path / "none.json")  # no inbox, nothing waits: nothing to write


def test_absent_inbox_is_empty_and_corrupt_one_names_the_fix(tmp_path: Path) -> None:
    result, exported = inbox.read(tmp_path / "none.json")
    assert result.done == [] and exported == {}
    bad = tmp_path / "inbox.json"
    bad.write_text('{"done": [')
    with pytest.raises(DataError, match=r"inbox.json:1: corrupt inbox.*git checkout --"):
        inbox.read(bad)
    bad.write_text('{"done": []}')
    with pytest.raises(DataError, match=r"corrupt inbox \(KeyError"):
        inbox.read(bad)
