"""The annotation ledger (append-only, keyed by sentence id) and the effort figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerloop.data.annotations import Annotation, edit_counts, manual_effort, summed
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record
from nerloop.errors import DataError


def _ann(tokens: list[str], tags: list[str] | None, cycle: int = 1, pre: list[str] | None = None) -> Annotation:
    return Annotation(record=Record.from_tokens(tokens, tags), cycle=cycle, annotator="tester", pre_tags=pre)


A = _ann(["Ada", "met", "Bob"], ["B-PER", "O", "B-PER"], 1, pre=["B-PER", "O", "O"])
B = _ann(["Paris", "is", "big"], ["B-LOC", "O", "O"], 1, pre=["B-ORG", "O", "O"])
C = _ann(["in", "New", "York"], ["O", "B-LOC", "I-LOC"], 2)


# --------------------------------------------------------------------------- edit_counts


@pytest.mark.parametrize(
    ("pre", "final", "expected"),
    [
        (None, ["B-PER", "O", "B-LOC"], {"kept": 0, "added": 2, "deleted": 0, "relabelled": 0}),
        (["O", "O", "O"], ["O", "O", "O"], {"kept": 0, "added": 0, "deleted": 0, "relabelled": 0}),
        (["B-PER", "O", "B-LOC"], ["B-PER", "O", "B-LOC"], {"kept": 2, "added": 0, "deleted": 0, "relabelled": 0}),
        (["B-PER", "O", "B-LOC"], ["B-ORG", "O", "O"], {"kept": 0, "added": 0, "deleted": 1, "relabelled": 1}),
        # a boundary change is a deletion plus an addition, not a relabel
        (["B-PER", "O", "O"], ["B-PER", "I-PER", "O"], {"kept": 0, "added": 1, "deleted": 1, "relabelled": 0}),
        (["O", "B-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"], {"kept": 1, "added": 1, "deleted": 0, "relabelled": 0}),
        ([], ["B-PER"], {"kept": 0, "added": 1, "deleted": 0, "relabelled": 0}),
    ],
)
def test_edit_counts(pre: list[str] | None, final: list[str], expected: dict[str, int]) -> None:
    assert edit_counts(pre, final) == expected


def test_manual_effort_is_edits_made_over_edits_needed_from_nothing() -> None:
    # 3 final entities: from nothing, 3 additions; from the pre-annotation, 1 relabel + 1 delete + 1 add
    counts = {"kept": 1, "added": 1, "deleted": 1, "relabelled": 1}
    assert manual_effort(counts) == round(3 / 3, 4)
    assert manual_effort({"kept": 3, "added": 1, "deleted": 0, "relabelled": 0}) == 0.25
    assert manual_effort({"kept": 0, "added": 2, "deleted": 0, "relabelled": 0}) == 1.0  # no pre-annotation shown
    assert manual_effort({"kept": 1, "added": 0, "deleted": 4, "relabelled": 0}) == 4.0  # wrong proposals cost more
    assert manual_effort({"kept": 0, "added": 0, "deleted": 2, "relabelled": 0}) is None  # nothing to label
    assert summed([counts, counts]) == {"kept": 2, "added": 2, "deleted": 2, "relabelled": 2}


# --------------------------------------------------------------------------- ledger


def test_new_ledger_is_empty_and_written_on_first_append(tmp_path: Path) -> None:
    path = tmp_path / "ann" / "ledger.jsonl"
    ledger = Ledger(path)
    assert ledger.entries == [] and ledger.cycle == 0 and ledger.per_cycle() == {}
    assert ledger.manual_effort() == {"cycle": None, "last_cycle": None, "cumulative": None}
    assert ledger.append([]) == []
    assert path.exists() and path.read_text() == ""


def test_append_keeps_cycle_effort_and_record(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    new = ledger.append([A, B])
    assert [e["id"] for e in new] == [A.record.id, B.record.id]
    assert [e["cycle"] for e in new] == [1, 1]
    assert new[0]["effort"] == {"kept": 1, "added": 1, "deleted": 0, "relabelled": 0}
    assert new[1]["effort"] == {"kept": 0, "added": 0, "deleted": 0, "relabelled": 1}
    assert new[0]["annotator"] == "tester" and new[0]["pre_tags"] == ["B-PER", "O", "O"]
    reopened = Ledger(ledger.path)
    assert reopened.records() == [A.record, B.record]
    assert reopened.ids == {A.record.id, B.record.id}
    assert reopened.cycle == 1


def test_append_is_idempotent(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append([A, B])
    before = ledger.path.read_bytes()
    assert ledger.append([A, B]) == []
    assert Ledger(ledger.path).append([B, A]) == []  # also from a fresh instance that re-reads the file
    assert ledger.path.read_bytes() == before
    # the same sentence annotated again in a later cycle, or twice in one call, is still one entry
    again = _ann(["Ada", "met", "Bob"], ["O", "O", "O"], cycle=3)
    new = Ledger(ledger.path).append([C, again, C])
    assert [e["id"] for e in new] == [C.record.id]
    assert len(Ledger(ledger.path).entries) == 3


def test_a_late_correction_is_a_new_revision_and_the_latest_wins(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append([A, B])
    fixed = _ann(["Ada", "met", "Bob"], ["B-PER", "O", "O"], 1, pre=["B-PER", "O", "O"])
    assert ledger.append([fixed]) == []  # not marked as a revision: a re-import, skipped
    fixed.revision = True
    (entry,) = ledger.append([fixed, fixed])  # twice in one call: one revision
    assert entry["revision"] == 2 and entry["effort"] == {"kept": 1, "added": 0, "deleted": 0, "relabelled": 0}
    assert ledger.append([fixed]) == []  # the same tags again: nothing new
    reopened = Ledger(ledger.path)
    assert len(reopened.history) == 3 and len(reopened.entries) == 2 and reopened.ids == {A.record.id, B.record.id}
    assert reopened.records() == [fixed.record, B.record]  # the latest wins, in first-entry order
    assert reopened.per_cycle()[1]["sentences"] == 2
    lines = ledger.path.read_text().splitlines()
    assert json.loads(lines[0])["record"]["tags"] == A.record.tags  # the old line is kept: append-only


def test_append_skips_unlabelled(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    assert ledger.append([_ann(["no", "tags"], None)]) == []
    assert ledger.entries == []


def test_append_only_old_lines_kept_verbatim(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append([A])
    first = ledger.path.read_text()
    ledger.append([C])
    lines = ledger.path.read_text().splitlines()
    assert lines[0] + "\n" == first and len(lines) == 2
    assert json.loads(lines[1])["cycle"] == 2


def test_per_cycle_sums(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append([C, A, B])
    assert list(ledger.per_cycle()) == [1, 2]  # sorted by cycle
    assert ledger.per_cycle() == {
        1: {"sentences": 2, "tokens": 6, "kept": 1, "added": 1, "deleted": 0, "relabelled": 1},
        2: {"sentences": 1, "tokens": 3, "kept": 0, "added": 1, "deleted": 0, "relabelled": 0},
    }
    assert ledger.cycle == 2
    # cycle 2: 1 edit for 1 entity; all: 3 edits (2 added, 1 relabelled) for 4 entities
    assert ledger.manual_effort() == {"cycle": 2, "last_cycle": 1.0, "cumulative": 0.75}


def _ledger_with_bad_line(tmp_path: Path, bad: str | bytes) -> Path:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append([A, B])
    data = ledger.path.read_bytes()
    bad_bytes = bad if isinstance(bad, bytes) else bad.encode()
    ledger.path.write_bytes(data + b"\n" + bad_bytes + b"\n")  # line 3 is blank, line 4 is the bad one
    return ledger.path


@pytest.mark.parametrize(
    "bad",
    [
        '{"id": "x", "cycle": 1',
        "[1, 2, 3]",
        '{"id": "x", "cycle": 1}',
        '"just a string"',
        b'{"id": "\xff"}',
    ],
)
def test_corrupt_line_names_the_line(tmp_path: Path, bad: str | bytes) -> None:
    path = _ledger_with_bad_line(tmp_path, bad)
    with pytest.raises(DataError) as info:
        Ledger(path)
    assert info.value.line == 4
    assert f"{path}:4:" in str(info.value)


def test_entry_with_wrong_shape_is_rejected_when_loaded(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append([A])
    entry = json.loads(ledger.path.read_text())
    for i, broken in enumerate(
        (
            {**entry, "cycle": "1"},
            {k: v for k, v in entry.items() if k != "effort"},
            {**entry, "record": {"id": entry["id"]}},
            {**entry, "id": "0000000000000000"},
        )
    ):
        path = _ledger_with_bad_line(tmp_path / f"case{i}", json.dumps(broken))
        with pytest.raises(DataError) as info:
            Ledger(path)
        assert f"{path}:4:" in str(info.value) and "corrupt ledger entry" in str(info.value)


# --------------------------------------------------------------------------- partly labelled (select.unit: window)


def _windowed(win: list[int] | None, tags: list[str], cycle: int = 1, revision: bool = False) -> Annotation:
    rec = Record.from_tokens(["Ada", "met", "Bob", "in", "Rome"], tags)
    return Annotation(record=rec, cycle=cycle, annotator="tester", pre_tags=["B-PER", "O", "O", "O", "B-PER"],
                      revision=revision, window=win)


def test_a_window_round_trips_with_the_pre_annotation_outside_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    # the annotator also "changed" word 4, outside the window: nobody asked, the shown tag stands
    entry, = Ledger(path).append([_windowed([1, 3], ["B-PER", "O", "B-PER", "O", "B-LOC"])])
    assert entry["window"] == [1, 3]
    assert entry["record"]["tags"] == ["B-PER", "O", "B-PER", "O", "B-PER"]
    assert entry["effort"] == {"kept": 0, "added": 1, "deleted": 0, "relabelled": 0}  # the window's spans only
    ledger = Ledger(path)
    assert ledger.entries[0]["window"] == [1, 3]
    assert ledger.records()[0].meta["window"] == [1, 3]
    assert ledger.per_cycle()[1]["tokens"] == 2  # the words asked, not the sentence's 5
    assert ledger.partial_counts() == {"sentences": 1, "window_tokens": 2}


def test_a_whole_sentence_has_no_window_key_and_a_later_whole_revision_completes_a_partial_one(
        tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.append([_windowed([1, 3], ["B-PER", "O", "B-PER", "O", "B-PER"])])
    new, = ledger.append([_windowed(None, ["B-PER", "O", "B-PER", "O", "B-LOC"], cycle=2, revision=True)])
    assert "window" not in new and new["revision"] == 2
    assert Ledger(path).partial() == [] and Ledger(path).partial_counts() is None
    assert "window" not in Ledger(path).records()[0].meta


@pytest.mark.parametrize(("window", "why"), [
    ([3, 1], "is not a span"), ([0, 9], "is not a span"), ([1], "two integers"), ("1-3", "two integers"),
    ([1.0, 3], "two integers"),
])
def test_a_bad_window_names_the_line(tmp_path: Path, window: object, why: str) -> None:
    path = tmp_path / "ledger.jsonl"
    Ledger(path).append([A, B])
    lines = path.read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[1]) | {"window": window}
    path.write_text("\n".join([lines[0], json.dumps(bad)]) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        Ledger(path)
    assert f"{path}:2:" in str(info.value) and "'window'" in str(info.value) and why in str(info.value)
