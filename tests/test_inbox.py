"""The inbox between `nerloop cycle`'s fetch and the import stage: a faithful round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerloop import inbox
from nerloop.annotation.base import Annotation, FetchResult
from nerloop.errors import DataError
from nerloop.records import Record


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    rec = Record.from_tokens(["Aspirin", "helps", "."])
    rec.tags = ["B-Chemical", "O", "O"]
    rec.meta = {"selection": {"strategy": "hybrid"}}
    ann = Annotation(record=rec, cycle=3, annotator="alice", pre_tags=["O", "O", "O"])
    result = FetchResult(done=[ann], pending=["b", "a"], problems=["x held back"], metrics={"kappa": 0.9})
    path = tmp_path / "inbox.json"
    inbox.write(result, {rec.id: 3, "other": 2}, path)
    back, exported = inbox.read(path)
    assert back.done == [ann] and back.pending == ["a", "b"] and back.problems == ["x held back"]
    assert back.metrics == {"kappa": 0.9} and exported == {"other": 2, rec.id: 3}


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
