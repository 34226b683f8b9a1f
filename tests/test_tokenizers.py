"""The plain-text tokenisers: domain behaviour, offsets, and that no character is dropped."""

from __future__ import annotations

import pytest

from nerloop.data.tokenizers import TOKENIZERS, tokenize

TEXTS = [
    "@john_doe loves #NewYork :) see https://t.co/abc.",
    "cocaine-induced Na+/K+-ATPase at p<0.05, 1,2-dichloroethane (IL-2).",
    "Dr. O'Neil paid $3.50 for well-known e-mail, didn’t he? mail me@x.org <3",
    "  tabs\tand  odd ★ spacing_  ",
]


@pytest.mark.parametrize("name", TOKENIZERS)
@pytest.mark.parametrize("text", TEXTS)
def test_tokens_cover_every_non_space_character(name: str, text: str) -> None:
    tokens, offsets = tokenize(text, name)
    assert [text[s:e] for s, e in offsets] == tokens
    assert "".join(tokens) == "".join(text.split())  # nothing dropped: tokenisations can be aligned


def test_social_keeps_handles_hashtags_urls_emoticons() -> None:
    assert tokenize(TEXTS[0], "social")[0] == ["@john_doe", "loves", "#NewYork", ":)", "see", "https://t.co/abc", "."]
    assert tokenize("mail me@x.org <3 ;-P", "social")[0] == ["mail", "me@x.org", "<3", ";-P"]
    assert tokenize(TEXTS[0])[0][:2] == ["@", "john_doe"]  # the default splits them


def test_biomedical_splits_hyphens_and_keeps_numbers() -> None:
    tokens = tokenize(TEXTS[1], "biomedical")[0]
    assert tokens[:3] == ["cocaine", "-", "induced"]
    assert "0.05" in tokens and "1,2" in tokens and "dichloroethane" in tokens and "ATPase" in tokens


def test_unknown_tokenizer() -> None:
    with pytest.raises(ValueError, match="unknown tokenizer 'spacy'"):
        tokenize("a", "spacy")


@pytest.mark.parametrize("name", ["default", "social"])
def test_final_possessive_s_is_split_off_inner_apostrophes_kept(name: str) -> None:
    tokens = tokenize("Serbia's O'Neil didn't see Paris’s O'sullivan", name)[0]
    assert tokens == ["Serbia", "'s", "O'Neil", "didn't", "see", "Paris", "’s", "O'sullivan"]
