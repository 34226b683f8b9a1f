"""Scoring a pool of a million sentences on Ray without the driver holding it (issue #30).

A synthetic pool (random words drawn with BC5CDR train's word frequencies, sentence lengths drawn from
its sentence lengths: no CoNLL text) is scored by the real score stage with the tiny test model
(a 2-layer, 32-wide BERT, as the tests use) on a two-node local Ray cluster (``ray.cluster_utils``,
two CPUs per node, 127.0.0.1), each measurement in its own driver process:

- ``ray``: the score stage with ``score.engine: ray``, 1, 2 and 4 actors (one CPU each), at each pool
  size: driver peak RSS, wall seconds, sentences/s;
- ``local``: the score stage with the local engine at the smallest size, for the ratio;
- ``equal``: local and Ray (2 actors) on ``--equal`` sentences: ids, order and tags identical, largest
  measure and embedding difference.

Targets: driver peak RSS < 2 GiB at 1,000,000 and flat from 100,000; Ray identical to local on 10,000
(measures within 1e-6); 2 actors >= 1.6x one actor where the cores allow (this machine has 2 cores for
both nodes, the driver and the merge). Select over 1,000,000 rows is measured by ``cost.py`` with the
bundled encoder's 384-d embeddings (the tiny model's are 32-d).

    python benchmarks/ray_pool.py                       # 100,000 and 1,000,000; about an hour on 2 cores
    python benchmarks/ray_pool.py --sizes 2000 --actors 1 2 --equal 500 --results /tmp/r.json   # a quick look

Resumable: each finished measurement is kept in the results file and skipped when run again.
BC5CDR is read from ``../shared/data/bc5cdr``; without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from throughput import as_worker, peak_rss_mib, quiet_transformers, run_worker, timed, worker_options

from nerloop.data.files import write_json
from nerloop.data.formats import read_conll
from nerloop.data.records import Record

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "bc5cdr" / "train.tsv"
RESULTS = ROOT / "benchmarks" / "results" / "ray_pool.json"
WORK = ROOT / "benchmarks" / "work" / "ray_pool"
LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
MEASURES = ["entropy_mean", "entropy_max", "least_confidence", "margin", "mnlp", "boundary"]
DRIVER_TARGET_GIB, SPEEDUP_TARGET, EQUAL_TOLERANCE = 2.0, 1.6, 1e-6


# --------------------------------------------------------------------------- inputs


def synthetic_pool(n: int, path: Path, seed: int = 0) -> None:
    """``n`` distinct sentences of random BC5CDR words (its word frequencies and sentence lengths)."""
    corpus = read_conll(DATA)
    counts = Counter(t for r in corpus for t in r.tokens)
    words = list(counts)
    p = np.array([counts[w] for w in words], dtype=np.float64)
    lengths = np.array([len(r.tokens) for r in corpus])
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        while len(seen) < n:
            sizes = rng.choice(lengths, 10_000)
            flat = rng.choice(len(words), int(sizes.sum()), p=p / p.sum())
            for tokens in np.split(flat, np.cumsum(sizes)[:-1]):
                rec = Record.from_tokens([words[i] for i in tokens], source="synthetic")
                if rec.id not in seen and len(seen) < n:
                    seen.add(rec.id)
                    fh.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")
    tmp.replace(path)


def tiny_model(path: Path) -> None:
    """The tests' tiny BERT over the pool's vocabulary, with a fresh tagging head (its answers do not matter)."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_model import make_tiny_bert

    quiet_transformers()
    encoder = make_tiny_bert(path.parent / "encoder", {t for r in read_conll(DATA) for t in r.tokens})
    model = AutoModelForTokenClassification.from_pretrained(
        encoder, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={x: i for i, x in enumerate(LABELS)})
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(path)


def project(work: Path, size: int, pool_file: Path, model: Path) -> Path:
    """A project folder scoring the first ``size`` sentences of the pool: shipped params, empty seed and gold."""
    folder = work / f"project-{size}"
    if (folder / "models" / "current").exists():  # made last: the folder is complete
        return folder
    shutil.rmtree(folder, ignore_errors=True)  # a run stopped while making it
    prepared = folder / "data" / "prepared"
    prepared.mkdir(parents=True, exist_ok=True)
    with pool_file.open("rb") as src, (prepared / "pool.jsonl").open("wb") as out:
        for _, line in zip(range(size), src, strict=False):
            out.write(line)
    for name in ("seed.jsonl", "gold.jsonl"):
        (prepared / name).touch()
    write_json(prepared / "labels.json", {"entity_types": ["Chemical", "Disease"]})
    shutil.copy(ROOT / "params.yaml", folder / "params.yaml")
    (folder / "models").mkdir(exist_ok=True)
    (folder / "models" / "current").symlink_to(model)
    return folder


