"""Sharing a batch out over the team, and its order (no server needed)."""

from __future__ import annotations

from collections import Counter

import pytest

from nerloop.annotation.core import plan
from nerloop.data.records import Record


def _rec(i: int, cluster: int, conf: float | None, rank: int) -> Record:
    rec = Record.from_tokens([f"w{i}", "x"])
    spans = [[0, len(f"w{i}"), "PER", conf]] if conf is not None else []
    rec.meta = {"cluster": cluster, "rank": rank, "pre_spans": spans}
    return rec


def test_order_groups_clusters_least_confident_first() -> None:
    recs = [_rec(0, 1, 0.9, 0), _rec(1, 0, 0.95, 1), _rec(2, 1, 0.4, 2), _rec(3, 0, None, 3), _rec(4, 0, 0.5, 4)]
    ordered = [r.meta["rank"] for r in plan.order_batch(recs)]
    assert ordered == [4, 1, 3, 2, 0]  # cluster 0 (0.5, 0.95, no spans), then cluster 1 (0.4, 0.9)


def test_assign_follows_weights_and_gives_qc_to_two() -> None:
    ids = [f"s{i}" for i in range(30)]
    qc = plan.qc_ids(ids, 0.1, cycle=1)
    assert len(qc) == 3 and qc == plan.qc_ids(list(reversed(ids)), 0.1, cycle=1)  # deterministic
    assert plan.qc_ids(ids, 0.1, cycle=2) != qc and plan.qc_ids(ids[:3], 0.1, 1) != set()
    got = plan.assign(ids, ["alice", "bob"], {"alice": 2.0}, qc)
    assert all(len(got[s]) == 2 for s in qc) and all(len(got[s]) == 1 for s in set(ids) - qc)
    load = Counter(a for people in got.values() for a in people)
    assert load == {"alice": 22, "bob": 11}  # 33 assignments (30 + 3 QC), shared 2:1
    assert plan.assign(ids, ["alice"], {}, qc) == {s: ["alice"] for s in ids}  # nobody to compare with


def test_team_names_that_clash_are_refused() -> None:
    with pytest.raises(ValueError, match="review"):
        plan.check_team(["alice", "review"])
    with pytest.raises(ValueError, match="twice"):
        plan.check_team(["alice", "alice"])
    with pytest.raises(ValueError, match="no annotators"):
        plan.assign(["s"], [], {}, set())
