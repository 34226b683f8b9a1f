"""Cycle 0's pre-annotation with and without a gazetteer on BC5CDR (issue #29).

The first batch is pre-annotated by a model trained on the seed alone, whose proposals are mostly
wrong. A gazetteer built from the seed's own entity names (nothing from test or the pool) adds its
matches where that model proposes nothing (``data.patterns``; ``patterns.merge_pre_annotation``).
For each seed: 200 random BC5CDR train sentences as the seed, the model trained on them by the
loop's own recipe (``train.*`` of the shipped params.yaml), and ``--pool`` other train sentences
pre-annotated three ways: the model alone, the gazetteer alone, and merged as the loop does.
Precision, recall and F1 are entity-level against the sentences' gold spans; the target is the
merged pre-annotation's precision at >= 2x the seed-only model's.

    python benchmarks/cold_start.py                      # seeds 1 2 3, a pool sample of 2,000 sentences
    python benchmarks/cold_start.py --seeds 1 --pool 200 --epochs 1 --results /tmp/c.json   # a quick look

BC5CDR is read from ``../shared/data/bc5cdr``; without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import al_setup
import numpy as np

from nerloop.data.files import write_json
from nerloop.data.formats import read_conll
from nerloop.data.records import Record
from nerloop.data.tags import entity_types, label_list, tags_to_spans

ROOT = al_setup.ROOT
DATA = ROOT.parent / "shared" / "data" / "bc5cdr" / "train.tsv"
RESULTS = ROOT / "benchmarks" / "results" / "cold_start.json"
TARGET_RATIO = 2.0


def gazetteer(seed: list[Record], path: Path) -> int:
    """The seed's entity names, each with its most frequent type, as a name<TAB>type file; how many names."""
    types: dict[str, Counter] = {}
    for r in seed:
        for s, e, label in tags_to_spans(r.tags or []):
            types.setdefault(" ".join(r.tokens[s:e]), Counter())[label] += 1
    path.write_text("".join(f"{name}\t{c.most_common(1)[0][0]}\n" for name, c in sorted(types.items())),
                    encoding="utf-8")
    return len(types)


def scores(gold: list[set], found: list[set]) -> dict[str, float]:
    """Entity-level precision, recall and F1 (exact boundaries and type) over all sentences."""
    tp = sum(len(g & f) for g, f in zip(gold, found, strict=True))
    n_found, n_gold = sum(map(len, found)), sum(map(len, gold))
    p, r = (tp / n_found if n_found else 0.0), (tp / n_gold if n_gold else 0.0)
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "proposed": n_found}


def run_seed(train: list[Record], labels: list[str], params: Any, seed: int, pool_size: int) -> dict[str, Any]:
    from nerloop.data.patterns import load_patterns, merge_pre_annotation
    from nerloop.model.inference import predict_tags
    from nerloop.model.training import fit

    order = np.random.default_rng(seed).permutation(len(train))
    seed_set = [train[i] for i in sorted(order[:200])]
    pool = [train[i] for i in sorted(order[200:200 + pool_size])]
    learned = {lab for r in seed_set for _, _, lab in tags_to_spans(r.tags or [])}
    with tempfile.TemporaryDirectory() as tmp:
        names = gazetteer(seed_set, Path(tmp) / "seed_names.tsv")
        patterns = load_patterns(Path(tmp) / "seed_names.tsv", labels)
        summary, _ = fit(seed_set, label_list(labels), params.model, params.train.copy(update={"seed": seed}),
                         Path(tmp) / "model")
        predicted = predict_tags(Path(tmp) / "model", pool, 64, params.model.max_length)
    gold = [set(tags_to_spans(r.tags or [])) for r in pool]
    model = [set(tags_to_spans(t)) for t in predicted]
    matched = [patterns.match(r.tokens)[1] for r in pool]
    merged = [{(s.start, s.end, s.label) for s in merge_pre_annotation([(*sp, None) for sp in sorted(m)], pats,
                                                                        learned, 0.5)}
              for m, pats in zip(model, matched, strict=True)]
    out = {"seed": seed, "pool_sentences": len(pool), "gazetteer_names": names, "epochs": summary["epochs_run"],
           "model": scores(gold, model), "gazetteer": scores(gold, [{tuple(p[:3]) for p in m} for m in matched]),
           "merged": scores(gold, merged)}
    out["precision_ratio"] = round(out["merged"]["precision"] / out["model"]["precision"], 3) \
        if out["model"]["precision"] else None
    print(json.dumps(out), flush=True)
    return out


def report(runs: list[dict[str, Any]], path: Path) -> dict[str, Any]:
    ratios = [r["precision_ratio"] for r in runs if r["precision_ratio"] is not None]
    mean = statistics.mean(ratios) if ratios else None
    verdict = (f"{len(runs)} of 3 seeds run" if len(runs) < 3 else
               "met" if mean is not None and mean >= TARGET_RATIO else "not met")
    lines = ["# Cycle 0's pre-annotation on BC5CDR: the seed-only model, a gazetteer of the seed's names, both", "",
             "Entity-level precision / recall / F1 on a sample of the pool; the gazetteer holds the seed's own entity "
             f"names. Target: merged precision >= {TARGET_RATIO}x the model's.", "",
             "| seed | pool | names | model P / R / F1 | gazetteer P / R / F1 | merged P / R / F1 | precision x |",
             "|---:|---:|---:|---|---|---|---:|"]
    for r in runs:
        cells = " | ".join(f"{r[k]['precision']:.3f} / {r[k]['recall']:.3f} / {r[k]['f1']:.3f}"
                           for k in ("model", "gazetteer", "merged"))
        lines.append(f"| {r['seed']} | {r['pool_sentences']:,} | {r['gazetteer_names']} | {cells} | "
                     f"{r['precision_ratio']} |")
    lines += ["", f"Mean precision ratio: {mean if mean is None else round(mean, 2)} "
              f"(per seed {ratios}); verdict: {verdict}."]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"mean_precision_ratio": mean, "verdict": verdict}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--pool", type=int, default=2000, help="pool sentences pre-annotated per seed")
    p.add_argument("--epochs", type=int, help="cap train.epochs (a quick look; default: params.yaml's)")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if not DATA.is_file():
        print(f"BC5CDR not found at {DATA}: nothing to run")
        return 0
    from nerloop.params import load_params

    params = load_params(ROOT / "params.yaml")
    if args.epochs:
        params.train.epochs = args.epochs
    train = read_conll(DATA)
    labels = entity_types(r.tags for r in train)
    config = {"pool": args.pool, "model": params.model.dict(), "train": params.train.dict(exclude={"seed"})}
    state = json.loads(args.results.read_text()) if args.results.exists() else {}
    runs = state.get("runs", []) if state.get("config") == config else []
    for seed in args.seeds:
        if any(r["seed"] == seed for r in runs):
            continue
        runs.append(run_seed(train, labels, params, seed, args.pool))
        write_json(args.results, {"config": config, "runs": runs, "summary": report(runs, args.results)})
    summary = report(runs, args.results)
    write_json(args.results, {"config": config, "runs": runs, "summary": summary})
    print(args.results.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
