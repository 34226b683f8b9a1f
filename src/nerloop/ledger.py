"""The annotation ledger: every human (or simulated) annotation, append-only, keyed by sentence id.

The ledger is what makes the loop safe to re-run: ``import`` only appends sentences it
has not seen, each with the cycle it was annotated in, so running a stage twice or
resuming after a crash never duplicates or drops an annotation. It is rewritten
atomically (old lines + new lines), never edited in place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nerloop.annotation.base import Annotation, edit_counts
from nerloop.errors import DataError
from nerloop.formats import atomic_write
from nerloop.records import Record


class Ledger:
    """An append-only JSONL file of annotation entries."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: list[dict[str, Any]] = self._load()

    def _load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        entries = []
        with self.path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    entry["id"], entry["cycle"], entry["record"]  # noqa: B018 - shape check
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise DataError(self.path, n, f"corrupt ledger entry: {exc}") from None
                entries.append(entry)
        return entries

    @property
    def ids(self) -> set[str]:
        return {e["id"] for e in self.entries}

    def append(self, annotations: Iterable[Annotation]) -> list[dict[str, Any]]:
        """Add annotations of sentences not yet in the ledger; return the new entries."""
        seen = self.ids
        new = []
        for ann in annotations:
            if ann.record.id in seen or ann.record.tags is None:
                continue
            seen.add(ann.record.id)
            new.append(
                {
                    "id": ann.record.id,
                    "cycle": ann.cycle,
                    "annotator": ann.annotator,
                    "effort": edit_counts(ann.pre_tags, ann.record.tags),
                    "pre_tags": ann.pre_tags,
                    "record": ann.record.to_dict(),
                }
            )
        self.entries.extend(new)
        if new or not self.path.exists():  # an empty ledger still exists, for downstream stages
            with atomic_write(self.path) as fh:
                for e in self.entries:
                    fh.write(json.dumps(e, ensure_ascii=False) + "\n")
        return new

    def records(self) -> list[Record]:
        """The annotated sentences, in ledger order."""
        return [Record.from_dict(e["record"]) for e in self.entries]

    @property
    def cycle(self) -> int:
        """The last cycle that brought annotations (0 when only the seed set is labelled)."""
        return max((e["cycle"] for e in self.entries), default=0)

    def per_cycle(self) -> dict[int, dict[str, int]]:
        """Sentences, tokens and effort counts per cycle."""
        out: dict[int, dict[str, int]] = {}
        for e in self.entries:
            row = out.setdefault(
                e["cycle"], {"sentences": 0, "tokens": 0, "kept": 0, "added": 0, "deleted": 0, "relabelled": 0}
            )
            row["sentences"] += 1
            row["tokens"] += len(e["record"]["tokens"])
            for k, v in e["effort"].items():
                row[k] += v
        return dict(sorted(out.items()))

