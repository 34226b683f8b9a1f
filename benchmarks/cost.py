"""How a cycle's cost grows (issue #15): train, score and select, measured on this CPU and projected.

Measured here, each in its own worker process (so its peak RSS is its own), with the real code:

- train: ``nerloop.model.training.train`` (what stage train runs) for ONE epoch, with the loop's own validation
  split (``train.validation_share``), on 1k, 2k, 4k ... labelled CoNLL-2003 train sentences; a cycle
  runs several epochs, so a cycle's training is (epochs) x this;
- score: the real score stage over a pool of 5k, 10k, 20k ... sentences (CoNLL train repeated, a suffix
  token making each copy distinct, as in ``throughput.py``), a fresh tagging head on the base encoder;
- select: the real select stage (hybrid, k-means, shipped defaults) over 10k ... 1M scored rows with
  synthetic scores and 384-d embeddings.

Score and select depend on the pool left to score, not on the labelled set (a labelled sentence only
leaves the pool); training depends on the labelled set. Each series is fitted as a power law
(log-log least squares): a slope of 1 is linear growth. The fits then project a 30k-sentence dataset
grown from a 100k pool, cycle by cycle, on this CPU and on one GPU. There is no GPU here: the GPU
figures divide the CPU fits by speed-ups that are ASSUMPTIONS (``--gpu-train-speedup``,
``--gpu-score-speedup``), printed with every projection; nothing on a GPU was measured.

Resumable: every measurement is written to ``cost.json`` as soon as it is done and skipped on the next
run (``--force`` measures again); other settings in the same results file are refused, not mixed.

Run from the repository root::

    python benchmarks/cost.py                       # ~15 min of CPU on 2 cores
    python benchmarks/cost.py --report-only         # redo the fits, projection and report from cost.json

Writes ``cost.json`` and ``cost.md`` into ``--out`` (default ``benchmarks/results``) and the summary
block of the README's Benchmarks section. Without CoNLL-2003 it says so and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from readme_block import update_readme
from throughput import (
    MAX_LENGTH,
    SCORE_BATCH,
    as_worker,
    big_pool,
    machine,
    make_scoring_model,
    now,
    peak_rss_mib,
    project,
    quiet_transformers,
    sample,
    synthetic_scores,
    timed,
    worker_options,
)
from throughput import (
    run_worker as run_measurement,
)

from nerloop.data.files import read_records, write_json, write_records
from nerloop.data.formats import read_conll
from nerloop.data.tags import entity_types, label_list

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "conll2003"
DEFAULT_OUT = ROOT / "benchmarks" / "results"
DEFAULT_WORK = ROOT / "benchmarks" / "work" / "cost"
README = ROOT / "README.md"
PHASES = ("train", "score", "select")
SIZES = {"train": [500, 1000, 2000], "score": [2500, 5000, 10000], "select": [10_000, 100_000, 1_000_000]}

# The projection's scenario and its assumptions (none of them measured here; all printed with the figures).
PROJECTION = {
    "dataset": 30_000,  # labelled sentences at the end (the product's target)
    "pool": 100_000,  # unlabelled pool at the start
    "seed": 200,
    "batch": 100,  # select.batch_size, the shipped default
    "epochs": 6,  # epochs per cycle: every al_curve.py cycle ran 6 (its cap); params.yaml allows up to 15
    "subsample": 20_000,  # score.subsample in the "capped" scenario
    # ASSUMED one-GPU / one-core-of-this-CPU throughput ratios (not measured: no GPU here). A 22M-parameter
    # encoder at batches of 16 (train) and 64 (score) leaves a GPU mostly waiting on kernel launches.
    "gpu_train_speedup": 30.0,
    "gpu_score_speedup": 30.0,
}


# --------------------------------------------------------------------------- workers
# Each runs with ONE torch thread and reports its CPU seconds (user + system) besides wall time: on a CPU
# shared with other work, wall time swings with the load, and several threads contending for two cores
# spin-wait; CPU seconds of one thread are what the work itself costs, and what the fits use.


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed_cpu(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process) of ``fn()``."""
    c0 = cpu_seconds()
    out, wall = timed(fn)
    return out, wall, cpu_seconds() - c0