def set_score(folder: Path, **values: Any) -> None:
    params = yaml.safe_load((folder / "params.yaml").read_text(encoding="utf-8"))
    params["score"].update(values)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


# --------------------------------------------------------------------------- measurements (worker processes)


def work_stage(cfg: dict[str, Any]) -> dict[str, Any]:
    """One real stage's ``main`` in its project folder: wall seconds, rows, this driver's peak RSS."""
    import contextlib
    import importlib

    import pandas as pd

    quiet_transformers()
    main = importlib.import_module(f"nerloop.stages.{cfg['stage']}").main
    with contextlib.chdir(cfg["project"]):
        _, seconds = timed(main)
        rows = len(pd.read_parquet("data/scores/scores.parquet", columns=["id"]))
    return {"rows": rows, "seconds": round(seconds, 1), "sentences_per_s": round(rows / seconds, 1),
            "peak_rss_mib": peak_rss_mib()}


WORKERS = {"stage": work_stage}


def measure(stage: str, folder: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    return run_worker("stage", {"stage": stage, "project": str(folder), "work": str(folder)}, False,
                      workers=WORKERS, script=__file__, env=env)


def compare(local: Path, ray: Path) -> dict[str, Any]:
    """Ray's scores against the local engine's: what must be identical, and the largest float differences."""
    import pandas as pd

    a, b = pd.read_parquet(local / "scores.parquet"), pd.read_parquet(ray / "scores.parquet")
    ea, eb = np.load(local / "embeddings.npy").astype(np.float32), np.load(ray / "embeddings.npy").astype(np.float32)
    spans = [[s[:3] for s in json.loads(x)] for x in a["pred_spans"]] == [[s[:3] for s in json.loads(x)]
                                                                         for x in b["pred_spans"]]
    measure_diff = float(np.abs(a[MEASURES].to_numpy() - b[MEASURES].to_numpy()).max())
    return {"rows": len(a), "ids_and_order": a["id"].tolist() == b["id"].tolist(),
            "tags": a["pred_tags"].tolist() == b["pred_tags"].tolist(), "spans": spans,
            "max_measure_diff": measure_diff, "max_embedding_diff": float(np.abs(ea - eb).max()),
            "met": bool(a["id"].tolist() == b["id"].tolist() and a["pred_tags"].tolist() == b["pred_tags"].tolist()
                        and spans and measure_diff <= EQUAL_TOLERANCE)}


# --------------------------------------------------------------------------- the cluster


class LocalCluster:
    """Two Ray nodes on 127.0.0.1 (two CPUs each), as ``tests/test_ray_scoring.py`` starts them; stopped on exit."""

    def __enter__(self) -> str:
        from ray.cluster_utils import Cluster

        self.tmp = tempfile.mkdtemp(prefix="nlray", dir="/tmp")  # short: Ray's unix sockets live under it
        os.environ.update(RAY_TMPDIR=self.tmp, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0")  # loopback addresses only
        node = {"num_cpus": 2, "object_store_memory": 200 * 1024**2, "node_ip_address": "127.0.0.1"}
        self.cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
        self.cluster.add_node(**node)
        self.cluster.wait_for_nodes()
        return self.cluster.address

    def __exit__(self, *exc: object) -> None:
        self.cluster.shutdown()
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------- report


def verdicts(res: dict[str, Any]) -> dict[str, Any]:
    """Each target's figure and verdict from the measurements made so far (None: not measured)."""
    ray = res.get("ray", {})
    sizes = sorted(ray, key=int)
    big = sizes[-1] if sizes else ""
    drivers = {s: max(r["peak_rss_mib"] for r in ray[s].values()) / 1024 for s in sizes}
    both = [s for s in sizes if {"1", "2"} <= set(ray[s])]  # the speedup where both were run, largest pool first
    one, two = (ray[both[-1]]["1"], ray[both[-1]]["2"]) if both else (None, None)
    speedup = round(two["sentences_per_s"] / one["sentences_per_s"], 2) if one and two else None
    return {
        "driver_peak_gib": {s: round(g, 2) for s, g in drivers.items()},
        "driver_met": (drivers[big] < DRIVER_TARGET_GIB) if big in drivers else None,
        "speedup_2_actors": speedup,
        "speedup_pool": int(both[-1]) if both else None,
        "speedup_met": speedup >= SPEEDUP_TARGET if speedup else None,
        "equal_met": res["equal"]["met"] if "equal" in res else None,
    }


def _v(met: bool | None) -> str:
    return "not measured" if met is None else "**met**" if met else "**not met**"


def markdown(res: dict[str, Any]) -> str:
    v = res["verdicts"]
    sizes = [int(s) for s in v["driver_peak_gib"]] or [0]
    lines = ["# Scoring a large pool on Ray", "",
             "Generated by `python benchmarks/ray_pool.py`: synthetic pool (BC5CDR word frequencies and sentence "
             "lengths), tiny test model, two-node local Ray cluster (2 CPUs per node) on "
             f"{res['machine']}. Each row is one run of the real score stage in its own driver process.", "",
             "| engine | actors | pool sentences | seconds | sentences/s | driver peak RSS |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for size, runs in sorted(res.get("ray", {}).items(), key=lambda x: int(x[0])):
        for actors, r in sorted(runs.items(), key=lambda x: int(x[0])):
            lines.append(f"| ray | {actors} | {int(size):,} | {r['seconds']} | {r['sentences_per_s']} | "
                         f"{r['peak_rss_mib'] / 1024:.2f} GiB |")
    if "local" in res:
        r = res["local"]
        lines.append(f"| local | — | {r['rows']:,} | {r['seconds']} | {r['sentences_per_s']} | "
                     f"{r['peak_rss_mib'] / 1024:.2f} GiB |")
    eq = res.get("equal")
    lines += ["", "| target | figure | verdict |", "| --- | --- | --- |",
              f"| driver peak RSS < {DRIVER_TARGET_GIB:g} GiB at {max(sizes):,}, flat from {min(sizes):,} | "
              f"{', '.join(f'{int(s):,}: {g} GiB' for s, g in v['driver_peak_gib'].items())} | {_v(v['driver_met'])} |",
              f"| Ray = local on {eq['rows']:,} sentences (ids, order, tags; measures within {EQUAL_TOLERANCE:g}) | "
              f"identical ids/order {eq['ids_and_order']}, tags {eq['tags']}, spans {eq['spans']}; largest measure "
              f"difference {eq['max_measure_diff']:.1e}, embedding {eq['max_embedding_diff']:.1e} | "
              f"{_v(v['equal_met'])} |" if eq else "| Ray = local | — | not measured |",
              f"| 2 actors >= {SPEEDUP_TARGET:g}x one actor | {v['speedup_2_actors']}x at {v['speedup_pool'] or 0:,} "
              f"(2 cores run both nodes, every actor, the driver and Ray's own processes) | {_v(v['speedup_met'])} |",
              "", "Peak RSS: each driver process's own high-water mark (VmHWM)."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--equal", type=int, default=10_000, help="sentences scored by both engines and compared")
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--work", type=Path, default=WORK, help="the pool, the model and one project per size")
    worker_options(p)
    args = p.parse_args(argv)
    if args.worker:
        return as_worker(args.worker, WORKERS)
    if not DATA.exists():
        print(f"BC5CDR not found at {DATA}: nothing measured")
        return 0
    import platform

    res: dict[str, Any] = json.loads(args.results.read_text()) if args.results.exists() else {}
    res["machine"] = f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, no GPU"

    def save() -> None:
        res["verdicts"] = verdicts(res)
        write_json(args.results, res)
        args.results.with_suffix(".md").write_text(markdown(res), encoding="utf-8")

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    largest = max([*args.sizes, args.equal])
    pool_file, model = work / f"pool-{largest}.jsonl", work / "model"
    if not pool_file.exists():
        print(f"writing a synthetic pool of {largest:,} sentences", flush=True)
        synthetic_pool(largest, pool_file)
    if not model.exists():
        tiny_model(model)
    with LocalCluster() as address:
        env = dict(os.environ, RAY_ADDRESS=address)
        if "equal" not in res:
            folder = project(work, args.equal, pool_file, model)
            set_score(folder, engine="local")
            measure("score", folder)
            shutil.copytree(folder / "data/scores", work / "equal-local", dirs_exist_ok=True)
            set_score(folder, engine="ray", ray_actors=2)
            measure("score", folder, env)
            res["equal"] = compare(work / "equal-local", folder / "data/scores")
            save()
        for size in args.sizes:
            folder = project(work, size, pool_file, model)
            for actors in args.actors:
                if str(actors) in res.setdefault("ray", {}).get(str(size), {}):
                    continue
                set_score(folder, engine="ray", ray_actors=actors)
                res["ray"].setdefault(str(size), {})[str(actors)] = measure("score", folder, env)
                save()
        if "local" not in res:
            folder = project(work, min(args.sizes), pool_file, model)
            set_score(folder, engine="local")
            res["local"] = measure("score", folder)
            save()
    print(args.results.with_suffix(".md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
