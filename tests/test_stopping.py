"""The stabilising-predictions stopping rule on small arrays."""

from __future__ import annotations

import pytest

from nerloop.loop.stopping import (
    PLATEAU_GAIN,
    cohen_kappa,
    decide,
    draw_stop_set,
    first_firing,
    fitted_gain_per_1000,
    gain_per_100,
    judge,
    plateau_cycle,
    rule_fires,
    stable_cycles,
)


def test_kappa_identical_different_and_chance() -> None:
    a = [["O", "B-X", "I-X", "O"], ["B-Y", "O"]]
    assert cohen_kappa(a, a) == 1.0
    assert cohen_kappa([["O", "O"]], [["O", "O"]]) == 1.0  # one tag everywhere: agreement, not 0/0
    b = [["O", "B-X", "O", "O"], ["B-Y", "O"]]
    # 5 of 6 agree; marginals O 3/4, B-X 1, I-X 1, B-Y 1 -> chance (3*4 + 1 + 0 + 1) / 36
    chance = 14 / 36
    assert cohen_kappa(a, b) == pytest.approx((5 / 6 - chance) / (1 - chance))
    assert cohen_kappa([["B-X", "O"]], [["O", "B-X"]]) < 0  # systematic disagreement


def test_kappa_refuses_misaligned_taggings() -> None:
    with pytest.raises(ValueError, match="same sentences"):
        cohen_kappa([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="no tokens"):
        cohen_kappa([], [])


def test_rule_fires_only_after_a_full_window_above_the_threshold() -> None:
    kappas = [None, 0.95, 0.991, 0.995, 0.97, 0.992, 0.993, 0.999]
    assert stable_cycles(kappas, 0.99) == 3
    assert [rule_fires(kappas[: i + 1], 0.99, 3) for i in range(len(kappas))] == \
        [False, False, False, False, False, False, False, True]
    assert first_firing(kappas, 0.99, 3) == 7
    assert first_firing(kappas, 0.99, 2) == 3  # a shorter window fires at the first two in a row
    assert first_firing(kappas, 0.999, 1) == 7
    assert first_firing([None, 0.5, 0.6], 0.99, 1) is None
    assert not rule_fires([0.999, None, 0.999], 0.99, 2)  # a cycle without a kappa breaks the run


def test_gain_per_100_sentences_over_the_window() -> None:
    sentences, f1 = [200, 400, 600, 800], [0.50, 0.60, 0.64, 0.65]
    assert gain_per_100(sentences, f1, 1) == pytest.approx(0.5)  # 1 point over 200 sentences
    assert gain_per_100(sentences, f1, 3) == pytest.approx(2.5)
    assert gain_per_100(sentences, f1, 4) is None
    assert gain_per_100([200, 200], [0.5, 0.6], 1) is None


def test_stop_set_is_seeded_and_in_pool_order() -> None:
    ids = [f"s{i}" for i in range(100)]
    drawn = draw_stop_set(ids, 10, seed=1)
    assert drawn == draw_stop_set(ids, 10, seed=1) != draw_stop_set(ids, 10, seed=2)
    assert len(set(drawn)) == 10 and drawn == sorted(drawn, key=ids.index)
    assert draw_stop_set(ids[:5], 10, seed=1) == ids[:5]


def test_decision() -> None:
    budget = {"reachable": True, "more": 1234, "why": None}
    assert decide(fires=True, last_f1=0.5, target=0.8, budget=budget)[0] == "stop"
    assert decide(fires=False, last_f1=0.81, target=0.8, budget=budget) == \
        ("stop", "gold F1 0.810 has reached the target 0.800")
    assert decide(fires=False, last_f1=0.6, target=0.8, budget=budget) == \
        ("continue", "about 1,234 more sentences to F1 0.800")
    far = {"reachable": False, "more": None, "why": "not reachable: the fit needs about 9,000 sentences, ..."}
    assert decide(fires=False, last_f1=0.6, target=0.8, budget=far)[1].startswith(
        "F1 0.800: not reachable: the fit needs about 9,000")
    assert decide(fires=False, last_f1=0.6, target=0.8, budget=None)[1] == "too few cycles for a forecast yet"


SIZES = [200, 400, 800, 1600, 3200, 6400]


def curve(n: float) -> float:
    """F1 = 0.85 - 0.35 (n / 200) ** -1.5: gains 262.5 (n / 200) ** -2.5 points per 1,000 sentences."""
    return 0.85 - 0.35 * (n / 200) ** -1.5


def test_plateau_is_where_the_fitted_curve_gains_under_half_a_point_per_1000() -> None:
    f1 = [curve(n) for n in SIZES]
    gains = fitted_gain_per_1000(SIZES, f1)
    assert gains is not None
    assert gains == pytest.approx([262.5 * (n / 200) ** -2.5 for n in SIZES], rel=1e-3)  # 1.45 at 1,600, 0.26 at 3,200
    assert PLATEAU_GAIN == 0.5 and plateau_cycle(SIZES, f1) == 4
    assert plateau_cycle(SIZES, f1, floor=2.0) == 3
    assert plateau_cycle(SIZES[:4], f1[:4]) is None  # not flat yet within the run
    assert fitted_gain_per_1000([200, 200, 400], [0.5, 0.5, 0.6]) is None  # under 3 sizes: no fit, no plateau
    assert plateau_cycle([200, 400], [0.5, 0.6]) is None


def test_plateau_pools_the_points_so_one_dip_is_not_a_plateau() -> None:
    """A raw step can fall (noise); the fitted curve still rises there, so the plateau stays where the curve is flat."""
    f1 = [curve(n) for n in SIZES]
    f1[3] += 0.015  # 1,600 measured high: 1,600 -> 3,200 "loses" F1, so the raw step says flat at cycle 3
    assert f1[4] - f1[3] < 0 and plateau_cycle(SIZES, f1) == 4


def test_judge_against_the_plateau() -> None:
    # plateau at cycle 4 of a run whose last cycle is 6: within one cycle is 3, 4 or 5
    assert [judge(c, 4, 6) for c in (1, 2, 3, 4, 5, 6)] == \
        ["early", "early", "in range", "in range", "in range", "late"]
    assert judge(None, 4, 6) == "late"  # silent past plateau + 1
    assert judge(None, 6, 6) == "unverifiable"  # the plateau is the last cycle: the rule may fire at the next
    assert judge(None, 5, 6) == "late"
    # no plateau within the run: it is at last + 1 or later
    assert judge(3, None, 6) == "early" and judge(5, None, 6) == "early"
    assert judge(6, None, 6) == "unverifiable" and judge(None, None, 6) == "unverifiable"
