"""Calibrate the stopping rule on the stored runs: does it fire where the curve flattens? (issue #28)

The plateau of a run is ``nerloop.loop.stopping.plateau_cycle``: the first cycle where the power
law fitted to the run's whole gold-F1 curve (in hindsight) gains less than 0.5 F1 points per
1,000 labelled sentences. The kappa rule (Bloodgood & Vijay-Shanker: kappa >= threshold for
``window`` cycles in a row) is replayed on every stored run that recorded a stop-set kappa per
cycle, over a grid of thresholds and windows, and judged per run by
``nerloop.loop.stopping.judge``: in range (within one cycle of the plateau), early, late, or
unverifiable (a run that never reaches the plateau, where the rule stayed silent or fired only at
the last cycle).

The pair is chosen by: most runs in range; ties: fewest early firings (early costs F1), then
fewest late, then nearest the plateau (fewest cycles between firing and plateau, summed over the
runs in range: a cycle after it is annotation spent for little), then the higher threshold (the
safer side against firing early), then the shorter window. There are few runs, so the choice is
also tested leave-one-run-out: chosen on the others, judged on the held-out run. Per run: the
cycle where the shipped rule fires, the labelled sentences then, the F1 then against the run's best
and final F1 (the F1 left on the table) and the sentences it saves. Writes
``results/stopping_check.json`` and ``.md`` and updates the block in ``benchmarks/README.md``. Only
the stored run files, no training; seconds::

    python benchmarks/stopping_check.py
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from al_setup import LONG_FOLDER
from forecast_check import load_journey, load_runs
from readme_block import update_readme

from nerloop.data.files import atomic_write, write_json
from nerloop.loop.stopping import PLATEAU_GAIN, first_firing, fitted_gain_per_1000, judge, plateau_cycle
from nerloop.params import load_params

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "benchmarks" / "README.md"

THRESHOLDS = tuple(round(0.90 + 0.005 * i, 3) for i in range(19))  # 0.90 .. 0.99
WINDOWS = (1, 2, 3)
# where the stored runs are, and the tag that tells runs of the same strategy and seed apart
SOURCES = ((".", "1,000"), ("long", "long"), (LONG_FOLDER, "long, fitted"), ("issue6", "issue 6"))


def collect(results: Path) -> list[dict[str, Any]]:
    """Every stored curve: label, sentences, F1 and the per-cycle kappas (None where not recorded)."""
    runs = [r | {"label": f"{r['strategy']} seed {r['seed']} ({tag})"}
            for folder, tag in SOURCES for r in load_runs(results / folder)]
    journey = load_journey(results / "journey" / "cpu")
    if journey is not None:
        runs.append(journey | {"label": "hybrid seed 1 (journey)"})
    out = []
    for r in runs:
        cycles = r["cycles"]
        kappas = [c.get("stop_kappa") for c in cycles]
        out.append({"label": r["label"], "sentences": [float(c["labelled_sentences"]) for c in cycles],
                    "f1": [float(c["f1"]) for c in cycles],
                    "kappas": kappas if all(k is not None for k in kappas[1:]) else None})
    return out


def describe(run: dict[str, Any]) -> dict[str, Any]:
    """The run's plateau: the fitted gain per cycle and the first cycle under the floor (or None)."""
    x, y = run["sentences"], run["f1"]
    gains = fitted_gain_per_1000(x, y)
    raw = [1e5 * (y[i + 1] - y[i]) / (x[i + 1] - x[i]) for i in range(len(x) - 1)]
    p = plateau_cycle(x, y)
    return {"label": run["label"], "sentences": x, "f1": y, "kappas": run["kappas"],
            "fitted_gain_per_1000": None if gains is None else [round(g, 3) for g in gains],
            "raw_gain_per_1000_to_next": [round(g, 2) for g in raw],
            "plateau_cycle": p, "plateau_sentences": None if p is None else x[p]}


def replay(run: dict[str, Any], threshold: float, window: int) -> dict[str, Any]:
    """Where the rule fires on ``run``, its verdict, and what stopping there costs and saves."""
    x, y, last = run["sentences"], run["f1"], len(run["sentences"]) - 1
    fires = first_firing(run["kappas"], threshold, window)
    out: dict[str, Any] = {"fires": fires, "verdict": judge(fires, run["plateau_cycle"], last)}
    if fires is None:  # silent: the run went to its end, nothing stopped and nothing saved
        return out | {"sentences": None, "f1": None, "left_vs_best_points": None, "left_vs_final_points": None,
                      "sentences_saved": 0.0}
    return out | {"sentences": x[fires], "f1": y[fires], "left_vs_best_points": round(100 * (max(y) - y[fires]), 2),
                  "left_vs_final_points": round(100 * (y[-1] - y[fires]), 2), "sentences_saved": x[-1] - x[fires]}


def tally(runs: list[dict[str, Any]], threshold: float, window: int) -> dict[str, Any]:
    """How many runs each verdict gets with this pair."""
    verdicts = [replay(r, threshold, window)["verdict"] for r in runs]
    return {"threshold": threshold, "window": window,
            **{v.replace(" ", "_"): verdicts.count(v) for v in ("in range", "early", "late", "unverifiable")}}


