"""Query strategies: which unlabelled sentences to send to annotators next.

Every strategy is one function with the same signature, ``(candidates, embeddings, config) -> Ranking``,
listed in ``STRATEGIES``: it orders ALL candidates best first and explains each one. ``select`` then
applies what all strategies share (balancing over entity types, batch size, token budget, output
columns). Adding a strategy is one function plus one registry entry, in the spirit of small-text's
query strategies, and its name in ``nerloop.params.STRATEGY_NAMES``, where params.yaml is checked
before any selection code is loaded.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nerloop.params import MC_MEASURE_NAMES, MEASURE_NAMES
from nerloop.selection import diversity

OUTPUT_COLUMNS = ["rank", "score", "cluster", "reason"]
NO_ENTITY = "(no entity)"  # balance_types: the group of sentences with no predicted entity


@dataclass
class SelectConfig:
    """The ``select`` section of params.yaml."""

    strategy: str = "hybrid"  # random | uncertainty | hybrid
    measure: str = "mnlp"  # a name from params.MEASURE_NAMES: uncertainty.MEASURES or MC_MEASURES
    alpha: float = 0.7  # hybrid: weight of uncertainty against diversity
    batch_size: int = 100  # sentences per batch
    token_budget: int | None = None  # max total n_tokens per batch (annotation cost), None = no limit
    k: int = 20  # hybrid: number of k-means clusters
    rare_bonus: float = 0.0  # added as rare_bonus * rare, to favour sentences with rare entity types
    pattern_bonus: float = 0.0  # added as pattern_bonus * pattern, to favour sentences with data.patterns matches
    seed: int = 42
    balance_types: bool = False  # spread the batch round-robin over each sentence's rarest predicted type


@dataclass
class Ranking:
    """A strategy's answer: every candidate row, best first, with its score, cluster and reason."""

    order: np.ndarray  # row positions, best first; covers all candidates
    score: np.ndarray  # per row (NaN where the strategy has no score, e.g. random)
    cluster: np.ndarray  # per row, -1 when not clustered
    reason: list[str]  # per row, short and human-readable


Strategy = Callable[[pd.DataFrame, np.ndarray | None, SelectConfig], Ranking]


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def validate_config(config: SelectConfig, n_candidates: int | None = None) -> None:
    """Raise ValueError naming the params key of the first bad setting.

    With ``n_candidates`` also check settings that depend on the pool (k for hybrid).
    """
    if config.strategy not in STRATEGIES:
        raise ValueError(f"select.strategy {config.strategy!r} is unknown; choose one of {', '.join(STRATEGIES)}")
    if config.measure not in MEASURE_NAMES:
        raise ValueError(f"select.measure {config.measure!r} is unknown; choose one of {', '.join(MEASURE_NAMES)}")
    if not isinstance(config.alpha, int | float) or isinstance(config.alpha, bool) or not 0 <= config.alpha <= 1:
        raise ValueError(f"select.alpha must be in [0, 1], got {config.alpha!r}")
    if not _is_int(config.batch_size) or config.batch_size < 1:
        raise ValueError(f"select.batch_size must be an integer >= 1, got {config.batch_size!r}")
    if config.token_budget is not None and (not _is_int(config.token_budget) or config.token_budget < 1):
        raise ValueError(f"select.token_budget must be an integer >= 1 or null, got {config.token_budget!r}")
    if not _is_int(config.k) or config.k < 1:
        raise ValueError(f"select.k must be an integer >= 1, got {config.k!r}")
    if (
        not isinstance(config.rare_bonus, int | float)
        or isinstance(config.rare_bonus, bool)
        or not config.rare_bonus >= 0
    ):
        raise ValueError(f"select.rare_bonus must be a number >= 0, got {config.rare_bonus!r}")
    if (
        not isinstance(config.pattern_bonus, int | float)
        or isinstance(config.pattern_bonus, bool)
        or not config.pattern_bonus >= 0
    ):
        raise ValueError(f"select.pattern_bonus must be a number >= 0, got {config.pattern_bonus!r}")
    if not _is_int(config.seed):
        raise ValueError(f"select.seed must be an integer, got {config.seed!r}")
    if not isinstance(config.balance_types, bool):
        raise ValueError(f"select.balance_types must be true or false, got {config.balance_types!r}")
    if config.strategy == "hybrid" and n_candidates and config.k > n_candidates:
        raise ValueError(f"select.k ({config.k}) is larger than the number of candidate sentences ({n_candidates})")


# --- shared helpers -------------------------------------------------------------------------------


