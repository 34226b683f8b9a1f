"""The dataset card rendered from synthetic stage outputs: YAML header parsed and checked, the prose true to inputs."""

from __future__ import annotations

import pytest
import yaml
from huggingface_hub import DatasetCard

from nerloop.data.records import Record
from nerloop.params import Params
from nerloop.release.card import build_card, size_category
from nerloop.release.gather import gather
from nerloop.release.split import split_stats, stratified_group_split

TYPES = ["Chemical", "Disease"]


def make_params(**final) -> Params:
    backend = final.pop("backend", "simulated")
    return Params.parse_obj({
        "data": {"seed": "data/raw/seed.conll", "pool": "data/raw/pool.jsonl", "gold": "data/raw/gold.conll"},
        "annotation": {"backend": backend, "simulated": {"answers": "data/raw/pool_answers.conll"}},
        "final": {"license": "cc-by-4.0", "language": "en", "pretty_name": "Toy NER", **final},
    })


def inputs(include_gold: bool) -> dict:
    """stats.json / inconsistencies.json as final-split writes them, history and annotation metrics."""
    seed = [Record.from_tokens(["seed", str(i), "aspirin", "fever"], ["O", "O", "B-Chemical", "B-Disease"])
            for i in range(20)]
    entries = [{"id": "x", "cycle": 1 + i % 2, "annotator": "simulated",
                "record": Record.from_tokens(["pool", str(i), "lithium", "tremor"],
                                             ["O", "O", "B-Chemical", "B-Disease"]).to_dict()} for i in range(60)]
    gold = [Record.from_tokens(["gold", str(i), "caffeine", "ache"], ["O", "O", "B-Chemical", "B-Disease"])
            for i in range(20)]
    recs = gather(seed, entries, gold if include_gold else None)
    splits = stratified_group_split(recs, [0.8, 0.1, 0.1], seed=42)
    stats = split_stats(splits, TYPES)
    summary = {"records_cleaned": 2, "records_emptied": 0, "near_gold_removed": 0, "duplicates_removed": 3,
               "same_text_conflicts": 1, "same_text_resolved": 0, "held_for_review": 2,
               "surface_type_conflicts": 1, "relabelled_mentions": 0}
    stats = {
        "splits": {k: v for k, v in stats.items() if k != "all"}, "all": stats["all"],
        "labels": ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"], "entity_types": TYPES,
        "types_never_seen": [], "cleaning": summary,
        "provenance": {"seed_sentences": 20, "annotated_sentences": 60, "gold_sentences": 20,
                       "include_gold": include_gold,
                       "cycles": [{"cycle": c, "sentences": 30, "tokens": 120, "kept": 40, "added": 5, "deleted": 2,
                                   "relabelled": 1} for c in (1, 2)],
                       "annotators": {"simulated": 60}, "ratios": [0.8, 0.1, 0.1], "seed": 42,
                       "conflict_policy": "review"},
    }
    inconsistencies = {"conflict_policy": "review", "type_majority": 0.8, "summary": summary,
                       "surface_type_conflicts": [{"surface": "cocaine", "mentions": 5,
                                                   "types": {"Chemical": 4, "Disease": 1}, "examples": {},
                                                   "resolution": "reported only (conflict_policy: review)"}]}
    history = [{"cycle": c, "labelled_sentences": 20 + 30 * c, "labelled_tokens": 80 + 120 * c, "f1": 0.5 + 0.1 * c,
                "precision": 0.5, "recall": 0.5, "token_accuracy": 0.9, "f1_Chemical": 0.6, "f1_Disease": 0.4,
                "manual_effort": {}} for c in (0, 1, 2)]
    per_type = {t: {"precision": 0.8, "recall": 0.8, "f1": 0.8, "support": 10} for t in TYPES}
    scores = {"f1": 0.8, "precision": 0.8, "recall": 0.8, "token_accuracy": 0.95, "per_type": per_type}
    final_eval = {
        "training": {"train_sentences": len(splits["train"]), "best_validation_f1": 0.81},
        "test": scores | {"sentences": len(splits["test"])},
        "gold": scores | {"sentences": 20, "seen_in_training": 16 if include_gold else 0,
                          "independent": not include_gold},
        "gold_in_test": scores | {"sentences": 2} if include_gold else None,
        "cycles": {"first": {"cycle": 0, "f1": 0.5, "per_type_f1": {"Chemical": 0.6, "Disease": 0.4}},
                   "last": {"cycle": 2, "f1": 0.7, "per_type_f1": {"Chemical": 0.6, "Disease": 0.4}}},
    }
    return {"stats": stats, "inconsistencies": inconsistencies, "history": history, "final_eval": final_eval,
            "annotation": {"cycle": 2}}