def work_train(cfg: dict[str, Any]) -> dict[str, Any]:
    """One epoch of ``nerloop.model.training.train`` on ``cfg['size']`` sentences, split as stage train splits."""
    quiet_transformers()
    from nerloop.model.training import split_validation, train
    from nerloop.params import ModelParams, TrainParams

    records = read_records(cfg["file"])
    tp = TrainParams(**{**cfg["train_params"], "epochs": 1})
    train_set, val_set = split_validation(records, tp.validation_share, tp.seed)
    out_dir = Path(cfg["work"]) / "train-model"
    summary, wall, cpu = timed_cpu(lambda: train(train_set, val_set, cfg["labels"],
                                                 ModelParams(base=cfg["base"], max_length=MAX_LENGTH), tp, out_dir))
    shutil.rmtree(out_dir, ignore_errors=True)
    return {"size": len(records), "train_sentences": len(train_set), "validation_sentences": len(val_set),
            "cpu_seconds": round(cpu, 2), "epoch_seconds": summary["train_seconds"], "wall_seconds": round(wall, 2),
            "sentences_per_s": summary["train_sentences_per_second"], "peak_rss_mib": peak_rss_mib()}


def _stage(cfg: dict[str, Any], module: str) -> dict[str, Any]:
    """Run one real stage's ``main`` in its project folder; wall time and peak memory."""
    quiet_transformers()
    import importlib

    main = importlib.import_module(f"nerloop.stages.{module}").main
    with contextlib.chdir(Path(cfg["project"])):
        _, seconds, cpu = timed_cpu(main)
    return {"size": cfg["size"], "cpu_seconds": round(cpu, 2), "wall_seconds": round(seconds, 2),
            "sentences_per_s": round(cfg["size"] / seconds, 1), "peak_rss_mib": peak_rss_mib()}


def work_score(cfg: dict[str, Any]) -> dict[str, Any]:
    return _stage(cfg, "score")


def work_select(cfg: dict[str, Any]) -> dict[str, Any]:
    return _stage(cfg, "select")


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "train": work_train, "score": work_score, "select": work_select,
}