def _measure_values(candidates: pd.DataFrame, measure: str) -> np.ndarray:
    """The measure column as floats; a missing column or NaN is an error, not a silent zero."""
    if measure not in candidates.columns:
        hint = f" ({measure} needs MC-dropout passes at scoring time)" if measure in MC_MEASURE_NAMES else ""
        raise ValueError(f"select.measure {measure!r} has no column in the candidates table{hint}")
    values = candidates[measure].to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError(f"candidates column {measure!r} has {int(np.isnan(values).sum())} missing values")
    return values


def _rare(candidates: pd.DataFrame) -> np.ndarray:
    """Share of rare-type entities per row; 0 when the column is absent."""
    if "rare" not in candidates.columns:
        return np.zeros(len(candidates))
    return candidates["rare"].fillna(0.0).to_numpy(dtype=np.float64)


def _pattern(candidates: pd.DataFrame) -> np.ndarray:
    """1 per row with a ``data.patterns`` match, else 0; 0 everywhere when the column is absent (no patterns).

    A flat bonus, not one per match: it only has to lift sentences with matches above those without,
    so that the first batches, chosen by a weak seed-only model, go where a name list already knows something.
    """
    if "pattern" not in candidates.columns:
        return np.zeros(len(candidates))
    return (candidates["pattern"].fillna(0).to_numpy(dtype=np.float64) > 0).astype(np.float64)


def _bonus(candidates: pd.DataFrame, config: SelectConfig) -> tuple[np.ndarray, list[str]]:
    """The score terms added to every scored strategy (rare types, pattern matches), and a note per row."""
    rare, pattern = _rare(candidates), _pattern(candidates)
    notes = [
        (f", rare-type bonus +{config.rare_bonus * r:.2f}" if config.rare_bonus * r > 0 else "")
        + (f", pattern bonus +{config.pattern_bonus * m:.2f}" if config.pattern_bonus * m > 0 else "")
        for r, m in zip(rare, pattern, strict=True)
    ]
    return config.rare_bonus * rare + config.pattern_bonus * pattern, notes


def _best_first(scores: np.ndarray) -> np.ndarray:
    """Row positions by score, highest first; ties by position so the order is deterministic."""
    return np.lexsort((np.arange(len(scores)), -scores))


def _rank_normalise(values: np.ndarray) -> np.ndarray:
    """Values mapped to [0, 1] by rank (ties share their mean rank): robust to each measure's scale."""
    if len(values) == 1:
        return np.ones(1)
    ranks = pd.Series(values).rank(method="average").to_numpy()
    return (ranks - 1) / (len(values) - 1)


def _measure_notes(values: np.ndarray, measure: str) -> list[str]:
    """'mnlp=2.31 (top 3% of pool)' per row: the top share counts rows scoring at least as high."""
    n = len(values)
    higher = n - np.searchsorted(np.sort(values), values, side="left")  # rows with a value >= this one
    return [
        f"{measure}={v:.2f} (top {max(1, math.ceil(100 * h / n))}% of pool)"
        for v, h in zip(values, higher, strict=True)
    ]


# --- the strategies -------------------------------------------------------------------------------


def random_strategy(candidates: pd.DataFrame, embeddings: np.ndarray | None, config: SelectConfig) -> Ranking:
    """Uniform random order: the baseline every other strategy must beat."""
    n = len(candidates)
    order = np.random.default_rng(config.seed).permutation(n)
    reason = [f"random pick (seed {config.seed})"] * n
    return Ranking(order, np.full(n, np.nan), np.full(n, -1, dtype=np.int64), reason)


def uncertainty_strategy(candidates: pd.DataFrame, embeddings: np.ndarray | None, config: SelectConfig) -> Ranking:
    """Most uncertain first (plus the rare-type and pattern bonuses): cheap and strong, but batches can be
    redundant."""
    values = _measure_values(candidates, config.measure)
    bonus, bonus_notes = _bonus(candidates, config)
    score = values + bonus
    reason = [
        f"{note}{extra}, score {s:.2f}"
        for note, extra, s in zip(_measure_notes(values, config.measure), bonus_notes, score, strict=True)
    ]
    return Ranking(_best_first(score), score, np.full(len(candidates), -1, dtype=np.int64), reason)


