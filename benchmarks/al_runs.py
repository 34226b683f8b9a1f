"""Running the active-learning benchmark (``al_curve.py``): one (strategy, seed) run through the real stages,
in-process, cycle by cycle and resumable; and the full-data reference.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from al_setup import (
    ROOT,
    BenchmarkError,
    Corpus,
    Settings,
    gold_subset,
    link,
    resolve_base,
    run_config,
    run_params,
    scratch,
    split_seed_pool,
)

from nerloop.data.files import write_conll, write_json
from nerloop.data.formats import read_conll
from nerloop.params import load_params


def stage_modules() -> dict[str, Any]:
    """The stage modules, imported late so that ``--report-only`` does not load torch.

    "import" and "export" include the two steps ``nerloop cycle`` runs around the DVC graph:
    fetching the annotations into the inbox, and sending the outbox to the (simulated) annotator.
    """
    from types import SimpleNamespace

    from nerloop.loop import cycle
    from nerloop.stages import evaluate, export, import_annotations, prepare, score, train
    from nerloop.stages import select as select_stage

    def fetch_and_import() -> None:
        cycle.fetch(load_params())
        import_annotations.main()

    def export_and_send() -> None:
        export.main()
        cycle.send(load_params())

    return {"prepare": prepare, "import": SimpleNamespace(main=fetch_and_import), "train": train,
            "evaluate": evaluate, "score": score, "select": select_stage,
            "export": SimpleNamespace(main=export_and_send)}


def timed(fn: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    fn()
    return round(time.perf_counter() - t0, 2)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def machine() -> dict[str, Any]:
    import torch

    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def git_commit() -> str | None:
    """The project commit the figures come from (plus '-dirty' when the worktree has changes)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def setup_run(run_dir: Path, corpus: Corpus, settings: Settings, params: dict[str, Any], seed: int) -> None:
    """A fresh run folder: params.yaml, the drawn seed set, a token-only pool, links to gold and answers."""
    shutil.rmtree(run_dir, ignore_errors=True)
    raw = run_dir / "data" / "raw"
    raw.mkdir(parents=True)
    seed_set, pool = split_seed_pool(corpus, settings.seed_size, seed)
    write_conll(raw / "seed.conll", seed_set)
    # tokens only: the pool file carries no labels to leak into selection
    (raw / "pool.jsonl").write_text("".join(json.dumps({"tokens": r.tokens}) + "\n" for r in pool), encoding="utf-8")
    if settings.gold_size:
        write_conll(raw / "gold.conll", gold_subset(corpus, settings.gold_size))
    else:
        link(corpus.test_path, raw / "gold.conll")  # .conll names, so format auto reads them as CoNLL
    link(corpus.train_path, raw / "answers.conll")  # the simulated annotator answers from train's labels
    (run_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def cycle_row(cycle: int, seconds: dict[str, float]) -> dict[str, Any]:
    """One learning-curve point from the stages' own metrics files.

    ``stop_kappa`` (evaluate's agreement with the previous cycle's model on the stop set) lets
    ``forecast_check.py`` replay the stopping rule on the run: stored curves alone cannot.
    """
    ev = read_json(Path("metrics/eval.json"))
    tr = read_json(Path("metrics/train.json"))
    return {
        "cycle": cycle,
        "stop_kappa": read_json(Path("metrics/forecast.json"))["kappa"],
        "ledger_cycle": ev["cycle"],
        "labelled_sentences": ev["labelled_sentences"],
        "labelled_tokens": ev["labelled_tokens"],
        "f1": ev["f1"],
        "precision": ev["precision"],
        "recall": ev["recall"],
        "token_accuracy": ev["token_accuracy"],
        "f1_per_type": {t: round(v["f1"], 4) for t, v in sorted(ev["per_type"].items())},
        "gold_sentences": ev["gold_sentences"],
        "train_sentences": tr["train_sentences"],
        "validation_sentences": tr["validation_sentences"],
        "recipe": tr.get("recipe"),
        "epochs_run": tr["epochs_run"],
        "best_validation_f1": tr["best_validation_f1"],
        "train_seconds": round(tr["train_seconds"] + tr.get("probe_seconds", 0.0), 1),  # probe + refit
        "train_sentences_per_second": tr["train_sentences_per_second"],
        "stage_seconds": seconds,
    }


def run_one(key: str, seed: int, corpus: Corpus, settings: Settings, recipe: dict[str, Any], work: Path,
            runs_dir: Path, keep_models: bool = False, on_cycle: Callable[[], None] | None = None) -> dict[str, Any]:
    """One (strategy, seed) run, resumed from its folder when it was interrupted; returns the run record."""
    out = runs_dir / f"{key}-seed{seed}.json"
    config = run_config(settings, recipe, corpus)
    if out.exists():
        done = read_json(out)
        if done["config"] != config:
            raise BenchmarkError(f"{out} was made with other settings; give another --results folder or delete it")
        print(f"skip {key} seed {seed}: already done ({out.name})")
        return done

    stages = stage_modules()
    run_dir = work / f"{key}-seed{seed}"
    progress_file = run_dir / "progress.json"
    progress = read_json(progress_file) if progress_file.exists() else None
    if progress is None or progress["config"] != config:
        params = run_params(settings, recipe, key, seed, corpus.labels)
        setup_run(run_dir, corpus, settings, params, seed)
        progress = {"config": config, "started_at": now(), "rows": [], "exported": -1, "prepare_seconds": None,
                    "prepare": None}
    else:
        print(f"resume {key} seed {seed} after cycle {len(progress['rows']) - 1}")

    def save() -> None:
        write_json(progress_file, progress)

    t_run = time.perf_counter()
    with contextlib.chdir(run_dir):
        if progress["prepare_seconds"] is None:
            progress["prepare_seconds"] = timed(stages["prepare"].main)
            progress["prepare"] = read_json(Path("metrics/prepare.json"))  # seed, pool and gold sizes
            save()
        token_goal = settings.stop_token_share * sum(len(r.tokens) for r in corpus.train)
        for c in range(settings.cycles + 1):
            if len(progress["rows"]) == c:  # learn from everything labelled so far, and measure on gold
                print(f"== {key} seed {seed}: cycle {c}/{settings.cycles}")
                seconds = {name: timed(stages[name].main) for name in ("import", "train", "evaluate")}
                progress["rows"].append(cycle_row(c, seconds))
                save()
            if token_goal and progress["rows"][c]["labelled_tokens"] >= token_goal:
                break  # the long run's goal: enough of train's tokens are labelled
            if c < settings.cycles and progress["exported"] < c:  # choose and send the next batch
                seconds = {name: timed(stages[name].main) for name in ("score", "select", "export")}
                batch = [json.loads(line) for line in Path("data/selection/batch.jsonl").read_text().splitlines()]
                progress["rows"][c]["stage_seconds"].update(seconds)
                progress["rows"][c]["next_batch"] = {"sentences": len(batch),
                                                     "tokens": sum(len(r["tokens"]) for r in batch)}
                progress["exported"] = c
                save()
            gc.collect()
            if on_cycle:
                on_cycle()
    record = {
        "benchmark": "al_curve",
        "strategy": key,
        "select": run_params(settings, recipe, key, seed, corpus.labels)["select"],
        "seed": seed,
        "config": config,
        "cycles": progress["rows"],
        "prepare": progress.get("prepare"),
        "prepare_seconds": progress["prepare_seconds"],
        "train_seconds_total": round(sum(r["train_seconds"] for r in progress["rows"]), 1),
        "stage_seconds_total": round(sum(sum(r["stage_seconds"].values()) for r in progress["rows"]), 1),
        "wall_seconds_this_sitting": round(time.perf_counter() - t_run, 1),
        "started_at": progress["started_at"],
        "finished_at": now(),
        "nerloop_commit": git_commit(),
        "machine": machine(),
    }
    write_json(out, record)
    if not keep_models:  # ~90 MB each; the ledger, metrics and params stay for inspection
        shutil.rmtree(run_dir / "models", ignore_errors=True)
        shutil.rmtree(run_dir / "data" / "scores", ignore_errors=True)
    return record


def run_reference(corpus: Corpus, settings: Settings, recipe: dict[str, Any], epochs: int, patience: int,
                  work: Path, results: Path) -> dict[str, Any]:
    """Train once on the whole train split, to convergence; its test F1 is the ceiling the curves aim at.

    Every train sentence is trained on (duplicates and sentences also in test left out, as prepare
    does), and the epoch count is chosen by early stopping on the official validation split
    (``valid.txt``, beside train and test): data the benchmark may look at, unlike the test split.
    The epoch cap and patience are reported, with the validation F1 of every epoch, so a reader can
    see that the curve had flattened.
    """
    from nerloop.model.inference import predict_tags, seqeval_scores
    from nerloop.model.training import train
    from nerloop.params import ModelParams, TrainParams
    from nerloop.stages.prepare import dedupe

    out = results / "reference.json"
    config = {**run_config(settings, recipe, corpus), "reference_epochs": epochs, "reference_patience": patience,
              "reference_validation": "valid.txt", "reference_gold": "deduplicated as prepare does"}
    for k in ("seed_size", "batch", "cycles", "subsample", "epochs", "patience", "schedule", "stop_token_share"):
        config.pop(k, None)
    if out.exists() and read_json(out)["config"] == config:
        print(f"skip reference: already done ({out})")
        return read_json(out)
    valid_path = corpus.test_path.with_name("valid.txt")
    if not valid_path.is_file():
        raise BenchmarkError(f"--reference needs CoNLL-2003's validation split at {valid_path}")
    seed_set, pool = split_seed_pool(corpus, 1, seed=1)
    train_set = seed_set + pool
    valid = read_conll(valid_path)
    # the gold set every run is scored on: prepare keeps one copy of each repeated test sentence
    # (269 of CoNLL-2003's 3,453 are repeats, mostly datelines such as "LONDON 1996-12-06")
    gold = dedupe(gold_subset(corpus, settings.gold_size) if settings.gold_size else corpus.test)[0]
    model_params = ModelParams(**{**recipe["model"], "base": resolve_base(settings.base)})
    train_params = TrainParams(**{**recipe["train"], "seed": 1, "epochs": epochs,
                                  "early_stopping_patience": patience})
    labels = ["O"] + [f"{p}-{t}" for t in corpus.labels for p in ("B", "I")]
    model_dir = scratch(work / "reference") / "model"
    t0 = time.perf_counter()
    summary = train(train_set, valid, labels, model_params, train_params, model_dir)
    t_eval = time.perf_counter()
    pred = predict_tags(model_dir, gold, recipe["evaluate"]["batch_size"], model_params.max_length)
    scores = seqeval_scores([r.tags for r in gold], pred)
    record = {
        "benchmark": "al_curve_reference", "config": config,
        "labelled_sentences": len(train_set), "labelled_tokens": sum(len(r.tokens) for r in train_set),
        "f1": round(scores["f1"], 4), "precision": round(scores["precision"], 4),
        "recall": round(scores["recall"], 4), "token_accuracy": round(scores["token_accuracy"], 4),
        "f1_per_type": {t: round(v["f1"], 4) for t, v in sorted(scores["per_type"].items())},
        "gold_sentences": len(gold), **summary,
        "evaluate_seconds": round(time.perf_counter() - t_eval, 1),
        "wall_seconds": round(time.perf_counter() - t0, 1), "finished_at": now(),
        "nerloop_commit": git_commit(), "machine": machine(),
    }
    write_json(out, record)
    shutil.rmtree(model_dir, ignore_errors=True)
    return record
