"""Tokenisers for plain text (``.txt`` pools, JSONL ``text`` lines), chosen by ``data.tokenizer``.

An entity can only start and end on token boundaries, so the tokeniser decides which spans
an annotator can mark and which reference spans the simulated annotator can map. One regex
per domain, each a list of alternatives tried left to right at every position:

- ``default``: words (with inner ``-``, ``'`` or ``.``: ``New-York``, ``don't``, ``U.S``;
  a final ``'s`` split off: ``Serbia`` ``'s``), every other non-space character alone.
- ``social``: as default, but URLs, e-mail addresses, ``@handles``, ``#hashtags`` and
  emoticons stay one token (the default splits ``@user`` into ``@`` and ``user``).
- ``biomedical``: fine-grained, as biomedical corpora (BC5CDR, NCBI-disease) are tokenised:
  letters and digits in runs, decimal numbers whole, and every hyphen, slash, bracket,
  comma, plus sign on its own, so that ``cocaine`` in ``cocaine-induced`` or ``Na`` in
  ``Na+/K+`` can be an entity of its own.

Every tokeniser ends with a catch-all for a single non-space character, so the tokens
always cover every non-space character of the text: nothing is dropped, and two
tokenisations of the same text can be aligned character by character (``nerloop.data.align``).
"""

from __future__ import annotations

import re
from typing import Literal

TokenizerName = Literal["default", "social", "biomedical"]

# a word may hold inner - . or an apostrophe (O'Neil, didn't), but a final 's is split off as
# English treebanks and NER corpora do, so that "Serbia" in "Serbia's" can be an entity
_WORD = r"\w+(?:[-.]\w+|['’](?![sS]\b)\w+)*|['’][sS]\b"
_ANY = r"[^\s]"  # the catch-all: one non-space character

_PATTERNS: dict[str, re.Pattern[str]] = {
    "default": re.compile(rf"{_WORD}|{_ANY}"),
    "social": re.compile(
        "|".join([
            r"(?:https?://|www\.)[^\s]*[^\s.,;:!?)\]}'\"…]",  # a URL, without trailing punctuation
            r"[\w.+-]+@\w+(?:\.\w+)+",  # an e-mail address
            r"[@#]\w+",  # @handle, #hashtag
            r"(?<!\w)[:;=8][-'^o]?[()\[\]dDpP/\\|*3]+(?!\w)",  # emoticons :) ;-P :D
            r"<3",
            _WORD,
            _ANY,
        ]),
        re.UNICODE,
    ),
    "biomedical": re.compile(r"\d+(?:[.,]\d+)+|[^\W_]+|" + _ANY, re.UNICODE),
}

TOKENIZERS: tuple[str, ...] = tuple(_PATTERNS)


def tokenize(text: str, name: TokenizerName | str = "default") -> tuple[list[str], list[tuple[int, int]]]:
    """Split ``text`` with tokeniser ``name``; return the tokens and each token's character span."""
    try:
        pattern = _PATTERNS[name]
    except KeyError:
        raise ValueError(f"unknown tokenizer {name!r}; expected one of {', '.join(TOKENIZERS)}") from None
    matches = list(pattern.finditer(text))
    return [m.group() for m in matches], [m.span() for m in matches]
