"""Stage ``evaluate``: score the current model on the fixed gold set.

The gold set was drawn at random and is never selected or trained on, so its F1 is an
unbiased yardstick; scores on actively selected data would not be (they are chosen to
be hard). Writes DVC metrics (micro and per type) and plots (per-type F1, confusion,
the learning curve across cycles).

It also answers "when should we stop?" (``nerloop.loop.forecast``, ``nerloop.loop.stopping``): the model,
already loaded, predicts a fixed random stop set of pool sentences, whose predictions are
compared with the previous cycle's (Cohen's kappa), and the learning curve so far is fitted to
forecast the sentences needed to reach ``forecast.target_f1``. Both go to metrics/forecast.json,
the forecast curve with its band to a DVC plot and a PNG.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from nerloop import paths
from nerloop.data.annotations import EFFORT_KEYS, labelled_tokens, window_of
from nerloop.data.files import read_records, write_json
from nerloop.data.labelled import labelled_records
from nerloop.data.ledger import Ledger
from nerloop.loop import forecast, plots, stopping
from nerloop.model.inference import predict_tags, seqeval_scores
from nerloop.params import ForecastParams, load_params
from nerloop.stages import run

HISTORY = paths.METRICS / "history.json"
STOP_SET = paths.METRICS / "stop_set.json"
FORECAST = paths.METRICS / "forecast.json"
FORECAST_CURVE = paths.METRICS / "forecast_curve.json"
CURVE_POINTS = 40


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


def stop_set_kappa(cycle: int, ids: list[str], tags: list[list[str]]) -> float | None:
    """Kappa of this cycle's predictions on the stop set against the previous cycle's; records this cycle's.

    The file keeps the ids and the predictions of the last two cycles: all that the next cycle, or
    a re-run of this one, needs (the kappas themselves go to history.json). A stop set drawn
    differently (other size or seed, or a changed pool) starts afresh: kappas only compare
    predictions on the same sentences.
    """
    saved = json.loads(STOP_SET.read_text(encoding="utf-8")) if STOP_SET.exists() else {}
    earlier = {int(c): p for c, p in saved.get("predictions", {}).items() if int(c) < cycle} \
        if saved.get("ids") == ids else {}
    prev = max(earlier, default=None)
    kappa = None
    if prev is not None and ids:
        kappa = round(stopping.cohen_kappa([p.split() for p in earlier[prev]], tags), 4)
    keep = {} if prev is None else {str(prev): earlier[prev]}
    write_json(STOP_SET, {"ids": ids, "predictions": keep | {str(cycle): [" ".join(t) for t in tags]}})
    return kappa


def forecast_report(
    history: list[dict[str, Any]], fp: ForecastParams, capacity: dict[str, int], annotation: dict[str, Any],
    stop_set: dict[str, int],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """metrics/forecast.json and the forecast curve rows (empty before 3 cycles); draws metrics/forecast.png."""
    last = history[-1]
    fits: dict[str, forecast.Forecast] = {}
    budgets: dict[str, dict[str, Any] | None] = {}
    for unit in ("sentences", "tokens"):
        x = [h[f"labelled_{unit}"] for h in history]
        if len(set(x)) < forecast.MIN_POINTS:
            budgets[unit] = None
            continue
        fits[unit] = forecast.forecast(x, [h["f1"] for h in history], noise=fp.f1_noise, resamples=fp.resamples,
                                       seed=fp.seed)
        law = fits[unit].law
        budgets[unit] = {"a": round(law.a, 4), "b": round(law.b, 4), "c": round(law.c, 4), "scale": law.scale,
                         **forecast.to_target(fits[unit], fp.target_f1, x[-1], capacity[unit])}
    kappas = [h.get("stop_kappa") for h in history]
    fires = stopping.rule_fires(kappas, fp.kappa_threshold, fp.window)
    decision, why = stopping.decide(fires=fires, last_f1=last["f1"], target=fp.target_f1,
                                    budget=budgets["sentences"])
    speed = forecast.seconds_per_sentence(annotation)
    more = budgets["sentences"]["more"] if budgets["sentences"] else None
    report = {
        "cycle": last["cycle"], "decision": decision, "why": why, "target_f1": fp.target_f1, "last_f1": last["f1"],
        "kappa": kappas[-1], "stable_cycles": stopping.stable_cycles(kappas, fp.kappa_threshold),
        "kappa_threshold": fp.kappa_threshold, "window": fp.window,
        "gain_per_100_sentences": stopping.gain_per_100([h["labelled_sentences"] for h in history],
                                                        [h["f1"] for h in history], fp.window),
        "stop_set": stop_set,
        "sentences": budgets["sentences"], "tokens": budgets["tokens"],
        "seconds_per_sentence": speed,
        "hours_more": round(more * speed / 3600, 1) if speed is not None and more is not None else None,
        "band": {"level": forecast.LEVEL, "resamples": fp.resamples,
                 "noise_sd": round(fits["sentences"].noise, 4) if "sentences" in fits else None,
                 "method": "parametric resampling of the weighted inverse power law fit"},
    }
    rows: list[dict[str, Any]] = []
    if "sentences" in fits:
        now, budget = last["labelled_sentences"], budgets["sentences"]
        end = min(capacity["sentences"], max(2 * now, budget["needed"] or 0))
        grid = sorted({round(v) for v in np.linspace(history[0]["labelled_sentences"], max(end, now), CURVE_POINTS)})
        low, high = fits["sentences"].band(grid)
        rows = [{"labelled_sentences": n, "forecast": round(float(f), 4), "low": round(float(lo), 4),
                 "high": round(float(hi), 4)} for n, f, lo, hi in zip(grid, fits["sentences"].law(grid), low, high,
                                                                       strict=True)]
    plots.forecast(history, fits, capacity, fp.target_f1, paths.METRICS / "forecast.png",
                   forecast.verdict(budgets["sentences"], fp.target_f1))
    return report, rows


def main() -> None:
    params = load_params()
    gold = read_records(paths.GOLD)
    pool = read_records(paths.POOL)
    stop_ids = stopping.draw_stop_set([r.id for r in pool], params.forecast.stop_set_size, params.forecast.seed)
    by_id = {r.id: r for r in pool}
    stop_records = [by_id[i] for i in stop_ids]
    # one pass over gold and stop set: the model is loaded once
    pred_all = predict_tags(paths.MODEL, gold + stop_records, params.evaluate.batch_size, params.model.max_length)
    pred, stop_pred = pred_all[: len(gold)], pred_all[len(gold):]
    true = [r.tags for r in gold]
    scores = seqeval_scores(true, pred)

    ledger = Ledger(paths.LEDGER)
    labelled = labelled_records(ledger)
    effort = ledger.per_cycle().get(ledger.cycle, {})
    effort_share = ledger.manual_effort()
    annotation = json.loads((paths.METRICS / "annotation.json").read_text(encoding="utf-8"))
    agreement = annotation.get("agreement") if annotation.get("cycle") == ledger.cycle else None
    this_cycle = [e for e in ledger.entries if e["cycle"] == ledger.cycle]
    selection = next((e["record"]["meta"].get("selection") for e in this_cycle if e["record"]["meta"].get("selection")),
                     None)
    row = {
        "cycle": ledger.cycle,
        "labelled_sentences": len(labelled),
        # tokens a person labelled: a partly labelled sentence counts its window (README "Subsequence selection")
        "labelled_tokens": sum(labelled_tokens(window_of(r.meta), len(r.tokens)) for r in labelled),
        "f1": round(scores["f1"], 4),
        "precision": round(scores["precision"], 4),
        "recall": round(scores["recall"], 4),
        "token_accuracy": round(scores["token_accuracy"], 4),
        **{f"f1_{t}": round(v["f1"], 4) for t, v in sorted(scores["per_type"].items())},
        "manual_effort": {k: effort.get(k, 0) for k in EFFORT_KEYS},
        # edits made / edits needed from nothing, this cycle's import and all imports so far (README "Manual effort")
        "manual_effort_share": effort_share["last_cycle"],
        "manual_effort_share_cumulative": effort_share["cumulative"],
        "selection": selection,  # how this cycle's batch was chosen (None for the seed-only cycle 0)
        "agreement": agreement,  # inter-annotator agreement of this cycle's double-annotated share, if any
        "stop_kappa": stop_set_kappa(ledger.cycle, stop_ids, stop_pred),  # vs the previous cycle's model
    }
    summary = {k: v for k, v in row.items() if k not in ("manual_effort", "selection", "agreement", "stop_kappa")}
    write_json(paths.METRICS / "eval.json", summary | {"per_type": scores["per_type"], "gold_sentences": len(gold)})
    write_json(paths.METRICS / "per_type.json", [{"type": t, **v} for t, v in sorted(scores["per_type"].items())])
    write_json(paths.METRICS / "confusion.json", confusion_rows(true, pred))
    history = update_history(row)
    plots.learning_curve(history, paths.METRICS / "learning_curve.png")
    plots.per_type_f1(scores["per_type"], paths.METRICS / "per_type_f1.png")
    seed = read_records(paths.SEED)
    capacity = {"sentences": len(seed) + len(pool),
                "tokens": sum(len(r.tokens) for r in seed) + sum(len(r.tokens) for r in pool)}
    labelled_ids = {r.id for r in labelled}
    stop_set = {"sentences": len(stop_ids), "labelled": sum(i in labelled_ids for i in stop_ids)}
    report, rows = forecast_report(history, params.forecast, capacity, annotation, stop_set)
    write_json(FORECAST, report)
    write_json(FORECAST_CURVE, rows)
    print(f"cycle {row['cycle']}: gold F1 {row['f1']:.3f} with {row['labelled_sentences']} labelled sentences; "
          f"{report['decision']}: {report['why']}")


if __name__ == "__main__":
    run(main)
