"""Entity-swap augmentation: valid IOB2, types kept, only the training sentences used, reproducible."""

from __future__ import annotations

import numpy as np

from nerloop.data.records import Record
from nerloop.data.tags import check_iob2, tags_to_spans
from nerloop.model.augment import entity_swap, mentions_by_type, swap_mentions
from nerloop.model.training import split_validation

TRAIN = [
    Record.from_tokens(["Aspirin", "caused", "acute", "renal", "failure", "."],
                       ["B-Chemical", "O", "B-Disease", "I-Disease", "I-Disease", "O"]),
    Record.from_tokens(["Cocaine", "and", "lithium", "induce", "seizures"],
                       ["B-Chemical", "O", "B-Chemical", "O", "B-Disease"]),
    Record.from_tokens(["No", "entity", "here"], ["O", "O", "O"]),
    Record.from_tokens(["Valproic", "acid", "therapy"], ["B-Chemical", "I-Chemical", "O"]),
]


def _mentions(records: list[Record]) -> set[tuple[str, tuple[str, ...]]]:
    return {(etype, tuple(r.tokens[s:e])) for r in records for s, e, etype in tags_to_spans(r.tags)}


def test_mentions_are_distinct_and_sorted_per_type() -> None:
    assert mentions_by_type(TRAIN) == {
        "Chemical": [("Aspirin",), ("Cocaine",), ("Valproic", "acid"), ("lithium",)],
        "Disease": [("acute", "renal", "failure"), ("seizures",)],
    }


def test_swap_rebuilds_iob2_for_new_lengths_and_keeps_the_context_and_types() -> None:
    mentions = {"Chemical": [("Valproic", "acid"), ("lithium",)], "Disease": [("acute", "renal", "failure"),
                                                                           ("seizures",)]}
    # each type has one mention besides the original, so the swap is forced
    rec = Record.from_tokens(["lithium", "caused", "seizures", "."], ["B-Chemical", "O", "B-Disease", "O"])
    out = swap_mentions(rec, mentions, np.random.default_rng(0))
    assert out.tokens == ["Valproic", "acid", "caused", "acute", "renal", "failure", "."]
    assert out.tags == ["B-Chemical", "I-Chemical", "O", "B-Disease", "I-Disease", "I-Disease", "O"]
    assert out.text == "Valproic acid caused acute renal failure ." and out.meta == {"entity_swap_of": rec.id}


def test_adjacent_mentions_of_one_type_stay_two_entities() -> None:
    rec = Record.from_tokens(["lithium", "Aspirin"], ["B-Chemical", "B-Chemical"])
    out = swap_mentions(rec, {"Chemical": [("Aspirin",), ("Valproic", "acid"), ("lithium",)]},
                        np.random.default_rng(3))
    check_iob2(out.tags)
    assert [etype for _, _, etype in tags_to_spans(out.tags)] == ["Chemical", "Chemical"]


def test_entity_swap_makes_the_share_asked_with_valid_tags_and_training_mentions_only() -> None:
    out = entity_swap(TRAIN, 1.0, seed=42)
    assert len(out) == 4  # round(1.0 * 4): the three sentences with entities, then one of them again
    for rec in out:
        check_iob2(rec.tags, {"Chemical", "Disease"})
        assert len(rec.tags) == len(rec.tokens)
        source = next(r for r in TRAIN if r.id == rec.meta["entity_swap_of"])
        # the same number of entities, of the same types, in the same order
        assert [t for _, _, t in tags_to_spans(rec.tags)] == [t for _, _, t in tags_to_spans(source.tags)]
    assert _mentions(out) <= _mentions(TRAIN)
    assert {r.meta["entity_swap_of"] for r in out} == {TRAIN[0].id, TRAIN[1].id, TRAIN[3].id}
    assert len(entity_swap(TRAIN, 0.5, seed=42)) == 2
    assert entity_swap(TRAIN, 0.0, seed=42) == []


def test_entity_swap_is_seeded() -> None:
    assert entity_swap(TRAIN, 1.0, seed=7) == entity_swap(TRAIN, 1.0, seed=7)
    runs = {tuple(r.text for r in entity_swap(TRAIN, 1.0, seed=s)) for s in range(5)}
    assert len(runs) > 1


def test_nothing_to_swap_without_entities() -> None:
    assert entity_swap([TRAIN[2]] * 3, 1.0, seed=1) == []


def test_validation_and_gold_sentences_are_never_used() -> None:
    """A probe's split: copies come from the training side only; a gold mention never appears."""
    gold = Record.from_tokens(["Tamoxifen", "caused", "hepatitis"], ["B-Chemical", "O", "B-Disease"])
    labelled = [*TRAIN, Record.from_tokens(["Heparin", "and", "thrombocytopenia"],
                                           ["B-Chemical", "O", "B-Disease"])]
    train_side, validation = split_validation(labelled, 0.2, seed=42)
    assert _mentions(validation) - _mentions(train_side)  # the validation side has names of its own
    out = entity_swap(train_side, 1.0, seed=42)
    assert out and {r.meta["entity_swap_of"] for r in out} <= {r.id for r in train_side}
    assert _mentions(out) <= _mentions(train_side)
    assert not _mentions(out) & (_mentions(validation) - _mentions(train_side))
    assert not _mentions(out) & _mentions([gold])
