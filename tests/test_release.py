"""release/: the final dataset's logic on small synthetic corpora: cleaning, duplicates, conflicts, splits, export."""

from __future__ import annotations

import json
import random

import pytest

from nerloop.data.formats import read_jsonl
from nerloop.data.records import Record
from nerloop.data.tags import tags_to_spans
from nerloop.release.clean import (
    clean,
    dedup_key,
    drop_near_gold,
    resolve_duplicates,
    resolve_surface_conflicts,
    surface_conflicts,
)
from nerloop.release.gather import SPLITS, FinalizeError, check_label_history, gather
from nerloop.release.split import (
    check_coverage,
    check_ratios,
    dataset_records,
    group_key,
    jsonl_rows,
    split_stats,
    stratified_group_split,
    to_dataset_dict,
)

TYPES = ["Chemical", "Disease", "Gene"]


def rec(text: str, tags: str | None = None, **kw) -> Record:
    """A record from a space-separated sentence and space-separated tags (all O if omitted)."""
    tokens = text.split(" ")
    return Record.from_tokens(tokens, tags.split(" ") if tags else ["O"] * len(tokens), **kw)


def corpus(n_docs: int = 120, seed: int = 0) -> list[Record]:
    """Documents of 1-4 sentences; Chemical common, Disease medium, Gene rare, many sentences with none."""
    rng = random.Random(seed)
    out = []
    for d in range(n_docs):
        for s in range(rng.randint(1, 4)):
            words, tags = ["In", f"doc{d}", f"sentence{s}"], ["O", "O", "O"]
            for etype, p in (("Chemical", 0.5), ("Disease", 0.3), ("Gene", 0.06)):
                if rng.random() < p:
                    words += ["with", f"{etype.lower()}{rng.randint(0, 30)}", "x"]
                    tags += ["O", f"B-{etype}", f"I-{etype}"]
            out.append(Record.from_tokens([*words, "."], [*tags, "O"], source="data/x.conll:1", doc_id=f"doc{d}",
                                          meta={"origin": "active", "cycle": 1}))
    return out


