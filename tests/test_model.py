"""The model layer: label alignment, truncation, scores, prediction and a short training run."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from nerloop.data.records import Record
from nerloop.data.tags import label_list
from nerloop.errors import ParamsError
from nerloop.model.base import SHAPES, encode, load_tokenizer, resolve_base, word_shape
from nerloop.model.inference import load_model, predict, seqeval_scores
from nerloop.model.training import (
    class_weights,
    fit,
    needs_probe,
    predicted_epochs,
    probe_key,
    same_probe_params,
    split_validation,
    train,
)
from nerloop.params import ModelParams, TrainParams
from tiny_model import make_tiny_bert

LABELS = label_list(["CHEM", "DIS"])
RECORDS = [
    Record.from_tokens(["aspirin", "causes", "ulcers", "."], ["B-CHEM", "O", "B-DIS", "O"]),
    Record.from_tokens(["heart", "failure", "after", "cocaine"], ["B-DIS", "I-DIS", "O", "B-CHEM"]),
    Record.from_tokens(["no", "entity", "here"], ["O", "O", "O"]),
] * 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    words = {t for r in RECORDS for t in r.tokens} | {"aspir", "##in"}
    return make_tiny_bert(tmp_path_factory.mktemp("tiny"), words)


def test_first_subword_carries_the_word_label(tiny: Path) -> None:
    tok = load_tokenizer(tiny)
    feats = encode(RECORDS[:2], tok, max_length=32, label2id={lab: i for i, lab in enumerate(LABELS)})
    f = feats[1]
    assert [lab for lab in f["labels"] if lab != -100] == [LABELS.index(t) for t in RECORDS[1].tags]
    assert f["labels"][0] == -100 and f["labels"][-1] == -100  # [CLS] and [SEP]
    assert len(f["first"]) == len(RECORDS[1].tokens)


def test_long_sentence_is_truncated_with_a_warning_naming_it(tiny: Path, caplog: pytest.LogCaptureFixture) -> None:
    long = Record.from_tokens(["aspirin"] * 40, source="pool.txt:7")
    with caplog.at_level(logging.WARNING):
        feats = encode([long], load_tokenizer(tiny), max_length=16)
    assert len(feats[0]["input_ids"]) == 16
    assert "pool.txt:7" in caplog.text and "26 of 40 words" in caplog.text


def test_missing_base_model_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"model\.base"):
        resolve_base(str(tmp_path / "nowhere"))
    assert Path(resolve_base("minilm"), "config.json").exists()


def test_seqeval_scores_strict_micro_and_per_type() -> None:
    true = [["B-CHEM", "O", "B-DIS", "I-DIS"], ["B-CHEM", "O"]]
    pred = [["B-CHEM", "O", "B-DIS", "O"], ["B-CHEM", "O"]]  # the disease span is cut short: wrong entity
    s = seqeval_scores(true, pred)
    assert s["per_type"]["CHEM"]["f1"] == 1.0 and s["per_type"]["DIS"]["f1"] == 0.0
    assert s["precision"] == pytest.approx(2 / 3) and s["recall"] == pytest.approx(2 / 3)
    assert s["token_accuracy"] == pytest.approx(5 / 6)


def test_class_weights_favour_rare_labels() -> None:
    w = class_weights(RECORDS, LABELS, "inverse_sqrt")
    assert w[LABELS.index("O")] < w[LABELS.index("B-CHEM")]
    assert class_weights(RECORDS, LABELS, "none") is None


def test_split_validation_is_seeded_and_disjoint() -> None:
    a_train, a_val = split_validation(RECORDS, 0.25, seed=1)
    _, b_val = split_validation(RECORDS, 0.25, seed=1)
    assert [r.id for r in a_val] == [r.id for r in b_val] and len(a_val) == 3 and len(a_train) == 9


def test_train_then_predict_probabilities_and_embeddings(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    summary = train(RECORDS[:9], RECORDS[9:], LABELS, ModelParams(base=str(tiny), max_length=32),
                    TrainParams(epochs=2, batch_size=4, early_stopping_patience=0), out)
    assert summary["train_sentences"] == 9 and summary["epochs_run"] == 2
    model, tok, labels = load_model(out)
    assert labels == LABELS
    preds = dict(predict(model, tok, labels, RECORDS[:3], batch_size=2, embeddings=True, mc_passes=2, progress=False))
    assert sorted(preds) == [0, 1, 2]
    p = preds[1]
    assert p.probs.shape == (4, len(LABELS)) and np.allclose(p.probs.sum(1), 1.0, atol=1e-5)
    assert p.embedding.shape == (32,) and p.mc_probs.shape == (2, 4, len(LABELS))
    assert all(t in LABELS for t in p.tags)


def test_refit_recipe_trains_on_every_labelled_sentence_for_the_probed_epoch_count(tiny: Path, tmp_path: Path) -> None:
    mp = ModelParams(base=str(tiny), max_length=32)
    tp = TrainParams(epochs=3, batch_size=4, early_stopping_patience=1, recipe="refit")
    summary, _ = fit(RECORDS, LABELS, mp, tp, tmp_path / "m")
    # the probe held out 20% (2 of 12) and stopped early; the model itself saw all 12 sentences
    assert summary["recipe"] == "refit" and summary["train_sentences"] == 12 and summary["validation_sentences"] == 2
    assert 1 <= summary["epochs_run"] <= summary["probe_epochs_run"] <= 3
    assert len(summary["validation_f1_per_epoch"]) == summary["probe_epochs_run"]
    assert (tmp_path / "m" / "config.json").exists() and not list(tmp_path.glob("m.tmp"))

    held, _ = fit(RECORDS, LABELS, mp, TrainParams(epochs=2, batch_size=4, recipe="holdout"), tmp_path / "h")
    assert held["recipe"] == "holdout" and held["train_sentences"] == 10 and held["validation_sentences"] == 2


def test_fitted_recipe_probes_until_it_has_enough_then_trains_once(tiny: Path, tmp_path: Path) -> None:
    """The shipped recipe: probes at the first sizes, then one run per cycle for the probes' median epoch."""
    mp = ModelParams(base=str(tiny), max_length=32)
    tp = TrainParams(epochs=3, batch_size=4, early_stopping_patience=1, min_probes=2, probe_growth=4.0)
    first, probes = fit(RECORDS[:10], LABELS, mp, tp, tmp_path / "m")
    assert first["probed"] and len(probes) == 1 and probes[0]["labelled"] == 10
    second, probes = fit(RECORDS, LABELS, mp, tp, tmp_path / "m", probes)
    assert second["probed"] and [p["labelled"] for p in probes] == [10, 12]
    # a third cycle under 4x the largest probe: no probe, one run on all sentences for the median epoch
    third, after = fit(RECORDS * 2, LABELS, mp, tp, tmp_path / "m", probes)
    assert not third["probed"] and after == probes and "probe_seconds" not in third
    assert third["train_sentences"] == 24 and third["epochs_run"] == predicted_epochs(probes, 24, 3, 0.0)
    assert third["best_validation_f1"] is None
    # 4x the largest probe (48 >= 4 x 12): the epoch count is measured again
    fourth, more = fit(RECORDS * 4, LABELS, mp, tp, tmp_path / "m", probes)
    assert fourth["probed"] and len(more) == 3
    # probes made under another learning rate are not reused
    other, fresh = fit(RECORDS, LABELS, mp, tp.copy(update={"learning_rate": 5e-4}), tmp_path / "m", probes)
    assert other["probed"] and len(fresh) == 1


