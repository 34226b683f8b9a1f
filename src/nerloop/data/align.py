"""Carry labels from one tokenisation of a sentence to another, by characters.

The same sentence can reach nerloop tokenised twice: a plain-text pool split by
``data.tokenizer`` and the simulated annotator's answers in CoNLL (``@user`` one token in
one, ``@`` ``user`` in the other; ``Hello,`` glued or ``Hello ,`` spaced). Both token lists
cover the same non-space characters, so entities are compared on the sentence's
*character key*: the NFKC-normalised text with all whitespace removed. A span maps when
its first and last characters fall on token boundaries of the target tokenisation; it is
never snapped to the nearest boundary, which would change the annotation silently.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from nerloop.data.tags import spans_to_tags, tags_to_spans
from nerloop.errors import NerloopError

_WS = re.compile(r"\s+")


class AlignError(NerloopError):
    """Labels that cannot be carried over; the message shows both tokenisations."""


def char_key(tokens: Sequence[str]) -> tuple[str, list[int]]:
    """The sentence's character key, and where each token starts in it (plus the key's length).

    Two tokenisations of one text have the same key, whatever spacing the text had, so
    the key also finds a sentence's answer when the ids (hashes of the text) differ.
    """
    pieces = [_WS.sub("", unicodedata.normalize("NFKC", t)) for t in tokens]
    starts, pos = [], 0
    for p in pieces:
        starts.append(pos)
        pos += len(p)
    return "".join(pieces), [*starts, pos]


def project_tags(src_tokens: Sequence[str], src_tags: Sequence[str], dst_tokens: Sequence[str]) -> list[str]:
    """IOB2 tags for ``dst_tokens`` carrying the entities of (``src_tokens``, ``src_tags``).

    Raises AlignError when the two texts differ or an entity does not start and end on a
    boundary of ``dst_tokens``, naming the entity and showing both tokenisations.
    """
    if list(src_tokens) == list(dst_tokens):
        return list(src_tags)
    src_key, src_starts = char_key(src_tokens)
    dst_key, dst_starts = char_key(dst_tokens)
    if src_key != dst_key:
        raise AlignError(f"the texts differ: {' '.join(src_tokens)!r} against {' '.join(dst_tokens)!r}")
    # a boundary at character c is token i's start (c -> i) or token i's end (c -> i + 1)
    first = {c: i for i, c in reversed(list(enumerate(dst_starts[:-1])))}
    after = {c: i + 1 for i, c in enumerate(dst_starts[1:])}
    spans, off = [], []
    for s, e, label in tags_to_spans(src_tags):
        a, b = src_starts[s], src_starts[e]
        if a in first and b in after and first[a] < after[b]:
            spans.append((first[a], after[b], label))
        else:
            off.append(f"{' '.join(src_tokens[s:e])!r} ({label})")
    if off:
        raise AlignError(
            f"entity {', '.join(off)} does not fall on token boundaries of the pool sentence; "
            f"pool tokens: {list(dst_tokens)}; answer tokens: {list(src_tokens)}"
        )
    return spans_to_tags(len(dst_tokens), spans)
