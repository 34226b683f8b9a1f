"""Subsequence selection: the window of a chosen sentence that annotators are asked about (``select.unit: window``).

Radmard, Fathullah and Lipani (2021), "Subsequence Based Deep Active Learning for Named Entity Recognition"
(ACL): most words of an uncertain sentence are ones the model already gets right, so asking for the whole
sentence spends the annotator's time on them; querying only the uncertain subsequence reached full-data F1 on
CoNLL-2003 with about 27% of the tokens. Here selection still ranks and picks whole sentences; then each chosen
sentence gets ONE window ``[start, end)`` (word indices, end exclusive): the ``window_tokens`` contiguous words
with the highest summed uncertainty (1 - the word's top-tag probability), widened so that it never cuts a
pre-annotated entity in two (an annotator cannot judge half an entity, and the words kept outside the window
must stay valid IOB2 next to what comes back).

A sentence no longer than ``window_tokens`` words is asked whole: it gets no window and is not partly labelled.
The rest of a windowed sentence keeps its pre-annotation: ``nerloop.data.annotations.merge_window`` builds the
whole sentence's tags from what the annotator returned inside the window and what was shown outside it.
"""

from __future__ import annotations

from collections.abc import Sequence

from nerloop.data.tags import tags_to_spans

Window = tuple[int, int]


def window(word_conf: Sequence[float], pre_tags: Sequence[str] | None, size: int) -> Window | None:
    """The window to ask about, or None when the whole sentence (``len(word_conf) <= size``) is asked.

    Ties between equally uncertain windows go to the leftmost one, so the choice is deterministic.
    """
    n = len(word_conf)
    if n <= size:
        return None
    unc = [1.0 - float(c) for c in word_conf]
    total = best = sum(unc[:size])
    start = 0
    for s in range(1, n - size + 1):
        total += unc[s + size - 1] - unc[s - 1]
        if total > best + 1e-12:  # strictly better: the leftmost of equal windows stays
            best, start = total, s
    end = start + size
    for s, e, _ in tags_to_spans(list(pre_tags or [])):  # spans never overlap: one pass widens both ends
        if s < start < e:
            start = s
        if s < end < e:
            end = e
    return (start, end) if (start, end) != (0, n) else None