def test_predicted_epochs_is_the_median_of_the_probes_best_epochs_scaled_to_the_labelled_size() -> None:
    same_size = [{"labelled": 100, "best_epoch": e} for e in (4, 11, 12)]
    assert predicted_epochs(same_size, 100, 15, 0.5) == predicted_epochs(same_size, 5000, 15, 0.0) == 11
    # scaling 0.5: 4x the probes' size trains half the epochs (sqrt of 1/4); 16x, a quarter
    assert predicted_epochs(same_size, 400, 15, 0.5) == 6 and predicted_epochs(same_size, 1600, 15, 0.5) == 3
    # the journey's probes (200: 15, 400: 15, 1,600: 12) at 1,000 and at 12,000 sentences
    journey = [{"labelled": n, "best_epoch": e} for n, e in ((200, 15), (400, 15), (1600, 12))]
    assert predicted_epochs(journey, 1000, 15, 0.5) == 9 and predicted_epochs(journey, 12000, 15, 0.5) == 3
    assert predicted_epochs(journey, 12000, 15, 0.25) == 6
    # never more than train.epochs, never fewer than one
    assert predicted_epochs([{"labelled": 400, "best_epoch": 15}], 100, 15, 0.5) == 15
    assert predicted_epochs([{"labelled": 10, "best_epoch": 1}], 10_000, 15, 0.5) == 1
    # train.min_epochs: a floor under the scaled count, itself under train.epochs
    assert predicted_epochs(journey, 12000, 15, 0.25, min_epochs=7) == 7
    assert predicted_epochs(journey, 1000, 15, 0.5, min_epochs=7) == 9
    assert predicted_epochs(journey, 12000, 5, 0.25, min_epochs=7) == 5
    assert needs_probe(100, [{"labelled": 50}] * 2, TrainParams(min_probes=2, probe_growth=4.0)) is False
    assert needs_probe(200, [{"labelled": 50}] * 2, TrainParams(min_probes=2, probe_growth=4.0)) is True
    assert needs_probe(60, [{"labelled": 50}], TrainParams(min_probes=2)) is True
    # a probe saved before model.word_shape and model.head existed was made with their defaults
    key = probe_key(ModelParams(), TrainParams())
    old = {k: v for k, v in key.items() if k not in ("word_shape", "head")}
    assert same_probe_params({"params": old}, key)
    assert not same_probe_params({"params": old}, probe_key(ModelParams(head="crf"), TrainParams()))
    # train.entity_swap joins the key only when on: a probe made without it is not reused with it
    assert "entity_swap" not in key
    swapped = probe_key(ModelParams(), TrainParams(entity_swap=0.5))
    assert swapped["entity_swap"] == 0.5 and same_probe_params({"params": swapped}, swapped)
    assert not same_probe_params({"params": key}, swapped) and not same_probe_params({"params": swapped}, key)


