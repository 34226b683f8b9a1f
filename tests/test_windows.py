"""Subsequence selection's window (selection/windows.py) and the annotation helpers around it."""

from __future__ import annotations

from pathlib import Path

import pytest

from nerloop.data.annotations import edit_counts, labelled_tokens, merge_window, window_of
from nerloop.selection.windows import window


def test_the_most_uncertain_contiguous_words_are_the_window() -> None:
    conf = [0.99, 0.99, 0.4, 0.3, 0.5, 0.99, 0.99, 0.99]
    assert window(conf, ["O"] * 8, 3) == (2, 5)


def test_a_window_never_cuts_a_predicted_entity_it_is_widened_on_both_sides() -> None:
    conf = [0.9, 0.9, 0.2, 0.2, 0.9, 0.9, 0.9]
    pre = ["O", "B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"]
    assert window(conf, pre, 2) == (1, 4)  # [2, 4) would cut B-PER I-PER at its first word
    conf = [0.9, 0.9, 0.9, 0.2, 0.2, 0.9, 0.9]
    assert window(conf, pre, 2) == (3, 6)  # [3, 5) would cut B-LOC I-LOC after its first word


def test_a_sentence_no_longer_than_the_window_is_asked_whole() -> None:
    assert window([0.5, 0.5, 0.5], ["O"] * 3, 3) is None
    assert window([0.5, 0.5], ["O"] * 2, 8) is None
    # widened to the whole sentence: asked whole too, so not partly labelled
    assert window([0.9, 0.1, 0.1, 0.9], ["B-X", "I-X", "I-X", "I-X"], 2) is None


def test_ties_go_to_the_leftmost_window() -> None:
    assert window([0.5] * 10, None, 4) == (0, 4)
    assert window([0.9, 0.2, 0.9, 0.2, 0.9], None, 1) == (1, 2)


def test_merge_keeps_the_pre_annotation_outside_and_cuts_an_answer_at_the_edge() -> None:
    pre = ["B-PER", "O", "O", "O", "B-LOC"]
    answered = ["O", "B-ORG", "I-ORG", "I-ORG", "I-ORG"]  # the answer runs past the window's end
    assert merge_window(pre, answered, [1, 3]) == ["B-PER", "B-ORG", "I-ORG", "O", "B-LOC"]
    assert merge_window(["O"] * 3, ["B-X", "I-X", "I-X"], [1, 3]) == ["O", "B-X", "I-X"]  # I- opening: B-
    assert merge_window(None, ["B-X", "O", "B-Y"], [0, 2]) == ["B-X", "O", "O"]  # nothing shown: O outside
    assert merge_window(pre, answered, None) == answered


@pytest.mark.parametrize(("meta", "expected"), [({}, None), ({"window": [2, 5]}, [2, 5]), (None, None)])
def test_window_of_and_the_tokens_labelled(meta: dict | None, expected: list[int] | None) -> None:
    assert window_of(meta) == expected
    assert labelled_tokens(expected, 9) == (3 if expected else 9)


def test_effort_counts_only_the_window() -> None:
    pre = ["B-PER", "O", "B-LOC", "O"]
    final = ["B-PER", "O", "B-ORG", "O"]
    assert edit_counts(pre, final, [2, 4]) == {"kept": 0, "added": 0, "deleted": 0, "relabelled": 1}
    assert edit_counts(pre, final) == {"kept": 1, "added": 0, "deleted": 0, "relabelled": 1}


# --------------------------------------------------------------------------- the team tools' shared import path


def test_the_window_travels_in_the_item_meta_and_back_into_the_ledger(tmp_path: Path) -> None:
    """core/protocol.item_meta carries meta["window"] as nerloop_window (only when there is one); core/decide
    copies it onto the Annotation, whose ledger entry keeps the pre-annotation outside the window."""
    from nerloop.annotation.core.decide import Version
    from nerloop.annotation.core.protocol import Item
    from nerloop.annotation.label_studio import LabelStudioBackend
    from nerloop.data.ledger import Ledger
    from nerloop.params import LabelStudioParams
    from tool_servers import LABELS, PRE, make_record

    ls = LabelStudioBackend(LabelStudioParams(annotators=["a"]), LABELS, home=tmp_path / "ls",
                            creds=("http://127.0.0.1:9", "t"))
    whole, part = make_record(0), make_record(1)
    part.meta["window"] = [2, 5]
    assert "nerloop_window" not in ls._task(whole, 1)["meta"]
    meta = ls._task(part, 1)["meta"]
    assert meta["nerloop_window"] == [2, 5]
    answered = ["O", "O", "O", "B-LOC", "O", "O", "O", "O"]  # everything outside the window wiped: not asked
    item = Item(example_id=7, text=part.text, meta=meta)
    ann = ls._annotation(Version("nerloop-a", item, "a", "2026-01-01T00:00:00Z", answered, []), ["a"], PRE)
    assert ann.window == [2, 5]
    entry, = Ledger(tmp_path / "ledger.jsonl").append([ann])
    assert entry["window"] == [2, 5] and entry["record"]["tags"] == PRE  # the window's answer agrees with PRE
    assert entry["effort"] == {"kept": 1, "added": 0, "deleted": 0, "relabelled": 0}  # Paris alone was asked


def test_two_annotators_of_a_window_agree_when_only_their_words_outside_it_differ(tmp_path: Path) -> None:
    """A QC pair of a partly labelled sentence is judged on the window (outside it the pre-annotation stands), and
    a change outside the window after import is no late correction."""
    from nerloop.annotation.core.decide import TeamFetchResult, Version
    from nerloop.annotation.core.protocol import Item
    from nerloop.annotation.label_studio import LabelStudioBackend
    from nerloop.params import LabelStudioParams
    from tool_servers import LABELS, PRE, make_record

    ls = LabelStudioBackend(LabelStudioParams(annotators=["a", "b"]), LABELS, home=tmp_path / "ls",
                            creds=("http://127.0.0.1:9", "t"))
    rec = make_record(1)
    rec.meta["window"] = [2, 5]
    item = Item(example_id=7, text=rec.text, meta=ls._task(rec, 1)["meta"])
    wiped = ["O", "O", "O", "B-LOC", "O", "O", "O", "O"]  # b also removed PER and ORG, outside the window
    mine = {"a": Version("nerloop-a", item, "a", "t1", list(PRE), []),
            "b": Version("nerloop-b", item, "b", "t2", wiped, [])}
    result = TeamFetchResult()
    ann = ls._decide(rec.id, ["a", "b"], mine, {}, {}, result)
    assert ann is not None and result.disagreements == [] and ann.window == [2, 5]
    entry = {"id": rec.id, "pre_tags": PRE, "window": [2, 5],
             "record": {**rec.to_dict(), "tags": PRE, "meta": {ls.SOURCE_KEY: {"project": "nerloop-b"}}}}
    later = TeamFetchResult()
    ls._late_correction(rec.id, entry, mine, {}, later)
    assert later.done == [] and later.revisions == []
    mine["b"].tags = ["O", "O", "O", "O", "O", "O", "O", "O"]  # Paris, inside the window, deleted: a correction
    ls._late_correction(rec.id, entry, mine, {}, later)
    assert later.revisions == [rec.id]