def choose(runs: list[dict[str, Any]], thresholds: tuple[float, ...] = THRESHOLDS,
           windows: tuple[int, ...] = WINDOWS) -> dict[str, Any]:
    """The pair with most runs in range; ties: fewest early, fewest late, nearest the plateau, the higher
    threshold, the shorter window."""
    grid = [tally(runs, t, w) for t in thresholds for w in windows]
    for g in grid:
        g["cycles_off"] = sum(abs(replay(r, g["threshold"], g["window"])["fires"] - r["plateau_cycle"])
                              for r in runs if replay(r, g["threshold"], g["window"])["verdict"] == "in range")
    return max(grid, key=lambda g: (g["in_range"], -g["early"], -g["late"], -g["cycles_off"], g["threshold"],
                                    -g["window"]))


def leave_one_out(runs: list[dict[str, Any]], thresholds: tuple[float, ...] = THRESHOLDS,
                  windows: tuple[int, ...] = WINDOWS) -> list[dict[str, Any]]:
    """Each run judged with the pair chosen on all the others."""
    out = []
    for i, run in enumerate(runs):
        pick = choose(runs[:i] + runs[i + 1:], thresholds, windows)
        out.append({"label": run["label"], "threshold": pick["threshold"], "window": pick["window"],
                    **replay(run, pick["threshold"], pick["window"])})
    return out