def header(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_header_and_content_with_gold_included(tmp_path):
    data = inputs(include_gold=True)
    card = build_card(make_params(include_gold=True), **data)
    card.save(tmp_path / "README.md")
    text = (tmp_path / "README.md").read_text(encoding="utf-8")

    meta = header(text)
    assert meta["license"] == "cc-by-4.0"
    assert meta["language"] == ["en"]
    assert meta["task_categories"] == ["token-classification"]
    assert meta["task_ids"] == ["named-entity-recognition"]
    assert meta["size_categories"] == ["n<1K"]
    assert meta["pretty_name"] == "Toy NER"
    assert meta["configs"][0]["data_files"] == [{"split": s, "path": f"{s}.jsonl"}
                                                for s in ("train", "validation", "test")]
    loaded = DatasetCard.load(tmp_path / "README.md")  # the Hub's own parser agrees
    assert loaded.data.license == "cc-by-4.0" and loaded.data.pretty_name == "Toy NER"

    n = data["stats"]["all"]["sentences"]
    assert f"of {n} sentences" in text
    for split, v in data["stats"]["splits"].items():
        assert f"| {split} | {v['sentences']} |" in text
    # cycle row: ledger counts, manual effort (5 + 2 + 1 edits for 46 entities) and gold F1
    assert "| 1 | 30 | 120 | 40 | 5 | 2 | 1 | 17% | 50 | 0.600 |" in text
    assert "![Learning curve" in text and "(learning_curve.png)" in text
    assert "no longer independent of the evaluation yardstick" in text
    assert "**The gold-set column is inflated**: 16 gold sentences" in text
    assert "simulated annotator" in text and "no inter-annotator agreement" in text
    assert "2 copies held back for review" in text and "`cocaine`" in text
    assert "Selection bias from active learning" in text
    assert "**Not stated**" in text  # no final.attribution given: the card says so instead of inventing one
    assert "| 0 | O |" in text and "| 4 | I-Disease |" in text


def test_card_without_gold_with_agreement_and_no_final_model(tmp_path):
    data = inputs(include_gold=False)
    data["final_eval"] = {"skipped": True, "reason": "final.train_final_model is false"}
    data["annotation"] = {"cycle": 2, "agreement": {
        "qc_examples": 12, "kappa": 0.83, "entity_f1": 0.9, "kappa_target": 0.8, "disagreements": 1,
        "cumulative": {"pairs": 20, "kappa": 0.8, "entity_f1": 0.88, "disagreements": 3}, "break_s": 300,
        "annotators": {"alice": {"2": {"sentences": 40, "timed_sentences": 38, "seconds_per_sentence": 12.5,
                                       "seconds_per_token": 0.61, "kept": 50, "added": 7, "deleted": 4,
                                       "relabelled": 2}}}}}
    params = make_params(include_gold=False, attribution="Sentences from BC5CDR (Li et al., 2016).",
                         backend="doccano")
    card = build_card(params, **data, figure=None)
    card.save(tmp_path / "README.md")
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert header(text)["license"] == "cc-by-4.0"
    assert "is not included: it stays an independent test set" in text
    assert "Cohen's kappa 0.830 (target 0.800)" in text and "last import (cycle 2)" in text
    assert "each double-annotated sentence counted once: 20 sentences, kappa 0.800" in text
    assert "| alice | 2 | 40 | 38 | 12.500 | 0.610 | 50 | 7 | 4 | 2 |" in text and "over 300 s" in text
    assert "No final model was trained" in text
    assert "No learning-curve figure was found" in text
    assert "Sentences from BC5CDR (Li et al., 2016)." in text
    assert "no longer independent" not in text


def test_card_states_tokenisation_and_held_back_sentences(tmp_path):
    params = make_params()
    text = str(build_card(params, **inputs(include_gold=True)))
    assert "every part of the data is tokenised as given in its `tokens`" not in text
    assert "seed sentences are tokenised as given in the file (CoNLL)" in text
    assert "No annotated sentence was held back at import" in text
    params.data.pool, params.data.tokenizer = "data/raw/tweets.txt", "social"
    held = [{"id": "a" * 16, "reason": "no gold answer", "cycle": 1, "text": "@ada #x", "source": "p.txt:1"}]
    data = inputs(include_gold=True)
    data["annotation"] = {**data["annotation"], "waiting": 3}
    text = str(build_card(params, **data, held=held, outbox=100))
    assert "actively selected (pool) sentences by nerloop's `social` tokeniser (plain text)" in text
    assert "1 annotated sentence(s) were held back at the last import" in text
    assert "data/annotations/held_back.jsonl" in text
    # the batch out with annotators is not "held back": it is waiting, and counted apart
    assert "103 sentence(s) sent or about to be sent for annotation are waiting for annotators" in text
    assert "(3 sent before this cycle, 100 in this cycle's batch)" in text
    # a disagreement in review is waiting on the lead: counted with the waiting, not as held back
    held.append({"id": "b" * 16, "reason": "resolve it in project 'nerloop-review'", "cycle": 1, "text": "x",
                 "source": "p.txt:2", "state": "in review", "work": []})
    text = str(build_card(params, **data, held=held, outbox=100))
    assert "1 annotated sentence(s) were held back" in text and "1 of them in review: the two annotators" in text
    params.data.seed = params.data.gold = "data/raw/all.txt"
    assert "every part of the data is tokenised by nerloop's `social`" in str(build_card(params, **inputs(True)))


@pytest.mark.parametrize(("n", "cat"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (123_456, "100K<n<1M")])
def test_size_category(n, cat):
    assert size_category(n) == cat


def test_card_says_how_the_stopping_decision_was_made(tmp_path):
    data = inputs(include_gold=False)
    assert "how the loop's length was decided is unknown" in str(build_card(make_params(), **data))
    for h, k in zip(data["history"], (None, 0.93, 0.995), strict=True):
        h["stop_kappa"] = k
    data["forecast"] = {
        "cycle": 2, "decision": "continue", "why": "about 180 more sentences to F1 0.800", "target_f1": 0.8,
        "last_f1": 0.7, "kappa": 0.995, "stable_cycles": 1, "kappa_threshold": 0.99, "window": 2,
        "gain_per_100_sentences": 16.67, "stop_set": {"sentences": 50, "labelled": 4},
        "sentences": {"ceiling": 0.9, "ceiling_low": 0.82, "ceiling_high": 0.97, "needed": 260, "reachable": True,
                      "why": None},
    }
    text = str(build_card(make_params(), **data))
    assert "### Stopping Decision" in text and "stop set of 50 pool sentences (4 of them" in text
    assert "kappa was 0.995, 1 cycle(s) in a row at or above the threshold: the rule **had not fired**" in text
    assert "Decision recorded then: **continue** (about 180 more sentences to F1 0.800)" in text
    assert "+16.67 points per 100 labelled sentences" in text and "needed about 260 labelled sentences" in text
    assert "| 0 | 20 | 0.500 | – |" in text and "| 2 | 80 | 0.700 | 0.995 |" in text


def test_card_records_each_cycles_selection_and_scoring_as_they_were() -> None:
    """A score.subsample changed mid-run shows in the card, per cycle, not only the values at the end."""
    data = inputs(include_gold=True)
    sel = {"strategy": "hybrid", "measure": "mnlp", "alpha": 0.7, "k": 20, "batch_size": 30, "token_budget": None}
    data["history"][1]["selection"] = {**sel, "score": {"scored": 4000, "subsample": 4000, "mc_dropout_passes": 0}}
    data["history"][2]["selection"] = {**sel, "score": {"scored": 9970, "subsample": 0, "mc_dropout_passes": 0}}
    text = str(build_card(make_params(), **data))
    assert "| pool sentences scored |" in text
    assert "4,000 (subsample) |" in text and "9,970 (all) |" in text


def test_card_counts_the_partly_labelled_sentences_kept_out_and_says_nothing_without_them():
    data = inputs(include_gold=True)
    text = str(build_card(make_params(), **data))
    assert "partly labelled" not in text.lower()
    data["stats"]["provenance"]["partly_labelled_kept_out"] = ["a" * 16, "b" * 16, "c" * 16]
    text = str(build_card(make_params(), **data))
    assert "**Partly labelled, kept out**: 3 of 60 annotated sentences were asked about only a window" in text
    assert "are **not** in any split" in text
    assert "3 partly labelled sentence(s) (asked about a window only) kept out of the splits." in text
