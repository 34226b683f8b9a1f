"""Labels carried between two tokenisations of one sentence, by characters, never snapped."""

from __future__ import annotations

import pytest

from nerloop.data.align import AlignError, char_key, project_tags


def test_char_key_ignores_spacing_and_width() -> None:
    assert char_key(["Hello", ",", "world"])[0] == char_key(["Hello,", "ｗorld"])[0] == "Hello,world"
    assert char_key(["ab", "c"])[1] == [0, 2, 3]


def test_coarser_and_finer_targets() -> None:
    src = ["@", "ada", "met", "New", "York", "."]
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"]
    assert project_tags(src, tags, ["@ada", "met", "New York", "."]) == ["B-PER", "O", "B-LOC", "O"]
    fine = ["@ada", "met", "New", "York."]
    with pytest.raises(AlignError) as info:  # "York" ends inside "York.": not snapped
        project_tags(src, tags, fine)
    msg = str(info.value)
    assert "'New York' (LOC)" in msg and "pool tokens: ['@ada', 'met', 'New', 'York.']" in msg
    assert "answer tokens: ['@', 'ada'" in msg
    assert project_tags(["Bob", "ran"], ["B-PER", "O"], ["Bob", "r", "an"]) == ["B-PER", "O", "O"]


def test_different_texts_are_refused() -> None:
    with pytest.raises(AlignError, match="the texts differ"):
        project_tags(["Bob"], ["B-PER"], ["Rob"])
