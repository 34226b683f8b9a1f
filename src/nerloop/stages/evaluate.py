"""Stage ``evaluate``: score the current model on the fixed gold set.

The gold set was drawn at random and is never selected or trained on, so its F1 is an
unbiased yardstick; scores on actively selected data would not be (they are chosen to
be hard). Writes DVC metrics (micro and per type) and plots (per-type F1, confusion,
the learning curve across cycles).
"""

from __future__ import annotations

import json
from typing import Any

from nerloop import paths, plots
from nerloop.formats import read_records, write_json
from nerloop.labelled import labelled_records
from nerloop.ledger import Ledger
from nerloop.model import predict_tags, seqeval_scores
from nerloop.params import load_params
from nerloop.stages import run

HISTORY = paths.METRICS / "history.json"


def confusion_rows(true: list[list[str]], pred: list[list[str]]) -> list[dict[str, str]]:
    """Token-level (actual type, predicted type) pairs, for DVC's confusion template.

    Tokens that are O on both sides are left out: they would swamp the matrix.
    """
    rows = []
    for t_seq, p_seq in zip(true, pred, strict=True):
        for t, p in zip(t_seq, p_seq, strict=True):
            a, b = t[2:] or "O", p[2:] or "O"
            if a != "O" or b != "O":
                rows.append({"actual": a, "predicted": b})
    return rows


def update_history(row: dict[str, Any]) -> list[dict[str, Any]]:
    """Insert or replace this cycle's row: re-running a cycle never adds a second point."""
    history = json.loads(HISTORY.read_text(encoding="utf-8")) if HISTORY.exists() else []
    history = [h for h in history if h["cycle"] != row["cycle"]] + [row]
    history.sort(key=lambda h: h["cycle"])
    write_json(HISTORY, history)
    return history


def main() -> None:
    params = load_params()
    gold = read_records(paths.GOLD)
    pred = predict_tags(paths.MODEL, gold, params.evaluate.batch_size, params.model.max_length)
    true = [r.tags for r in gold]
    scores = seqeval_scores(true, pred)

    ledger = Ledger(paths.LEDGER)
    labelled = labelled_records(ledger)
    effort = ledger.per_cycle().get(ledger.cycle, {})
    annotation = json.loads((paths.METRICS / "annotation.json").read_text(encoding="utf-8"))
    agreement = annotation.get("agreement") if annotation.get("cycle") == ledger.cycle else None
    this_cycle = [e for e in ledger.entries if e["cycle"] == ledger.cycle]
    selection = next((e["record"]["meta"].get("selection") for e in this_cycle if e["record"]["meta"].get("selection")),
                     None)
    row = {
        "cycle": ledger.cycle,
        "labelled_sentences": len(labelled),
        "labelled_tokens": sum(len(r.tokens) for r in labelled),
        "f1": round(scores["f1"], 4),
        "precision": round(scores["precision"], 4),
        "recall": round(scores["recall"], 4),
        "token_accuracy": round(scores["token_accuracy"], 4),
        **{f"f1_{t}": round(v["f1"], 4) for t, v in sorted(scores["per_type"].items())},
        "manual_effort": {k: effort.get(k, 0) for k in ("kept", "added", "deleted", "relabelled")},
        "selection": selection,  # how this cycle's batch was chosen (None for the seed-only cycle 0)
        "agreement": agreement,  # inter-annotator agreement of this cycle's double-annotated share, if any
    }
    summary = {k: v for k, v in row.items() if k not in ("manual_effort", "selection", "agreement")}
    write_json(paths.METRICS / "eval.json", summary | {"per_type": scores["per_type"], "gold_sentences": len(gold)})
    write_json(paths.METRICS / "per_type.json", [{"type": t, **v} for t, v in sorted(scores["per_type"].items())])
    write_json(paths.METRICS / "confusion.json", confusion_rows(true, pred))
    history = update_history(row)
    plots.learning_curve(history, paths.METRICS / "learning_curve.png")
    plots.per_type_f1(scores["per_type"], paths.METRICS / "per_type_f1.png")
    print(f"cycle {row['cycle']}: gold F1 {row['f1']:.3f} with {row['labelled_sentences']} labelled sentences")


if __name__ == "__main__":
    run(main)
