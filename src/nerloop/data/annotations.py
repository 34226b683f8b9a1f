"""What an annotator returns for one sentence, as the ledger keeps it, and how much they changed.

These are data, not the protocol that fetches them: the ledger, the inbox and every annotation
backend share them, so they sit below all three.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nerloop.data.records import Record
from nerloop.data.tags import iob1_to_iob2, tags_to_spans

# A sentence asked only in part (select.unit: window, README "Subsequence selection") carries its window
# [start, end) (word indices, end exclusive) as meta["window"] on the batch and outbox record, and as "window"
# on its ledger entry; a sentence asked whole has none.
WINDOW_KEY = "window"


@dataclass
class Annotation:
    """A finished annotation of one exported sentence.

    ``record.tags`` holds the annotator's IOB2 tags; ``pre_tags`` the pre-annotation that
    annotator was shown (None if none was), used for the effort figure. ``revision`` marks a
    correction of a sentence already in the ledger (made after it was imported): the ledger
    appends it as a new revision instead of skipping it as already known. ``review`` is the mode the
    sentence was sent in ("accept" in one key, "edit"; None before the mode existed): the ledger marks an
    accept sentence returned exactly as pre-annotated as accepted. ``window`` is the part of the sentence the
    annotator was asked about (``WINDOW_KEY``), copied from the exported record; the ledger keeps the
    pre-annotation outside it.
    """

    record: Record
    cycle: int
    annotator: str
    pre_tags: list[str] | None = None
    revision: bool = False
    review: str | None = None
    window: list[int] | None = None  # the words asked about (``WINDOW_KEY``); None = the whole sentence

    @property
    def accepted(self) -> bool:
        """Sent as "accept or edit" and returned with exactly the pre-annotated tags: accepted in one key."""
        return self.review == "accept" and self.pre_tags is not None and self.record.tags == self.pre_tags


def check_window(win: Any, n_tokens: int) -> None:
    """A window is ``[start, end]`` with ``0 <= start < end <= n_tokens``; anything else is a TypeError or
    ValueError that says what it should be."""
    if not (isinstance(win, list) and len(win) == 2 and all(type(v) is int for v in win)):  # bools are not words
        raise TypeError(f"'window' must be [start, end], two integers, got {win!r}")
    if not 0 <= win[0] < win[1] <= n_tokens:
        raise ValueError(f"'window' {win} is not a span of the sentence's {n_tokens} words (0 <= start < end <= "
                         f"{n_tokens})")


def window_of(meta: dict[str, Any] | None) -> list[int] | None:
    """The window a record's meta carries (``WINDOW_KEY``), as [start, end], or None."""
    win = (meta or {}).get(WINDOW_KEY)
    return None if win is None else [int(win[0]), int(win[1])]


def inside(win: Sequence[int] | None, i: int) -> bool:
    """Whether word ``i`` is one the annotator was asked about (every word when there is no window)."""
    return win is None or win[0] <= i < win[1]


def merge_window(pre_tags: Sequence[str] | None, answered: Sequence[str], win: Sequence[int] | None) -> list[str]:
    """The whole sentence's tags: ``answered`` inside the window, the pre-annotation (O where none was shown)
    outside it. An answered entity that crosses the window's edge is cut there (the IOB1 -> IOB2 rule makes
    its first word inside a B-), so the result is valid IOB2."""
    if win is None:
        return list(answered)
    shown = list(pre_tags) if pre_tags is not None else ["O"] * len(answered)
    return iob1_to_iob2([a if inside(win, i) else shown[i] for i, a in enumerate(answered)])


def labelled_tokens(win: Sequence[int] | None, n_tokens: int) -> int:
    """The words an annotator labelled: the window's, or the whole sentence's."""
    return n_tokens if win is None else int(win[1]) - int(win[0])


def edit_counts(pre_tags: list[str] | None, final_tags: list[str],
                win: Sequence[int] | None = None) -> dict[str, int]:
    """How much of the pre-annotation the annotator changed: the manual-effort figure.

    Spans with the same boundaries and label are kept; same boundaries with another
    label are relabelled; pre-annotated spans with no same-boundary final span are
    deleted; final spans with no same-boundary pre span are added. With a window ``win`` only the spans
    inside it count: the annotator was asked about nothing else.
    """
    final = {(s, e): lab for s, e, lab in tags_to_spans(final_tags) if inside(win, s)}
    pre = {(s, e): lab for s, e, lab in tags_to_spans(pre_tags) if inside(win, s)} if pre_tags else {}
    kept = sum(1 for k, lab in pre.items() if final.get(k) == lab)
    relabelled = sum(1 for k, lab in pre.items() if k in final and final[k] != lab)
    deleted = sum(1 for k in pre if k not in final)
    added = sum(1 for k in final if k not in pre)
    return {"kept": kept, "added": added, "deleted": deleted, "relabelled": relabelled}


EFFORT_KEYS = ("kept", "added", "deleted", "relabelled")


def manual_effort(counts: dict[str, int]) -> float | None:
    """The manual-effort share: edits made starting from the pre-annotation, over edits needed from nothing.

    Starting from an empty sentence, every final entity is one edit (add it). Starting from the
    pre-annotation, each added, deleted or relabelled entity is one edit and each kept one is free
    (a boundary fixed counts as a deletion plus an addition, as ``edit_counts`` sees it). So 100%
    means the pre-annotation saved nothing, 0% that it was right; over 100% means correcting it took
    more edits than typing from scratch (many wrong proposals to delete). None where nothing was to
    be labelled (no final entity): the share is undefined there, not zero.
    """
    needed = counts.get("kept", 0) + counts.get("added", 0) + counts.get("relabelled", 0)
    made = counts.get("added", 0) + counts.get("deleted", 0) + counts.get("relabelled", 0)
    return round(made / needed, 4) if needed else None


def summed(rows: list[dict[str, int]]) -> dict[str, int]:
    """The effort counts of several cycles (or sentences) together."""
    return {k: sum(r.get(k, 0) for r in rows) for k in EFFORT_KEYS}

