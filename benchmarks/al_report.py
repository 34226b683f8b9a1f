"""The active-learning benchmark's report (``al_curve.py``): curve statistics over seeds, the targets'
verdicts, ``al_curve.md``, the PNG curves and ``al_curve_summary.json``, and the README block.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from al_runs import now, read_json
from al_setup import (
    BASELINE,
    DEFAULT_STRATEGY,
    METHODS,
    METHODS_FOLDER,
    REACH_SHARES,
    RUN_KINDS,
    TARGET_GAIN,
    TARGET_REACH_TOKENS,
    TARGET_SCORE_RATIO,
    TARGET_SHARE,
    TARGET_TRAIN_SPEED,
    TITLES,
    BenchmarkError,
)
from readme_block import update_readme

from nerloop.data.files import write_json


def load_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """Every finished run; refuses a folder that mixes configurations (their curves are not comparable)."""
    runs = [read_json(p) for p in sorted(runs_dir.glob("*-seed*.json"))]
    configs = {json.dumps(r["config"], sort_keys=True) for r in runs}
    if len(configs) > 1:
        raise BenchmarkError(f"{runs_dir} holds runs made with different settings; keep one set per folder")
    return runs


def _sd(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def curve_stats(runs: list[dict[str, Any]], seeds: set[int] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per strategy, per cycle: labelled sentences and tokens (means) and F1 mean, sd, min, max over seeds."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        if seeds is None or r["seed"] in seeds:
            by_key.setdefault(r["strategy"], []).append(r)
    stats: dict[str, list[dict[str, Any]]] = {}
    for key in [k for k in RUN_KINDS if k in by_key] + sorted(set(by_key) - set(RUN_KINDS)):
        group = by_key[key]
        n_cycles = min(len(r["cycles"]) for r in group)
        rows = []
        for c in range(n_cycles):
            f1 = [r["cycles"][c]["f1"] for r in group]
            rows.append({
                "cycle": c,
                "sentences": float(np.mean([r["cycles"][c]["labelled_sentences"] for r in group])),
                "tokens": float(np.mean([r["cycles"][c]["labelled_tokens"] for r in group])),
                "f1_mean": float(np.mean(f1)), "f1_sd": _sd(f1), "f1_min": min(f1), "f1_max": max(f1),
                "seeds": sorted(r["seed"] for r in group),
            })
        stats[key] = rows
    return stats


def gain_target(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean F1 over cycles 1..N of the default strategy minus random's at the same sentence count, per seed.

    Paired by seed (same seed set, same training seed). Counts are equal when every batch is full;
    otherwise the default strategy's curve is interpolated at random's counts.
    """
    by = {(r["strategy"], r["seed"]): r for r in runs}
    seeds = sorted(s for k, s in by if k == DEFAULT_STRATEGY and (BASELINE, s) in by)
    if not seeds:
        return {"met": None, "why": f"needs finished {DEFAULT_STRATEGY} and {BASELINE} runs with the same seed"}
    per_seed = {}
    for s in seeds:
        mine, base = by[(DEFAULT_STRATEGY, s)]["cycles"], by[(BASELINE, s)]["cycles"]
        xs = [row["labelled_sentences"] for row in mine]
        ys = [row["f1"] for row in mine]
        diffs = [float(np.interp(b["labelled_sentences"], xs, ys)) - b["f1"] for b in base[1:]]
        per_seed[s] = float(np.mean(diffs)) if diffs else float("nan")
    gain = float(np.mean(list(per_seed.values())))
    cycles = max(len(by[(BASELINE, s)]["cycles"]) - 1 for s in seeds)
    return {"gain": gain, "per_seed": per_seed, "seeds": seeds, "cycles": cycles, "target": TARGET_GAIN,
            "met": bool(gain >= TARGET_GAIN) if not math.isnan(gain) else None}


def _mean_gap(mine: list[dict[str, Any]], base: list[dict[str, Any]], x: str) -> float | None:
    """Mean over ``mine``'s cycles 1..N of its F1 minus ``base``'s, read off ``base``'s curve at the same ``x``
    (labelled sentences or tokens); points beyond ``base``'s range are left out, not extrapolated."""
    xs, ys = [r[x] for r in base], [r["f1"] for r in base]
    gaps = [r["f1"] - float(np.interp(r[x], xs, ys)) for r in mine[1:] if xs[0] <= r[x] <= xs[-1]]
    return float(np.mean(gaps)) if gaps else None


