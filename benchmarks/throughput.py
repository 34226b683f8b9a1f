"""How fast the loop runs on this machine, each figure next to a bare PyTorch baseline (issues #2, #3, #6).

Measured side by side in one run, on CoNLL-2003 sentences, with the same model:

- training: ``nerloop.model.training.train`` (what stage train runs) against a bare PyTorch loop (AdamW,
  dynamic padding, shuffled batches) over the same sentences with the same batch size;
- scoring: ``nerloop.model.inference.predict(..., embeddings=True)`` + ``uncertainty.score_sentence`` +
  ``stages.score.pre_annotation`` (what stage score runs per sentence) against a bare forward pass
  (length-sorted batches of 64, softmax only);
- streaming: the real score stage over a large pool (CoNLL train repeated, a suffix token making
  every copy distinct), for its peak memory;
- selection: the real select stage (hybrid, k-means included) over synthetic scored rows with
  384-d embeddings;
- export and import of a batch through the simulated annotator (the real stages).

Every measurement runs in its own worker process, so its peak memory (peak RSS) is its own;
training and scoring alternate bare / nerloop ``--repeats`` times and report the median, which
evens out a CPU shared with other work. ``--in-process`` runs everything in this process instead
(for tests: memory figures are then the whole process's peak).

Run from the repository root::

    python benchmarks/throughput.py              # ~15 min on 2 cores, ~10 of them the 100k-sentence stream
    python benchmarks/throughput.py --quick      # ~3 min, into benchmarks/work/quick/throughput/
    python benchmarks/throughput.py --phases stream --pool-size 100000   # one phase; the others are kept

Writes ``throughput.json`` and ``throughput.md`` into ``--out`` (default ``benchmarks/results``).
Without CoNLL-2003 (``../shared/data/conll2003``) it says so and exits 0 without measuring anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from readme_block import update_readme

from nerloop import paths
from nerloop.data.files import read_records, write_json, write_records
from nerloop.data.formats import read_conll
from nerloop.data.records import Record
from nerloop.data.tags import entity_types, label_list, tags_to_spans, token_to_char_spans

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "conll2003"
DEFAULT_OUT = ROOT / "benchmarks" / "results"
DEFAULT_WORK = ROOT / "benchmarks" / "work" / "throughput"
QUICK_OUT = ROOT / "benchmarks" / "work" / "quick" / "throughput"
README = ROOT / "benchmarks" / "README.md"
PHASES = ("train", "score", "stream", "select", "io")

# Targets of issues #2 and #3; fixed here, never tuned to the results.
TRAIN_TARGET = 25.0  # sentences/s with the bundled encoder on 2 cores
SCORE_TARGET = 0.85  # nerloop scoring throughput / bare forward pass throughput
STREAM_TARGET_GIB = 4.0  # peak RSS while scoring a 100k pool
STREAM_TARGET_SIZE = 100_000
SELECT_TARGET_S = 30.0  # select stage over 100k scored sentences, k-means included
SELECT_TARGET_ROWS = 100_000
EMBEDDING_DIM = 384  # all-MiniLM-L6-v2's hidden size
SCORE_BATCH = 64
MAX_LENGTH = 128

DEFAULTS = {"repeats": 2, "train_sentences": 512, "score_sentences": 2000, "pool_size": STREAM_TARGET_SIZE,
            "select_rows": SELECT_TARGET_ROWS, "io_sentences": 1000}
QUICK = {"repeats": 1, "train_sentences": 64, "score_sentences": 256, "pool_size": 5000, "select_rows": 20_000,
         "io_sentences": 200}
SIZE_HELP = {  # each of DEFAULTS is an option (--train-sentences, ...); its help, with its default filled in
    "repeats": "bare/nerloop alternations (default {})", "train_sentences": "default {}",
    "score_sentences": "default {}", "pool_size": "streamed pool (default {:,})",
    "select_rows": "scored rows to select from (default {:,})", "io_sentences": "export/import batch (default {})",
}


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far: Linux's VmHWM, the high-water mark of this process's own
    memory. Not ``getrusage``'s ``ru_maxrss``: a worker started by ``subprocess`` inherits its parent's peak
    there (the kernel carries it across fork and exec), so a worker started by a parent that had just held a
    million-row pool reported that pool's memory as its own (cost.md's 8.28 GiB for select at 1,000,000 rows
    was mostly the parent's; measured again: 3.6 GiB). ``ru_maxrss`` where /proc is missing."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def sentences_rate(run: Callable[[], int]) -> dict[str, Any]:
    """Time ``run``, which returns how many sentences it went through: the figures of every rate measured."""
    n, seconds = timed(run)
    return {"sentences": n, "seconds": round(seconds, 2), "sentences_per_s": round(n / seconds, 1),
            "peak_rss_mib": peak_rss_mib()}


def quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


# --------------------------------------------------------------------------- workers
# Each takes a JSON-able config and returns a JSON-able result; run in a fresh process by default.


def work_train_nerloop(cfg: dict[str, Any]) -> dict[str, Any]:
    """``nerloop.model.training.train`` for one epoch; sentences/s as it reports it (what metrics/train.json shows)."""
    quiet_transformers()
    from nerloop.model.training import train
    from nerloop.params import ModelParams, TrainParams

    records = read_records(cfg["train_file"])
    val = read_records(cfg["val_file"])
    out_dir = Path(cfg["work"]) / "train-nerloop-model"
    tp = TrainParams(**{**cfg["train_params"], "epochs": 1})
    summary, wall = timed(lambda: train(records, val, cfg["labels"], ModelParams(base=cfg["base"],
                                                                                 max_length=MAX_LENGTH), tp, out_dir))
    shutil.rmtree(out_dir, ignore_errors=True)
    return {"sentences": len(records), "validation_sentences": len(val), "seconds": summary["train_seconds"],
            "sentences_per_s": summary["train_sentences_per_second"], "wall_seconds_with_load_and_save": round(wall, 2),
            "peak_rss_mib": peak_rss_mib()}


def work_train_bare(cfg: dict[str, Any]) -> dict[str, Any]:
    """A bare PyTorch epoch: same model, sentences and batch size; shuffled batches, dynamic padding."""
    quiet_transformers()
    import torch
    from torch.utils.data import DataLoader
    from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

    from nerloop.model.base import resolve_base

    labels = cfg["labels"]
    label2id = {lab: i for i, lab in enumerate(labels)}
    records = read_records(cfg["train_file"])
    base = resolve_base(cfg["base"])
    torch.manual_seed(cfg["seed"])
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForTokenClassification.from_pretrained(
        base, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id
    )
    enc = tokenizer([r.tokens for r in records], is_split_into_words=True, truncation=True, max_length=MAX_LENGTH)
    features = []
    for i, rec in enumerate(records):
        word_ids, prev, aligned = enc.word_ids(i), None, []
        for w in word_ids:  # the first subword of a word carries its label, the rest are ignored
            aligned.append(-100 if w is None or w == prev else label2id[rec.tags[w]])
            prev = w
        features.append({"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                         "labels": aligned})
    tp = cfg["train_params"]
    loader = DataLoader(features, batch_size=tp["batch_size"], shuffle=True,
                        collate_fn=DataCollatorForTokenClassification(tokenizer),
                        generator=torch.Generator().manual_seed(cfg["seed"]))
    optimiser = torch.optim.AdamW(model.parameters(), lr=tp["learning_rate"], weight_decay=tp["weight_decay"])

    def epoch() -> int:
        model.train()
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            optimiser.step()
            optimiser.zero_grad()
        return len(records)

    return sentences_rate(epoch)


def work_score_nerloop(cfg: dict[str, Any]) -> dict[str, Any]:
    """What stage score does per sentence: predict with embeddings, every measure, the pre-annotation."""
    quiet_transformers()
    from nerloop.model.inference import load_model, predict
    from nerloop.selection.scoring import pre_annotation
    from nerloop.selection.uncertainty import score_sentence

    records = read_records(cfg["score_file"])
    model, tokenizer, labels = load_model(cfg["scoring_model"])

    def run() -> int:
        n = 0
        for i, pred in predict(model, tokenizer, labels, records, batch_size=SCORE_BATCH, max_length=MAX_LENGTH,
                               embeddings=True, progress=False):
            score_sentence(pred.probs, labels)
            pre_annotation(records[i], pred, labels)
            n += 1
        return n

    return sentences_rate(run)


def work_score_bare(cfg: dict[str, Any]) -> dict[str, Any]:
    """A bare forward pass: tokenise, length-sorted batches of 64, softmax, to numpy; nothing else."""
    quiet_transformers()
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    records = read_records(cfg["score_file"])
    tokenizer = AutoTokenizer.from_pretrained(cfg["scoring_model"])
    model = AutoModelForTokenClassification.from_pretrained(cfg["scoring_model"]).eval()

    def run() -> int:
        enc = tokenizer([r.tokens for r in records], is_split_into_words=True, truncation=True, max_length=MAX_LENGTH)
        order = sorted(range(len(records)), key=lambda i: len(enc["input_ids"][i]))
        n = 0
        with torch.inference_mode():
            for start in range(0, len(order), SCORE_BATCH):
                idx = order[start : start + SCORE_BATCH]
                batch = tokenizer.pad({"input_ids": [enc["input_ids"][i] for i in idx],
                                       "attention_mask": [enc["attention_mask"][i] for i in idx]}, return_tensors="pt")
                probs = torch.softmax(model(**batch).logits, dim=-1).numpy()
                n += len(probs)
        return n

    return sentences_rate(run)


def work_stream(cfg: dict[str, Any]) -> dict[str, Any]:
    """The real score stage over the whole pool of the prepared project folder."""
    quiet_transformers()
    from nerloop.stages import score

    with contextlib.chdir(Path(cfg["project"])):
        _, seconds = timed(score.main)
        scored = json.loads(Path("metrics/score.json").read_text())["scored_sentences"]
    return {"pool_sentences": scored, "seconds": round(seconds, 1), "sentences_per_s": round(scored / seconds, 1),
            "peak_rss_mib": peak_rss_mib()}


def work_select(cfg: dict[str, Any]) -> dict[str, Any]:
    """The real select stage (hybrid, shipped defaults) over synthetic scored rows; and its choice alone."""
    import pandas as pd

    from nerloop.params import load_params
    from nerloop.stages import select as select_stage

    with contextlib.chdir(Path(cfg["project"])):
        _, stage_s = timed(select_stage.main)
        table = pd.read_parquet(paths.SCORES_FILE)
        table["rare"] = 0.0
        emb = np.load(paths.EMBEDDINGS_FILE)
        cfg_sel = select_stage.config_from(load_params().select)
        chosen, choose_s = timed(lambda: select_stage.choose(table, emb, set(), cfg_sel))
    return {"rows": len(table), "dim": int(emb.shape[1]), "strategy": cfg_sel.strategy, "k": cfg_sel.k,
            "selected": len(chosen), "stage_seconds": round(stage_s, 2), "choose_seconds": round(choose_s, 2),
            "peak_rss_mib": peak_rss_mib()}


def work_io(cfg: dict[str, Any]) -> dict[str, Any]:
    """Stage export then stage import of one batch through the simulated annotator."""
    from nerloop.loop import cycle
    from nerloop.params import load_params
    from nerloop.stages import export, import_annotations

    def export_and_send() -> None:
        export.main()
        cycle.send(load_params())

    def fetch_and_import() -> None:
        cycle.fetch(load_params())
        import_annotations.main()

    with contextlib.chdir(Path(cfg["project"])):
        _, export_s = timed(export_and_send)
        _, import_s = timed(fetch_and_import)
        imported = json.loads(Path("metrics/annotation.json").read_text())["annotated_sentences"]
    return {"sentences": cfg["sentences"], "imported": imported, "export_s": round(export_s, 2),
            "import_s": round(import_s, 2), "peak_rss_mib": peak_rss_mib()}


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "train-nerloop": work_train_nerloop, "train-bare": work_train_bare,
    "score-nerloop": work_score_nerloop, "score-bare": work_score_bare,
    "stream": work_stream, "select": work_select, "io": work_io,
}


def run_worker(name: str, cfg: dict[str, Any], in_process: bool, *,
               workers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
               script: str = __file__, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one measurement, by default in a fresh Python process so its peak memory is its own.

    ``workers`` and ``script`` let another benchmark (cost.py) run its own measurements the same way:
    ``script --worker NAME CONFIG RESULT`` must call ``workers[NAME]``.
    """
    print(f"-- {name}", flush=True)
    if in_process:
        return (workers or WORKERS)[name](cfg)
    work = Path(cfg["work"])
    cfg_file, out_file = work / f"{name}.config.json", work / f"{name}.result.json"
    write_json(cfg_file, cfg)
    out_file.unlink(missing_ok=True)
    subprocess.run([sys.executable, script, "--worker", name, str(cfg_file), str(out_file)], check=True, env=env)
    return json.loads(out_file.read_text(encoding="utf-8"))


