"""When to stop annotating: stabilising predictions (Bloodgood & Vijay-Shanker, 2009).

*A method for stopping active learning based on stabilizing predictions and the need for
user-adjustable stopping* (CoNLL 2009): a fixed random **stop set** of unlabelled sentences is
predicted by every cycle's model; once successive models agree on it (Cohen's kappa at or above
a threshold for a window of cycles), more annotation no longer changes what the model does, so
it stops paying. The rule needs no labels, so it does not spend the gold set's.

Decisions taken here:

- The stop set is drawn (seeded) from the whole prepared pool, once, and never labelled by
  nerloop: it is only predicted on. It may overlap what selection later picks; Bloodgood and
  Vijay-Shanker draw it from the unlabelled pool the same way, and keeping it out of selection
  would make the select stage depend on the evaluate stage. How many of its sentences have been
  labelled is reported beside the kappa.
- Kappa is token-level over IOB2 tags (O included): chance agreement on the many O tokens is
  what kappa discounts.
- The gold-F1 gain per 100 sentences over the same window is reported beside it, as the
  gold-set view of the same question.

Pure functions: tags and numbers in, numbers out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np


def draw_stop_set(ids: Sequence[str], size: int, seed: int) -> list[str]:
    """``size`` ids drawn at random (seeded) from ``ids``, in their original order; all if fewer."""
    if size >= len(ids):
        return list(ids)
    chosen = np.sort(np.random.default_rng(seed).choice(len(ids), size, replace=False))
    return [ids[i] for i in chosen]


def cohen_kappa(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> float:
    """Token-level Cohen's kappa between two taggings of the same sentences.

    1.0 when both taggings are identical (including the degenerate case of one single tag
    everywhere, where chance agreement is 1 and the usual formula is 0/0).
    """
    if len(a) != len(b) or any(len(x) != len(y) for x, y in zip(a, b, strict=True)):
        raise ValueError("the two taggings must cover the same sentences with the same lengths")
    pairs = [(s, t) for x, y in zip(a, b, strict=True) for s, t in zip(x, y, strict=True)]
    if not pairs:
        raise ValueError("no tokens to compare")
    n = len(pairs)
    observed = sum(s == t for s, t in pairs) / n
    left, right = Counter(s for s, _ in pairs), Counter(t for _, t in pairs)
    chance = sum(left[k] * right[k] for k in left) / n**2
    if chance >= 1.0:
        return 1.0
    return (observed - chance) / (1.0 - chance)


def stable_cycles(kappas: Sequence[float | None], threshold: float) -> int:
    """How many of the most recent kappas in a row are at or above ``threshold`` (None breaks the run)."""
    count = 0
    for k in reversed(kappas):
        if k is None or k < threshold:
            break
        count += 1
    return count


def rule_fires(kappas: Sequence[float | None], threshold: float, window: int) -> bool:
    """Stop when the last ``window`` kappas (one per cycle, oldest first) are all at or above ``threshold``."""
    return stable_cycles(kappas, threshold) >= window


def gain_per_100(sentences: Sequence[float], f1: Sequence[float], window: int) -> float | None:
    """Gold-F1 gain in F1 points per 100 labelled sentences over the last ``window`` cycles.

    None before there are ``window + 1`` points, or when no sentences were added in that span.
    """
    if len(f1) <= window:
        return None
    added = sentences[-1] - sentences[-1 - window]
    if added <= 0:
        return None
    return 100.0 * (f1[-1] - f1[-1 - window]) * 100.0 / added  # F1 points, per 100 sentences


def first_firing(kappas: Sequence[float | None], threshold: float, window: int) -> int | None:
    """Index of the first cycle at which the rule fires, replaying ``kappas`` cycle by cycle."""
    return next((i for i in range(len(kappas)) if rule_fires(kappas[: i + 1], threshold, window)), None)


def decide(*, fires: bool, last_f1: float, target: float, budget: dict[str, Any] | None) -> tuple[str, str]:
    """("stop" | "continue", why), from the kappa rule, the target and the sentence forecast."""
    if fires:
        return "stop", "predictions have stabilised: more annotation no longer changes what the model predicts"
    if last_f1 >= target:
        return "stop", f"gold F1 {last_f1:.3f} has reached the target {target:.3f}"
    if budget is None:
        return "continue", "too few cycles for a forecast yet"
    if budget["reachable"]:
        return "continue", f"about {budget['more']:,} more sentences to F1 {target:.3f}"
    return "continue", f"F1 {target:.3f}: {budget['why']}; stop when predictions stabilise"
