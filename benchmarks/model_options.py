"""The model options against the plain model: word shape for the uncased encoder, and the CRF head.

Trains the bundled MiniLM on the same random CoNLL-2003 train sentences plain (softmax head, no
word shape: the variant ``default``, the default until both options won here), with
``model.word_shape: true``, with ``model.head: crf``, and with both (the shipped default now),
over several seeds, the way a non-probing cycle of the loop trains (``model.fit`` with the
``fitted`` recipe: one run on every labelled sentence for a fixed epoch count), and scores each on
the test split.
Prints mean and spread per variant and the gain over the default per seed, and writes
``results/model_options.json`` and ``.md``. Resumable: each finished (variant, seed) is kept.

    python benchmarks/model_options.py                 # 1,000 sentences, 6 epochs, seeds 1 2 3
    python benchmarks/model_options.py --sentences 200 --epochs 1 --seeds 1 --test-sentences 200   # a quick look

CoNLL-2003 is read from ``../shared/data/conll2003``; without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import al_setup
import numpy as np

ROOT = al_setup.ROOT
RESULTS = ROOT / "benchmarks" / "results"
VARIANTS = {"default": {}, "word_shape": {"word_shape": True}, "crf": {"head": "crf"},
            "word_shape+crf": {"word_shape": True, "head": "crf"}}  # -> ModelParams


def run_one(train_recs: list, test_recs: list, labels: list[str], variant: str, seed: int, epochs: int) -> dict:
    from nerloop.model.inference import predict_tags, seqeval_scores
    from nerloop.model.training import fit, probe_key
    from nerloop.params import ModelParams, TrainParams

    mp = ModelParams(base="minilm", **VARIANTS[variant])
    tp = TrainParams(seed=seed, epochs=15, early_stopping_patience=3)
    # two probes that agree on `epochs`: fit trains once, as the loop does in a cycle that does not probe
    probes = [{"labelled": len(train_recs), "best_epoch": epochs, "params": probe_key(mp, tp)}] * 2
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary, _ = fit(train_recs, labels, mp, tp, Path(out) / "model", probes)
        seconds = time.perf_counter() - t0
        pred = predict_tags(Path(out) / "model", test_recs, 64, mp.max_length)
    scores = seqeval_scores([r.tags for r in test_recs], pred)
    return {"variant": variant, "seed": seed, "f1": round(scores["f1"], 4), "epochs": summary["epochs_run"],
            "train_seconds": round(seconds, 1),
            "f1_per_type": {t: round(v["f1"], 4) for t, v in sorted(scores["per_type"].items())}}


def summarise(runs: list[dict]) -> dict:
    out: dict = {}
    default = {r["seed"]: r["f1"] for r in runs if r["variant"] == "default"}
    for variant in VARIANTS:
        f1 = [r["f1"] for r in runs if r["variant"] == variant]
        if not f1:
            continue
        out[variant] = {"seeds": len(f1), "mean_f1": round(statistics.mean(f1), 4),
                        "sd": round(statistics.stdev(f1), 4) if len(f1) > 1 else None, "min": min(f1), "max": max(f1)}
        gains = [round(100 * (r["f1"] - default[r["seed"]]), 2) for r in runs
                 if r["variant"] == variant and r["seed"] in default]
        if variant != "default" and gains:
            out[variant]["gain_points"] = {"mean": round(statistics.mean(gains), 2), "per_seed": gains}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sentences", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    al_setup.comparison_options(p, RESULTS / "model_options.json")
    args = p.parse_args(argv)
    corpus = al_setup.shared_corpus()
    if corpus is None:
        return 0
    from nerloop.data.files import write_json
    from nerloop.data.tags import label_list

    train_all, labels = corpus.train, label_list(corpus.labels)
    test = corpus.test[: args.test_sentences] if args.test_sentences else corpus.test
    config = {"sentences": args.sentences, "epochs": args.epochs, "base": "minilm", "recipe": "fitted, no probe"}
    runs = al_setup.earlier_runs(args.results, config, test, args.test_sentences)
    for seed in args.seeds:
        idx = np.random.default_rng(seed).choice(len(train_all), args.sentences, replace=False)
        sample = [train_all[i] for i in sorted(idx)]
        for variant in args.variants:
            if any(r["seed"] == seed and r["variant"] == variant for r in runs):
                continue
            runs.append(run_one(sample, test, labels, variant, seed, args.epochs))
            print(json.dumps(runs[-1]), flush=True)
            write_json(args.results, {"config": config, "runs": runs, "summary": summarise(runs)})
    summary = summarise(runs)
    write_json(args.results, {"config": config, "runs": runs, "summary": summary})
    lines = [f"# Model options on the bundled encoder ({args.sentences:,} random CoNLL-2003 train sentences, "
             f"{args.epochs} epochs, one run as a non-probing cycle trains, test split)", "",
             "| variant | seeds | mean test F1 | sd | min-max | gain over default, F1 points (per seed) |",
             "|---|---:|---:|---:|---|---|"]
    for name, v in summary.items():
        gain = v.get("gain_points")
        gain_text = f"{gain['mean']:+.2f} ({', '.join(f'{x:+.2f}' for x in gain['per_seed'])})" if gain else ""
        lines.append(f"| {name} | {v['seeds']} | {v['mean_f1']:.4f} | {v['sd']} | {v['min']:.4f}-{v['max']:.4f} | "
                     f"{gain_text} |")
    args.results.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
