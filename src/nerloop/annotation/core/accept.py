"""Accept in one key: which batch sentences go to annotators as "accept or edit" (issue #29, part 2).

A sentence is sent in *accept* mode when the model is confident enough about its whole pre-annotation
that checking it and pressing one key is the likely outcome. The rule, one number for the whole sentence:

    P(the pre-annotation is right) = product over words of the top tag's probability = exp(-mnlp x words)
    accept  <=>  that probability >= annotation.accept_threshold
                 and every pre-annotated span's shown confidence >= annotation.accept_threshold

Why a sentence-level probability: one key accepts every word's tag at once, including every word left
outside an entity, so the chance that all of them are right is the quantity to bound; a sentence with no
predicted entity is judged the same way (by its words' O probabilities), and a long sentence needs more
certainty per word, as it has more chances to hold an error. The span condition adds what the word
probabilities do not cover: a span from ``data.patterns`` carries the pattern's confidence, not the model's,
so it is accepted in one key only when ``data.pattern_confidence`` itself reaches the threshold, and a span
with no confidence never is. With ``annotation.accept_share`` below 1 only that share of the batch (the most
confident first) is sent in accept mode.

The mode is ``meta["review"]`` (``"accept"`` or ``"edit"``) of each outbox record; every tool words it its
own way (:data:`ACCEPT`, :data:`EDIT`), and the ledger marks an accept sentence submitted unchanged as
``"accepted": true``. Selection itself is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nerloop.data.records import Record

ACCEPT, EDIT = "accept", "edit"  # the values of meta["review"]
MODE_KEY = "review"


def sequence_confidence(rec: Record) -> float | None:
    """The model's probability of the sentence's whole pre-annotation, or None when the record carries no score
    to judge by.

    Read from stage score's ``mnlp`` (the mean of -log of each word's top probability), not from
    ``least_confidence`` (1 - the product itself): the scores travel rounded to 5 decimals, which leaves
    ``mnlp`` exact enough at any probability, where ``least_confidence`` rounds every product under 5e-6 to 0.
    """
    mnlp = (rec.meta.get("scores") or {}).get("mnlp")
    return None if mnlp is None else math.exp(-float(mnlp) * len(rec.tokens))


def confident(rec: Record, threshold: float) -> bool:
    """Whether ``rec`` passes the accept rule (module docstring) at ``threshold``."""
    p = sequence_confidence(rec)
    if p is None or p < threshold:
        return False
    spans = rec.meta.get("pre_spans") or []
    return all(len(s) > 3 and s[3] is not None and float(s[3]) >= threshold for s in spans)


def mark(batch: Sequence[Record], threshold: float | None, share: float = 1.0) -> int:
    """Set ``meta["review"]`` on every record of the batch; returns how many are in accept mode.

    ``threshold`` None switches the mode off (every sentence ``edit``). ``share`` caps the accept sentences
    at ``floor(share x batch size)``, the most confident first (ties in batch order), so that a batch of easy
    sentences still gets some full corrections.
    """
    passing = [] if threshold is None else [r for r in batch if confident(r, threshold)]
    cap = math.floor(share * len(batch) + 1e-9)
    ranked = sorted(passing, key=lambda r: -(sequence_confidence(r) or 0.0))  # sorted() is stable
    chosen = {id(r) for r in ranked[:cap]}
    for rec in batch:
        rec.meta[MODE_KEY] = ACCEPT if id(rec) in chosen else EDIT
    return len(chosen)
