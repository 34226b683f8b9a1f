"""Diversity for batch selection: cluster sentence embeddings, then spread a batch over the clusters.

Picking the top-N most uncertain sentences tends to pick N near-duplicates (the same confusing
template again and again); spreading the batch over embedding clusters makes each labelled sentence
teach the model something different.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans

MINIBATCH_ABOVE = 10_000  # rows; above this full k-means gets slow and mini-batch k-means is nearly as good
CHUNK_ROWS = 65_536  # rows converted at a time


class RowSubset:
    """Some rows of an array (``rows``: their positions), sliced like an array. :func:`normalize_rows` reads
    it a chunk at a time, so a subset of a memory-mapped million-row file is never copied whole (numpy's
    ``array[rows]`` would copy it at once)."""

    def __init__(self, array: np.ndarray, rows: np.ndarray) -> None:
        self.array, self.rows = array, rows
        self.shape = (len(rows), *array.shape[1:])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: slice) -> np.ndarray:
        return self.array[self.rows[index]]


def normalize_rows(embeddings: np.ndarray | RowSubset) -> np.ndarray:
    """Rows as float32 scaled to unit L2 norm (all-zero rows stay zero), so Euclidean k-means follows cosine
    similarity. Built ``CHUNK_ROWS`` rows at a time into one new array: a float16 (or memory-mapped) input
    is never copied whole, so a million 384-d rows take one 1.5 GB array, not three."""
    out = np.empty(embeddings.shape, dtype=np.float32)
    for start in range(0, len(embeddings), CHUNK_ROWS):
        x = out[start : start + CHUNK_ROWS]
        x[...] = embeddings[start : start + CHUNK_ROWS]
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x /= np.where(norms > 0, norms, 1.0)
    return out


def cluster(embeddings: np.ndarray | RowSubset, k: int, seed: int) -> np.ndarray:
    """Cluster id (0..k-1) for each row of ``embeddings`` (n, d), by k-means in cosine geometry.

    Sentence encoders are trained for cosine similarity, hence the row normalisation. Deterministic
    for a given seed.
    """
    if not isinstance(embeddings, RowSubset):
        embeddings = np.asarray(embeddings)
    if len(embeddings.shape) != 2:
        raise ValueError(f"embeddings must have shape (n, d), got shape {embeddings.shape}")
    x = normalize_rows(embeddings)
    n = len(x)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of rows ({n}), got {k}")
    if n > MINIBATCH_ABOVE:
        model = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=2048, random_state=seed)
    else:
        model = KMeans(n_clusters=k, n_init=3, random_state=seed)
    return model.fit_predict(x).astype(np.int64)


def spread(order_scores: np.ndarray, clusters: np.ndarray, n: int) -> list[int]:
    """Pick ``n`` row indices round-robin over clusters, best score first; indices in pick order.

    Round r takes the r-th best member of every cluster that still has one. Within a round, clusters
    take turns in the order of their best member's score (highest first). Ties break by row index,
    so the result is deterministic.
    """
    scores = np.asarray(order_scores, dtype=np.float64)
    clusters = np.asarray(clusters)
    if scores.shape != clusters.shape or scores.ndim != 1:
        raise ValueError(f"order_scores {scores.shape} and clusters {clusters.shape} must be 1-d and aligned")
    best_first = np.lexsort((np.arange(len(scores)), -scores))

    round_of = np.empty(len(scores), dtype=np.int64)  # the member's rank inside its cluster
    members_seen: dict[int, int] = {}  # insertion order = clusters by best member score
    for i in best_first.tolist():
        c = int(clusters[i])
        round_of[i] = members_seen.get(c, 0)
        members_seen[c] = round_of[i] + 1
    turn_of_cluster = {c: turn for turn, c in enumerate(members_seen)}
    turn = np.array([turn_of_cluster[int(c)] for c in clusters], dtype=np.int64)

    pick_order = np.lexsort((turn, round_of))  # by round, then by the cluster's turn in the round
    return pick_order[: max(n, 0)].tolist()


def diversity_scores(clusters: np.ndarray) -> np.ndarray:
    """Per-sentence diversity in [0, 1): 1 - (size of its cluster / size of the largest cluster).

    Why cluster size and not distance to the centroid: a sentence from a small cluster stands for a
    kind of text the pool (and so the labelled set) holds little of, which is what a diverse batch
    should add; distance to the centroid would instead reward outliers, which in raw text are often
    boilerplate, tables or garbled lines that cost annotation time and teach little. Being constant
    within a cluster, the score also keeps the most uncertain member first inside each cluster.
    """
    clusters = np.asarray(clusters)
    if clusters.size == 0:
        return np.zeros(0)
    _, inverse, counts = np.unique(clusters, return_inverse=True, return_counts=True)
    sizes = counts[inverse.reshape(-1)]
    return 1.0 - sizes / counts.max()
