"""The learning-curve forecast on synthetic curves with known parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nerloop.loop.forecast import PowerLaw, fit_power_law, forecast, seconds_per_sentence, to_target, verdict, weights

TRUE = PowerLaw(a=0.85, b=0.35, c=0.6, scale=200.0)
X = np.array([200, 400, 600, 800, 1000, 1200], dtype=float)


def test_weights_favour_later_points() -> None:
    assert weights(4).tolist() == [0.25, 0.5, 0.75, 1.0]


def test_fit_recovers_known_parameters_without_noise() -> None:
    law = fit_power_law(X, TRUE(X))
    assert law.a == pytest.approx(TRUE.a, abs=1e-4)
    assert law.b == pytest.approx(TRUE.b, abs=1e-4)
    assert law.c == pytest.approx(TRUE.c, abs=1e-3)
    # another unit: the scale is the first size, b is the F1 gap there, whatever the unit
    tokens = fit_power_law(X * 15, TRUE(X))
    assert tokens.scale == 3000 and tokens.a == pytest.approx(TRUE.a, abs=1e-4)


def test_fit_recovers_parameters_from_noisy_curves_on_average() -> None:
    rng = np.random.default_rng(0)
    fits = [fit_power_law(X, TRUE(X) + rng.normal(0, 0.003, len(X))) for _ in range(30)]
    assert np.median([f.a for f in fits]) == pytest.approx(TRUE.a, abs=0.02)
    assert np.median([f.c for f in fits]) == pytest.approx(TRUE.c, abs=0.15)


def test_n_for_inverts_the_curve() -> None:
    n = TRUE.n_for(0.8)
    assert float(TRUE(n)) == pytest.approx(0.8)
    assert TRUE.n_for(0.85) == math.inf and TRUE.n_for(0.9) == math.inf


def test_band_covers_the_truth_and_is_reproducible() -> None:
    """Forecasts from 4 noisy points: the 90% band at 3x the data holds the true F1 most of the time."""
    rng = np.random.default_rng(1)
    x = X[:4]
    covered = 0
    for _ in range(20):
        fc = forecast(x, TRUE(x) + rng.normal(0, 0.01, len(x)), noise=0.01, resamples=100, seed=7)
        low, high = fc.band([1200.0])
        assert low[0] <= float(fc.law(1200.0)) <= high[0]
        covered += bool(low[0] <= float(TRUE(1200.0)) <= high[0])
    assert covered >= 15
    y = TRUE(x)
    first, again = forecast(x, y, noise=0.01, resamples=50, seed=3), forecast(x, y, noise=0.01, resamples=50, seed=3)
    assert first == again  # same points, params and seed: the same forecast


def test_band_widens_with_noise() -> None:
    y = TRUE(X[:4])
    narrow = forecast(X[:4], y, noise=0.002, resamples=100, seed=0).band([2000.0])
    wide = forecast(X[:4], y, noise=0.02, resamples=100, seed=0).band([2000.0])
    assert wide[1][0] - wide[0][0] > narrow[1][0] - narrow[0][0]


def test_to_target_reachable_and_not() -> None:
    fc = forecast(X, TRUE(X), noise=0.005, resamples=50, seed=0)
    ok = to_target(fc, 0.8, now=1200, capacity=10_000)
    assert ok["reachable"] and ok["why"] is None
    assert ok["needed"] == pytest.approx(TRUE.n_for(0.8), rel=0.01) and ok["more"] == ok["needed"] - 1200
    assert ok["needed_low"] <= ok["needed"] <= ok["needed_high"]
    ceiling = to_target(fc, 0.9, now=1200, capacity=10_000)  # above the asymptote 0.85
    assert ceiling["reachable"] is False and ceiling["why"].startswith("not reachable: the fitted ceiling is F1 0.85")
    assert ceiling["needed"] is None and ceiling["ceiling"] == pytest.approx(0.85, abs=0.01)
    pool = to_target(fc, 0.8, now=1200, capacity=1500)  # reachable only past the pool's end
    assert pool["reachable"] is False and "the pool and seed hold 1,500" in pool["why"]
    assert to_target(fc, 0.5, now=1200, capacity=1500)["more"] == 0  # already there


def test_three_noisy_points_cannot_rule_a_target_out() -> None:
    """The README demo's curve (0.698, 0.665, 0.691): its fitted ceiling is below 0.75, its band is not."""
    demo = forecast([200.0, 300.0, 400.0], [0.698, 0.665, 0.691], noise=0.01, resamples=200, seed=42)
    out = to_target(demo, 0.75, now=400, capacity=5000)
    assert out["reachable"] is None and out["why"].startswith("too early to tell: the fitted ceiling is F1 0.7")
    assert "but the 90% band reaches it at" in out["why"]
    assert verdict(out, 0.75).startswith("F1 0.750: too early to tell")


def test_fit_refuses_too_few_points() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        fit_power_law([200, 400], [0.5, 0.6])
    with pytest.raises(ValueError, match="at least 3"):
        fit_power_law([200, 200, 400], [0.5, 0.51, 0.6])


@pytest.mark.parametrize(("annotation", "expected"), [
    ({}, None),
    ({"cycle": 2, "last_cycle": {"sentences": 10}}, None),
    ({"seconds_per_sentence": 12.5, "annotators": {"a": {"seconds_per_sentence": 99}}}, 12.5),
    ({"annotators": {"a": {"seconds_per_sentence": 10, "sentences": 30},
                     "b": {"seconds_per_sentence": 20, "sentences": 10}}}, 12.5),
    ({"speed": [{"seconds_per_sentence": 8}, {"seconds_per_sentence": 12}]}, 10.0),
    ({"seconds_per_sentence": "fast", "x": {"seconds_per_sentence": -1}, "y": {"seconds_per_sentence": True}}, None),
])
def test_annotation_speed_is_read_defensively(annotation: dict, expected: float | None) -> None:
    assert seconds_per_sentence(annotation) == expected
