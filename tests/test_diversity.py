import numpy as np
import pytest

from nerloop.selection import diversity


def blobs(n_per_blob: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well-separated blobs along different axes (so they differ in direction, not just length)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 8) * 10
    x = np.concatenate([c + rng.normal(scale=0.3, size=(n_per_blob, 8)) for c in centres])
    truth = np.repeat(np.arange(3), n_per_blob)
    return x, truth


def test_cluster_recovers_planted_blobs():
    x, truth = blobs()
    found = diversity.cluster(x, k=3, seed=0)
    # Same partition up to renaming: each planted blob maps to exactly one cluster id.
    assert all(len(set(found[truth == b])) == 1 for b in range(3))
    assert len(set(found)) == 3


def test_cluster_is_deterministic_for_a_seed():
    x, _ = blobs(seed=1)
    assert np.array_equal(diversity.cluster(x, 4, seed=7), diversity.cluster(x, 4, seed=7))


def test_cluster_uses_cosine_geometry():
    # Same direction, very different lengths -> one cluster.
    x = np.array([[1.0, 0.0], [100.0, 0.0], [0.0, 1.0], [0.0, 50.0]])
    found = diversity.cluster(x, k=2, seed=0)
    assert found[0] == found[1] and found[2] == found[3] and found[0] != found[2]


@pytest.mark.parametrize("k", [0, 5])
def test_cluster_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be between 1 and the number of rows"):
        diversity.cluster(np.eye(4), k=k, seed=0)


def test_spread_takes_one_from_each_planted_cluster():
    x, _ = blobs()
    clusters = diversity.cluster(x, k=3, seed=0)
    scores = np.zeros(len(x))
    scores[:20] = np.linspace(1.0, 0.9, 20)  # blob 0 is the most uncertain: plain top-3 would take only it
    picks = diversity.spread(scores, clusters, 3)
    assert picks[0] == 0
    assert len({int(clusters[i]) for i in picks}) == 3


def test_spread_round_robin_order():
    scores = np.array([0.1, 0.9, 0.5, 0.8, 0.7, 0.2])
    clusters = np.array([0, 0, 1, 1, 2, 2])
    # Clusters by best member: 0 (0.9), 1 (0.8), 2 (0.7). Round 1: 1, 3, 4; round 2: 0, 2, 5 (cluster order kept).
    assert diversity.spread(scores, clusters, 6) == [1, 3, 4, 0, 2, 5]
    assert diversity.spread(scores, clusters, 2) == [1, 3]
    assert diversity.spread(scores, clusters, 10) == [1, 3, 4, 0, 2, 5]


def test_spread_breaks_ties_by_index():
    scores = np.ones(4)
    clusters = np.array([1, 0, 1, 0])
    assert diversity.spread(scores, clusters, 4) == [0, 1, 2, 3]


def test_spread_handles_uneven_clusters():
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    clusters = np.array([0, 0, 0, 1])
    assert diversity.spread(scores, clusters, 3) == [0, 3, 1]


def test_diversity_scores_favour_small_clusters():
    d = diversity.diversity_scores(np.array([0, 0, 0, 0, 1, 2, 2]))
    assert d.tolist() == pytest.approx([0, 0, 0, 0, 0.75, 0.5, 0.5])
    assert ((d >= 0) & (d <= 1)).all()
    assert diversity.diversity_scores(np.array([], dtype=int)).shape == (0,)


def test_a_row_subset_clusters_as_the_copied_rows() -> None:
    """What select hands k-means when some rows are excluded: read a chunk at a time, same clusters."""
    x = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float16)
    rows = np.flatnonzero(np.arange(300) % 7 != 3)
    subset = diversity.RowSubset(x, rows)
    assert len(subset) == len(rows) and subset.shape == (len(rows), 8)
    np.testing.assert_array_equal(diversity.normalize_rows(subset), diversity.normalize_rows(x[rows]))
    np.testing.assert_array_equal(diversity.cluster(subset, 5, 1), diversity.cluster(x[rows], 5, 1))
