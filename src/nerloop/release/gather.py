"""Steps 1 of the release: gather seed, ledger and gold records, each tagged with where it came from, and
check their label set and label history; also the release's vocabulary (splits, origins) and its error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from nerloop.data.annotations import WINDOW_KEY
from nerloop.data.records import Record
from nerloop.errors import NerloopError

SPLITS = ("train", "validation", "test")
ORIGINS = ("seed", "active", "gold")


class FinalizeError(NerloopError):
    """The final dataset cannot be built as asked; the message says what to change."""


def gather(
    seed: Sequence[Record], ledger_entries: Sequence[dict[str, Any]], gold: Sequence[Record] | None
) -> list[Record]:
    """Seed, then ledger (in annotation order), then gold: copies tagged with origin and cycle.

    The origin travels into the published dataset so users can tell actively selected
    sentences from randomly drawn ones (the seed and gold sets) and filter on it.
    """
    out = [_tagged(r, "seed", 0) for r in seed]
    for e in ledger_entries:
        rec = Record.from_dict(e["record"])
        out.append(_tagged(rec, "active", int(e["cycle"]), annotator=e.get("annotator")))
    out += [_tagged(r, "gold", None) for r in gold or []]
    unlabelled = [r.source or r.id for r in out if r.tags is None]
    if unlabelled:
        raise FinalizeError(f"{len(unlabelled)} sentence(s) have no tags, e.g. {unlabelled[0]}")
    return out


def split_partial(ledger_entries: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The release rule for partly labelled sentences (``select.unit: window``): (the entries released, the ids
    kept out).

    A sentence whose latest ledger revision has a ``window`` was labelled by a person only inside it; the rest
    is the model's pre-annotation, which nobody checked. Published as if whole, its unchecked words would pass
    for human labels, and training on them would teach the model its own mistakes; so it is kept out of every
    split, counted and listed in ``stats.json`` and the card. A later revision of the sentence without a window
    (annotated whole after all) completes it, and it is released like any other.
    """
    kept = [e for e in ledger_entries if WINDOW_KEY not in e]
    return kept, [str(e["id"]) for e in ledger_entries if WINDOW_KEY in e]


def _tagged(rec: Record, origin: str, cycle: int | None, annotator: str | None = None) -> Record:
    meta = {"origin": origin, "cycle": cycle}
    if annotator:
        meta["annotator"] = annotator
    return Record(rec.id, list(rec.tokens), rec.text, list(rec.offsets), list(rec.tags or []), rec.source,
                  rec.doc_id, meta)


def check_label_set(records: Iterable[Record], types: Sequence[str]) -> None:
    """Every entity type used must be in the fixed label set (else the set changed mid-way)."""
    allowed = set(types)
    for r in records:
        bad = {t[2:] for t in r.tags or [] if t != "O"} - allowed
        if bad:
            raise FinalizeError(
                f"sentence {r.id} ({r.meta.get('origin', '?')}, {r.source or 'no source'}) uses {sorted(bad)}, "
                f"outside the label set {sorted(allowed)}: the label set changed between cycles"
            )


def check_label_history(history: Sequence[dict[str, Any]], types: Sequence[str], gold_types: Sequence[str]) -> None:
    """Fail if the cycles were not all scored on the same label set.

    ``evaluate`` writes ``f1_<Type>`` for every type seen in the (fixed) gold set, so a
    gold type missing from one cycle's row, or a row scoring a type outside today's
    label set, means the label set changed between cycles: sentences annotated before
    the change were never asked about the new types, and the dataset would be
    inconsistent in a way no cleaning can repair.
    """
    allowed = set(types)
    for row in history:
        scored = {k[3:] for k in row if k.startswith("f1_")}
        extra = scored - allowed
        missing = set(gold_types) - scored
        if extra or missing:
            what = (f"scored {sorted(extra)}, outside the current label set {sorted(allowed)}" if extra
                    else f"did not score {sorted(missing)}, which the gold set holds")
            raise FinalizeError(
                f"the label set changed between cycles: cycle {row.get('cycle')} {what}. Sentences annotated "
                "before the change lack the new types; re-annotate them or restart the loop with a fixed data.labels"
            )
