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

Where the curve has flattened (the plateau the rule is calibrated against, issue #28) is defined
here too, so the benchmark that calibrates the rule and its tests share one definition: the first
cycle where the inverse power law of ``nerloop.loop.forecast``, fitted to the whole gold-F1 curve
in hindsight, gains less than ``PLATEAU_GAIN`` F1 points per 1,000 sentences. The fitted curve,
not successive points: one gold-F1 measurement has an sd of about a point, so over a step of 200
sentences two raw points differ by ~7 points per 1,000 from noise alone, and the raw criterion
"finds" plateaus at a single dip (one stored run dips below its 200-sentence seed at 400). The
fit pools every point, is defined at the last cycle too, and is concave: once its slope is under
the floor, every later step gains less, which is what "after which" asks.

Pure functions: tags and numbers in, numbers out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from nerloop.loop.forecast import MIN_POINTS, fit_power_law

PLATEAU_GAIN = 0.5  # F1 points per 1,000 labelled sentences: below it the curve has flattened (issue #28)


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


def fitted_gain_per_1000(sentences: Sequence[float], f1: Sequence[float]) -> list[float] | None:
    """Slope of the power law fitted to the whole curve, at each cycle's size, in F1 points per 1,000 sentences.

    None when the curve has fewer than 3 distinct sizes (the fit's minimum).
    """
    if len(set(sentences)) < MIN_POINTS:
        return None
    law = fit_power_law(sentences, f1)
    return [float(v) for v in 1e5 * law.slope(sentences)]  # F1 (0-1) per sentence -> points per 1,000


def plateau_cycle(sentences: Sequence[float], f1: Sequence[float], floor: float = PLATEAU_GAIN) -> int | None:
    """First cycle after which the fitted gold-F1 curve gains less than ``floor`` points per 1,000 sentences.

    None when the curve has not flattened that far within the run (or is too short to fit).
    """
    slopes = fitted_gain_per_1000(sentences, f1)
    return None if slopes is None else next((c for c, g in enumerate(slopes) if g < floor), None)


def judge(fires: int | None, plateau: int | None, last: int) -> str:
    """Where the rule fired against the plateau: "in range" (within 1 cycle), "early", "late" or "unverifiable".

    ``last`` is the run's last cycle. A run whose curve never flattens (``plateau`` None) has its
    plateau at ``last + 1`` or later, so firing before ``last`` is early, and firing at ``last``
    or staying silent cannot be judged. Silence is late once the run went past ``plateau + 1``.
    """
    if plateau is None:
        return "early" if fires is not None and fires < last else "unverifiable"
    if fires is None:
        return "late" if plateau + 1 <= last else "unverifiable"
    if fires < plateau - 1:
        return "early"
    return "late" if fires > plateau + 1 else "in range"


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
