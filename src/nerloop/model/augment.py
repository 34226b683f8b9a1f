"""Entity-swap augmentation (``train.entity_swap``): extra training sentences made by swapping names.

The seed guide's step 10: while the labelled set is small, the model sees each name in only one or
two contexts and learns the names rather than the contexts. A copy of a labelled sentence in which
every entity mention is replaced by another mention of the same type (mention replacement, Dai &
Adel 2020) keeps the context and the type but shows a new name in it. The copies are made from the
sentences a run trains on and nothing else: ``model.training.fit`` passes the training side of a
probe's split (never its validation side, so early stopping stays honest), and the gold set never
reaches training at all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nerloop.data.records import Record
from nerloop.data.tags import Span, spans_to_tags, tags_to_spans

Mention = tuple[str, ...]  # an entity mention's tokens


def mentions_by_type(records: Sequence[Record]) -> dict[str, list[Mention]]:
    """The distinct entity mentions of each type in ``records``, sorted, so that draws are reproducible.

    Distinct, not one per occurrence: a swap should show the model a name it has seen less often,
    and a frequent name drawn again and again would add little.
    """
    found: dict[str, set[Mention]] = {}
    for rec in records:
        for start, end, etype in tags_to_spans(rec.tags or []):
            found.setdefault(etype, set()).add(tuple(rec.tokens[start:end]))
    return {etype: sorted(mentions) for etype, mentions in sorted(found.items())}


def swap_mentions(rec: Record, mentions: dict[str, list[Mention]], rng: np.random.Generator) -> Record:
    """A copy of ``rec`` with each entity mention replaced by another distinct mention of its type.

    The new mention is drawn uniformly from the type's other mentions (the same one only when the type
    has no other), and the IOB2 tags are rebuilt for the new token counts, so a one-word name replaced
    by a three-word one becomes B- I- I-. ``meta["entity_swap_of"]`` names the sentence it was made from.
    """
    tokens: list[str] = []
    spans: list[Span] = []
    pos = 0
    for start, end, etype in tags_to_spans(rec.tags or []):
        tokens += rec.tokens[pos:start]
        options, original = mentions[etype], tuple(rec.tokens[start:end])
        new = options[int(rng.integers(len(options)))]
        while new == original and len(options) > 1:  # redraw: uniform over the other mentions
            new = options[int(rng.integers(len(options)))]
        spans.append((len(tokens), len(tokens) + len(new), etype))
        tokens += new
        pos = end
    tokens += rec.tokens[pos:]
    return Record.from_tokens(tokens, spans_to_tags(len(tokens), spans),
                              source=f"entity swap of {rec.source or rec.id}", meta={"entity_swap_of": rec.id})


def entity_swap(records: Sequence[Record], share: float, seed: int) -> list[Record]:
    """``round(share * len(records))`` entity-swapped copies of ``records`` (none when share is 0).

    The sentences copied are those with at least one entity, in a random order seeded by ``seed``
    (``train.seed``), taken again from the start when more copies are asked than there are such
    sentences; the same records, share and seed always give the same copies. A set without any
    entity gives none: there is nothing to swap.
    """
    n = round(share * len(records))
    sources = [r for r in records if tags_to_spans(r.tags or [])]
    if n == 0 or not sources:
        return []
    rng = np.random.default_rng(seed)
    mentions = mentions_by_type(sources)
    order = rng.permutation(len(sources))
    return [swap_mentions(sources[order[k % len(sources)]], mentions, rng) for k in range(n)]
