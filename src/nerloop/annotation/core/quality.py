"""Agreement, speed and effort figures from what annotators did (Doccano, Label Studio): pure functions.

* Agreement is computed over *pairs*: one pair per double-annotated sentence, keyed by sentence id,
  so a sentence held back for a while is still counted once, in the cycle it was exported in, and
  in the cumulative figure. Token-level Cohen's kappa and entity-level F1 (strict IOB2).
* Speed comes from Doccano's ``ExampleState.confirmed_at``: Doccano records when an example was
  marked done, not when work on it started, so the time of a sentence is the gap since the same
  annotator's previous confirmation. Gaps longer than ``break_s`` are breaks (lunch, the next day)
  and are left out with their sentence, as is the first sentence of a sitting: the figure is
  "seconds per sentence while working", over the sentences that had a measurable gap.
* Effort compares each annotator's final spans with the pre-annotation *that annotator saw*.
* A sentence asked only about a window of its words (``select.unit: window``) counts only that window: its
  words for tokens and agreement, its spans for effort. Outside it both annotators see the same
  pre-annotation and nobody is asked to change it, so counting those words would inflate kappa.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nerloop.data.annotations import edit_counts, labelled_tokens, merge_window
from nerloop.data.tags import iob1_to_iob2

KAPPA_TARGET = 0.8


@dataclass
class Confirmation:
    """One annotator's confirmed version of one example."""

    annotator: str
    sid: str
    cycle: int
    tokens: int
    confirmed_at: str  # ISO 8601, from Doccano
    pre_tags: list[str] | None  # what this annotator was shown
    tags: list[str] | None  # None when the version is invalid (held back)
    window: list[int] | None = None  # the words asked about; None = the whole sentence


def asked_part(pre_tags: list[str] | None, tags: list[str], window: list[int] | None) -> list[str]:
    """The tags of the words an annotator was asked about: the whole sentence, or the window's words (an
    entity cut at the window's start begins there), the sequence a QC pair is compared on."""
    if window is None:
        return list(tags)
    return iob1_to_iob2(merge_window(pre_tags, tags, window)[window[0]:window[1]])


def agreement(pairs: Iterable[tuple[list[str], list[str]]]) -> dict[str, Any]:
    """Pairs, token-level Cohen's kappa, entity-level F1 and disagreements over (tags a, tags b) pairs."""
    a_seqs, b_seqs = [], []
    for a, b in pairs:
        a_seqs.append(a)
        b_seqs.append(b)
    out: dict[str, Any] = {"pairs": len(a_seqs), "kappa": None, "entity_f1": None,
                           "disagreements": sum(a != b for a, b in zip(a_seqs, b_seqs, strict=True))}
    if not a_seqs:
        return out
    flat_a = [t for seq in a_seqs for t in seq]
    flat_b = [t for seq in b_seqs for t in seq]
    if flat_a == flat_b:
        out.update(kappa=1.0, entity_f1=1.0)
        return out
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = float(cohen_kappa_score(flat_a, flat_b))
        f1 = float(f1_score(a_seqs, b_seqs, mode="strict", scheme=IOB2, zero_division=0))
    out.update(kappa=round(k, 4) if math.isfinite(k) else None, entity_f1=round(f1, 4))
    return out


def speed_and_effort(confirmations: Iterable[Confirmation], break_s: float) -> dict[str, dict[str, dict[str, Any]]]:
    """{annotator: {cycle (str): figures}}: sentences, tokens, timed sentences, seconds, s/sentence,
    s/token (over the timed sentences), and kept/added/deleted/relabelled against what they saw."""
    by_annotator: dict[str, list[Confirmation]] = {}
    for c in confirmations:
        by_annotator.setdefault(c.annotator, []).append(c)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, items in sorted(by_annotator.items()):
        items.sort(key=lambda c: c.confirmed_at)
        rows: dict[str, dict[str, Any]] = {}
        previous: datetime | None = None
        for c in items:
            row = rows.setdefault(str(c.cycle), {
                "sentences": 0, "tokens": 0, "timed_sentences": 0, "timed_tokens": 0, "seconds": 0.0,
                "breaks": 0, "kept": 0, "added": 0, "deleted": 0, "relabelled": 0,
            })
            row["sentences"] += 1
            tokens = labelled_tokens(c.window, c.tokens)
            row["tokens"] += tokens
            at = datetime.fromisoformat(c.confirmed_at.replace("Z", "+00:00"))
            if previous is not None:
                gap = (at - previous).total_seconds()
                if gap <= break_s:
                    row["timed_sentences"] += 1
                    row["timed_tokens"] += tokens
                    row["seconds"] += gap
                else:
                    row["breaks"] += 1
            previous = at
            if c.tags is not None:
                for k, v in edit_counts(c.pre_tags, c.tags, c.window).items():
                    row[k] += v
        for row in rows.values():
            row["seconds"] = round(row["seconds"], 2)
            timed = row["timed_sentences"]
            row["seconds_per_sentence"] = round(row["seconds"] / timed, 2) if timed else None
            row["seconds_per_token"] = round(row["seconds"] / row["timed_tokens"], 3) if row["timed_tokens"] else None
        out[name] = rows
    return out
