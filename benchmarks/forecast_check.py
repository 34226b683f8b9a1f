"""Does the forecast hold? Checked on the stored CoNLL-2003 learning curves.

For each finished run of ``al_curve.py`` (``results/runs/*.json``: 5 points, 200 to 1,000
labelled sentences), the forecast of ``nerloop.loop.forecast`` is made from cycles 0..k, k = half the
cycles, with the shipped ``forecast`` params, and compared with what the run reached later:

- the final F1, predicted at the final size: error in F1 points, and whether the 90% band holds it;
- the sentences (and tokens) needed to reach that final F1: the forecast against the first size
  where the observed curve reaches it (interpolated), relative error;
- the 90% band's width there, and how wide it would be, and how often it would hold the final F1,
  with other noise floors (``--floors``), beside the noise measured as the scatter of every run
  around its own curve fitted in hindsight: what the floor should be, measured rather than tuned;
- the stopping rule with the shipped params: where it fires against the plateau of
  ``nerloop.loop.stopping.plateau_cycle`` (the fitted curve gains < 0.5 points per 1,000
  sentences); replayed where a run recorded ``stop_kappa`` per cycle, unverifiable where it did
  not. ``stopping_check.py`` calibrates the rule.

Targets (fixed here, never tuned on the test split; the method was fixed before this check ran):
the final F1 within 2 points and the sentences within 25%, on every run; the rule fires within
one cycle of the plateau. Writes ``forecast_check.json`` and ``.md`` into the first results
folder and, for the stored runs, updates the block in ``benchmarks/README.md``. Needs only the run
files, runs in a minute::

    python benchmarks/forecast_check.py --results benchmarks/results benchmarks/results/long
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from al_setup import LONG_FOLDER
from readme_block import update_readme

from nerloop.data.files import atomic_write, write_json
from nerloop.loop.forecast import fit_power_law, forecast
from nerloop.loop.stopping import PLATEAU_GAIN, first_firing, fitted_gain_per_1000, judge, plateau_cycle
from nerloop.params import ForecastParams, load_params

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "benchmarks" / "README.md"

TARGET_F1_POINTS = 2.0  # |predicted - actual final F1|, in F1 points
TARGET_SENTENCES = 0.25  # |predicted - actual sentences to the final F1| / actual
FLOORS = (0.0, 0.005, 0.0075, 0.01, 0.015)  # noise floors the band is also drawn with (0: the fit's scatter only)


def first_reach(x: list[float], y: list[float], level: float) -> float:
    """The first size where the observed curve reaches ``level``, linear between points."""
    for i, (xi, yi) in enumerate(zip(x, y, strict=True)):
        if yi >= level:
            if i == 0:
                return xi
            return x[i - 1] + (level - y[i - 1]) / (yi - y[i - 1]) * (xi - x[i - 1])
    return math.inf


def load_runs(folder: Path) -> list[dict[str, Any]]:
    """The finished ``al_curve.py`` runs stored in ``folder/runs``, in name order."""
    return [json.loads(f.read_text(encoding="utf-8")) for f in sorted((folder / "runs").glob("*-seed*.json"))]


def load_journey(folder: Path) -> dict[str, Any] | None:
    """The journey's cycle files as one run in ``al_curve``'s shape (its kappas sit in each cycle's forecast)."""
    files = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("cycle-*.json"))]
    if not files:
        return None
    cycles = [{"cycle": c["cycle"], "labelled_sentences": c["labelled_sentences"],
               "labelled_tokens": c["labelled_tokens"], "f1": c["f1"], "stop_kappa": c["forecast"]["kappa"]}
              for c in files]
    return {"strategy": "hybrid (journey)", "seed": 1, "cycles": cycles}


def size_check(fc: Any, x: list[float], y: list[float]) -> dict[str, Any]:
    """Forecast sizes to the run's final F1 against the observed first crossing."""
    need, low, high = fc.n_for(y[-1])
    actual = first_reach(x, y, y[-1])
    error = (need - actual) / actual
    return {"predicted": None if math.isinf(need) else round(need), "low": None if math.isinf(low) else round(low),
            "high": None if math.isinf(high) else round(high), "actual": round(actual),
            "error": None if math.isinf(error) else round(error, 4),
            "within": bool(abs(error) <= TARGET_SENTENCES)}