def separation(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Can kappa alone tell the plateau? The highest kappa at a cycle where firing would be early, against
    the kappas at the cycles within one of a reached plateau."""
    early, in_range = [], []
    for r in runs:
        last, p = len(r["sentences"]) - 1, r["plateau_cycle"]
        for c, k in enumerate(r["kappas"]):
            if k is None:
                continue
            if judge(c, p, last) == "early":
                early.append((k, r["label"], c))
            elif judge(c, p, last) == "in range":
                in_range.append((k, r["label"], c))
    top = max(early, default=None)
    return {"highest_early": None if top is None else {"kappa": top[0], "run": top[1], "cycle": top[2]},
            "in_range": [{"kappa": k, "run": label, "cycle": c} for k, label, c in in_range]}


def _n(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _f1(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"


def _pts(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def headline(chosen: dict[str, Any], shipped: dict[str, Any], old: dict[str, Any], per_run: list[dict[str, Any]],
             loo: list[dict[str, Any]], curves: list[dict[str, Any]]) -> str:
    """The calibration in a few lines: the README block and the top of the report."""
    replayed = [r for r in curves if r["kappas"] is not None]
    reached = [r for r in curves if r["plateau_cycle"] is not None]
    loo_counts = {v: sum(x["verdict"] == v for x in loo) for v in ("in range", "early", "late", "unverifiable")}
    fired = [f"{r['label']} at cycle {r['fires']} ({_n(r['sentences'])} sentences, "
             f"{r['left_vs_best_points']:.2f} points below its best, {_n(r['sentences_saved'])} sentences saved): "
             f"{r['verdict']}" for r in per_run if r["fires"] is not None]
    return "\n".join([
        f"Plateau (the power law fitted to the whole run gains < {PLATEAU_GAIN} F1 points per 1,000 sentences) "
        f"reached within the run in {len(reached)} of {len(curves)} stored curves: "
        + (", ".join(f"{r['label']} at cycle {r['plateau_cycle']} ({_n(r['plateau_sentences'])} sentences)"
                     for r in reached) or "none") + ".",
        "",
        f"The kappa rule replayed on the {len(replayed)} runs with stop-set kappas, thresholds "
        f"{THRESHOLDS[0]}-{THRESHOLDS[-1]} by 0.005, windows {WINDOWS[0]}-{WINDOWS[-1]}:",
        "",
        "| rule | in range | early | late | unverifiable |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(f"| kappa >= {g['threshold']} for {g['window']} cycle(s){note} | {g['in_range']} | {g['early']} | "
          f"{g['late']} | {g['unverifiable']} |"
          for g, note in ((old, ", the earlier default"), (chosen, ", chosen on all runs"),
                          (shipped, ", shipped"))),
        f"| leave-one-run-out (chosen on the other {len(replayed) - 1}) | {loo_counts['in range']} | "
        f"{loo_counts['early']} | {loo_counts['late']} | {loo_counts['unverifiable']} |",
        "",
        "Where the shipped rule fires: " + ("; ".join(fired) or "nowhere") + ". "
        "Elsewhere it stays silent; a run it never stops leaves no F1 on the table but labels to its end.",
    ])


def markdown(text: str, curves: list[dict[str, Any]], grid: list[dict[str, Any]], per_run: list[dict[str, Any]],
             loo: list[dict[str, Any]], sep: dict[str, Any], shipped: dict[str, Any]) -> str:
    lines = [
        "# Stopping rule calibrated on the stored CoNLL-2003 runs",
        "",
        f"Generated by `python benchmarks/stopping_check.py`, {datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}, "
        f"from the stored runs (`runs/`, `long/runs/`, `{LONG_FOLDER}/runs/`, `issue6/runs/`, `journey/cpu/`): "
        "no training.",
        "",
        text,
        "",
        "## Plateau per run",
        "",
        "Fitted gain: the slope of the power law fitted to all of the run's points (Figueroa's weights), at each "
        "cycle's size, in F1 points per 1,000 sentences; the raw gain between successive points is shown for "
        "comparison (it is what one noisy measurement to the next says).",
        "",
        "| run | sentences | F1 | fitted gain per 1,000 | raw gain per 1,000 to the next | plateau at cycle | "
        "kappas |",
        "| --- | --- | --- | --- | --- | ---: | --- |",
    ]
    for r in curves:
        gains = "–" if r["fitted_gain_per_1000"] is None else ", ".join(f"{g:.2f}" for g in r["fitted_gain_per_1000"])
        kappas = "not recorded" if r["kappas"] is None else \
            ", ".join("–" if k is None else f"{k:.4f}" for k in r["kappas"])
        lines.append(f"| {r['label']} | {', '.join(_n(v) for v in r['sentences'])} | "
                     f"{', '.join(f'{v:.3f}' for v in r['f1'])} | {gains} | "
                     f"{', '.join(f'{g:.2f}' for g in r['raw_gain_per_1000_to_next'])} | "
                     f"{'not reached' if r['plateau_cycle'] is None else r['plateau_cycle']} | {kappas} |")
    top = sep["highest_early"]
    lines += [
        "",
        f"## The shipped rule (kappa >= {shipped['threshold']} for {shipped['window']} cycle(s)), per run",
        "",
        "| run | fires at cycle | sentences then | F1 then | best F1 | final F1 | left vs best (points) | "
        "left vs final | sentences saved | verdict | leave-one-out pair | leave-one-out verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    replayed = [r for r in curves if r["kappas"] is not None]
    for r, p, o in zip(replayed, per_run, loo, strict=True):
        lines.append(
            f"| {r['label']} | {'never' if p['fires'] is None else p['fires']} | {_n(p['sentences'])} | "
            f"{_f1(p['f1'])} | {max(r['f1']):.4f} | {r['f1'][-1]:.4f} | "
            f"{_pts(p['left_vs_best_points'])} | {_pts(p['left_vs_final_points'])} | {_n(p['sentences_saved'])} | "
            f"{p['verdict']} | {o['threshold']} / {o['window']} | {o['verdict']} |")
    lines += [
        "",
        "## Can kappa alone separate?",
        "",
        ("No run had a cycle where firing would be early." if top is None else
         f"The highest kappa at a cycle where firing would be early: {top['kappa']:.4f} ({top['run']}, cycle "
         f"{top['cycle']}).")
        + " Kappas at the cycles within one of a reached plateau: "
        + (", ".join(f"{x['kappa']:.4f} ({x['run']}, cycle {x['cycle']})" for x in sep["in_range"]) or "none")
        + ". A threshold between the two separates these runs by kappa alone, so no gain check is added; the "
        "margin is small and rests on one run that reaches the plateau.",
        "",
        "## The grid",
        "",
        "| threshold | window | in range | early | late | unverifiable |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *(f"| {g['threshold']} | {g['window']} | {g['in_range']} | {g['early']} | {g['late']} | "
          f"{g['unverifiable']} |" for g in grid),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=RESULTS, help="folder holding runs/, long/runs/, issue6/runs/ "
                   "and journey/cpu/ (default: the stored ones); the report goes here")
    p.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="the shipped forecast params")
    args = p.parse_args(argv)
    curves = [describe(r) for r in collect(args.results)]
    replayed = [r for r in curves if r["kappas"] is not None]
    if not replayed:
        print(f"no stored run under {args.results} recorded stop-set kappas: nothing to calibrate")
        return 0
    fp = load_params(args.params).forecast
    grid = [tally(replayed, t, w) for t in THRESHOLDS for w in WINDOWS]
    chosen = choose(replayed)
    shipped = tally(replayed, fp.kappa_threshold, fp.window)
    old = tally(replayed, 0.99, 3)
    per_run = [replay(r, fp.kappa_threshold, fp.window) for r in replayed]
    loo = leave_one_out(replayed)
    sep = separation(replayed)
    labelled = [{"label": r["label"]} | x for r, x in zip(replayed, per_run, strict=True)]
    text = headline(chosen, shipped, old, labelled, loo, curves)
    write_json(args.results / "stopping_check.json", {
        "plateau_gain_points_per_1000": PLATEAU_GAIN, "thresholds": list(THRESHOLDS), "windows": list(WINDOWS),
        "criterion": "most runs in range; ties: fewest early, fewest late, fewest cycles between firing and plateau "
                     "(runs in range), the higher threshold, the shorter window",
        "chosen": chosen, "shipped": shipped, "earlier_default": old, "separation": sep,
        "runs": curves, "shipped_per_run": labelled, "leave_one_out": loo, "grid": grid})
    with atomic_write(args.results / "stopping_check.md") as fh:
        fh.write(markdown(text, curves, grid, per_run, loo, sep, shipped))
    if args.results.resolve() == RESULTS.resolve():
        update_readme(README, "stopping_check", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