def methods_against_default(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each issue #28 option against the default strategy on the same seeds, at equal labelled sentences and at
    equal labelled tokens (a window run labels fewer tokens per sentence: tokens are its cost).

    A method *wins* on a measure when its gap is positive on every seed (at least 3) and *loses* when it is
    negative on every seed; otherwise the seeds disagree and it is no different, as far as they can tell.
    """
    by = {(r["strategy"], r["seed"]): r["cycles"] for r in runs}
    out: dict[str, Any] = {}
    for key in METHODS:
        seeds = sorted(s for k, s in by if k == key and (DEFAULT_STRATEGY, s) in by)
        if not seeds:
            continue
        row: dict[str, Any] = {"seeds": seeds}
        for x, name in (("labelled_sentences", "sentences"), ("labelled_tokens", "tokens")):
            gaps = {s: _mean_gap(by[(key, s)], by[(DEFAULT_STRATEGY, s)], x) for s in seeds}
            known = [g for g in gaps.values() if g is not None]
            verdict = ("wins" if len(known) >= 3 and all(g > 0 for g in known) else
                       "loses" if len(known) >= 3 and all(g < 0 for g in known) else
                       "no clear difference" if len(known) >= 3 else f"{len(known)} of 3 seeds")
            row[name] = {"per_seed": gaps, "mean": float(np.mean(known)) if known else None,
                         "sd": _sd(known) if known else None, "verdict": verdict}
        out[key] = row
    return out


def methods_rows(methods: dict[str, Any]) -> list[str]:
    """Markdown: each method's mean F1 gap to the default, per seed, at equal sentences and at equal tokens."""
    if not methods:
        return []
    lines = ["## Options against the default (same seeds)", "",
             f"Mean over cycles 1..N of the option's test F1 minus {DEFAULT_STRATEGY}'s, read off {DEFAULT_STRATEGY}'s "
             "curve at the same labelled sentences, and at the same labelled tokens (points outside its range left "
             "out). An option wins when it is ahead on every seed (at least 3), loses when behind on every one.", "",
             "| option | seeds | at equal sentences: mean ± sd (per seed) | verdict | at equal tokens: mean ± sd "
             "(per seed) | verdict |", "| --- | ---: | --- | --- | --- | --- |"]

    def cell(m: dict[str, Any]) -> str:
        if m["mean"] is None:
            return "n/a"
        seeds = ", ".join("n/a" if g is None else f"{100 * g:+.2f}" for g in m["per_seed"].values())
        return f"{100 * m['mean']:+.2f} ± {100 * m['sd']:.2f} points ({seeds})"

    for key, row in methods.items():
        lines.append(f"| {TITLES.get(key, key)} | {len(row['seeds'])} | {cell(row['sentences'])} | "
                     f"{row['sentences']['verdict']} | {cell(row['tokens'])} | {row['tokens']['verdict']} |")
    return [*lines, ""]


def savings_target(stats: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Labelled sentences (and tokens) the default strategy needs to reach random's final F1.

    On the seed-averaged curves, with linear interpolation between cycles (the curve is only
    known at the cycle points, so the figure is an estimate at that resolution).
    """
    if DEFAULT_STRATEGY not in stats or BASELINE not in stats:
        return {"met": None, "why": f"needs finished {DEFAULT_STRATEGY} and {BASELINE} runs"}
    base, mine = stats[BASELINE][-1], stats[DEFAULT_STRATEGY]
    goal = base["f1_mean"]
    out: dict[str, Any] = {"random_final_f1": goal, "random_sentences": base["sentences"],
                           "random_tokens": base["tokens"], "target": TARGET_SHARE}
    for i, row in enumerate(mine):
        if row["f1_mean"] >= goal:
            if i == 0:
                sentences, tokens = row["sentences"], row["tokens"]
            else:
                prev = mine[i - 1]
                frac = (goal - prev["f1_mean"]) / (row["f1_mean"] - prev["f1_mean"])
                sentences = prev["sentences"] + frac * (row["sentences"] - prev["sentences"])
                tokens = prev["tokens"] + frac * (row["tokens"] - prev["tokens"])
            share = sentences / base["sentences"]
            return {**out, "reached": True, "sentences": sentences, "tokens": tokens, "share": share,
                    "token_share": tokens / base["tokens"], "met": bool(share <= TARGET_SHARE)}
    return {**out, "reached": False, "final_f1": mine[-1]["f1_mean"], "met": False}


FAIR_REFERENCE = "reference_loop.json"  # benchmarks/reference.py's results, beside the main results' runs/


def fair_reference(path: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """``reference.py``'s full-data reference (issue #28's fair one), where it trained the runs' model their way.

    It trains as the loop does (probes, then one run on every sentence), over several seeds, so its mean F1 is
    the ceiling a run's curve is measured against; al_curve's ``--reference`` (early stopping on valid.txt, which
    the loop never has) stands in only where this one is missing or trained another model or recipe. Returns the
    report's reference record (``kind: "loop"``), or None.
    """
    if not path.exists():
        return None
    ref = read_json(path)
    summary = ref.get("summary") or {}
    if summary.get("f1_mean") is None:
        return None
    model, train = ref["config"]["model"], ref["config"]["train"]
    run_model, run_train = config["recipe"].get("model", {}), config["recipe"].get("train", {})
    same = (model.get("base") == config["base"]
            and all(run_model.get(k) == v for k, v in model.items() if k != "base")
            and all(run_train.get(k) == v for k, v in train.items() if k not in ("epochs", "early_stopping_patience"))
            and train.get("epochs") == config["epochs"] and train.get("early_stopping_patience") == config["patience"])
    if not same:
        return None
    return {"kind": "loop", "f1": summary["f1_mean"], "f1_sd": summary["f1_sd"], "f1_per_seed": summary["f1"],
            "gold_sentences": ref["test_sentences"], "train_sentences": ref["sentences"], "config": ref["config"]}


def reach(rows: list[dict[str, Any]], goal: float) -> dict[str, float] | None:
    """Sentences and tokens where a seed-averaged curve first reaches ``goal`` (linear between cycles)."""
    for i, row in enumerate(rows):
        if row["f1_mean"] >= goal:
            if i == 0:
                return {"sentences": row["sentences"], "tokens": row["tokens"]}
            prev = rows[i - 1]
            frac = (goal - prev["f1_mean"]) / (row["f1_mean"] - prev["f1_mean"])
            return {x: prev[x] + frac * (row[x] - prev[x]) for x in ("sentences", "tokens")}
    return None


def reach_target(stats: dict[str, list[dict[str, Any]]], ref_f1: float | None, train_tokens: int) -> dict[str, Any]:
    """Per strategy, the labelled sentences and tokens at 95, 98 and 99% of the reference; and the 99% target."""
    if ref_f1 is None or DEFAULT_STRATEGY not in stats:
        return {"met": None, "why": f"needs the reference (--reference) and finished {DEFAULT_STRATEGY} runs"}
    table = {key: {str(share): reach(rows, share * ref_f1) for share in REACH_SHARES} for key, rows in stats.items()}
    at99 = table[DEFAULT_STRATEGY][str(REACH_SHARES[-1])]
    out = {"reference_f1": ref_f1, "train_tokens": train_tokens, "table": table, "target": TARGET_REACH_TOKENS,
           "final_f1": stats[DEFAULT_STRATEGY][-1]["f1_mean"], "final_tokens": stats[DEFAULT_STRATEGY][-1]["tokens"]}
    if at99 is None:
        final_share = out["final_tokens"] / train_tokens
        if final_share < TARGET_REACH_TOKENS:  # the curve stops before the budget the target allows: no verdict
            return {**out, "reached": False, "met": None,
                    "why": f"{DEFAULT_STRATEGY} ends at {out['final_f1'] / ref_f1:.1%} of it with "
                           f"{final_share:.1%} of train's tokens, short of the {TARGET_REACH_TOKENS:.0%} the target "
                           "allows; the long run (--long) goes that far"}
        return {**out, "reached": False, "met": False}
    share = at99["tokens"] / train_tokens
    return {**out, "reached": True, "token_share": share, "met": bool(share <= TARGET_REACH_TOKENS)}


def speed_target(results: Path) -> dict[str, Any]:
    """The product-speed targets, read from throughput.py's last figures (not measured here)."""
    path = results / "throughput.json"
    if not path.exists():
        return {"met": None, "why": f"no {path.name}: run benchmarks/throughput.py"}
    t = read_json(path)
    train, ratio = t["train"]["nerloop"]["sentences_per_s"], t["score"]["ratio"]
    return {"train_sentences_per_s": train, "score_ratio": ratio, "measured_at": t["train"].get("measured_at"),
            "met": bool(train >= TARGET_TRAIN_SPEED and ratio >= TARGET_SCORE_RATIO)}


def _fmt_int(x: float) -> str:
    return f"{round(x):,}"


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else "**met**" if met else "**not met**"


def report(results: Path, readme: Path | None = None) -> dict[str, Any] | None:
    """Rebuild al_curve.md, the PNG curves and al_curve_summary.json from the run files; print the targets."""
    runs = load_runs(results / "runs")
    if not runs:
        print(f"no finished runs in {results / 'runs'} yet: nothing to report")
        return None
    config = runs[0]["config"]
    ref_file = next((f for f in (results / "reference.json", results.parent / "reference.json") if f.exists()),
                    results / "reference.json")  # the long run's folder sits inside the main results folder
    reference = fair_reference(ref_file.parent / FAIR_REFERENCE, config)
    if reference is None and ref_file.exists():
        reference = read_json(ref_file)
        if (reference["config"]["recipe"] != config["recipe"] or reference["config"]["gold_size"] != config["gold_size"]
                or reference["config"]["base"] != config["base"]):
            print(f"warning: {ref_file} was made with another model, recipe or gold set: not used")
            reference = None
    ref_f1 = reference["f1"] if reference else None

    stats = curve_stats(runs)
    gain = gain_target(runs)
    common = set(gain.get("seeds", []))  # the savings curves use the seeds both strategies have finished
    savings = savings_target(curve_stats(runs, common) if common else {})
    reached = reach_target(stats, ref_f1, config["data"].get("train_tokens", 0))
    speed = speed_target(ref_file.parent)
    targets = {"gain": gain, "savings": savings, "reach": reached, "speed": speed}
    methods = methods_against_default(runs)
    summary = {"config": config, "reference_f1": ref_f1, "stats": stats, "targets": targets, "methods": methods,
               "runs": len(runs), "generated_at": now()}
    write_json(results / "al_curve_summary.json", summary)
    plot_curves(stats, ref_f1, results)
    md = markdown(runs, stats, targets, reference, methods)
    (results / "al_curve.md").write_text(md, encoding="utf-8")
    print("Targets (issues #6 and #12):\n  " + "\n  ".join(target_lines(targets)))
    print(f"report: {results / 'al_curve.md'}")
    if readme is not None:
        block = ("al_curve_long" if results.name.startswith("long") else
                 "al_curve_methods" if results.name == METHODS_FOLDER else "al_curve")
        text = headline(config, stats, targets, ref_f1, len(runs))
        if methods:
            text += "\n\n" + "\n".join(f"- {TITLES.get(k, k)} against {DEFAULT_STRATEGY}: at equal sentences "
                                       f"{row['sentences']['verdict']}, at equal tokens {row['tokens']['verdict']}"
                                       for k, row in methods.items())
        update_readme(readme, block, text)
    return summary


def _met(t: dict[str, Any]) -> str:
    return "MET" if t["met"] else "NOT MET"


def _gain_line(gain: dict[str, Any]) -> str:
    return (f"{DEFAULT_STRATEGY} mean test F1 over cycles 1..N minus random's, averaged over seeds {gain['seeds']}: "
            f"{100 * gain['gain']:+.2f} points (target >= +{100 * TARGET_GAIN:.0f}): {_met(gain)}")


def _savings_line(savings: dict[str, Any]) -> str:
    if not savings["reached"]:
        return (f"{DEFAULT_STRATEGY} never reaches random's final F1 {savings['random_final_f1']:.4f} "
                f"(its own final: {savings['final_f1']:.4f}): NOT MET")
    return (f"{DEFAULT_STRATEGY} reaches random's final F1 {savings['random_final_f1']:.4f} with "
            f"~{_fmt_int(savings['sentences'])} labelled sentences = {100 * savings['share']:.0f}% of "
            f"random's {_fmt_int(savings['random_sentences'])} (target <= {100 * TARGET_SHARE:.0f}%): "
            f"{_met(savings)}; in tokens ~{_fmt_int(savings['tokens'])} = "
            f"{100 * savings['token_share']:.0f}% of random's {_fmt_int(savings['random_tokens'])}")


def _reach_line(reached: dict[str, Any]) -> str:
    if not reached["reached"]:
        return (f"{DEFAULT_STRATEGY} does not reach 99% of the full-data F1 {reached['reference_f1']:.4f} within "
                f"its {_fmt_int(reached['final_tokens'])} labelled tokens (ends at {reached['final_f1']:.4f} = "
                f"{100 * reached['final_f1'] / reached['reference_f1']:.1f}%): NOT MET")
    return (f"{DEFAULT_STRATEGY} reaches 99% of the full-data F1 {reached['reference_f1']:.4f} with "
            f"{100 * reached['token_share']:.1f}% of train's {_fmt_int(reached['train_tokens'])} tokens "
            f"(target <= {100 * TARGET_REACH_TOKENS:.0f}%): {_met(reached)}")


def _speed_line(speed: dict[str, Any]) -> str:
    return (f"product speed (throughput.py, {speed['measured_at']}): training "
            f"{speed['train_sentences_per_s']} sentences/s (target >= {TARGET_TRAIN_SPEED:.0f}), scoring "
            f"{100 * speed['score_ratio']:.1f}% of a bare forward pass "
            f"(target >= {100 * TARGET_SCORE_RATIO:.0f}%): {_met(speed)}")


# each target: its key in the targets, what it is called where it was not measured, and its line where it was
TARGET_LINES: list[tuple[str, str, Callable[[dict[str, Any]], str]]] = [
    ("gain", "gain over random", _gain_line),
    ("savings", "sentences to reach random's final F1", _savings_line),
    ("reach", "99% of the full-data F1", _reach_line),
    ("speed", "product speed", _speed_line),
]


def target_lines(targets: dict[str, Any]) -> list[str]:
    """One line per target with its figure and MET / NOT MET, for the console and the README."""
    return [f"{name}: not measured ({targets[key]['why']})" if targets[key]["met"] is None else line(targets[key])
            for key, name, line in TARGET_LINES]


def reach_rows(targets: dict[str, Any]) -> list[str]:
    """Markdown: labelled sentences and tokens at 95, 98 and 99% of the reference, per strategy."""
    reached = targets["reach"]
    if "table" not in reached:
        return [f"Share of the full-data F1: {reached['why']}."]
    total = reached["train_tokens"]
    lines = ["| strategy | " + " | ".join(f"{100 * s:.0f}% of full-data F1" for s in REACH_SHARES) + " |",
             "| --- | " + " | ".join("---:" for _ in REACH_SHARES) + " |"]
    for key, row in reached["table"].items():
        cells = [f"{_fmt_int(v['sentences'])} sentences, {_fmt_int(v['tokens'])} tokens "
                 f"({100 * v['tokens'] / total:.1f}% of train)" if v else "not reached" for v in row.values()]
        lines.append(f"| {TITLES.get(key, key)} | " + " | ".join(cells) + " |")
    return lines


def setup_text(runs: list[dict[str, Any]]) -> str:
    """What was run, in one paragraph: enough to judge the figures and to reproduce them."""
    cfg = runs[0]["config"]
    train, select = cfg["recipe"]["train"], cfg["recipe"]["select"]
    gold = cfg["gold_size"] or cfg["data"]["test_sentences"]
    gold_what = "a random subset of the test split" if cfg["gold_size"] else "the official test split"
    prepared = runs[0].get("prepare") or {}
    pool = (f" ({prepared['pool_sentences']:,} sentences once duplicates and sentences also in test are left out)"
            if "pool_sentences" in prepared else "")
    gold = prepared.get("gold_sentences", gold)
    hybrid = next((r["select"] for r in runs if r["strategy"] == DEFAULT_STRATEGY and "select" in r), select)
    cycles = cycles_phrase(cfg)
    model = cfg["recipe"].get("model", {})
    if train.get("recipe", "holdout") == "fitted":
        recipe = (f"the `fitted` recipe: where the loop's rule asks for a probe, a run holding out "
                  f"{train['validation_share']:.0%} of the labelled data finds the best epoch by early stopping (at "
                  f"most {cfg['epochs']}, patience {cfg['patience']}); every cycle then trains once on all labelled "
                  "sentences for the epoch count the probes predict (README \"Training recipe\")")
    elif train.get("recipe", "holdout") == "refit":
        recipe = (f"a probe run holding out {train['validation_share']:.0%} of the labelled data picks the epoch "
                  f"count by early stopping (at most {cfg['epochs']}, patience {cfg['patience']}), then the model is "
                  "trained on all labelled sentences for that many epochs")
    else:
        recipe = (f"epochs: at most {cfg['epochs']}, early stopping (patience {cfg['patience']}) on "
                  f"{train['validation_share']:.0%} of the labelled data, never trained on")
    return (
        f"Setup: a random seed set of {cfg['seed_size']} train sentences, then {cycles}, chosen from "
        + (f"a random subsample of {cfg['subsample']:,} pool sentences" if cfg["subsample"] else "all pool sentences")
        + f" scored each cycle; the pool is the rest of train{pool}, answered from the train labels by the simulated "
        f"annotator. Gold set: {gold_what} ({gold:,} "
        f"distinct sentences; never selected, never trained on). Model `{cfg['base']}` ({model.get('head', 'softmax')} "
        f"head, word shape {'on' if model.get('word_shape') else 'off'}), trained from the base "
        f"every cycle: {recipe}; learning rate {train['learning_rate']}, batch {train['batch_size']}. Seeds "
        f"{sorted({r['seed'] for r in runs})} (seed set, training, subsample and selection). Hybrid uses the "
        f"shipped defaults: measure {hybrid.get('measure', '?')}, alpha {hybrid['alpha']}, k {hybrid['k']}."
    )


def target_rows(cfg: dict[str, Any], targets: dict[str, Any]) -> list[str]:
    """The targets as Markdown table rows: what is asked, the figure, met or not."""
    gain, savings = targets["gain"], targets["savings"]
    cycles = gain.get("cycles", cfg["cycles"])  # the baseline's cycles after the seed set
    ask_gain = (f"{DEFAULT_STRATEGY}: mean test F1 over cycles 1..{cycles} at least {100 * TARGET_GAIN:.0f} "
                "points above random at the same labelled sentence count (mean over seeds)")
    ask_share = (f"{DEFAULT_STRATEGY} reaches random's final F1 with at most {100 * TARGET_SHARE:.0f}% of "
                 "random's labelled sentences")
    if gain["met"] is None:
        rows = [f"| {ask_gain} | {gain['why']} | n/a |"]
    else:
        per_seed = ", ".join(f"seed {s}: {100 * v:+.2f}" for s, v in gain["per_seed"].items())
        rows = [f"| {ask_gain} | {100 * gain['gain']:+.2f} points ({per_seed}) | {_verdict(gain['met'])} |"]
    if savings["met"] is None:
        rows.append(f"| {ask_share} | {savings['why']} | n/a |")
    elif savings["reached"]:
        rows.append(
            f"| {ask_share} | random's final F1 {savings['random_final_f1']:.4f} reached at "
            f"~{_fmt_int(savings['sentences'])} of {_fmt_int(savings['random_sentences'])} sentences = "
            f"{100 * savings['share']:.0f}%; in tokens ~{_fmt_int(savings['tokens'])} of "
            f"{_fmt_int(savings['random_tokens'])} = {100 * savings['token_share']:.0f}% | {_verdict(savings['met'])} |"
        )
    else:
        rows.append(f"| {ask_share} | random's final F1 {savings['random_final_f1']:.4f} never reached: "
                    f"{DEFAULT_STRATEGY} ends at {savings['final_f1']:.4f} | **not met** |")
    lines = target_lines(targets)[2:]  # the figures of the two #12 targets, worded as on the console
    rows.append(f"| {DEFAULT_STRATEGY} reaches 99% of the full-data F1 with at most {100 * TARGET_REACH_TOKENS:.0f}% "
                f"of train's tokens | {lines[0]} | {_verdict(targets['reach']['met'])} |")
    rows.append(f"| product speed: training >= {TARGET_TRAIN_SPEED:.0f} sentences/s, scoring >= "
                f"{100 * TARGET_SCORE_RATIO:.0f}% of a bare forward pass | {lines[1]} | "
                f"{_verdict(targets['speed']['met'])} |")
    return rows


def reference_text(reference: dict[str, Any] | None, run_gold: int) -> str:
    """The reference's line in the report; it says so when the reference was scored on another gold set."""
    if reference is None:
        return ("Full-data reference: not run yet (`python benchmarks/reference.py`, or "
                "`python benchmarks/al_curve.py --reference` for another recipe).")
    if reference.get("kind") == "loop":
        per_seed = ", ".join(f"{f:.4f}" for f in reference["f1_per_seed"])
        text = (f"Full-data reference, trained the way the loop trains (`benchmarks/reference.py`: the loop's probes, "
                f"then one run on all {reference['train_sentences']:,} train sentences): mean test F1 "
                f"**{reference['f1']:.4f}** over {len(reference['f1_per_seed'])} seed(s) ({per_seed}"
                + (f"; sd {reference['f1_sd']:.4f}" if reference["f1_sd"] is not None else "")
                + f") on {reference['gold_sentences']:,} test sentences.")
        if reference["gold_sentences"] != run_gold:
            text += (f" The runs are scored on {run_gold:,} gold sentences (repeats dropped, as prepare does): the "
                     "shares of the reference are approximate.")
        return text
    per_epoch = ", ".join(f"{f:.4f}" for f in reference.get("validation_f1_per_epoch", []))
    text = (f"Full-data reference (same model and training settings, every train sentence trained on, epochs chosen "
            f"by early stopping on the official validation split): test F1 **{reference['f1']:.4f}** on "
            f"{reference['gold_sentences']:,} gold sentences ({reference['train_sentences']:,} training sentences, "
            f"best epoch {reference.get('best_epoch', '?')} of {reference['epochs_run']} run, cap "
            f"{reference['config'].get('reference_epochs', '?')}, patience "
            f"{reference['config'].get('reference_patience', '?')}; validation F1 per epoch: {per_epoch}; "
            f"{reference['train_seconds'] / 60:.0f} min).")
    if reference["gold_sentences"] != run_gold:
        text += (f" **Caution:** the runs are scored on {run_gold:,} gold sentences (repeats dropped, as prepare "
                 f"does), the reference on {reference['gold_sentences']:,}; the shares of it are approximate until "
                 "`python benchmarks/al_curve.py --reference` is run again.")
    return text


def markdown(runs: list[dict[str, Any]], stats: dict[str, list[dict[str, Any]]], targets: dict[str, Any],
             reference: dict[str, Any] | None, methods: dict[str, Any] | None = None) -> str:
    """al_curve.md: setup, targets verdict, F1 per cycle per strategy, detail with spread and shares, cost."""
    cfg = runs[0]["config"]
    ref_f1 = reference["f1"] if reference else None
    lines = [
        "# Active learning on CoNLL-2003: learning curves",
        "",
        f"Generated by `python benchmarks/al_curve.py` from {len(runs)} finished runs (`runs/*.json`), {now()}.",
        "",
        setup_text(runs),
        "",
        "## Targets",
        "",
        "| target | figure | verdict |",
        "| --- | --- | --- |",
        *target_rows(cfg, targets),
        "",
        "Sentences-to-reach is read off the seed-averaged curves, interpolating linearly between cycles. "
        "The targets are fixed in the code and were not tuned on the test split.",
        "",
        reference_text(reference, runs[0]["cycles"][0]["gold_sentences"]),
        "",
        *methods_rows(methods or {}),
        "## Annotation needed to reach a share of the full-data F1 (seed-averaged curves)",
        "",
        *reach_rows(targets),
        "",
        "## Test F1 by cycle (mean ± sd over seeds; mean labelled tokens in brackets)",
        "",
        "| cycle | labelled sentences | " + " | ".join(TITLES.get(k, k) for k in stats) + " |",
        "| ---: | ---: | " + " | ".join("---:" for _ in stats) + " |",
    ]
    for c in range(max(len(rows) for rows in stats.values())):
        sentences = next(rows[c]["sentences"] for rows in stats.values() if len(rows) > c)
        cells = [f"{rows[c]['f1_mean']:.4f} ± {rows[c]['f1_sd']:.4f} ({_fmt_int(rows[c]['tokens'])} tok)"
                 if len(rows) > c else "" for rows in stats.values()]
        lines.append(f"| {c} | {_fmt_int(sentences)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Detail",
        "",
        "| strategy | cycle | labelled sentences | labelled tokens | F1 mean | F1 sd | F1 min–max "
        "| share of full-data F1 | seeds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, rows in stats.items():
        for row in rows:
            share = f"{100 * row['f1_mean'] / ref_f1:.0f}%" if ref_f1 else "n/a"
            lines.append(f"| {TITLES.get(key, key)} | {row['cycle']} | {_fmt_int(row['sentences'])} | "
                         f"{_fmt_int(row['tokens'])} | {row['f1_mean']:.4f} | {row['f1_sd']:.4f} | "
                         f"{row['f1_min']:.4f}–{row['f1_max']:.4f} | {share} | {len(row['seeds'])} |")
    lines += ["", "## Cost on this machine", "",
              "Training minutes include the probe run that picks the epoch count (`train.recipe: refit`). Minutes "
              "are as measured with the torch threads shown: compare runs with the same count (benchmarks/README.md: "
              "two runs at once).", "",
              "| strategy | seed | torch threads | train min | all stages min | epochs per cycle "
              "| train min per cycle |",
              "| --- | ---: | ---: | ---: | ---: | --- | --- |"]
    order = {k: i for i, k in enumerate(RUN_KINDS)}
    for r in sorted(runs, key=lambda r: (order.get(r["strategy"], len(order)), r["seed"])):
        epochs = ", ".join(str(c["epochs_run"]) for c in r["cycles"])
        per_cycle = ", ".join(f"{c['train_seconds'] / 60:.1f}" for c in r["cycles"])
        threads = r.get("machine", {}).get("torch_threads", "?")
        lines.append(f"| {TITLES.get(r['strategy'], r['strategy'])} | {r['seed']} | {threads} | "
                     f"{r['train_seconds_total'] / 60:.1f} | {r['stage_seconds_total'] / 60:.1f} | {epochs} | "
                     f"{per_cycle} |")
    m = runs[0].get("machine", {})
    lines += ["", f"Machine: {m.get('cpus')} CPUs, torch {m.get('torch')}, "
              f"GPU: {m.get('gpu') or 'none'}; nerloop {runs[0].get('nerloop_commit')}.", "",
              "![learning curves against labelled sentences](al_curve_sentences.png)", "",
              "![learning curves against labelled tokens](al_curve_tokens.png)", ""]
    return "\n".join(lines)


def plot_curves(stats: dict[str, list[dict[str, Any]]], ref_f1: float | None, results: Path) -> None:
    """Mean test F1 per strategy with the min–max band over seeds, against sentences and against tokens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for x, label in (("sentences", "labelled sentences"), ("tokens", "labelled tokens")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for key, rows in stats.items():
            xs = [r[x] for r in rows]
            (line,) = ax.plot(xs, [r["f1_mean"] for r in rows], marker="o", label=TITLES.get(key, key))
            ax.fill_between(xs, [r["f1_min"] for r in rows], [r["f1_max"] for r in rows], alpha=0.15,
                            color=line.get_color())
        if ref_f1 is not None:
            ax.axhline(ref_f1, color="black", linestyle="--", linewidth=1, label=f"full train set ({ref_f1:.3f})")
        ax.set_xlabel(label)
        ax.set_ylabel("test F1 (CoNLL-2003)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        n_seeds = max((len(rows[0]["seeds"]) for rows in stats.values()), default=0)
        ax.set_title(f"Active learning on CoNLL-2003: mean over {n_seeds} seed(s), band = min–max")
        fig.tight_layout()
        fig.savefig(results / f"al_curve_{x}.png", dpi=110)
        plt.close(fig)


def cycles_phrase(cfg: dict[str, Any]) -> str:
    """How the runs' batches were sized: fixed cycles, or the long run's growing batches up to a token goal."""
    if cfg.get("stop_token_share"):
        return (f"cycles with batches of {', '.join(map(str, cfg['schedule']))} sentences (the last repeating) "
                f"until the labelled tokens reach {cfg['stop_token_share']:.0%} of train's")
    return f"{cfg['cycles']} cycles of {cfg['batch']} sentences"


def headline(config: dict[str, Any], stats: dict[str, list[dict[str, Any]]], targets: dict[str, Any],
             ref_f1: float | None, n_runs: int) -> str:
    """The paragraph the README shows, regenerated with the results so it cannot go stale."""
    seeds = sorted({s for rows in stats.values() for s in rows[0]["seeds"]})
    parts = [f"CoNLL-2003, {n_runs} run{'s' * (n_runs != 1)} (seeds {seeds}), seed set {config['seed_size']}, then "
             f"{cycles_phrase(config)}, model `{config['base']}`."]
    final = {k: rows[-1] for k, rows in stats.items()}
    parts.append("Final test F1: " + ", ".join(
        f"{TITLES.get(k, k)} {r['f1_mean']:.3f} ± {r['f1_sd']:.3f} ({_fmt_int(r['sentences'])} sentences, "
        f"{_fmt_int(r['tokens'])} tokens)" for k, r in final.items()) + ".")
    if ref_f1 is not None:
        parts.append(f"Full-data reference: {ref_f1:.3f}.")
    parts += ["", *(f"- {line}" for line in target_lines(targets))]
    return "\n".join(parts)
