"""The window a sentence is asked about (``nerloop.annotation.core.asked``): read, checked, named, and which
pre-annotated spans lie outside it. How each tool shows it: ``test_label_studio``, ``test_doccano`` and their
browser tests."""

from __future__ import annotations

import pytest

from nerloop.annotation.core import asked
from nerloop.annotation.label_studio.client import LabelStudioDataError
from nerloop.data.records import Record


def sentence(window: object = None) -> Record:
    rec = Record.from_tokens(["Alice", "Smith", "visited", "Paris", "with", "Acme", "Corp", "."])
    if window is not None:
        rec.meta["window"] = window
    return rec


def test_a_whole_sentence_has_no_window_and_a_windowed_one_is_named_by_its_words() -> None:
    assert asked.window(sentence(), LabelStudioDataError) is None
    rec = sentence([3, 7])
    win = asked.window(rec, LabelStudioDataError)
    assert win == (3, 7) and asked.char_range(rec, win) == (20, 40)
    assert asked.words(rec, win) == "«Paris with Acme Corp» (words 4-7)"
    assert asked.words(rec, (0, 1)) == "«Alice» (word 1)"
    long = Record.from_tokens([f"word{i}" for i in range(20)])
    assert asked.words(long, (2, 12)) == "«word2 … word11» (words 3-12)"  # kept short: a hint is one line


def test_a_disagreement_in_review_names_its_window_from_the_tool_items_meta() -> None:
    """The review item has the tool's text, word offsets and ``nerloop_*`` meta, not the record: the same name."""
    rec = sentence([3, 7])
    offsets = [list(o) for o in rec.offsets]  # as a tool item's meta holds them
    assert asked.review_window(rec.text, offsets, {"nerloop_window": [3, 7]}) == asked.words(rec, (3, 7))
    assert asked.review_window(rec.text, offsets, {"nerloop_cycle": 1}) is None  # a whole sentence
    long = Record.from_tokens([f"word{i}" for i in range(20)])
    assert asked.review_window(long.text, long.offsets, {"nerloop_window": [2, 12]}) == "«word2 … word11» (words 3-12)"


def test_spans_overlapping_the_window_are_the_annotators() -> None:
    chars = asked.char_range(sentence([3, 7]), (3, 7))
    assert asked.outside((0, 11), chars) and asked.outside((41, 42), chars)  # 'Alice Smith', '.'
    assert not asked.outside((20, 25), chars) and not asked.outside((12, 25), chars)  # 'Paris', one across its edge


@pytest.mark.parametrize("bad", [[3, 3], [5, 2], [-1, 2], [0, 9], [1.5, 3], "37", [1], ["a", "b"]])
def test_a_bad_window_is_refused_before_anything_is_sent(bad: object) -> None:
    with pytest.raises(LabelStudioDataError, match=r"meta .window. .* nothing was sent"):
        asked.window(sentence(bad), LabelStudioDataError)
