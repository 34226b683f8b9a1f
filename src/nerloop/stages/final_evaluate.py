"""Stage ``final-evaluate``: train once on the final train split and score it, beside the loop's figures.

The model is trained from the base model like every cycle's (its validation split for
early stopping), then scored on the final test split and on the gold set, micro and per
type, next to the first and the last cycle's gold-set figures from metrics/history.json.

What the gold figure means depends on ``final.include_gold``. Without the gold set in the
splits it is the same unbiased yardstick as in the loop. With it, most gold sentences are
now in the train and validation splits, so the full-gold figure is inflated; the gold
sentences that landed in the test split were never trained on and, the gold set having
been drawn at random, are the fair (if small) yardstick: they are scored separately.
The model itself is not kept; the figures are the point (train your own from the splits).
Skipped, with a message, when ``final.train_final_model`` is false.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from nerloop import paths
from nerloop.data.files import read_records, write_json
from nerloop.data.records import Record
from nerloop.params import load_params
from nerloop.release.clean import dedup_key
from nerloop.release.gather import SPLITS
from nerloop.release.split import dataset_records
from nerloop.stages import run

DATASET = paths.FINAL / "dataset"  # written by final-split
HISTORY = paths.METRICS / "history.json"  # written by evaluate, one row per cycle
OUT = paths.METRICS / "final_eval.json"
_ROW_KEYS = ("cycle", "labelled_sentences", "labelled_tokens", "f1", "precision", "recall")


def rounded(scores: dict[str, Any], n: int) -> dict[str, Any]:
    """seqeval_scores with 4 decimals and the sentence count: what the card prints."""
    return {
        "sentences": n,
        **{k: round(scores[k], 4) for k in ("f1", "precision", "recall", "token_accuracy")},
        "per_type": {t: {k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()}
                     for t, s in sorted(scores["per_type"].items())},
    }


def cycle_figures(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The first and the last cycle's gold-set figures, for comparison."""
    def pick(row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in _ROW_KEYS if k in row} | {
            "per_type_f1": {k[3:]: v for k, v in row.items() if k.startswith("f1_")}}
    return {"first": pick(history[0]), "last": pick(history[-1])} if history else {}


def score(model_dir: Path, records: list[Record], batch_size: int, max_length: int) -> dict[str, Any]:
    from nerloop.model.inference import predict_tags, seqeval_scores  # torch: only when there is a model to score

    pred = predict_tags(model_dir, records, batch_size, max_length)
    return rounded(seqeval_scores([r.tags for r in records], pred), len(records))


def main() -> None:
    import datasets  # heavy: imported only when the stage runs

    params = load_params()
    if not params.final.train_final_model:
        write_json(OUT, {"skipped": True, "reason": "final.train_final_model is false"})
        print("final evaluation skipped: final.train_final_model is false")
        return
    from nerloop.model.training import train  # torch and transformers take seconds: not on the skipped path

    dd = datasets.load_from_disk(str(DATASET))
    split = {name: dataset_records(dd[name]) for name in SPLITS}
    labels = dd["train"].features["ner_tags"].feature.names
    gold = read_records(paths.GOLD)
    seen = {dedup_key(r.tokens)[0] for name in ("train", "validation") for r in split[name]}
    gold_seen = sum(dedup_key(r.tokens)[0] in seen for r in gold)
    gold_in_test = [r for r in split["test"] if r.meta.get("origin") == "gold"]

    bs, ml = params.evaluate.batch_size, params.model.max_length
    with tempfile.TemporaryDirectory(prefix="nerloop-final-") as tmp:
        model_dir = Path(tmp) / "model"
        summary = train(split["train"], split["validation"], labels, params.model, params.train, model_dir)
        result: dict[str, Any] = {
            "training": summary,
            "test": score(model_dir, split["test"], bs, ml),
            "gold": score(model_dir, gold, bs, ml) | {
                "seen_in_training": gold_seen,
                "independent": gold_seen == 0,
            },
            "gold_in_test": score(model_dir, gold_in_test, bs, ml) if gold_in_test else None,
        }
    history = json.loads(HISTORY.read_text(encoding="utf-8")) if HISTORY.exists() else []
    result["cycles"] = cycle_figures(history)
    write_json(OUT, result)
    note = "" if gold_seen == 0 else f" (not independent: {gold_seen} gold sentences in train/validation)"
    print(f"final model: test F1 {result['test']['f1']:.3f}, gold F1 {result['gold']['f1']:.3f}{note}"
          + (f", first cycle gold F1 {history[0]['f1']:.3f}" if history else ""))


if __name__ == "__main__":
    run(main)
