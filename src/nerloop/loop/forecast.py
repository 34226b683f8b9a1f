"""Forecast the learning curve: how many more sentences (tokens, hours) to reach a target F1.

The model is the inverse power law of Figueroa et al. (2012, *Predicting sample size required
for classification performance*, BMC Med Inform Decis Mak 12:8)::

    F1(n) = a - b * (n / scale) ** -c        a: the ceiling with this model and data source

fitted by weighted non-linear least squares with weights ``w_j = j / m`` (point j of m, in
order of n): later points are trained on more data, so they vary less and lie nearer the range
being extrapolated to. ``n`` is divided by the first point's size so that ``b`` is an F1 gap
(well scaled for the optimiser) whatever the unit (sentences or tokens).

The uncertainty band comes from **parametric resampling**: the fitted curve plus Gaussian noise
of the size of one gold-F1 measurement, refitted ``resamples`` times (seeded). Two alternatives
were rejected: the fit's covariance needs more points than parameters (a loop has 3 or 4 points
when the question first matters, leaving 0 or 1 degree of freedom) and linearises a model whose
ceiling is very non-linear in the data; a bootstrap over points draws samples with fewer than 3
distinct points, which cannot be fitted. Resampling works from 3 points and carries the
non-linearity into the ceiling and into the sentences-to-target. The noise is the larger of the
fit's residual scatter and ``forecast.f1_noise`` (a floor: with 3 points the residuals are 0).

Pure functions: numbers in, numbers out; the evaluate stage does the reading and writing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

MIN_POINTS = 3  # three parameters
# Box bounds of (a, b, c): F1 lives in [0, 1]; b >= 0 makes the curve rise; c in [0.05, 3] spans
# curves from almost linear to saturating within a few doublings (learning curves in the
# literature have c around 0.2-1).
LOWER = (0.0, 0.0, 0.05)
UPPER = (1.0, 2.0, 3.0)
LEVEL = 0.9  # the band holds 90% of the resampled curves


@dataclass(frozen=True)
class PowerLaw:
    """F1(n) = a - b * (n / scale) ** -c."""

    a: float
    b: float
    c: float
    scale: float

    def __call__(self, n: Any) -> np.ndarray:
        return self.a - self.b * (np.asarray(n, dtype=float) / self.scale) ** (-self.c)

    def slope(self, n: Any) -> np.ndarray:
        """dF1/dn at ``n``: how much F1 one more unit (sentence, token) buys there; falls as n grows."""
        return self.b * self.c / self.scale * (np.asarray(n, dtype=float) / self.scale) ** (-self.c - 1.0)

    def n_for(self, f1: float) -> float:
        """The smallest n where the curve reaches ``f1``; infinity when its ceiling ``a`` does not."""
        if f1 >= self.a:
            return math.inf
        if self.b == 0:
            return 0.0
        return float(self.scale * ((self.a - f1) / self.b) ** (-1.0 / self.c))


def weights(m: int) -> np.ndarray:
    """Figueroa et al.'s weights: j / m for the j-th of m points (in order of n)."""
    return np.arange(1, m + 1, dtype=float) / m


