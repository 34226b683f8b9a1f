import json

import numpy as np
import pandas as pd
import pytest

from nerloop.params import MEASURE_NAMES, STRATEGY_NAMES
from nerloop.selection.strategies import (
    NO_ENTITY,
    OUTPUT_COLUMNS,
    STRATEGIES,
    SelectConfig,
    balance_by_type,
    select,
    type_groups,
    validate_config,
)
from nerloop.selection.uncertainty import MC_MEASURES, MEASURES


def test_params_accepts_exactly_the_registered_names() -> None:
    """params.yaml is checked against names spelt in nerloop.params (the lower layer); they must be the registries'."""
    assert tuple(STRATEGIES) == STRATEGY_NAMES
    assert (*MEASURES, *MC_MEASURES) == MEASURE_NAMES


def pool(n_per_blob: int = 10, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Candidates in three planted embedding blobs; blob 0 holds the most uncertain sentences."""
    rng = np.random.default_rng(seed)
    n = 3 * n_per_blob
    embeddings = np.concatenate([c + rng.normal(scale=0.2, size=(n_per_blob, 6)) for c in np.eye(3, 6) * 10])
    mnlp = np.concatenate([np.linspace(3.0, 2.0, n_per_blob), np.linspace(1.0, 0.5, 2 * n_per_blob)])
    candidates = pd.DataFrame(
        {
            "id": [f"s{i:03d}" for i in range(n)],
            "n_tokens": rng.integers(5, 40, size=n),
            "entropy_mean": mnlp / 3,
            "mnlp": mnlp,
        }
    )
    return candidates, embeddings


def test_uncertainty_takes_the_top_scores_in_order():
    candidates, embeddings = pool()
    batch = select(candidates, embeddings, SelectConfig(strategy="uncertainty", measure="mnlp", batch_size=4))
    assert batch["id"].tolist() == ["s000", "s001", "s002", "s003"]
    assert batch["rank"].tolist() == [1, 2, 3, 4]
    assert batch["score"].tolist() == pytest.approx(candidates["mnlp"][:4].tolist())
    assert (batch["cluster"] == -1).all()
    assert batch["reason"][0].startswith("mnlp=3.00 (top 4% of pool)")


def test_rare_bonus_lifts_sentences_with_rare_types():
    candidates, embeddings = pool()
    candidates["rare"] = 0.0
    candidates.loc[29, "rare"] = 1.0  # least uncertain sentence, but it has a rare entity type
    config = SelectConfig(strategy="uncertainty", measure="mnlp", batch_size=1, rare_bonus=5.0)
    batch = select(candidates, embeddings, config)
    assert batch["id"].tolist() == ["s029"]
    assert "rare-type bonus +5.00" in batch["reason"][0]


def test_hybrid_spreads_the_batch_over_planted_clusters():
    candidates, embeddings = pool()
    config = SelectConfig(strategy="hybrid", measure="mnlp", batch_size=3, k=3, alpha=0.7)
    batch = select(candidates, embeddings, config)
    assert batch["id"][0] == "s000"  # the most uncertain sentence overall goes first
    assert batch["cluster"].nunique() == 3
    assert ((batch["score"] >= 0) & (batch["score"] <= 1)).all()
    assert "cluster" in batch["reason"][0] and "hybrid score" in batch["reason"][0]
    # Plain uncertainty would take all three from blob 0.
    plain = select(candidates, embeddings, SelectConfig(strategy="uncertainty", measure="mnlp", batch_size=3))
    assert set(plain["id"]) == {"s000", "s001", "s002"}


def test_hybrid_takes_the_most_uncertain_member_of_each_cluster():
    candidates, embeddings = pool()
    batch = select(candidates, embeddings, SelectConfig(strategy="hybrid", measure="mnlp", batch_size=3, k=3))
    assert sorted(batch["id"]) == ["s000", "s010", "s020"]


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_same_seed_same_batch(strategy):
    candidates, embeddings = pool()
    config = SelectConfig(strategy=strategy, measure="mnlp", batch_size=5, k=3, seed=11)
    pd.testing.assert_frame_equal(select(candidates, embeddings, config), select(candidates, embeddings, config))


def test_random_depends_on_the_seed():
    candidates, embeddings = pool()
    a = select(candidates, embeddings, SelectConfig(strategy="random", batch_size=10, seed=1))
    b = select(candidates, embeddings, SelectConfig(strategy="random", batch_size=10, seed=2))
    assert a["id"].tolist() != b["id"].tolist()
    assert a["score"].isna().all() and (a["cluster"] == -1).all()


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_token_budget_is_respected(strategy):
    candidates, embeddings = pool()
    config = SelectConfig(strategy=strategy, measure="mnlp", batch_size=30, token_budget=60, k=3)
    batch = select(candidates, embeddings, config)
    assert 0 < len(batch) < 30
    assert batch["n_tokens"].sum() <= 60


def test_token_budget_skips_long_sentences_and_goes_on():
    candidates = pd.DataFrame({"id": ["a", "b", "c"], "n_tokens": [10, 50, 5], "mnlp": [3.0, 2.0, 1.0]})
    config = SelectConfig(strategy="uncertainty", measure="mnlp", batch_size=3, token_budget=20)
    assert select(candidates, None, config)["id"].tolist() == ["a", "c"]


def test_batch_larger_than_pool_returns_everything():
    candidates, embeddings = pool()
    batch = select(candidates, embeddings, SelectConfig(strategy="hybrid", measure="mnlp", batch_size=100, k=3))
    assert sorted(batch["id"]) == sorted(candidates["id"])
    assert batch["rank"].tolist() == list(range(1, 31))


def test_empty_pool_gives_empty_frame_with_the_output_columns():
    candidates = pd.DataFrame({"id": [], "n_tokens": [], "mnlp": []})
    batch = select(candidates, np.zeros((0, 6)), SelectConfig(strategy="hybrid", measure="mnlp", k=3))
    assert batch.empty
    assert list(batch.columns) == ["id", "n_tokens", "mnlp", *OUTPUT_COLUMNS]


@pytest.mark.parametrize("measure", list(MC_MEASURES))
def test_missing_measure_column_names_the_key(measure):
    candidates, embeddings = pool()
    with pytest.raises(ValueError, match=rf"select\.measure '{measure}' has no column .*MC-dropout passes"):
        select(candidates, embeddings, SelectConfig(strategy="uncertainty", measure=measure))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strategy": "foo"}, "select.strategy 'foo' is unknown; choose one of random, uncertainty, hybrid"),
        ({"measure": "vibes"}, "select.measure 'vibes' is unknown"),
        ({"alpha": 1.5}, r"select.alpha must be in \[0, 1\], got 1.5"),
        ({"batch_size": 0}, "select.batch_size"),
        ({"token_budget": 0}, "select.token_budget"),
        ({"k": 0}, "select.k"),
        ({"rare_bonus": -1.0}, "select.rare_bonus"),
        ({"seed": "x"}, "select.seed"),
        ({"balance_types": 1}, "select.balance_types must be true or false, got 1"),
    ],
)
def test_config_errors_name_the_key(changes, message):
    with pytest.raises(ValueError, match=message):
        validate_config(SelectConfig(**changes))


def test_k_larger_than_pool_is_an_error():
    candidates, embeddings = pool()
    with pytest.raises(ValueError, match=r"select.k \(50\) is larger than the number of candidate sentences \(30\)"):
        select(candidates, embeddings, SelectConfig(strategy="hybrid", k=50))


def typed_pool() -> tuple[pd.DataFrame, np.ndarray]:
    """The planted pool with predicted types: blob 0 (the 10 most uncertain) predicts only Chemical;
    of the rest, ten predict Chemical, five Disease (rare; two also Chemical), five nothing."""
    candidates, embeddings = pool()
    types = [["Chemical"]] * 20 + [["Disease"]] * 3 + [["Chemical", "Disease"]] * 2 + [[]] * 5
    return candidates.assign(pred_types=[json.dumps(t) for t in types]), embeddings


def test_type_groups_are_each_sentences_rarest_predicted_type():
    candidates, _ = typed_pool()
    groups = type_groups(candidates)
    assert groups[:20] == ["Chemical"] * 20
    assert groups[20:25] == ["Disease"] * 5  # Disease (5 sentences) is rarer than Chemical (22)
    assert groups[25:] == [NO_ENTITY] * 5
    with pytest.raises(ValueError, match=r"select\.balance_types needs the pred_types column"):
        type_groups(candidates.drop(columns="pred_types"))


def test_balance_by_type_is_round_robin_in_ranking_order():
    groups = ["A", "A", "A", "B", "C", "B"]
    order = np.array([0, 1, 2, 3, 4, 5])  # the ranking: A A A B C B
    assert balance_by_type(order, groups).tolist() == [0, 3, 4, 1, 5, 2]
    # groups take turns in the order their best sentence has in the ranking
    assert balance_by_type(np.array([4, 5, 3, 0, 1, 2]), groups).tolist() == [4, 5, 0, 3, 1, 2]


def test_balance_types_lets_every_predicted_type_into_an_uncertainty_batch():
    candidates, embeddings = typed_pool()
    plain = select(candidates, embeddings, SelectConfig(strategy="uncertainty", measure="mnlp", batch_size=6))
    assert plain["id"].tolist() == ["s000", "s001", "s002", "s003", "s004", "s005"]  # all predict Chemical only
    config = SelectConfig(strategy="uncertainty", measure="mnlp", batch_size=6, balance_types=True)
    balanced = select(candidates, embeddings, config)
    # round-robin: the best Chemical (the top pick stays first), the best Disease, the best without entity
    assert balanced["id"].tolist() == ["s000", "s020", "s025", "s001", "s021", "s026"]
    assert balanced["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert balanced["reason"][0] == plain["reason"][0] + ", type group Chemical"
    assert [r.rsplit(", type group ", 1)[1] for r in balanced["reason"]] == ["Chemical", "Disease", NO_ENTITY] * 2


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_balance_types_applies_to_every_strategy_and_repeats_with_the_seed(strategy):
    candidates, embeddings = typed_pool()
    group_of = dict(zip(candidates["id"], type_groups(candidates), strict=True))
    config = SelectConfig(strategy=strategy, measure="mnlp", batch_size=6, k=3, seed=5, balance_types=True)
    batch = select(candidates, embeddings, config)
    assert sorted(group_of[i] for i in batch["id"]) == sorted(["Chemical", "Disease", NO_ENTITY] * 2)
    pd.testing.assert_frame_equal(batch, select(candidates, embeddings, config))


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_balance_types_off_needs_no_types_and_changes_nothing(strategy):
    candidates, embeddings = typed_pool()
    config = SelectConfig(strategy=strategy, measure="mnlp", batch_size=8, k=3)
    with_types = select(candidates, embeddings, config)
    pd.testing.assert_frame_equal(with_types.drop(columns="pred_types"),
                                  select(candidates.drop(columns="pred_types"), embeddings, config))
