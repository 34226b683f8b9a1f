"""Tag schemes and the conversions between tags, token spans and character spans."""

from __future__ import annotations

import pytest

from nerloop.data.tags import (
    char_to_token_spans,
    check_iob2,
    entity_types,
    iob1_to_iob2,
    label_list,
    spans_to_tags,
    split_tag,
    tags_to_spans,
    token_to_char_spans,
)
from nerloop.errors import TagError


def test_split_tag() -> None:
    assert split_tag("O") == ("O", None)
    assert split_tag("B-PER") == ("B", "PER")
    assert split_tag("I-B-X") == ("I", "B-X")
    for bad in ("", "B", "B-", "X-PER", "b-PER", "BPER"):
        with pytest.raises(TagError, match="malformed tag"):
            split_tag(bad)


@pytest.mark.parametrize(
    ("iob1", "iob2"),
    [
        (["I-PER", "I-PER", "B-PER"], ["B-PER", "I-PER", "B-PER"]),
        (["O", "I-LOC", "O", "I-LOC"], ["O", "B-LOC", "O", "B-LOC"]),
        (["I-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),
        (["I-ORG", "B-ORG", "I-ORG"], ["B-ORG", "B-ORG", "I-ORG"]),
        (["B-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),  # IOB2 input is left as it is
        ([], []),
    ],
)
def test_iob1_to_iob2(iob1: list[str], iob2: list[str]) -> None:
    assert iob1_to_iob2(iob1) == iob2
    check_iob2(iob2)


def test_iob1_to_iob2_names_the_position_of_a_malformed_tag() -> None:
    with pytest.raises(TagError) as info:
        iob1_to_iob2(["O", "O", "PER"])
    assert info.value.index == 2


def test_check_iob2_rejects_an_entity_opened_with_i() -> None:
    with pytest.raises(TagError) as info:
        check_iob2(["O", "B-PER", "I-PER", "O", "I-PER"])
    assert info.value.index == 4
    assert "not open" in str(info.value)
    with pytest.raises(TagError) as info:
        check_iob2(["B-PER", "I-LOC"])
    assert info.value.index == 1


def test_check_iob2_label_set() -> None:
    check_iob2(["B-PER", "I-PER", "O"], label_set=["PER"])
    with pytest.raises(TagError) as info:
        check_iob2(["B-PER", "O", "B-LOC"], label_set={"PER"})
    assert info.value.index == 2
    assert "'LOC'" in str(info.value) and "label set" in str(info.value)
    with pytest.raises(TagError) as info:
        check_iob2(["O", "B-PER", "???"])
    assert info.value.index == 2


def test_tags_to_spans() -> None:
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "B-ORG"]
    assert tags_to_spans(tags) == [(0, 2, "PER"), (3, 4, "LOC"), (4, 6, "LOC"), (6, 7, "ORG")]
    assert tags_to_spans(["O", "O"]) == []
    assert tags_to_spans([]) == []
    # a type change inside I- run closes the entity
    assert tags_to_spans(["B-PER", "I-LOC"]) == [(0, 1, "PER"), (1, 2, "LOC")]


@pytest.mark.parametrize(
    "tags",
    [
        ["O", "O", "O"],
        ["B-PER", "I-PER", "I-PER"],
        ["B-PER", "B-PER", "O", "B-LOC", "I-LOC"],
        ["B-A", "B-B", "I-B", "B-A"],
    ],
)
def test_tags_spans_tags_round_trip(tags: list[str]) -> None:
    assert spans_to_tags(len(tags), tags_to_spans(tags)) == tags


def test_spans_to_tags_rejects_overlap_and_out_of_range() -> None:
    assert spans_to_tags(4, [(2, 4, "LOC"), (0, 1, "PER")]) == ["B-PER", "O", "B-LOC", "I-LOC"]
    with pytest.raises(TagError, match="overlaps"):
        spans_to_tags(5, [(0, 3, "PER"), (2, 4, "LOC")])
    with pytest.raises(TagError, match="outside"):
        spans_to_tags(3, [(1, 4, "PER")])
    with pytest.raises(TagError, match="outside"):
        spans_to_tags(3, [(2, 2, "PER")])


def test_token_char_span_round_trip() -> None:
    # "Ada Lovelace met Charles Babbage ."
    offsets = [(0, 3), (4, 12), (13, 16), (17, 24), (25, 32), (33, 34)]
    token_spans = [(0, 2, "PER"), (3, 5, "PER")]
    char_spans = token_to_char_spans(offsets, token_spans)
    assert char_spans == [(0, 12, "PER"), (17, 32, "PER")]
    assert char_to_token_spans(offsets, char_spans) == token_spans
    assert char_to_token_spans(offsets, [(33, 34, "X")]) == [(5, 6, "X")]


def test_char_span_off_token_boundaries_names_nearest_boundaries() -> None:
    offsets = [(0, 3), (4, 12), (13, 16)]
    with pytest.raises(TagError) as info:
        char_to_token_spans(offsets, [(1, 11, "PER")])
    msg = str(info.value)
    assert "[1, 11)" in msg and "not on token boundaries" in msg
    assert "nearest token boundaries are [0, 12)" in msg
    with pytest.raises(TagError, match=r"nearest token boundaries are \[4, 12\)"):
        char_to_token_spans(offsets, [(4, 10, "PER")])
    with pytest.raises(TagError):  # end before start
        char_to_token_spans(offsets, [(13, 3, "PER")])


def test_entity_types_and_label_list() -> None:
    assert entity_types([["B-PER", "O"], ["B-LOC", "I-LOC", "B-PER"]]) == ["LOC", "PER"]
    assert entity_types([["O"]]) == []
    assert label_list(["PER", "LOC"]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