def stopping_check(run: dict[str, Any], x: list[float], y: list[float], fp: ForecastParams) -> dict[str, Any]:
    """The plateau cycle, and where the kappa rule (shipped params) fires against it when it can be replayed."""
    slopes = fitted_gain_per_1000(x, y)
    plateau = plateau_cycle(x, y)
    out: dict[str, Any] = {"fitted_gain_per_1000": None if slopes is None else [round(v, 3) for v in slopes],
                           "plateau_cycle": plateau}
    if not all(c.get("stop_kappa") is not None for c in run["cycles"][1:]):
        return out | {"kappas": None, "fires": None, "verdict": None, "met": None,
                      "why": "no stop-set predictions recorded in this run: the kappa rule cannot be replayed"}
    kappas = [c.get("stop_kappa") for c in run["cycles"]]
    fires = first_firing(kappas, fp.kappa_threshold, fp.window)
    verdict = judge(fires, plateau, len(x) - 1)
    met = None if verdict == "unverifiable" else verdict == "in range"
    return out | {"kappas": kappas, "fires": fires, "verdict": verdict, "met": met, "why": None}


def band_at(x: list[float], y: list[float], k: int, noise: float, fp: ForecastParams) -> dict[str, Any]:
    """The 90% band at the final size from cycles 0..k with noise floor ``noise``: edges, width, coverage."""
    fc = forecast(x[: k + 1], y[: k + 1], noise=noise, resamples=fp.resamples, seed=fp.seed)
    low, high = (float(v[0]) for v in fc.band([x[-1]]))
    return {"floor": noise, "sd": round(fc.noise, 4), "low": round(low, 4), "high": round(high, 4),
            "width_points": round(100 * (high - low), 2), "covers": bool(low <= y[-1] <= high)}


def hindsight_noise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The sd of gold-F1 points around each run's own curve fitted to all of it (pooled, n - 3 degrees of freedom)."""
    per_run, ss, dof = [], 0.0, 0
    for run in runs:
        x = [float(c["labelled_sentences"]) for c in run["cycles"]]
        y = [float(c["f1"]) for c in run["cycles"]]
        resid = np.asarray(y) - fit_power_law(x, y)(x)
        ss, dof = ss + float(np.sum(resid**2)), dof + len(x) - 3
        per_run.append(round(math.sqrt(float(np.sum(resid**2)) / (len(x) - 3)), 4))
    return {"pooled_sd": round(math.sqrt(ss / dof), 4), "per_run_sd": per_run,
            "median_sd": round(float(np.median(per_run)), 4), "dof": dof}


def check_run(run: dict[str, Any], fp: ForecastParams, floors: tuple[float, ...] = FLOORS) -> dict[str, Any]:
    """One run: forecast from cycles 0..k (k = half the cycles), and from all but the last, against the end."""
    cycles = run["cycles"]
    last = len(cycles) - 1
    k = last // 2
    sentences = [float(c["labelled_sentences"]) for c in cycles]
    tokens = [float(c["labelled_tokens"]) for c in cycles]
    f1 = [float(c["f1"]) for c in cycles]
    fc = forecast(sentences[: k + 1], f1[: k + 1], noise=fp.f1_noise, resamples=fp.resamples, seed=fp.seed)
    fc_tokens = forecast(tokens[: k + 1], f1[: k + 1], noise=fp.f1_noise, resamples=fp.resamples, seed=fp.seed)
    late = forecast(sentences[:last], f1[:last], noise=fp.f1_noise, resamples=fp.resamples, seed=fp.seed)
    predicted = float(fc.law(sentences[-1]))
    low, high = (float(v[0]) for v in fc.band([sentences[-1]]))
    late_low, late_high = (float(v[0]) for v in late.band([sentences[-1]]))
    return {
        "run": run.get("label", f"{run['strategy']} seed {run['seed']}"),
        "strategy": run["strategy"], "seed": run["seed"], "fit_cycles": k + 1,
        "fit_sentences": sentences[k], "final_sentences": sentences[-1],
        "ceiling": round(fc.law.a, 4),
        "final_f1": {"predicted": round(predicted, 4), "low": round(low, 4), "high": round(high, 4),
                     "width_points": round(100 * (high - low), 2), "noise_sd": round(fc.noise, 4),
                     "actual": f1[-1], "error_points": round(100 * (predicted - f1[-1]), 2),
                     "within": bool(abs(100 * (predicted - f1[-1])) <= TARGET_F1_POINTS),
                     "band_covers": bool(low <= f1[-1] <= high)},
        "sentences_to_final_f1": size_check(fc, sentences, f1),
        "tokens_to_final_f1": size_check(fc_tokens, tokens, f1),
        "late_forecast": {"fit_cycles": last, "predicted": round(float(late.law(sentences[-1])), 4),
                          "error_points": round(100 * (float(late.law(sentences[-1])) - f1[-1]), 2),
                          "width_points": round(100 * (late_high - late_low), 2),
                          "band_covers": bool(late_low <= f1[-1] <= late_high)},
        "floors": [band_at(sentences, f1, k, v, fp) for v in floors],
        "stopping": stopping_check(run, sentences, f1, fp),
    }