def run_worker(name: str, cfg: dict[str, Any], in_process: bool) -> dict[str, Any]:
    """One measurement in its own process (throughput's runner), with one BLAS/OpenMP thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return run_measurement(name, cfg, in_process, workers=WORKERS, script=__file__, env=env)


# --------------------------------------------------------------------------- inputs (not timed)


def prepare(phase: str, size: int, ctx: dict[str, Any]) -> dict[str, Any]:
    """Write what one measurement reads into a fresh folder; return its worker config."""
    work = Path(ctx["work"]) / f"{phase}-{size}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cfg = {"work": str(work), "size": size, "labels": ctx["labels"], "base": ctx["base"],
           "train_params": ctx["train_params"]}
    corpus = ctx["corpus"]
    if phase == "train":
        picked = sample(corpus, size, seed=size)
        write_records(work / "labelled.jsonl", picked)
        cfg["file"] = str(work / "labelled.jsonl")
        cfg["size"] = len(picked)
    elif phase == "score":
        proj = project(work / "project", ctx["types"])
        write_records(proj / "data/prepared/pool.jsonl", big_pool(corpus, size))
        (proj / "models").mkdir()
        (proj / "models" / "current").symlink_to(ctx["scoring_model"])
        cfg["project"] = str(proj)
    else:
        proj = project(work / "project", ctx["types"])
        pool = big_pool(corpus, size)
        write_records(proj / "data/prepared/pool.jsonl", pool)
        write_records(proj / "data/prepared/seed.jsonl", sample(corpus, 50, seed=3))
        write_records(proj / "data/prepared/gold.jsonl", [])
        synthetic_scores(pool, ctx["types"], proj / "data" / "scores", seed=4)
        cfg["project"] = str(proj)
    return cfg


# --------------------------------------------------------------------------- fits and projection


def fit(points: list[tuple[float, float]]) -> dict[str, float] | None:
    """Two fits of t against n; None with fewer than two sizes.

    The power law t = a * n^b (least squares in log-log) gives the growth: b = 1 is linear. The
    projection uses the affine fit t = fixed + per_item * n instead: each measurement includes a fixed
    cost (loading the model and libraries) that flattens b at small sizes, and a power law with b < 1
    would underestimate a step 15x beyond the measured range whose per-sentence cost is constant.
    """
    if len({n for n, _ in points}) < 2:
        return None
    x, y = np.log([n for n, _ in points]), np.log([t for _, t in points])
    slope, intercept = np.polyfit(x, y, 1)
    per_item, fixed = np.polyfit([n for n, _ in points], [t for _, t in points], 1)
    return {"slope": round(float(slope), 3), "a": float(math.exp(intercept)),
            "per_item": max(float(per_item), 0.0), "fixed": max(float(fixed), 0.0),  # noise at tiny sizes
            "from": int(min(n for n, _ in points)), "to": int(max(n for n, _ in points))}


def predict(f: dict[str, float], n: float) -> float:
    """Seconds at size ``n`` from the affine fit (see ``fit``)."""
    return f["fixed"] + f["per_item"] * n if n > 0 else 0.0


def project_dataset(fits: dict[str, dict[str, float]], p: dict[str, Any], batch: int,
                    subsample: int = 0) -> dict[str, Any]:
    """Every cycle from the seed set to ``p['dataset']`` labelled sentences: seconds of each step, CPU and GPU.

    Cycle c trains on seed + c x batch sentences (``p['epochs']`` epochs from the base model), scores the
    pool left (or a ``subsample`` of it) and selects from what was scored. Select runs on the CPU either way.
    """
    cycles = math.ceil((p["dataset"] - p["seed"]) / batch)
    totals = {"train": 0.0, "score": 0.0, "select": 0.0}
    last: dict[str, float] = {}
    for c in range(cycles + 1):  # cycle 0 trains on the seed set; the last one trains on the whole dataset
        labelled = min(p["seed"] + c * batch, p["dataset"])
        left = p["pool"] - (labelled - p["seed"])
        scored = min(left, subsample) if subsample else left
        step = {"train": p["epochs"] * predict(fits["train"], labelled),
                "score": predict(fits["score"], scored) if c < cycles else 0.0,  # the last cycle selects nothing
                "select": predict(fits["select"], scored) if c < cycles else 0.0}
        for k, v in step.items():
            totals[k] += v
        last = step if c == cycles else last
    gpu = {"train": totals["train"] / p["gpu_train_speedup"], "score": totals["score"] / p["gpu_score_speedup"],
           "select": totals["select"]}
    last_gpu = {"train": last["train"] / p["gpu_train_speedup"]}
    return {"batch": batch, "subsample": subsample, "cycles": cycles + 1,
            "cpu_hours": {k: round(v / 3600, 2) for k, v in totals.items()},
            "gpu_hours": {k: round(v / 3600, 2) for k, v in gpu.items()},
            "cpu_total_hours": round(sum(totals.values()) / 3600, 1),
            "gpu_total_hours": round(sum(gpu.values()) / 3600, 1),
            "last_cycle_train_minutes": {"cpu": round(last["train"] / 60, 1), "gpu": round(last_gpu["train"] / 60, 1)}}


def analyse(res: dict[str, Any]) -> dict[str, Any]:
    """Fits of every phase with at least two sizes, and the projection when all three are fitted."""
    m = res.get("measurements", {})
    points = {ph: [(v["size"], v["cpu_seconds"]) for k, v in m.items() if k.startswith(f"{ph}:")] for ph in PHASES
    }
    fits = {k: f for k, pts in points.items() if (f := fit(pts))}
    out: dict[str, Any] = {"fits": fits}
    if len(fits) == 3:
        p = res["projection_assumptions"]
        out["projection"] = [project_dataset(fits, p, p["batch"]),
                             project_dataset(fits, p, p["batch"], p["subsample"]),
                             project_dataset(fits, p, 1000, p["subsample"])]
        last = p["pool"] - (p["dataset"] - p["seed"])
        out["last_cycle_cpu_seconds"] = {"train": round(p["epochs"] * predict(fits["train"], p["dataset"]), 1),
                                         "score": round(predict(fits["score"], last), 1),
                                         "select": round(predict(fits["select"], last), 1)}
    return out


# --------------------------------------------------------------------------- report


def _growth(slope: float) -> str:
    return "about linear" if abs(slope - 1) < 0.12 else "sub-linear" if slope < 1 else "super-linear"


def markdown(res: dict[str, Any]) -> str:
    m, a = res.get("measurements", {}), res.get("analysis", {})
    p = res["projection_assumptions"]
    mach = res.get("machine", {})
    lines = [
        "# How a cycle's cost grows",
        "",
        f"Generated by `python benchmarks/cost.py`; model `{res['base']}`, {mach.get('cpus')} CPUs (shared), "
        f"torch {mach.get('torch')}, GPU: {mach.get('gpu') or 'none'}. Each row is one run of the real code in its "
        "own worker process with ONE torch thread (peak RSS = that process's peak, libraries and model included). "
        "Train = ONE epoch with its validation pass, model load and save; score and select = the whole stage. "
        "CPU = CPU seconds of that process (what the fits use); wall time is on a CPU shared with other work, "
        "so it is indicative only.",
        "",
        "| step | size | CPU (1 thread) | per sentence | wall | peak RSS | measured |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for key in sorted(m, key=lambda k: (PHASES.index(k.split(":")[0]), int(k.split(":")[1]))):
        v = m[key]
        phase = key.split(":")[0]
        unit = "labelled" if phase == "train" else "pool" if phase == "score" else "scored rows"
        t = v["cpu_seconds"]
        lines.append(f"| {phase}{' (1 epoch)' if phase == 'train' else ''} | {v['size']:,} {unit} | {t:,.1f} s | "
                     f"{1000 * t / v['size']:.2f} ms | {v['wall_seconds']:,.1f} s | {v['peak_rss_mib'] / 1024:.2f} GiB "
                     f"| {v['measured_at']} |")
    lines += ["", "## Growth", "", "b = slope of the power law t = a·n^b (log-log least squares); the projection "
              "uses the affine fit t = fixed + per sentence × n, since the fixed cost (model and libraries loaded) "
              "is what flattens b at these sizes.", "",
              "| step | b (log-log slope) | growth | fixed | per sentence | fitted on |",
              "| --- | ---: | --- | ---: | ---: | --- |"]
    for k, f in a.get("fits", {}).items():
        lines.append(f"| {k} | {f['slope']:.2f} | {_growth(f['slope'])} | {f['fixed']:.1f} s | "
                     f"{1000 * f['per_item']:.2f} ms | {f['from']:,}-{f['to']:,} |")
    if "projection" in a:
        lc = a["last_cycle_cpu_seconds"]
        lines += [
            "",
            f"## Projection: a {p['dataset']:,}-sentence dataset from a {p['pool']:,} pool (PROJECTED, not measured)",
            "",
            f"Cycle c trains {p['epochs']} epochs on {p['seed']} + c × batch sentences from the base model, scores "
            "what is left of the pool (or a subsample) and selects from it. CPU = core-hours of this CPU from the "
            "affine fits above, extrapolated beyond the measured sizes (divide by the cores a machine gives torch for "
            "its wall time, if threads scale). GPU = those core-hours divided by an ASSUMED speed-up of one GPU "
            f"over one core of this CPU: ×{p['gpu_train_speedup']:g} for training, ×{p['gpu_score_speedup']:g} for "
            "scoring (no GPU was available to measure it; pass your own ratios with `--gpu-train-speedup` "
            "`--gpu-score-speedup --report-only`). Select stays on the CPU in both.",
            "",
            f"Last cycle on one core of this CPU: train {lc['train'] / 60:,.0f} min ({p['dataset']:,} sentences × "
            f"{p['epochs']} epochs), score {lc['score'] / 60:,.0f} min, select {lc['select']:,.0f} s.",
            "",
            "| scenario | cycles | CPU core-hours (train / score / select) | one GPU, hours (train / score / select) |",
            "| --- | ---: | ---: | ---: |",
        ]
        for s in a["projection"]:
            name = f"batch {s['batch']:,}" + (f", score.subsample {s['subsample']:,}" if s["subsample"] else
                                              ", whole pool scored")
            c, g = s["cpu_hours"], s["gpu_hours"]
            lines.append(f"| {name} | {s['cycles']} | {s['cpu_total_hours']:,} ({c['train']:,} / {c['score']:,} / "
                         f"{c['select']:,}) | {s['gpu_total_hours']:,} ({g['train']:,} / {g['score']:,} / "
                         f"{g['select']:,}) |")
    if res.get("calibration"):
        lines += ["", calibration_line(res["calibration"])]
    lines += ["", "## Where the time goes", ""] + [f"- {t}" for t in where_time_goes(res)] + [""]
    return "\n".join(lines)


def calibration(res: dict[str, Any], out: Path) -> dict[str, Any] | None:
    """The same work on this machine when it was idle (``throughput.json``, torch's threads) against here.

    Both are core-seconds per sentence; their ratio says how much the shared CPU inflated the figures here
    (a constant factor: it moves the levels, not the slopes).
    """
    tp_file = out / "throughput.json"
    m = res.get("measurements", {})
    trains = sorted((v for k, v in m.items() if k.startswith("train:")), key=lambda v: v["size"])
    scores = sorted((v for k, v in m.items() if k.startswith("score:")), key=lambda v: v["size"])
    if not tp_file.exists() or not trains or not scores:
        return None
    tp = json.loads(tp_file.read_text(encoding="utf-8"))
    threads = tp.get("machine", {}).get("torch_threads") or 1
    try:
        idle_train = threads / tp["train"]["nerloop"]["sentences_per_s"]
        idle_score = threads / tp["score"]["nerloop"]["sentences_per_s"]
    except (KeyError, ZeroDivisionError):
        return None
    here_train = trains[-1]["cpu_seconds"] / trains[-1]["train_sentences"]
    here_score = scores[-1]["cpu_seconds"] / scores[-1]["size"]
    def pair(idle: float, here: float) -> dict[str, float]:
        return {"idle": round(idle, 4), "here": round(here, 4), "ratio": round(here / idle, 1)}

    return {"idle_measured_at": tp.get("updated_at"), "threads": threads, "train": pair(idle_train, here_train),
            "score": pair(idle_score, here_score)}


def calibration_line(cal: dict[str, Any] | None) -> str:
    if not cal:
        return ""
    t, s = cal["train"], cal["score"]
    return (f"Calibration: on this machine idle ({cal['idle_measured_at']}, throughput.md, {cal['threads']} torch "
            f"threads) training cost {t['idle']} core-s per sentence and scoring {s['idle']}; here, shared with "
            f"other work, {t['here']} (validation pass, load and save included) and {s['here']} (the whole stage): "
            f"×{t['ratio']:g} and ×{s['ratio']:g}. The levels here are inflated by about that much (the slopes are "
            "not: a constant factor); divide the CPU hours by it for an idle machine.")


def where_time_goes(res: dict[str, Any]) -> list[str]:
    """The findings, in words, from the fits and the projection (empty until all three are fitted)."""
    a = res.get("analysis", {})
    if "projection" not in a:
        return ["not enough sizes measured yet for a projection"]
    f, (whole, capped, big) = a["fits"], a["projection"]
    return [
        f"Training dominates: an epoch costs {1000 * f['train']['per_item']:.0f} ms of CPU per labelled sentence "
        f"(b = {f['train']['slope']:.2f} with the fixed load cost: linear beyond it) and every cycle retrains "
        "from the base model on all labels (on purpose: no drift, comparable scores), so over a whole run it "
        "grows with the square of the dataset over the batch size: "
        f"{whole['cpu_hours']['train']:,} core-hours of training for {whole['cycles']} cycles of "
        f"{whole['batch']}, {big['cpu_hours']['train']:,} with batches of {big['batch']:,}.",
        f"Scoring costs {1000 * f['score']['per_item']:.1f} ms per pool sentence (b = {f['score']['slope']:.2f}, "
        "linear beyond the fixed load cost); "
        f"score.subsample caps it per cycle: {whole['cpu_hours']['score']:,} -> {capped['cpu_hours']['score']:,} "
        "core-hours over the run, and the Ray engine spreads what is left over a cluster.",
        f"Selection is cheap (b = {f['select']['slope']:.2f}; measured up to {f['select']['to']:,} rows).",
        "What the loop does about it: score.subsample (shipped, off by default), larger select.batch_size as the "
        "set grows (fewer retrainings), early stopping (train.early_stopping_patience), the Ray engine for "
        "scoring. Not built, an idea from Tsvigun et al. (2022, 'Towards Computationally Feasible Deep Active "
        "Learning'): acquire with a smaller, faster model than the one the final dataset is trained for, since "
        "the acquisition model is retrained every cycle and the final one once.",
    ]


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CoNLL-2003 folder with train.txt")
    p.add_argument("--base", default="minilm", help="model.base: bundled name or local checkpoint (default minilm)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results folder (default benchmarks/results)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder (git-ignored)")
    p.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="the training recipe (train section)")
    for phase, sizes in SIZES.items():
        p.add_argument(f"--{phase}-sizes", type=int, nargs="+", default=sizes, help=f"default {sizes}")
    p.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    for key in ("gpu_train_speedup", "gpu_score_speedup"):
        p.add_argument(f"--{key.replace('_', '-')}", type=float, default=PROJECTION[key],
                       help=f"ASSUMED GPU/CPU ratio (default {PROJECTION[key]:g})")
    p.add_argument("--epochs-per-cycle", type=int, default=PROJECTION["epochs"])
    p.add_argument("--force", action="store_true", help="measure again what cost.json already holds")
    p.add_argument("--report-only", action="store_true", help="no measuring: fits, projection and report")
    worker_options(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        import torch

        torch.set_num_threads(1)
        return as_worker(args.worker, WORKERS)
    out = args.out.resolve()
    results_file = out / "cost.json"
    base = str(Path(args.base).resolve()) if Path(args.base).exists() else args.base
    res = json.loads(results_file.read_text(encoding="utf-8")) if results_file.exists() else {}
    if res and res.get("base") != base:
        print(f"error: {results_file} holds figures for model {res.get('base')!r}, not {base!r}: use another --out",
              file=sys.stderr)
        return 2
    res.setdefault("measurements", {})
    res.update({"benchmark": "cost", "base": base, "max_length": MAX_LENGTH, "score_batch": SCORE_BATCH,
                "projection_assumptions": {**PROJECTION, "epochs": args.epochs_per_cycle,
                                           "gpu_train_speedup": args.gpu_train_speedup,
                                           "gpu_score_speedup": args.gpu_score_speedup}})
    if not args.report_only:
        train_file = args.data / "train.txt"
        if not train_file.is_file():
            print(f"skipped: CoNLL-2003 not found at {args.data} (needs train.txt); nothing was measured. "
                  "Point --data at the folder holding it.")
            return 0
        measure(args, res, base, train_file, results_file)
    res["analysis"] = analyse(res)
    res["calibration"] = calibration(res, out)
    res["machine"] = res.get("machine") or machine()
    out.mkdir(parents=True, exist_ok=True)
    write_json(results_file, res)
    md = markdown(res)
    (out / "cost.md").write_text(md, encoding="utf-8")
    print(md)
    if out == DEFAULT_OUT.resolve():
        update_readme(README, "cost", readme_block(res))
    return 0


def measure(args: argparse.Namespace, res: dict[str, Any], base: str, train_file: Path, results_file: Path) -> None:
    """Measure every (phase, size) not yet in ``res``, saving after each one (the resume point)."""
    from nerloop.params import load_params

    wanted = [(ph, n) for ph in args.phases for n in getattr(args, f"{ph}_sizes")]
    todo = [(ph, n) for ph, n in wanted if args.force or f"{ph}:{n}" not in res["measurements"]]
    for ph, n in wanted:
        if (ph, n) not in todo:
            print(f"skip {ph} {n:,}: measured {res['measurements'][f'{ph}:{n}']['measured_at']} (--force to redo)")
    if not todo:
        return
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / ".gitignore").write_text("*\n", encoding="utf-8")  # corpus text and models: never committed
    corpus = read_conll(train_file)
    types = entity_types(r.tags for r in corpus)
    ctx = {"work": str(work), "corpus": corpus, "types": types, "labels": label_list(types), "base": base,
           "train_params": load_params(args.params).train.dict()}
    if any(ph == "score" for ph, _ in todo):
        make_scoring_model(base, ctx["labels"], work / "scoring-model")
        ctx["scoring_model"] = str(work / "scoring-model")
    for ph, n in todo:
        print(f"-- {ph} {n:,}: preparing (not timed) ...", flush=True)
        cfg = prepare(ph, n, ctx)
        r = run_worker(ph, cfg, args.in_process)
        r["measured_at"] = now()
        res["measurements"][f"{ph}:{n}"] = r
        shutil.rmtree(cfg["work"], ignore_errors=True)  # 1M-row pools are large
        results_file.parent.mkdir(parents=True, exist_ok=True)
        write_json(results_file, res)
        t = r.get("epoch_seconds", r["wall_seconds"])
        print(f"   {ph} {n:,}: {t:,.1f} s, peak RSS {r['peak_rss_mib'] / 1024:.2f} GiB", flush=True)
    shutil.rmtree(work, ignore_errors=True)


def readme_block(res: dict[str, Any]) -> str:
    """The README summary: per-step growth, the last cycle, the projected totals."""
    a, p = res["analysis"], res["projection_assumptions"]
    if "projection" not in a:
        return "Cost benchmark: not enough sizes measured yet (`python benchmarks/cost.py`)."
    f, lc = a["fits"], a["last_cycle_cpu_seconds"]
    whole, capped, big = a["projection"]
    m = res["measurements"]
    rows = ["| step | measured here: size: CPU seconds (1 thread), peak RSS | growth b |", "| --- | --- | ---: |"]
    for ph in PHASES:
        pts = sorted((v for k, v in m.items() if k.startswith(f"{ph}:")), key=lambda v: v["size"])
        shown = ", ".join(f"{v['size']:,}: {v['cpu_seconds']:,.0f} s "
                          f"{v['peak_rss_mib'] / 1024:.1f} GiB" for v in pts)
        rows.append(f"| {ph}{' (1 epoch, labelled)' if ph == 'train' else ' (pool)' if ph == 'score' else ' (rows)'}"
                    f" | {shown} | {f[ph]['slope']:.2f} |")
    return "\n".join([
        f"Cost of a cycle as it grows (`benchmarks/results/cost.md`; this 2-core CPU, model `{res['base']}`):", "",
        *rows, "",
        f"Projected, not measured: a {p['dataset']:,}-sentence dataset from a {p['pool']:,} pool, {p['epochs']} "
        f"epochs per cycle. Its last cycle on one core here: train {lc['train'] / 60:,.0f} min, score "
        f"{lc['score'] / 60:,.0f} min, select {lc['select']:,.0f} s. The whole run, batches of {whole['batch']} "
        f"({whole['cycles']} cycles): {whole['cpu_total_hours']:,} core-hours, {whole['gpu_total_hours']:,} h on one "
        "GPU; with "
        f"score.subsample {capped['subsample']:,}: {capped['gpu_total_hours']:,} h; with batches of "
        f"{big['batch']:,}: {big['gpu_total_hours']:,} h. GPU hours assume one GPU trains ×{p['gpu_train_speedup']:g} "
        f"and scores ×{p['gpu_score_speedup']:g} faster than one core here (an assumption: no GPU here). Training is "
        "most of it and grows with the square of the dataset over the batch size, since every cycle retrains "
        "from the base model. " + calibration_line(res.get("calibration")),
    ])


if __name__ == "__main__":
    sys.exit(main())
