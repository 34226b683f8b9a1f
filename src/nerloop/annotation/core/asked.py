"""The window an annotator is asked about: a sentence sent for only part of its words (issue #28, subsequence
selection), as every tool shows it.

A batch record asked only about a window carries ``meta["window"] = [start, end]``, word indices into its tokens
(end exclusive); it still carries its whole-sentence pre-annotation, so the words outside the window arrive
pre-filled by the model and the annotator labels only the window. A record without the key is a whole sentence,
sent exactly as before. What the tools share is here, read and checked once: which words, how they are named
to a person (``«Paris with Acme Corp» (words 4-7)``), and which pre-annotated spans lie outside; each tool
shows them its own way (``label_studio.tasks``, ``doccano.tasks``).
"""

from __future__ import annotations

from nerloop.annotation.core.protocol import META_PREFIX
from nerloop.data.annotations import WINDOW_KEY, check_window
from nerloop.data.records import Record
from nerloop.errors import NerloopError

SHOWN_CHARS = 40  # a longer window is named by its first and last words: a hint must stay on one line


def window(rec: Record, error: type[NerloopError]) -> tuple[int, int] | None:
    """The record's window as (start, end) word indices, or None for a whole sentence.

    A window that is not two integers with ``0 <= start < end <= len(tokens)`` raises ``error`` (the tool's own
    data error), naming the sentence: nothing is sent, as for a bad pre-annotation.
    """
    raw = rec.meta.get(WINDOW_KEY)
    if raw is None:
        return None
    try:
        check_window(list(raw) if isinstance(raw, tuple) else raw, len(rec.tokens))
    except (TypeError, ValueError) as exc:
        raise error(f"sentence {rec.id}: meta {exc}; nothing was sent") from None
    return int(raw[0]), int(raw[1])


def char_range(rec: Record, win: tuple[int, int]) -> tuple[int, int]:
    """The window's characters in ``rec.text``: from its first word's start to its last word's end."""
    return int(rec.offsets[win[0]][0]), int(rec.offsets[win[1] - 1][1])


def words(rec: Record, win: tuple[int, int]) -> str:
    """The window as a person reads it: ``«Paris with Acme Corp» (words 4-7)`` (numbered from 1, ends included);
    a long window by its first and last words, ``«Paris … Corp»``."""
    return named(rec.text, rec.offsets, win)


def named(text: str, offsets: list, win: tuple[int, int]) -> str:
    """``words`` from a sentence's text and word offsets: what a review item has of it (its tool item, not the
    record)."""
    s, e = int(offsets[win[0]][0]), int(offsets[win[1] - 1][1])
    shown = text[s:e]
    if len(shown) > SHOWN_CHARS and win[1] - win[0] > 1:
        first, last = (text[int(offsets[i][0]) : int(offsets[i][1])] for i in (win[0], win[1] - 1))
        shown = f"{first} … {last}"
    where = f"word {win[0] + 1}" if win[1] - win[0] == 1 else f"words {win[0] + 1}-{win[1]}"
    return f"«{shown}» ({where})"


def review_window(text: str, offsets: list, meta: dict) -> str | None:
    """The window of a disagreement sent to review, named (``named``), from its tool item's ``nerloop_window``
    meta; None for a whole sentence. The two versions can differ only inside it (outside, both annotators kept
    the model's pre-filled labels), so the reviewer is told which words to decide."""
    win = meta.get(META_PREFIX + WINDOW_KEY)
    return None if win is None else named(text, offsets, (int(win[0]), int(win[1])))


def outside(span: tuple[int, int], chars: tuple[int, int]) -> bool:
    """Whether a character span lies wholly outside the window's characters (one that overlaps it is the
    annotator's to check, so it is inside)."""
    return span[1] <= chars[0] or span[0] >= chars[1]
