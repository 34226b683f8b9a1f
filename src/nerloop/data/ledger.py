"""The annotation ledger: every human (or simulated) annotation, append-only, keyed by sentence id.

The ledger is what makes the loop safe to re-run: ``import`` only appends sentences it
has not seen, each with the cycle it was annotated in, so running a stage twice or
resuming after a crash never duplicates or drops an annotation. It is rewritten
atomically (old lines + new lines), never edited in place.

A correction made after import (an annotator changes a sentence already in the ledger) is
appended as a new *revision* of that sentence (``"revision": 2, 3, ...``), never written over
the old line: the file keeps the whole history, and everything that reads the ledger
(``entries``, ``records()``, ``ids``, ``per_cycle()``) sees the latest revision of each
sentence, so the latest wins in training and in the final dataset.

A sentence sent as "accept or edit" and returned exactly as pre-annotated (accepted in one key) is marked
``"accepted": true``; other entries have no such key, so ledgers written before it load unchanged.

A sentence asked only in part (``select.unit: window``, README "Subsequence selection") is *partly labelled*:
its entry carries ``"window": [start, end]`` (the words asked about, end exclusive), and its tags hold the
whole sentence, the annotator's answer inside the window and the pre-annotation as shown outside it. Its
effort and token counts cover the window only; :meth:`Ledger.records` puts the window on the record's
``meta["window"]`` so that training can leave the other words out. Whole sentences have no ``"window"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nerloop.data.annotations import (
    EFFORT_KEYS,
    WINDOW_KEY,
    Annotation,
    check_window,
    edit_counts,
    labelled_tokens,
    manual_effort,
    merge_window,
    summed,
)
from nerloop.data.files import _lines, atomic_write
from nerloop.data.records import Record
from nerloop.errors import DataError


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Ledger:
    """An append-only JSONL file of annotation entries."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.history: list[dict[str, Any]] = self._load()  # every line, revisions included

    @property
    def entries(self) -> list[dict[str, Any]]:
        """The latest revision of each sentence, in the order sentences first entered the ledger."""
        latest: dict[str, dict[str, Any]] = {}
        for e in self.history:
            latest[e["id"]] = e  # dicts keep first-insertion order; a later revision replaces the value
        return list(latest.values())

    def _load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        entries = []
        for n, line in _lines(self.path):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                # shape check of everything later read back, so a bad line fails here, naming it
                if not isinstance(entry["id"], str) or not _is_int(entry["cycle"]):
                    raise TypeError("'id' must be a string and 'cycle' an integer")
                if not isinstance(entry["effort"], dict) or not all(_is_int(v) for v in entry["effort"].values()):
                    raise TypeError("'effort' must map counts to integers")
                if not isinstance(entry.get("accepted", False), bool):
                    raise TypeError("'accepted' must be true or false")
                record = Record.from_dict(entry["record"])
                if record.id != entry["id"]:
                    raise ValueError("'id' differs from the record's id")
                if WINDOW_KEY in entry:
                    check_window(entry[WINDOW_KEY], len(record.tokens))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DataError(self.path, n, f"corrupt ledger entry: {type(exc).__name__}: {exc}") from None
            entries.append(entry)
        return entries

    @property
    def ids(self) -> set[str]:
        return {e["id"] for e in self.history}

    def append(self, annotations: Iterable[Annotation]) -> list[dict[str, Any]]:
        """Add annotations of sentences not yet in the ledger, and revisions; return the new entries.

        An annotation of a sentence already in the ledger is skipped (re-imports are harmless)
        unless it is marked ``revision`` and its tags differ from the latest revision: then it is
        appended with the next revision number (and its own effort against what was shown).
        """
        latest = {e["id"]: e for e in self.history}
        new = []
        for ann in annotations:
            if ann.record.tags is None:
                continue
            if ann.window is not None:  # outside the window, what was shown stands: nobody was asked about it
                check_window(ann.window, len(ann.record.tokens))
                ann.record.tags = merge_window(ann.pre_tags, ann.record.tags, ann.window)
            before = latest.get(ann.record.id)
            if before is not None and (not ann.revision or before["record"]["tags"] == ann.record.tags):
                continue
            entry = {
                "id": ann.record.id,
                "cycle": ann.cycle,
                "annotator": ann.annotator,
                "effort": edit_counts(ann.pre_tags, ann.record.tags, ann.window),
                "pre_tags": ann.pre_tags,
                "record": ann.record.to_dict(),
            }
            if ann.accepted:
                entry["accepted"] = True
            if ann.window is not None:
                entry[WINDOW_KEY] = list(ann.window)
            if before is not None:
                entry["revision"] = int(before.get("revision", 1)) + 1
            latest[ann.record.id] = entry
            new.append(entry)
        self.history.extend(new)
        if new or not self.path.exists():  # an empty ledger still exists, for downstream stages
            with atomic_write(self.path) as fh:
                for e in self.history:
                    fh.write(json.dumps(e, ensure_ascii=False) + "\n")
        return new

    def records(self) -> list[Record]:
        """The annotated sentences (latest revision of each), in ledger order; a partly labelled one carries
        its window as ``meta["window"]`` (what training may learn from)."""
        out = []
        for e in self.entries:
            rec = Record.from_dict(e["record"])
            if WINDOW_KEY in e:
                rec.meta = {**rec.meta, WINDOW_KEY: list(e[WINDOW_KEY])}
            out.append(rec)
        return out

    def partial(self) -> list[dict[str, Any]]:
        """The partly labelled sentences: latest revisions with a window (a later whole revision completes one)."""
        return [e for e in self.entries if WINDOW_KEY in e]

    def partial_counts(self) -> dict[str, int] | None:
        """Partly labelled sentences and the words of their windows (what was asked), or None when there are
        none, so that a summary made without windows stays as it was."""
        partial = self.partial()
        if not partial:
            return None
        return {"sentences": len(partial),
                "window_tokens": sum(labelled_tokens(e[WINDOW_KEY], len(e["record"]["tokens"])) for e in partial)}

    @property
    def cycle(self) -> int:
        """The last cycle that brought annotations (0 when only the seed set is labelled)."""
        return max((e["cycle"] for e in self.entries), default=0)

    def per_cycle(self) -> dict[int, dict[str, int]]:
        """Sentences, tokens and effort counts per cycle."""
        out: dict[int, dict[str, int]] = {}
        for e in self.entries:
            row = out.setdefault(
                e["cycle"], {"sentences": 0, "tokens": 0, **dict.fromkeys(EFFORT_KEYS, 0)}
            )
            row["sentences"] += 1
            row["tokens"] += labelled_tokens(e.get(WINDOW_KEY), len(e["record"]["tokens"]))
            for k, v in e["effort"].items():
                row[k] += v
        return dict(sorted(out.items()))

    def accepted_per_cycle(self) -> dict[int, int]:
        """Sentences accepted in one key per cycle (latest revisions: a later correction is no longer one),
        cycles with none included, so that a table can show 0."""
        out: dict[int, int] = {}
        for e in self.entries:
            out[e["cycle"]] = out.get(e["cycle"], 0) + int(bool(e.get("accepted")))
        return dict(sorted(out.items()))

    def manual_effort(self) -> dict[str, Any]:
        """The manual-effort share (``annotations.manual_effort``) of the last import and of all imports."""
        per_cycle = self.per_cycle()
        if not per_cycle:
            return {"cycle": None, "last_cycle": None, "cumulative": None}
        return {"cycle": self.cycle, "last_cycle": manual_effort(per_cycle[self.cycle]),
                "cumulative": manual_effort(summed(list(per_cycle.values())))}