def test_head_only_mc_dropout_is_seeded_and_varies_between_passes(tiny: Path, tmp_path: Path) -> None:
    """BALD samples only the head's dropout: the passes differ from each other, and runs repeat exactly."""
    out = tmp_path / "model"
    train(RECORDS[:9], RECORDS[9:], LABELS, ModelParams(base=str(tiny), max_length=32),
          TrainParams(epochs=1, batch_size=4), out)
    model, tok, labels = load_model(out)
    model.dropout.p = 0.5  # the tiny model's own rate, made large enough to see
    runs = [dict(predict(model, tok, labels, RECORDS[:2], mc_passes=4, progress=False)) for _ in range(2)]
    mc = runs[0][0].mc_probs
    assert mc.shape == (4, 4, len(LABELS)) and np.allclose(mc.sum(-1), 1.0, atol=1e-5)
    assert not np.allclose(mc[0], mc[1])
    assert np.array_equal(mc, runs[1][0].mc_probs)


def hub_cache(hf_home: Path, repo_id: str, checkpoint: Path) -> Path:
    """A model laid out as huggingface_hub caches it: models--ORG--NAME/{refs/main, snapshots/HASH/}."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in Path(checkpoint).iterdir():
        if f.is_file():
            (snapshot / f.name).write_bytes(f.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


RESOLVE = """
import sys, time
from nerloop.errors import ParamsError
from nerloop.model.base import resolve_base, load_tokenizer
t0 = time.perf_counter()
try:
    path = resolve_base(sys.argv[1])
except ParamsError as e:
    print(f"ERROR {time.perf_counter() - t0:.1f}s {e}")
else:
    from transformers import AutoModelForTokenClassification
    AutoModelForTokenClassification.from_pretrained(path, num_labels=3)
    print("LOADED", path, load_tokenizer(path).is_fast)