def entities(recs: list[Record]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in recs:
        for _, _, t in tags_to_spans(r.tags):
            counts[t] = counts.get(t, 0) + 1
    return counts


# --------------------------------------------------------------------------- gathering and checks


def test_gather_tags_origin_and_takes_an_empty_ledger():
    seed, gold = [rec("a b", "B-Gene O")], [rec("c d")]
    entry = {"id": "x", "cycle": 2, "annotator": "ann", "record": rec("e f", "O B-Disease").to_dict()}
    out = gather(seed, [entry], gold)
    assert [(r.meta["origin"], r.meta["cycle"]) for r in out] == [("seed", 0), ("active", 2), ("gold", None)]
    assert gather(seed, [entry], None)[-1].meta["origin"] == "active"
    # before the first import the dataset is the seed and gold sets (every cycle rebuilds it)
    assert [r.meta["origin"] for r in gather(seed, [], gold)] == ["seed", "gold"]


def test_a_label_set_that_changed_between_cycles_is_refused():
    history = [{"cycle": 0, "f1": 0.5, "f1_Chemical": 0.6}, {"cycle": 1, "f1": 0.6, "f1_Chemical": 0.6,
                                                            "f1_Disease": 0.4}]
    with pytest.raises(FinalizeError, match="label set changed between cycles: cycle 0 did not score"):
        check_label_history(history, ["Chemical", "Disease"], gold_types=["Chemical", "Disease"])
    with pytest.raises(FinalizeError, match="outside the current label set"):
        check_label_history(history[1:], ["Chemical"], gold_types=["Chemical"])
    check_label_history(history[1:], ["Chemical", "Disease"], gold_types=["Chemical", "Disease"])


@pytest.mark.parametrize("ratios", [[0.8, 0.1, 0.2], [0.9, 0.1], [1.0, 0.0, 0.0]])
def test_ratios_must_be_three_shares_summing_to_one(ratios):
    with pytest.raises(FinalizeError, match="summing to 1"):
        check_ratios(ratios)


# --------------------------------------------------------------------------- cleaning and duplicates


def test_clean_normalises_unicode_and_whitespace_and_drops_empty_tokens():
    r = Record.from_tokens(["ﬁbrosis", "\u200b", "New\u00a0 York", "x"], ["B-Disease", "O", "B-Gene", "I-Gene"])
    gone = Record.from_tokens(["\u200b"], ["O"])
    ok = rec("plain text")
    out, report = clean([r, gone, ok])
    assert out[0].tokens == ["fibrosis", "New York", "x"]
    assert out[0].tags == ["B-Disease", "B-Gene", "I-Gene"]
    assert out[0].meta["original_id"] == r.id and out[0].id != r.id
    assert out[1] is ok  # unchanged records keep their id and text
    assert report["records_changed"] == 1 and report["tokens_removed"] == 2 and report["records_emptied"] == [gone.id]


def test_clean_repairs_an_entity_whose_first_token_was_removed():
    out, _ = clean([Record.from_tokens(["\ufeff", "acid", "x"], ["B-Chemical", "I-Chemical", "O"])])
    assert out[0].tags == ["B-Chemical", "O"]


def test_exact_and_near_exact_duplicates_are_found_across_tokenisations():
    a = rec("Aspirin reduces fever .", "B-Chemical O B-Disease O")
    exact = rec("Aspirin reduces fever .", "B-Chemical O B-Disease O", meta={"origin": "active"})
    near = rec("aspirin  reduces fever.", "B-Chemical O O")  # case, spacing, tokenisation differ
    near.tokens, near.tags = ["aspirin", "reduces", "fever."], ["B-Chemical", "O", "B-Disease"]
    assert dedup_key(a.tokens)[0] == dedup_key(near.tokens)[0]
    other = rec("Something else .")
    kept, report = resolve_duplicates([a, other, exact, near], "review")
    # "fever." vs "fever" + "." span different characters: a real labelling conflict, held back
    assert [r.id for r in kept] == [other.id]
    assert report["same_text_conflicts"] == 1 and report["held_for_review"] == 3
    kept, report = resolve_duplicates([a, other, exact], "review")
    assert [r.id for r in kept] == [a.id, other.id] and report["removed"] == 1 and report["same_text_conflicts"] == 0


def test_same_text_with_different_labels_follows_the_policy():
    v1 = rec("Lithium causes tremor", "B-Chemical O B-Disease", meta={"origin": "seed"})
    v2 = rec("Lithium causes tremor", "B-Chemical O B-Disease", meta={"origin": "active"})
    v3 = rec("Lithium causes tremor", "B-Chemical O O", meta={"origin": "active"})
    kept, rep = resolve_duplicates([v1, v3, v2], "majority")
    assert len(kept) == 1 and kept[0].tags == v1.tags and rep["resolved"] == 1
    assert rep["conflicts"][0]["resolution"].startswith("majority: 2 of 3")
    kept, rep = resolve_duplicates([v1, v3], "majority")
    assert kept == [] and rep["held_for_review"] == 2 and "tie" in rep["conflicts"][0]["resolution"]
    kept, _ = resolve_duplicates([v1, v3], "latest")
    assert kept[0].tags == v3.tags
    kept, rep = resolve_duplicates([v1, v3, v2], "review")
    assert kept == [] and rep["held_for_review"] == 3
    variants = rep["conflicts"][0]["variants"]
    assert [v["copies"] for v in variants] == [2, 1] and variants[1]["entities"] == [["Lithium", "Chemical"]]


def test_near_copies_of_gold_are_dropped_when_gold_is_left_out():
    gold = [rec("The gold sentence .")]
    kept, dropped = drop_near_gold([rec("the gold  sentence ."), rec("Another .")], gold)
    assert [r.text for r in kept] == ["Another ."] and len(dropped) == 1


# --------------------------------------------------------------------------- surface strings


def test_surface_strings_with_two_types_are_reported_and_resolved_by_majority():
    recs = [rec(f"Dopamine level {i}", "B-Chemical O O") for i in range(9)] + [rec("dopamine deficit", "B-Disease O")]
    recs += [rec(f"Washington said {i}", "B-Gene O O") for i in range(3)] + [rec("Washington Y", "B-Disease O")] * 2
    conflicts = surface_conflicts(recs)
    assert [c["surface"] for c in conflicts] == ["dopamine", "washington"]
    assert conflicts[0]["types"] == {"Chemical": 9, "Disease": 1} and len(conflicts[0]["examples"]["Chemical"]) == 3

    same, changes = resolve_surface_conflicts(recs, conflicts, "review", 0.8)
    assert changes == [] and same == recs and conflicts[0]["resolution"].startswith("reported only")

    fixed, changes = resolve_surface_conflicts(recs, surface_conflicts(recs), "majority", 0.8)
    assert changes == [{"id": recs[9].id, "origin": None, "surface": "dopamine", "from": "Disease", "to": "Chemical"}]
    assert fixed[9].tags == ["B-Chemical", "O"] and fixed[10:] == recs[10:]  # 60% Gene < 80%: left as is


# --------------------------------------------------------------------------- splitting


def test_split_proportions_and_stratification():
    recs = corpus()
    splits = stratified_group_split(recs, [0.8, 0.1, 0.1], seed=1)
    total = entities(recs)
    for name, share in zip(SPLITS, (0.8, 0.1, 0.1), strict=True):
        assert len(splits[name]) / len(recs) == pytest.approx(share, abs=0.04)
        here = entities(splits[name])
        for t in ("Chemical", "Disease"):
            assert here[t] / total[t] == pytest.approx(share, abs=0.04), (name, t)
        assert here["Gene"] >= 1  # the rare type reaches every split
    stats = split_stats(splits, TYPES)
    assert stats["all"]["sentences"] == len(recs)
    assert stats["test"]["entity_share"]["Chemical"] == pytest.approx(0.1, abs=0.04)


def test_no_sentence_or_document_in_two_splits():
    recs = corpus()
    splits = stratified_group_split(recs, [0.8, 0.1, 0.1], seed=3)
    ids = [r.id for s in SPLITS for r in splits[s]]
    assert sorted(ids) == sorted(r.id for r in recs)  # every sentence exactly once
    docs = [{group_key(r) for r in splits[s]} for s in SPLITS]
    assert not (docs[0] & docs[1] or docs[0] & docs[2] or docs[1] & docs[2])


def test_split_is_deterministic_under_the_seed_and_independent_of_input_order():
    recs = corpus()
    a = stratified_group_split(recs, [0.8, 0.1, 0.1], seed=7)
    shuffled = recs[::-1]
    b = stratified_group_split(shuffled, [0.8, 0.1, 0.1], seed=7)
    c = stratified_group_split(recs, [0.8, 0.1, 0.1], seed=8)
    assert {s: {r.id for r in a[s]} for s in SPLITS} == {s: {r.id for r in b[s]} for s in SPLITS}
    assert {r.id for r in a["test"]} != {r.id for r in c["test"]}


def test_a_split_too_small_for_every_type_is_a_clear_error():
    recs = [rec(f"s{i} x", "B-Chemical O") for i in range(30)] + [rec("rare one", "B-Gene O")] * 1
    splits = stratified_group_split(recs, [0.8, 0.1, 0.1], seed=0)
    with pytest.raises(FinalizeError, match=r"too small to hold every entity type: no \['Gene'\]"):
        check_coverage(splits, TYPES)
    ok = stratified_group_split(recs + [rec(f"gene {i}", "B-Gene O") for i in range(2)], [0.8, 0.1, 0.1], seed=0)
    assert check_coverage(ok, TYPES) == ["Disease"]  # in the label set, never seen: reported, not an error


# --------------------------------------------------------------------------- export


def test_dataset_dict_round_trip_through_disk(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    recs = gather([], [{"id": "x", "cycle": 1, "record": r.to_dict()} for r in corpus(30)], None)
    splits = stratified_group_split(recs, [0.8, 0.1, 0.1], seed=0)
    to_dataset_dict(splits, TYPES).save_to_disk(str(tmp_path / "ds"))
    dd = datasets.load_from_disk(str(tmp_path / "ds"))
    assert list(dd) == list(SPLITS)
    assert dd["train"].features["ner_tags"].feature.names == ["O", "B-Chemical", "I-Chemical", "B-Disease",
                                                                "I-Disease", "B-Gene", "I-Gene"]
    for name in SPLITS:
        back = dataset_records(dd[name])
        assert [(r.id, r.tokens, r.tags, r.doc_id) for r in back] == [
            (r.id, r.tokens, r.tags, r.doc_id) for r in splits[name]]
        assert back[0].meta == {"origin": "active", "cycle": 1}


def test_jsonl_rows_read_back_with_nerloop(tmp_path):
    recs = [rec("Aspirin helps", "B-Chemical O", meta={"origin": "gold", "cycle": None})]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in jsonl_rows(recs)), encoding="utf-8")
    back = read_jsonl(path)
    assert back[0].tokens == recs[0].tokens and back[0].tags == recs[0].tags


def test_partly_labelled_sentences_are_kept_out_unless_a_later_revision_is_whole():
    from nerloop.release.gather import split_partial

    whole = {"id": "a", "cycle": 1}
    partial = {"id": "b", "cycle": 1, "window": [0, 2]}
    completed = {"id": "c", "cycle": 2, "revision": 2}  # the latest revision of a once-windowed sentence
    kept, out = split_partial([whole, partial, completed])
    assert kept == [whole, completed] and out == ["b"]
    assert split_partial([]) == ([], [])