def hybrid_strategy(candidates: pd.DataFrame, embeddings: np.ndarray | None, config: SelectConfig) -> Ranking:
    """Blend uncertainty with diversity and spread the batch over k-means clusters of the embeddings.

    score = alpha * u + (1 - alpha) * d + rare_bonus * rare + pattern_bonus * pattern, where u is the
    measure rank-normalised to [0, 1] (so any measure blends on the same scale) and d is
    diversity.diversity_scores.
    """
    if embeddings is None:
        raise ValueError("the hybrid strategy needs sentence embeddings")
    values = _measure_values(candidates, config.measure)
    bonus, bonus_notes = _bonus(candidates, config)
    clusters = diversity.cluster(embeddings, config.k, config.seed)
    score = (
        config.alpha * _rank_normalise(values)
        + (1 - config.alpha) * diversity.diversity_scores(clusters)
        + bonus
    )
    order = np.asarray(diversity.spread(score, clusters, len(candidates)), dtype=np.int64)
    reason = [
        f"{note}{extra}, cluster {c} of {config.k}, hybrid score {s:.2f}"
        for note, extra, c, s in zip(_measure_notes(values, config.measure), bonus_notes, clusters, score, strict=True)
    ]
    return Ranking(order, score, clusters, reason)


STRATEGIES: dict[str, Strategy] = {
    "random": random_strategy,
    "uncertainty": uncertainty_strategy,
    "hybrid": hybrid_strategy,
}


# --- the entry point ------------------------------------------------------------------------------


def type_groups(candidates: pd.DataFrame) -> list[str]:
    """Each row's entity-type group for ``select.balance_types``: the rarest of its predicted types.

    Stage score's ``pred_types`` lists the types a sentence has predicted spans of, without counts, so
    a sentence with several types has no "main" one by count; it goes to the type that the fewest
    candidate sentences predict (ties by name), since the point of balancing is that a rare type gets
    its share of the batch. Sentences with no predicted entity form a group of their own, ``NO_ENTITY``.
    """
    if "pred_types" not in candidates.columns:
        raise ValueError("select.balance_types needs the pred_types column of stage score's table")
    types = [json.loads(cell) for cell in candidates["pred_types"]]
    sentences_with = Counter(t for ts in types for t in ts)
    return [min(ts, key=lambda t: (sentences_with[t], t)) if ts else NO_ENTITY for ts in types]


def balance_by_type(order: np.ndarray, groups: list[str]) -> np.ndarray:
    """The ranking re-ordered round-robin over ``groups``, keeping the strategy's order within each group.

    Round r takes the r-th best sentence of every group that still has one; within a round, groups
    take turns in the order their best sentence has in the ranking, so the strategy's first pick stays
    first. This is ``diversity.spread`` with groups in place of clusters and rank in place of score.
    """
    position = np.empty(len(order), dtype=np.float64)
    position[order] = np.arange(len(order))
    codes, _ = pd.factorize(pd.Series(groups))
    return np.asarray(diversity.spread(-position, codes, len(order)), dtype=np.int64)


def _take(order: np.ndarray, n_tokens: np.ndarray, batch_size: int, token_budget: int | None) -> list[int]:
    """Walk the ranking, keeping rows until the batch is full; rows that would overshoot the token
    budget are skipped so that a shorter sentence further down can still fill the batch."""
    if token_budget is None:
        return order[:batch_size].tolist()
    chosen: list[int] = []
    used = 0
    for i in order.tolist():
        if len(chosen) == batch_size:
            break
        if used + n_tokens[i] <= token_budget:
            chosen.append(i)
            used += int(n_tokens[i])
    return chosen


def select(candidates: pd.DataFrame, embeddings: np.ndarray | None, config: SelectConfig) -> pd.DataFrame:
    """The next batch: chosen candidate rows in pick order, with columns rank, score, cluster, reason.

    Deterministic for a given config.seed. When batch_size >= the number of candidates every
    candidate is returned (within the token budget); the caller reports that the pool is exhausted.
    """
    validate_config(config, len(candidates))
    if embeddings is not None and len(embeddings) != len(candidates):
        raise ValueError(f"got {len(embeddings)} embeddings for {len(candidates)} candidate sentences")
    if candidates.empty:
        columns = [c for c in candidates.columns if c not in OUTPUT_COLUMNS] or ["id", "n_tokens"]
        return pd.DataFrame(columns=[*columns, *OUTPUT_COLUMNS])

    ranking = STRATEGIES[config.strategy](candidates, embeddings, config)
    groups = type_groups(candidates) if config.balance_types else None
    order = ranking.order if groups is None else balance_by_type(ranking.order, groups)
    n_tokens = candidates["n_tokens"].to_numpy(dtype=np.int64)
    chosen = _take(order, n_tokens, config.batch_size, config.token_budget)

    batch = candidates.iloc[chosen].reset_index(drop=True)
    batch["rank"] = np.arange(1, len(chosen) + 1)
    batch["score"] = ranking.score[chosen]
    batch["cluster"] = ranking.cluster[chosen]
    batch["reason"] = [ranking.reason[i] + (f", type group {groups[i]}" if groups is not None else "") for i in chosen]
    return batch