"""


def test_a_hub_id_loads_from_the_cache_offline_and_a_missing_one_fails_fast_naming_the_key(tmp_path: Path) -> None:
    """``model.base: org/name`` resolves through huggingface_hub's cache with no network at all."""
    import os
    import subprocess
    import sys

    hf_home = tmp_path / "hf"
    snapshot = hub_cache(hf_home, "acme/minilm-ner", Path(resolve_base("minilm")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")} | {"HF_HOME": str(hf_home)}

    def resolve(name: str, **extra: str) -> str:
        out = subprocess.run([sys.executable, "-c", RESOLVE, name], env=env | extra, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        return out.stdout + out.stderr

    assert f"LOADED {snapshot} True" in resolve("acme/minilm-ner", HF_HUB_OFFLINE="1")
    assert f"LOADED {snapshot} True" in resolve("acme/minilm-ner")  # the cache first: no network asked
    for extra in ({"HF_HUB_OFFLINE": "1"}, {}):  # offline, and online where the hub cannot be reached
        out = resolve("acme/not-there", **extra)
        assert "ERROR" in out and "model.base" in out and "acme/not-there" in out, out
        assert float(out.split("ERROR ")[1].split("s ")[0]) < 30  # seconds, not a hang


def test_word_shape_classes() -> None:
    shapes = [SHAPES[word_shape(w)] for w in ("paris", "Paris", "EU", "I", "iPhone", "1996", "B2B", ",", "-")]
    assert shapes == ["lower or none", "Title", "UPPER", "Title", "miXed", "has a digit", "has a digit",
                      "punctuation", "punctuation"]


def test_word_shape_lets_an_uncased_model_tell_paris_from_paris(tiny: Path, tmp_path: Path) -> None:
    """model.word_shape: the case an uncased tokenizer drops reaches the model, and survives save and load."""
    cased = [Record.from_tokens(["Aspirin", "causes", "ULCERS", "."], ["B-CHEM", "O", "B-DIS", "O"])] * 6
    mp = ModelParams(base=str(tiny), max_length=32, word_shape=True)
    train(cased, cased[:2], LABELS, mp, TrainParams(epochs=2, batch_size=4), tmp_path / "m")
    model, tok, labels = load_model(tmp_path / "m")
    assert model.config.nerloop_word_shape and model.config.type_vocab_size == len(SHAPES)
    upper, lower = (Record.from_tokens(["Aspirin", "causes", "ULCERS"]), Record.from_tokens(["aspirin", "causes",
                                                                                            "ulcers"]))
    assert encode([upper], tok, 32)[0]["input_ids"] == encode([lower], tok, 32)[0]["input_ids"]  # uncased
    preds = dict(predict(model, tok, labels, [upper, lower], progress=False))
    assert not np.allclose(preds[0].probs, preds[1].probs)  # the shape tells them apart
    # without the option the model is as before: two token types, the same output for both spellings
    train(cased, cased[:2], LABELS, ModelParams(base=str(tiny), max_length=32), TrainParams(epochs=1, batch_size=4),
          tmp_path / "plain")
    plain, tok, labels = load_model(tmp_path / "plain")
    assert plain.config.type_vocab_size == 2 and not getattr(plain.config, "nerloop_word_shape", False)
    preds = dict(predict(plain, tok, labels, [upper, lower], progress=False))
    assert np.allclose(preds[0].probs, preds[1].probs)


def test_crf_head_trains_saves_loads_and_predicts_marginals(tiny: Path, tmp_path: Path) -> None:
    """model.head: crf: a probe (early stopping on Viterbi paths), the model, and its scores after a reload."""
    mp = ModelParams(base=str(tiny), max_length=32, head="crf")
    summary, _ = fit(RECORDS, LABELS, mp, TrainParams(epochs=2, batch_size=4, recipe="refit"), tmp_path / "m")
    assert summary["best_validation_f1"] is not None
    model, tok, labels = load_model(tmp_path / "m")
    assert model.config.nerloop_head == "crf" and model.crf.transitions.abs().sum() > 0  # trained, and read back
    preds = dict(predict(model, tok, labels, RECORDS[:3], progress=False))
    for i, p in preds.items():
        assert np.allclose(p.probs.sum(1), 1.0, atol=1e-4)  # marginals of the whole-sequence model
        assert all(not t.startswith("I-") or (j and p.tags[j - 1][2:] == t[2:]) for j, t in enumerate(p.tags))
        assert len(p.tags) == len(RECORDS[i].tokens)


def _partial_records(outside: list[str]) -> list[Record]:
    """RECORDS with the first sentence partly labelled: words 0-1 asked (window [0, 2)), ``outside`` after them."""
    first = Record.from_tokens(["aspirin", "causes", "ulcers", "."], ["B-CHEM", "O", *outside],
                               meta={"window": [0, 2]})
    return [first, *RECORDS[1:]]


def _trained_weights(tiny: Path, out: Path, records: list[Record], head: str, partial: str) -> bytes:
    train(records, [], LABELS, ModelParams(base=str(tiny), max_length=32, head=head),
          TrainParams(epochs=1, batch_size=4, partial=partial), out)
    return (out / "model.safetensors").read_bytes()


@pytest.mark.parametrize("head", ["softmax", "crf"])
def test_partial_mask_ignores_the_tags_outside_the_window(tiny: Path, tmp_path: Path, head: str) -> None:
    """train.partial: mask: what a partly labelled sentence holds outside its window changes nothing trained."""
    a = _trained_weights(tiny, tmp_path / "a", _partial_records(["B-DIS", "O"]), head, "mask")
    b = _trained_weights(tiny, tmp_path / "b", _partial_records(["O", "B-CHEM"]), head, "mask")
    assert a == b


def test_partial_fill_trains_on_the_tags_outside_the_window(tiny: Path, tmp_path: Path) -> None:
    a = _trained_weights(tiny, tmp_path / "a", _partial_records(["B-DIS", "O"]), "softmax", "fill")
    b = _trained_weights(tiny, tmp_path / "b", _partial_records(["O", "B-CHEM"]), "softmax", "fill")
    assert a != b


def test_class_weights_count_only_the_tags_trained_on() -> None:
    from nerloop.model.training import trained_tags

    rec = _partial_records(["B-DIS", "O"])[0]
    assert trained_tags(rec, "mask") == ["B-CHEM", "O"] and trained_tags(rec, "fill") == rec.tags
    other = _partial_records(["O", "B-CHEM"])[0]
    assert class_weights([rec], LABELS, "inverse").tolist() == class_weights([other], LABELS, "inverse").tolist()
    assert class_weights([rec], LABELS, "inverse", "fill").tolist() != class_weights([other], LABELS, "inverse",
                                                                                     "fill").tolist()
