"""Agreement, speed and effort figures (no server needed)."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

from nerloop.annotation.core.quality import Confirmation, agreement, asked_part, speed_and_effort

A = ["B-PER", "I-PER", "O", "B-LOC"]
B = ["B-ORG", "I-ORG", "O", "B-LOC"]


def test_agreement_over_pairs() -> None:
    assert agreement([]) == {"pairs": 0, "kappa": None, "entity_f1": None, "disagreements": 0}
    assert agreement([(A, A)])["kappa"] == 1.0
    got = agreement([(A, A), (A, B)])
    assert got["pairs"] == 2 and got["disagreements"] == 1
    assert got["kappa"] == pytest.approx(cohen_kappa_score(A + A, A + B), abs=1e-4)
    assert got["entity_f1"] == pytest.approx(3 / 4)  # 3 of 4 entities match on each side


def _c(who: str, at: str, cycle: int = 1, tags: list[str] | None = A) -> Confirmation:
    return Confirmation(who, sid=at, cycle=cycle, tokens=4, confirmed_at=at, pre_tags=A, tags=tags)


def test_speed_uses_gaps_between_confirmations_and_leaves_breaks_out() -> None:
    out = speed_and_effort([
        _c("alice", "2026-11-23T10:00:00Z"),  # first of a sitting: no measurable time
        _c("alice", "2026-11-23T10:00:20Z"),  # 20 s
        _c("alice", "2026-11-23T10:00:50Z", tags=B),  # 30 s; relabelled one entity
        _c("alice", "2026-11-23T11:00:00Z", cycle=2),  # after a break of about an hour: left out
        _c("alice", "2026-11-23T11:00:10.500000Z", cycle=2),  # 10.5 s
        _c("bob", "2026-11-23T10:00:05Z"),
    ], break_s=300)
    c1 = out["alice"]["1"]
    assert (c1["sentences"], c1["timed_sentences"], c1["seconds"]) == (3, 2, 50.0)
    assert c1["seconds_per_sentence"] == 25.0 and c1["seconds_per_token"] == 6.25
    assert (c1["kept"], c1["relabelled"]) == (5, 1)
    c2 = out["alice"]["2"]
    assert (c2["breaks"], c2["timed_sentences"], c2["seconds_per_sentence"]) == (1, 1, 10.5)
    assert out["bob"]["1"]["seconds_per_sentence"] is None  # one sentence: no gap to measure


def test_a_windowed_sentence_counts_only_its_window() -> None:
    """Subsequence selection: outside the window both annotators see the same pre-annotation and are asked nothing,
    so agreement, tokens and effort cover the window's words only (else kappa is inflated by free agreement)."""
    pre = ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]
    alice = ["B-PER", "I-PER", "O", "O", "B-ORG", "O"]
    bob = ["O", "O", "O", "O", "B-LOC", "O"]  # bob also deleted the PER outside the window: nobody asked him to
    window = [3, 6]
    assert asked_part(pre, alice, window) == ["O", "B-ORG", "O"]
    assert asked_part(pre, bob, window) == ["O", "B-LOC", "O"]  # outside the window, what was shown stands
    assert asked_part(pre, alice, None) == alice
    # an entity cut at the window's start begins there
    assert asked_part(pre, pre, [1, 3]) == ["B-PER", "O"]
    got = agreement([(asked_part(pre, alice, window), asked_part(pre, bob, window))])
    assert got["kappa"] == pytest.approx(cohen_kappa_score(["O", "B-ORG", "O"], ["O", "B-LOC", "O"]), abs=1e-4)

    out = speed_and_effort([
        Confirmation("alice", "s1", 1, 6, "2026-11-23T10:00:00Z", pre, alice, window),
        Confirmation("alice", "s2", 1, 6, "2026-11-23T10:00:30Z", pre, pre, None),
    ], break_s=300)["alice"]["1"]
    assert (out["tokens"], out["timed_tokens"]) == (3 + 6, 6)
    # windowed: the LOC relabelled, the PER outside not counted; whole: PER and LOC kept
    assert (out["kept"], out["relabelled"], out["deleted"], out["added"]) == (2, 1, 0, 0)
