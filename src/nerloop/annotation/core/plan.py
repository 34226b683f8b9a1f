"""Who annotates what, in which order: pure functions, no server (shared by Doccano and Label Studio).

* Order: Doccano shows a project's examples in upload order, so the batch is uploaded grouped by
  the selection's k-means cluster (similar sentences together: the annotator keeps one context in
  mind) and, inside a cluster, the sentence whose least confident predicted span is least sure
  first (where the model most needs a human, while attention is fresh).
* Shares: every sentence goes to the annotator whose load so far, divided by their weight, is the
  smallest (ties by name). That is deterministic and gives each person their weighted share of
  every prefix of the ordered batch, so each one also gets a spread of clusters.
* Quality control: a deterministic share of the batch (``qc_share``, seeded by the cycle) goes to
  two annotators, the two least loaded, so that agreement can be measured. With one annotator
  there is nobody to compare with and no QC share.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

from nerloop.data.records import Record

REVIEW_SUFFIX = "review"  # <project>-review holds the disagreements; no annotator may be called that


def order_batch(batch: Sequence[Record]) -> list[Record]:
    """The batch in annotation order: by cluster, then least confident span first, then selection rank."""

    def key(rec: Record) -> tuple[int, float, int, str]:
        cluster = rec.meta.get("cluster")
        confs = [float(s[3]) for s in rec.meta.get("pre_spans") or [] if len(s) > 3 and s[3] is not None]
        rank = rec.meta.get("rank")
        return (
            int(cluster) if isinstance(cluster, int) and cluster >= 0 else math.inf,  # type: ignore[return-value]
            min(confs) if confs else 1.0,
            int(rank) if isinstance(rank, int) else 0,
            rec.id,
        )

    return sorted(batch, key=key)


def unique_batch(batch: Sequence[Record]) -> dict[str, Record]:
    """The batch in annotation order, each sentence once (its first record): what a tool is sent, by id."""
    unique: dict[str, Record] = {}
    for rec in order_batch(batch):
        unique.setdefault(rec.id, rec)
    return unique


def qc_ids(ids: Sequence[str], share: float, cycle: int) -> set[str]:
    """The quality-control share of a batch: deterministic in (cycle, ids), at least one if share > 0."""
    unique = sorted(set(ids))
    if not unique or share <= 0:
        return set()
    k = min(len(unique), max(1, math.floor(share * len(unique) + 0.5)))
    return set(random.Random(f"nerloop-qc-{cycle}").sample(unique, k))


def assign(
    ids: Sequence[str], team: Sequence[str], weights: Mapping[str, float], qc: set[str]
) -> dict[str, list[str]]:
    """{sentence id: annotators} for ``ids`` in order; QC sentences get two annotators (if there are two)."""
    if not team:
        raise ValueError("no annotators")
    load = dict.fromkeys(team, 0)
    out: dict[str, list[str]] = {}
    for sid in ids:
        n = 2 if sid in qc and len(team) > 1 else 1
        chosen = sorted(team, key=lambda a: (load[a] / weights.get(a, 1.0), a))[:n]
        for a in chosen:
            load[a] += 1
        out[sid] = sorted(chosen)
    return out


def check_team(team: Sequence[str]) -> list[str]:
    """The team as given, refusing names that clash with nerloop's own projects or repeat."""
    if REVIEW_SUFFIX in team:
        raise ValueError(f"an annotator cannot be called {REVIEW_SUFFIX!r}: <project>-{REVIEW_SUFFIX} is the review "
                         "project")
    if len(set(team)) != len(team):
        raise ValueError(f"the team names someone twice: {list(team)}")
    return list(team)