def worker_options(p: argparse.ArgumentParser) -> None:
    """The options of a benchmark that measures with :func:`run_worker`: ``--in-process`` (tests), and the
    hidden ``--worker`` that a worker process is started with."""
    p.add_argument("--in-process", action="store_true", help="no worker processes (tests); memory is per process")
    p.add_argument("--worker", nargs=3, metavar=("NAME", "CONFIG", "RESULT"), help=argparse.SUPPRESS)


def as_worker(worker: list[str], workers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> int:
    """Inside a worker process (``--worker NAME CONFIG RESULT``): one measurement, its result to a file."""
    name, cfg_file, out_file = worker
    write_json(out_file, workers[name](json.loads(Path(cfg_file).read_text(encoding="utf-8"))))
    return 0


# --------------------------------------------------------------------------- inputs


def sample(records: list[Record], n: int, seed: int) -> list[Record]:
    """``n`` distinct sentences drawn at random (representative lengths), in corpus order."""
    unique = list({r.id: r for r in records}.values())
    if n >= len(unique):
        return unique
    return [unique[i] for i in np.sort(np.random.default_rng(seed).choice(len(unique), n, replace=False))]


def big_pool(records: list[Record], n: int) -> list[Record]:
    """``n`` distinct unlabelled sentences: the corpus again and again, copy r ending in a token ``#r``."""
    unique = list({r.id: r for r in records}.values())
    out = []
    for i in range(n):
        rec, copy = unique[i % len(unique)], i // len(unique)
        out.append(Record.from_tokens(rec.tokens + ([f"#{copy}"] if copy else []), source=f"pool:{i}"))
    return out


def project(path: Path, labels: list[str], answers: str = "answers.conll") -> Path:
    """A minimal project folder for one stage: params.yaml, labels.json; inputs are written by the caller."""
    shutil.rmtree(path, ignore_errors=True)
    (path / "data" / "prepared").mkdir(parents=True)
    params = {"data": {"seed": "unused", "pool": "unused", "gold": "unused"},
              "score": {"batch_size": SCORE_BATCH, "subsample": 0},
              "annotation": {"backend": "simulated", "simulated": {"answers": answers}}}
    (path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    write_json(path / "data" / "prepared" / "labels.json", {"entity_types": labels})
    return path


def make_scoring_model(base: str, labels: list[str], path: Path) -> None:
    """The base encoder with a fresh tagging head, saved once so both scoring paths load the same files.

    An untrained head costs the same to run as a trained one, and nothing here depends on its answers.
    """
    quiet_transformers()
    from transformers import AutoModelForTokenClassification

    from nerloop.model.base import load_tokenizer, resolve_base

    base_path = resolve_base(base)
    model = AutoModelForTokenClassification.from_pretrained(
        base_path, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={lab: i for i, lab in enumerate(labels)},
    )
    model.save_pretrained(path)
    load_tokenizer(base_path).save_pretrained(path)


def synthetic_scores(pool: list[Record], types: list[str], path: Path, seed: int) -> None:
    """What stage score would write for ``pool``: every measure, predictions, float16 embeddings in clusters."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = len(pool)
    centres = rng.normal(size=(50, EMBEDDING_DIM))
    emb = (centres[rng.integers(0, 50, n)] + 0.5 * rng.normal(size=(n, EMBEDDING_DIM))).astype(np.float16)
    table = pd.DataFrame({
        "id": [r.id for r in pool],
        "n_tokens": [len(r.tokens) for r in pool],
        **{m: rng.random(n) for m in ("entropy_mean", "entropy_max", "least_confidence", "margin", "mnlp",
                                      "boundary")},
        "pred_tags": [json.dumps(["O"] * len(r.tokens)) for r in pool],
        "pred_spans": ["[]"] * n,
        "pred_types": [json.dumps(sorted(set(rng.choice(types, rng.integers(0, 3)).tolist()))) for _ in range(n)],
    })
    path.mkdir(parents=True, exist_ok=True)
    table.to_parquet(path / "scores.parquet", index=False)
    np.save(path / "embeddings.npy", emb)


def prepare_inputs(phases: list[str], corpus: list[Record], labels: list[str], types: list[str],
                   opts: dict[str, Any], base: str, train_params: dict[str, Any], work: Path,
                   answers: Path) -> dict[str, dict[str, Any]]:
    """Write what each phase reads (samples, model, project folders); none of this is timed."""
    cfgs: dict[str, dict[str, Any]] = {}
    common = {"work": str(work), "labels": labels, "base": base, "seed": 0, "train_params": train_params}
    if "train" in phases:
        picked = sample(corpus, opts["train_sentences"] + 32, seed=1)
        write_records(work / "train.jsonl", picked[32:])
        write_records(work / "val.jsonl", picked[:32])  # nerloop's train needs a validation set; kept small
        cfgs["train"] = {**common, "train_file": str(work / "train.jsonl"), "val_file": str(work / "val.jsonl")}
    if "score" in phases or "stream" in phases:
        make_scoring_model(base, labels, work / "scoring-model")
    if "score" in phases:
        write_records(work / "score.jsonl", [Record.from_tokens(r.tokens) for r in
                                             sample(corpus, opts["score_sentences"], seed=2)])
        cfgs["score"] = {**common, "score_file": str(work / "score.jsonl"),
                         "scoring_model": str(work / "scoring-model")}
    if "stream" in phases:
        proj = project(work / "stream", types)
        write_records(proj / "data/prepared/pool.jsonl", big_pool(corpus, opts["pool_size"]))
        (proj / "models").mkdir()
        (proj / "models" / "current").symlink_to(work / "scoring-model")
        cfgs["stream"] = {**common, "project": str(proj)}
    if "select" in phases:
        proj = project(work / "select", types)
        pool = big_pool(corpus, opts["select_rows"])
        write_records(proj / "data/prepared/pool.jsonl", pool)
        write_records(proj / "data/prepared/seed.jsonl", sample(corpus, 50, seed=3))
        write_records(proj / "data/prepared/gold.jsonl", [])
        synthetic_scores(pool, types, proj / "data" / "scores", seed=4)
        cfgs["select"] = {**common, "project": str(proj)}
    if "io" in phases:
        proj = project(work / "io", types)
        (proj / "answers.conll").symlink_to(answers)  # the annotator answers from the corpus in place
        batch = sample(corpus, opts["io_sentences"], seed=5)
        out = []
        for rank, r in enumerate(batch, start=1):
            rec = Record.from_tokens(r.tokens)
            spans = [[s, e, lab, 0.9] for s, e, lab in token_to_char_spans(rec.offsets, tags_to_spans(r.tags or []))]
            rec.meta = {"cycle": 1, "rank": rank, "cluster": 0, "reason": "benchmark", "scores": {"mnlp": 0.5},
                        "pre_tags": r.tags, "pre_spans": spans}
            out.append(rec)
        write_records(proj / "data/selection/batch.jsonl", out)
        cfgs["io"] = {**common, "project": str(proj), "sentences": len(out)}
    return cfgs


# --------------------------------------------------------------------------- measuring


def side_by_side(phase: str, cfg: dict[str, Any], repeats: int, in_process: bool) -> dict[str, Any]:
    """Alternate bare and nerloop ``repeats`` times; the median of each, and nerloop / bare."""
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "nerloop": []}
    for _ in range(repeats):
        for variant in runs:
            runs[variant].append(run_worker(f"{phase}-{variant}", cfg, in_process))
    out: dict[str, Any] = {}
    for variant, results in runs.items():
        out[variant] = {
            "sentences_per_s": round(statistics.median(r["sentences_per_s"] for r in results), 1),
            "all_sentences_per_s": [r["sentences_per_s"] for r in results],
            "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
            "runs": results,
        }
    out["ratio"] = round(out["nerloop"]["sentences_per_s"] / out["bare"]["sentences_per_s"], 3)
    return out


def measure(phases: list[str], cfgs: dict[str, dict[str, Any]], repeats: int, in_process: bool) -> dict[str, Any]:
    """Run the phases in order; each result says when it was measured and what its peak memory covers."""
    results: dict[str, Any] = {}
    scope = "this whole process" if in_process else "worker process"

    def stamp() -> dict[str, str]:
        return {"measured_at": now(), "peak_rss_scope": scope}

    if "train" in phases:
        r = side_by_side("train", cfgs["train"], repeats, in_process)
        results["train"] = {**r, **stamp(), "batch_size": cfgs["train"]["train_params"]["batch_size"],
                            "sentences": r["nerloop"]["runs"][0]["sentences"], "target": TRAIN_TARGET,
                            "met": r["nerloop"]["sentences_per_s"] >= TRAIN_TARGET}
    if "score" in phases:
        r = side_by_side("score", cfgs["score"], repeats, in_process)
        results["score"] = {**r, **stamp(), "batch_size": SCORE_BATCH,
                            "sentences": r["nerloop"]["runs"][0]["sentences"], "target": SCORE_TARGET,
                            "met": r["ratio"] >= SCORE_TARGET}
    if "stream" in phases:
        r = run_worker("stream", cfgs["stream"], in_process)
        gib = r["peak_rss_mib"] / 1024
        full = r["pool_sentences"] >= STREAM_TARGET_SIZE
        results["stream"] = {**r, **stamp(), "peak_rss_gib": round(gib, 2), "target_gib": STREAM_TARGET_GIB,
                             "target_pool": STREAM_TARGET_SIZE, "met": (gib < STREAM_TARGET_GIB) if full else None}
    if "select" in phases:
        r = run_worker("select", cfgs["select"], in_process)
        full = r["rows"] >= SELECT_TARGET_ROWS
        results["select"] = {**r, **stamp(), "target_s": SELECT_TARGET_S, "target_rows": SELECT_TARGET_ROWS,
                             "met": (r["stage_seconds"] < SELECT_TARGET_S) if full else None}
    if "io" in phases:
        results["io"] = {**run_worker("io", cfgs["io"], in_process), **stamp(), "backend": "simulated"}
    return results


# --------------------------------------------------------------------------- report


def _verdict(met: bool | None) -> str:
    return "not verified" if met is None else "**met**" if met else "**not met**"


def _state(met: bool | None, measured: int, unit: str, target_size: int) -> str:
    """MET / NOT MET, or NOT VERIFIED where the measurement was smaller than the size the target is for."""
    if met is None:
        return f"NOT VERIFIED (measured on {measured:,} {unit}, the target is for {target_size:,})"
    return "MET" if met else "NOT MET"


def verdict_lines(res: dict[str, Any]) -> list[str]:
    """Each target with its figure and MET / NOT MET (or what was not measured)."""
    return [text(res[phase])[1] for phase, text in PHASE_TEXT.items() if phase in res]


def _versus_row(what: str, r: dict[str, Any], target: str) -> str:
    """A row that sets nerloop against the bare baseline (training, scoring)."""
    return (f"| {what} | {r['sentences']:,} sentences | {r['nerloop']['sentences_per_s']} sent/s | "
            f"{r['bare']['sentences_per_s']} sent/s | {r['ratio']:.2f} | {r['nerloop']['peak_rss_mib']:,.0f} / "
            f"{r['bare']['peak_rss_mib']:,.0f} MiB | {target} | {_verdict(r['met'])} | {r['measured_at']} |")


def _train_text(t: dict[str, Any]) -> tuple[str, str]:
    """Training's row in the results table, and its verdict line."""
    verdict = "MET" if t["met"] else "NOT MET"
    return (_versus_row(f"training, 1 epoch, batch {t['batch_size']}", t, f"≥ {TRAIN_TARGET:g} sent/s"),
            f"training: nerloop {t['nerloop']['sentences_per_s']} sentences/s vs bare PyTorch "
            f"{t['bare']['sentences_per_s']} (x{t['ratio']}); target >= {TRAIN_TARGET:g}: {verdict}")


def _score_text(s: dict[str, Any]) -> tuple[str, str]:
    """Scoring's row in the results table, and its verdict line."""
    verdict = "MET" if s["met"] else "NOT MET"
    return (_versus_row(f"scoring, batches of {s['batch_size']}", s, f"≥ {100 * SCORE_TARGET:.0f}% of bare"),
            f"scoring: nerloop {s['nerloop']['sentences_per_s']} sentences/s vs bare forward "
            f"{s['bare']['sentences_per_s']} = {100 * s['ratio']:.0f}%; target >= {100 * SCORE_TARGET:.0f}%: {verdict}")


def _stage_row(what: str, size: str, figure: str, peak: str, target: str, verdict: str, measured: str) -> str:
    """A row of a stage measured alone: no bare baseline, so those two cells stay empty."""
    return f"| {what} | {size} | {figure} | | | {peak} | {target} | {verdict} | {measured} |"


def _stream_text(s: dict[str, Any]) -> tuple[str, str]:
    """The streamed score stage's row in the results table, and its verdict line."""
    n, peak, minutes = s["pool_sentences"], f"{s['peak_rss_gib']} GiB", f"{s['seconds'] / 60:.1f} min"
    return (_stage_row("score stage, streamed", f"{n:,} pool sentences", f"{s['sentences_per_s']} sent/s ({minutes})",
                       peak, f"< {STREAM_TARGET_GIB:g} GiB at {STREAM_TARGET_SIZE:,}", _verdict(s["met"]),
                       s["measured_at"]),
            f"streaming: score stage over {n:,} pool sentences, peak RSS {peak} in {minutes} ({s['sentences_per_s']} "
            f"sentences/s); target < {STREAM_TARGET_GIB:g} GiB: {_state(s['met'], n, 'sentences', STREAM_TARGET_SIZE)}")


def _select_text(s: dict[str, Any]) -> tuple[str, str]:
    """The select stage's row in the results table, and its verdict line."""
    times = f"{s['stage_seconds']} s (choice alone {s['choose_seconds']} s)"
    return (_stage_row(f"select stage, {s['strategy']} k={s['k']}", f"{s['rows']:,} rows × {s['dim']}-d", times,
                       f"{s['peak_rss_mib'] / 1024:.2f} GiB", f"< {SELECT_TARGET_S:g} s at {SELECT_TARGET_ROWS:,}",
                       _verdict(s["met"]), s["measured_at"]),
            f"selection: select stage over {s['rows']:,} rows ({s['strategy']}, k={s['k']}) {times}; target < "
            f"{SELECT_TARGET_S:g} s: {_state(s['met'], s['rows'], 'rows', SELECT_TARGET_ROWS)}")


def _io_text(s: dict[str, Any]) -> tuple[str, str]:
    """The export and import stages' row in the results table, and their line (no target)."""
    times = f"export {s['export_s']} s, import {s['import_s']} s"
    return (_stage_row("export + import stages (simulated)", f"{s['sentences']:,} sentences", times,
                       f"{s['peak_rss_mib'] / 1024:.2f} GiB", "—", "—", s["measured_at"]),
            f"export/import: {s['sentences']:,} sentences through the simulated annotator: {times} (no target)")


# what the results table and the verdicts say of each phase, in their order
PHASE_TEXT: dict[str, Callable[[dict[str, Any]], tuple[str, str]]] = {
    "train": _train_text, "score": _score_text, "stream": _stream_text, "select": _select_text, "io": _io_text,
}


def markdown(res: dict[str, Any]) -> str:
    m = res.get("machine", {})
    lines = [
        "# Throughput on this machine",
        "",
        f"Generated by `python benchmarks/throughput.py`; model `{res.get('base')}`; {m.get('cpus')} CPUs, "
        f"torch {m.get('torch')} ({m.get('torch_threads')} threads), GPU: {m.get('gpu') or 'none'}. Each row is "
        "measured in its own worker process (peak RSS = that process's peak, model and libraries included); "
        "training and scoring alternate the bare baseline and nerloop and show the median.",
        "",
        "| what | size | nerloop | bare baseline | nerloop / bare | peak RSS (nerloop / bare) | target | verdict "
        "| measured |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    lines += [text(res[phase])[0] for phase, text in PHASE_TEXT.items() if phase in res]
    lines += ["", "Peak RSS scope: " + ", ".join(sorted({v["peak_rss_scope"] for v in res.values()
                                                          if isinstance(v, dict) and "peak_rss_scope" in v})) + ".",
              "Doccano export/import is measured separately: `benchmarks/doccano_io.py` → `doccano_io.json`.", ""]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    import torch

    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CoNLL-2003 folder with train.txt")
    p.add_argument("--base", default="minilm", help="model.base: bundled name or local checkpoint (default minilm)")
    p.add_argument("--out", type=Path, help="results folder (default benchmarks/results; quick: benchmarks/work/quick)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch folder (git-ignored)")
    p.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="the training recipe (train section)")
    p.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES),
                   help="measure only these; the others already in throughput.json are kept")
    p.add_argument("--quick", action="store_true", help="small sizes, 1 repeat, a few minutes")
    for key, words in SIZE_HELP.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=int, help=words.format(DEFAULTS[key]))
    worker_options(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        return as_worker(args.worker, WORKERS)
    train_file = args.data / "train.txt"
    if not train_file.is_file():
        print(f"skipped: CoNLL-2003 not found at {args.data} (needs train.txt); nothing was measured. "
              "Point --data at the folder holding it.")
        return 0
    opts = {**DEFAULTS, **(QUICK if args.quick else {})}
    opts.update({k: v for k in DEFAULTS if (v := getattr(args, k)) is not None})
    out = (args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)).resolve()
    work = args.work.resolve()
    marker = work / ".throughput-scratch"
    if work.exists() and any(work.iterdir()) and not marker.exists():
        print(f"error: --work {work} is not empty and not a scratch folder made by this script", file=sys.stderr)
        return 2
    shutil.rmtree(work, ignore_errors=True)  # inputs are remade every time: what is measured is always known
    work.mkdir(parents=True)
    marker.touch()
    # git ignores the scratch folder by itself: it holds corpus text and a 90 MB model, never to be committed
    (work / ".gitignore").write_text("*\n", encoding="utf-8")
    base = str(Path(args.base).resolve()) if Path(args.base).exists() else args.base

    from nerloop.params import load_params

    train_params = load_params(args.params).train.dict()
    corpus = read_conll(train_file)
    types = entity_types(r.tags for r in corpus)
    labels = label_list(types)
    print(f"preparing inputs for {', '.join(args.phases)} (not timed) ...", flush=True)
    cfgs = prepare_inputs(args.phases, corpus, labels, types, opts, base, train_params, work, train_file.resolve())
    results = measure(args.phases, cfgs, opts["repeats"], args.in_process)

    previous = out / "throughput.json"
    merged = json.loads(previous.read_text(encoding="utf-8")) if previous.exists() else {}
    if merged.get("base") not in (None, base):
        merged = {}  # figures of another model are not mixed in
    merged.update(results)
    merged.update({"benchmark": "throughput", "base": base, "machine": machine(), "updated_at": now()})
    out.mkdir(parents=True, exist_ok=True)
    if out.is_relative_to(ROOT / "benchmarks" / "work") and not (out / ".gitignore").exists():
        (out / ".gitignore").write_text("*\n", encoding="utf-8")  # quick results are scratch too
    write_json(out / "throughput.json", merged)
    (out / "throughput.md").write_text(markdown(merged), encoding="utf-8")
    lines = verdict_lines(merged)
    print("Targets (issues #2, #3):\n  " + "\n  ".join(lines))
    print(f"results: {out / 'throughput.json'}, {out / 'throughput.md'}")
    if out == DEFAULT_OUT.resolve():
        update_readme(README, "throughput", "\n".join(f"- {line}" for line in lines))
    if not args.in_process:
        shutil.rmtree(work, ignore_errors=True)  # the 100k pools and models are large
    return 0


if __name__ == "__main__":
    sys.exit(main())