def summarise(checks: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(checks)
    f1_err = [abs(c["final_f1"]["error_points"]) for c in checks]
    s_err = [math.inf if (e := c["sentences_to_final_f1"]["error"]) is None else abs(e) for c in checks]
    width = [c["final_f1"]["width_points"] for c in checks]
    kappa = [c["stopping"]["met"] for c in checks if c["stopping"]["met"] is not None]
    floors = [{"floor": f["floor"], "covers": sum(c["floors"][i]["covers"] for c in checks),
               "width_min": min(w := [c["floors"][i]["width_points"] for c in checks]),
               "width_median": round(float(np.median(w)), 2), "width_max": max(w)}
              for i, f in enumerate(checks[0]["floors"])]
    return {
        "runs": n,
        "final_f1_within": sum(c["final_f1"]["within"] for c in checks),
        "final_f1_mean_abs_error_points": round(float(np.mean(f1_err)), 2),
        "final_f1_max_abs_error_points": round(max(f1_err), 2),
        "band_covers": sum(c["final_f1"]["band_covers"] for c in checks),
        "band_width_min": min(width), "band_width_median": round(float(np.median(width)), 2),
        "band_width_max": max(width),
        "late_band_covers": sum(c["late_forecast"]["band_covers"] for c in checks),
        "late_band_width_median": round(float(np.median([c["late_forecast"]["width_points"] for c in checks])), 2),
        "floors": floors,
        "sentences_within": sum(c["sentences_to_final_f1"]["within"] for c in checks),
        "sentences_never_reached": sum(c["sentences_to_final_f1"]["predicted"] is None for c in checks),
        "sentences_median_abs_error": _finite(round(float(np.median(s_err)), 4)),  # None: a ceiling below it
        "late_mean_abs_error_points": round(float(np.mean([abs(c["late_forecast"]["error_points"])
                                                           for c in checks])), 2),
        "plateau_in": sum(c["stopping"]["plateau_cycle"] is not None for c in checks),
        "kappa_runs": sum(c["stopping"]["kappas"] is not None for c in checks),
        "kappa_judged": len(kappa), "kappa_in_range": sum(kappa),
        "met_final_f1": all(c["final_f1"]["within"] for c in checks),
        "met_sentences": all(c["sentences_to_final_f1"]["within"] for c in checks),
        "met_stopping": all(kappa) if kappa else None,
    }


def _finite(v: float) -> float | None:
    return None if math.isinf(v) else v


def _verdict(met: bool | None) -> str:
    return "n/a" if met is None else "**met**" if met else "**not met**"


def _n(v: float | None) -> str:
    return "never" if v is None else f"{v:,.0f}"


def _fires(cycle: int | None) -> str:
    return "never fires" if cycle is None else f"fires at {cycle}"


def _pct(v: float | None) -> str:
    return "∞" if v is None else f"{100 * v:+.0f}%"


def _sizes(checks: list[dict[str, Any]], key: str) -> str:
    return " or ".join(sorted({_n(c[key]) for c in checks}, key=lambda v: float(v.replace(",", ""))))


def headline(s: dict[str, Any], fp: ForecastParams, checks: list[dict[str, Any]], noise: dict[str, Any]) -> str:
    """The targets in a few lines: the README block and the top of the report."""
    if not s["kappa_runs"]:
        kappa = "not verifiable: no run recorded stop-set predictions"
    else:
        kappa = (f"replayed on the {s['kappa_runs']} run(s) that recorded stop-set kappas: in range on "
                 f"{s['kappa_in_range']} of the {s['kappa_judged']} that can be judged (the others cannot: no "
                 "plateau within the run and no firing before its last cycle, or a plateau at the last cycle)")
    floors = "; ".join(f"{f['floor']:g}: {f['covers']} of {s['runs']}, {f['width_min']:.1f}-{f['width_max']:.1f}"
                       for f in s["floors"])
    return "\n".join([
        f"Forecast from the first half of each run ({_sizes(checks, 'fit_sentences')} labelled sentences) of the "
        f"{s['runs']} stored CoNLL-2003 runs, to {_sizes(checks, 'final_sentences')} sentences (shipped params: noise "
        f"floor {fp.f1_noise}, {fp.resamples} resamples; stopping rule kappa >= {fp.kappa_threshold} for "
        f"{fp.window} cycle(s)):",
        "",
        "| target | measured | verdict |",
        "| --- | --- | --- |",
        f"| final F1 within {TARGET_F1_POINTS:g} points | {s['final_f1_within']} of {s['runs']} runs; mean error "
        f"{s['final_f1_mean_abs_error_points']:.2f}, worst {s['final_f1_max_abs_error_points']:.2f} points; the 90% "
        f"band holds the final F1 in {s['band_covers']} of {s['runs']}, {s['band_width_min']:.1f}-"
        f"{s['band_width_max']:.1f} points wide (median {s['band_width_median']:.1f}) | "
        f"{_verdict(s['met_final_f1'])} |",
        f"| sentences to the final F1 within {100 * TARGET_SENTENCES:.0f}% | {s['sentences_within']} of {s['runs']} "
        f"runs ({s['sentences_never_reached']} forecast a ceiling below it); median absolute error "
        + ("∞" if (m := s["sentences_median_abs_error"]) is None else f"{100 * m:.0f}%")
        + f" | {_verdict(s['met_sentences'])} |",
        f"| kappa rule fires within 1 cycle of the plateau (the fitted curve gains < {PLATEAU_GAIN} points / 1,000 "
        f"sentences) | {kappa}; the curve reaches the plateau within the run in {s['plateau_in']} of {s['runs']} | "
        f"{_verdict(s['met_stopping'])} |",
        "",
        f"With all but the last point the final-F1 error drops to {s['late_mean_abs_error_points']:.2f} points on "
        f"average and the band to a median {s['late_band_width_median']:.1f} points (holding the final F1 in "
        f"{s['late_band_covers']} of {s['runs']}). The band with other noise floors (floor: runs held, width in "
        f"points): {floors}. Measured noise, the scatter of each run around its own curve fitted to all of it: "
        f"sd {noise['pooled_sd']:.4f} pooled ({noise['dof']} degrees of freedom), median run {noise['median_sd']:.4f}.",
    ])


def markdown(checks: list[dict[str, Any]], s: dict[str, Any], fp: ForecastParams, noise: dict[str, Any],
             sources: str) -> str:
    c0 = checks[0]
    lines = [
        "# Forecast check on the CoNLL-2003 learning curves",
        "",
        f"Generated by `python benchmarks/forecast_check.py` from {sources}, "
        f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}. Inverse power law fitted with Figueroa et al.'s "
        f"weights to the first half of each run (cycles 0..{c0['fit_cycles'] - 1} of the first), band from "
        f"{fp.resamples} parametric resamples (90%). Targets fixed in the script, not tuned on the test split.",
        "",
        headline(s, fp, checks, noise),
        "",
        "## Per run",
        "",
        "| run | ceiling | final F1 forecast [90% band] | width | actual | error (points) | sentences to it: forecast "
        "[band] | actual | error | tokens error | error from all but the last point | fitted gain per 1,000 "
        "sentences by cycle | plateau at cycle | kappa rule |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for c in checks:
        f, n, t, st = c["final_f1"], c["sentences_to_final_f1"], c["tokens_to_final_f1"], c["stopping"]
        gains_text = "–" if st["fitted_gain_per_1000"] is None else \
            ", ".join(f"{v:.2f}" for v in st["fitted_gain_per_1000"])
        kappa = "n/a (no kappas recorded)" if st["kappas"] is None else \
            f"{_fires(st['fires'])}: {st['verdict']}"
        lines.append(
            f"| {c['run']} | {c['ceiling']:.3f} | {f['predicted']:.4f} [{f['low']:.3f}–{f['high']:.3f}] | "
            f"{f['width_points']:.1f} | {f['actual']:.4f} | {f['error_points']:+.2f} | {_n(n['predicted'])} "
            f"[{_n(n['low'])}–{_n(n['high'])}] | {_n(n['actual'])} | {_pct(n['error'])} | {_pct(t['error'])} | "
            f"{c['late_forecast']['error_points']:+.2f} | {gains_text} | "
            f"{'–' if st['plateau_cycle'] is None else st['plateau_cycle']} | {kappa} |")
    lines += [
        "",
        "## The band with other noise floors",
        "",
        "The band's noise is the larger of the floor and the fit's residual scatter (0 with 3 points). Per run, "
        "width in points (held the final F1? y/n):",
        "",
        "| run | " + " | ".join(f"floor {f['floor']:g}" for f in s["floors"]) + " |",
        "| --- | " + " | ".join("---:" for _ in s["floors"]) + " |",
    ]
    for c in checks:
        lines.append(f"| {c['run']} | " + " | ".join(
            f"{b['width_points']:.1f} ({'y' if b['covers'] else 'n'})" for b in c["floors"]) + " |")
    lines += [
        "| **runs held** | " + " | ".join(f"**{f['covers']} of {s['runs']}**" for f in s["floors"]) + " |",
        "",
        "Scatter of each run around its own curve fitted to all its points (sd, n - 3 degrees of freedom): "
        + ", ".join(f"{c['run']} {v:.4f}" for c, v in zip(checks, noise["per_run_sd"], strict=True))
        + f"; pooled {noise['pooled_sd']:.4f}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, nargs="+", default=[RESULTS, RESULTS / "long", RESULTS / LONG_FOLDER],
                   help="folders with runs/*.json; the report goes into the first (default: the stored runs, short "
                        "and long, both recipes)")
    p.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="forecast params: the shipped ones")
    p.add_argument("--floors", type=float, nargs="*", default=list(FLOORS),
                   help="noise floors to draw the band with beside the shipped one")
    args = p.parse_args(argv)
    runs = [r | {"label": f"{r['strategy']} seed {r['seed']}" + (f" ({folder.name})" if i else "")}
            for i, folder in enumerate(args.results) for r in load_runs(folder)]
    runs = [r for r in runs if len(r["cycles"]) >= 5]  # half of them must hold the 3 points a fit needs
    out = args.results[0]
    if not runs:
        print(f"no runs with at least 5 cycles in {', '.join(str(f / 'runs') for f in args.results)}: nothing to check")
        return 0
    fp = load_params(args.params).forecast
    checks = [check_run(r, fp, tuple(args.floors)) for r in runs]
    summary = summarise(checks)
    noise = hindsight_noise(runs)
    write_json(out / "forecast_check.json", {
        "targets": {"final_f1_points": TARGET_F1_POINTS, "sentences_relative": TARGET_SENTENCES,
                    "plateau_gain_points_per_1000": PLATEAU_GAIN},
        "params": fp.dict(), "summary": summary, "hindsight_noise": noise, "runs": checks})
    sources = ", ".join(f"`{_rel(f)}/runs`" for f in args.results)
    with atomic_write(out / "forecast_check.md") as fh:
        fh.write(markdown(checks, summary, fp, noise, sources))
    text = headline(summary, fp, checks, noise)
    if out.resolve() == RESULTS.resolve():
        update_readme(README, "forecast_check", text)
    print(text)
    return 0


def _rel(folder: Path) -> str:
    try:
        return str(folder.resolve().relative_to(RESULTS.parent.resolve()))
    except ValueError:
        return str(folder)


if __name__ == "__main__":
    sys.exit(main())
