"""Everything labelled so far: the seed set plus every annotation in the ledger."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from nerloop import paths
from nerloop.data.files import read_records
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record
from nerloop.data.tags import tags_to_spans
from nerloop.errors import DataError


def entity_types() -> list[str]:
    """The label set fixed by ``prepare`` (from params or inferred)."""
    return json.loads(paths.LABELS.read_text(encoding="utf-8"))["entity_types"]


def labelled_records(ledger: Ledger | None = None) -> list[Record]:
    """Seed + ledger records; fails if the ledger holds a type outside the fixed label set."""
    ledger = ledger or Ledger(paths.LEDGER)
    allowed = set(entity_types())
    records = read_records(paths.SEED) + ledger.records()
    for r in records:
        bad = {t[2:] for t in r.tags or [] if t != "O"} - allowed
        if bad:
            raise DataError(
                paths.LEDGER, None,
                f"sentence {r.id} uses {sorted(bad)}, outside the label set {sorted(allowed)}: "
                "the label set changed between cycles; re-run prepare with data.labels covering every type",
            )
    return records


def type_counts(records: Iterable[Record], types: list[str]) -> dict[str, int]:
    """Entity mentions per type in ``records``, every type of the label set listed (0 when unseen)."""
    counts = Counter(lab for r in records for _, _, lab in tags_to_spans(r.tags or []))
    return {t: counts.get(t, 0) for t in types}


def labelled_type_counts() -> dict[str, int]:
    """Entity mentions per type in the seed set and the ledger so far ({} before prepare has run)."""
    if not paths.LABELS.exists():
        return {}
    return type_counts(read_records(paths.SEED) + Ledger(paths.LEDGER).records(), entity_types())


def exported_before(cycle: int) -> set[str]:
    """Sentence ids sent out for annotation in a cycle before ``cycle`` (from stage import).

    The current cycle's own batch is not excluded: re-running score and select with
    nothing new must reproduce that same batch, not pick a second one.
    """
    if not paths.PENDING.exists():
        return set()
    exported = json.loads(paths.PENDING.read_text(encoding="utf-8"))["exported"]
    return {sid for sid, c in exported.items() if c < cycle}