def _check(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length, got {x.shape} and {y.shape}")
    if len(np.unique(x)) < MIN_POINTS:
        raise ValueError(f"the fit needs at least {MIN_POINTS} distinct sizes, got {len(np.unique(x))}")
    if np.any(x <= 0) or np.any(np.diff(x) < 0):
        raise ValueError("sizes must be positive and in increasing order")


def _solve(x: np.ndarray, y: np.ndarray, w: np.ndarray, scale: float, start: tuple[float, float, float]
           ) -> tuple[PowerLaw, float]:
    sw = np.sqrt(w)
    z = x / scale

    def resid(p: np.ndarray) -> np.ndarray:
        return sw * (p[0] - p[1] * z ** (-p[2]) - y)

    start_in = np.clip(start, np.add(LOWER, 1e-6), np.subtract(UPPER, 1e-6))
    sol = least_squares(resid, start_in, bounds=(LOWER, UPPER), method="trf", x_scale=(0.1, 0.1, 0.5))
    a, b, c = (float(v) for v in sol.x)
    return PowerLaw(a, b, c, scale), float(np.sum(sol.fun ** 2))


def fit_power_law(x: Any, y: Any, w: Any = None, start: tuple[float, float, float] | None = None) -> PowerLaw:
    """Weighted least-squares inverse power law through (x, y); several starts, the best kept.

    ``w`` defaults to Figueroa's ``j / m``; ``start`` (a, b, c) skips the multi-start (the
    resampled refits start from the central fit, which is both faster and more stable).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    _check(x, y)
    w = weights(len(x)) if w is None else np.asarray(w, dtype=float)
    scale = float(x[0])
    if start is not None:
        return _solve(x, y, w, scale, start)[0]
    a0 = min(1.0, float(y.max()) + 0.05)
    fits = [_solve(x, y, w, scale, (a0, max(a0 - float(y[0]), 1e-3), c0)) for c0 in (0.3, 0.7, 1.5)]
    return min(fits, key=lambda f: f[1])[0]


@dataclass(frozen=True)
class Forecast:
    """The central fit and the resampled refits that make its band."""

    law: PowerLaw
    laws: tuple[PowerLaw, ...]
    noise: float  # sd of the Gaussian noise the resamples were drawn with

    def band(self, n: Any, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper edge of the central ``level`` share of the resampled curves at ``n``."""
        curves = np.array([law(n) for law in self.laws])
        q = (1 - level) / 2
        return np.quantile(curves, q, axis=0), np.quantile(curves, 1 - q, axis=0)

    def n_for(self, f1: float, level: float = LEVEL) -> tuple[float, float, float]:
        """(central, low, high) size to reach ``f1``; infinity where a curve never reaches it."""
        values = sorted(law.n_for(f1) for law in self.laws)
        q = (1 - level) / 2
        low = values[math.floor(q * (len(values) - 1))]
        high = values[math.ceil((1 - q) * (len(values) - 1))]
        return self.law.n_for(f1), low, high

    def ceiling_band(self, level: float = LEVEL) -> tuple[float, float]:
        q = (1 - level) / 2
        a = np.array([law.a for law in self.laws])
        return float(np.quantile(a, q)), float(np.quantile(a, 1 - q))


def forecast(x: Any, y: Any, *, noise: float, resamples: int, seed: int) -> Forecast:
    """Fit the curve and its band: ``resamples`` refits of the fitted curve plus N(0, sd) noise.

    sd is the larger of ``noise`` (one measurement's sd, a floor) and the weighted residual
    scatter of the fit (when there are more points than parameters).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    law = fit_power_law(x, y)
    w = weights(len(x))
    dof = len(x) - MIN_POINTS
    scatter = math.sqrt(float(np.sum(w * (y - law(x)) ** 2) / np.sum(w) * len(x) / dof)) if dof > 0 else 0.0
    sd = max(noise, scatter)
    rng = np.random.default_rng(seed)
    start = (law.a, law.b, law.c)
    laws = tuple(fit_power_law(x, law(x) + rng.normal(0.0, sd, len(x)), w, start) for _ in range(resamples))
    return Forecast(law, laws, sd)


def _round(v: float, digits: int = 0) -> float | int | None:
    """JSON-friendly: None for infinity, whole numbers as int."""
    if not math.isfinite(v):
        return None
    return round(v) if digits == 0 else round(v, digits)


def to_target(fc: Forecast, target: float, now: float, capacity: float) -> dict[str, Any]:
    """Size needed to reach ``target`` F1, how much more than ``now``, or why it is not reachable.

    ``capacity`` is the most that can be labelled (seed + the whole pool): a forecast beyond it
    is "not reachable with this pool", a ceiling below the target "not reachable with this model".
    """
    need, low, high = fc.n_for(target)
    lo_a, hi_a = fc.ceiling_band()
    out: dict[str, Any] = {
        "ceiling": round(fc.law.a, 4), "ceiling_low": round(lo_a, 4), "ceiling_high": round(hi_a, 4),
        "needed": _round(need), "needed_low": _round(low), "needed_high": _round(high),
        "more": _round(max(need - now, 0.0)), "capacity": _round(capacity),
        "chance_reachable": round(sum(law.n_for(target) <= capacity for law in fc.laws) / len(fc.laws), 3),
    }
    out.update(reachable=True, why=None)
    if math.isinf(need) or need > capacity:
        # three noisy points cannot rule a target out: "not reachable" only when even the band's optimistic
        # edge misses it; otherwise it is too early to tell (reachable None)
        hopeless = math.isinf(low) or low > capacity
        if math.isinf(need):
            why = f"the fitted ceiling is F1 {fc.law.a:.3f}, below the target {target:.3f}"
        else:
            why = f"the fit needs about {need:,.0f} sentences, the pool and seed hold {capacity:,.0f}"
        if hopeless:
            out.update(reachable=False, why=f"not reachable: {why}, and so is the 90% band's optimistic edge")
        else:
            optimistic = f"{low:,.0f} sentences" if low <= capacity else "beyond the pool"
            out.update(reachable=None, why=f"too early to tell: {why}, but the 90% band reaches it at {optimistic}")
    return out


def verdict(budget: dict[str, Any] | None, target: float) -> str:
    """The forecast's word on the target, the same in status, the card and the plot's legend."""
    if budget is None:
        return "too few cycles for a forecast yet"
    if budget["reachable"]:
        return f"F1 {target:.3f} at about {budget['needed']:,} labelled sentences"
    return f"F1 {target:.3f}: {budget['why']}"


def seconds_per_sentence(annotation: dict[str, Any]) -> float | None:
    """The measured annotation speed in ``metrics/annotation.json``, if there is one.

    Read defensively, as the Doccano backend is adding it: any ``seconds_per_sentence`` number,
    top level first; otherwise the mean of the nested ones (per annotator, per cycle), weighted by
    a ``sentences`` count beside them when there is one. None when nothing usable is recorded.
    """
    found: list[tuple[float, float]] = []  # (seconds per sentence, weight)

    def walk(node: Any, depth: int) -> None:
        if isinstance(node, dict):
            v = node.get("seconds_per_sentence")
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0:
                n = node.get("sentences")
                weight = float(n) if isinstance(n, int | float) and not isinstance(n, bool) and n > 0 else 1.0
                found.append((float(v), weight if depth else math.inf))
            for child in node.values():
                walk(child, depth + 1)
        elif isinstance(node, list):
            for child in node:
                walk(child, depth + 1)

    walk(annotation, 0)
    if not found:
        return None
    top = [v for v, weight in found if math.isinf(weight)]
    if top:
        return top[0]
    return sum(v * weight for v, weight in found) / sum(weight for _, weight in found)
