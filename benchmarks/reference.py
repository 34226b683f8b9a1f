"""The full-data reference, trained the way the loop trains (issue #24's F1 target; issue #28's fair reference).

Every distinct CoNLL-2003 train sentence (none that is also in test), trained with the model and train
params of the shipped ``params.yaml`` as a cycle of the loop grown to that size trains: the ``fitted``
recipe, holding the probes the loop's rule would have made on its way there (``train.min_probes``,
``train.probe_growth`` on the journey's sizes: 200, 400, 1,600 and 6,400 labelled sentences, nested random
subsets), then one run on all sentences for the epochs those probes predict. Test F1 on CoNLL-2003 test.

Every step (each probe, the final run) is its own result, kept in the results file as soon as it is
done, so a run stopped at any point goes on from the last step: a seed takes about 80 minutes on 2 cores.

    python benchmarks/reference.py                  # seeds 1 2 3
    python benchmarks/reference.py --seeds 1        # one seed
    python benchmarks/reference.py --sentences 60 --seeds 1 --epochs 1 --test-sentences 50 --results /tmp/r.json

Target (issue #24): mean test F1 >= 0.89 over 3 seeds. CoNLL-2003 is read from ``../shared/data/conll2003``;
without it the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import al_setup
import numpy as np
from recipes import earlier_probe, probe_sizes, timed

ROOT = al_setup.ROOT
RESULTS = ROOT / "benchmarks" / "results" / "reference_loop.json"
F1_TARGET = 0.89


def summary(state: dict[str, Any]) -> dict[str, Any]:
    """Mean and spread of the final runs' test F1, with the verdict."""
    f1 = [s["final"]["f1"] for s in state["seeds"].values() if "final" in s]
    mean = round(statistics.mean(f1), 4) if f1 else None
    return {"seeds_done": len(f1), "f1": f1, "f1_mean": mean,
            "f1_sd": round(statistics.stdev(f1), 4) if len(f1) > 1 else None,
            "f1_range": [min(f1), max(f1)] if f1 else None,
            "verdict": (f"{len(f1)} of 3 seeds run" if len(f1) < 3 else "met" if mean >= F1_TARGET else "not met")}


def report(state: dict[str, Any], path: Path) -> None:
    s = state["summary"]
    lines = ["# Full-data reference, trained the way the loop trains", "",
             f"{state['sentences']:,} CoNLL-2003 train sentences, test F1 on {state['test_sentences']:,} test "
             f"sentences; model {state['config']['model']}; recipe `fitted`, epoch scaling "
             f"{state['config']['train']['epoch_scaling']}. Target: mean F1 >= {F1_TARGET} over 3 seeds.", "",
             "| seed | probes (labelled: best epoch) | probe seconds | final epochs | final train seconds | test F1 |",
             "|---:|---|---:|---:|---:|---:|"]
    for seed, st in sorted(state["seeds"].items(), key=lambda x: int(x[0])):
        probes = ", ".join(f"{p['record']['labelled']:,}: {p['record']['best_epoch']}" for p in st["probes"])
        final = st.get("final")
        lines.append(f"| {seed} | {probes} | {sum(p['seconds'] for p in st['probes']):,.0f} | "
                     f"{final['epochs'] if final else '—'} | {final['train_seconds'] if final else '—'} | "
                     f"{final['f1'] if final else 'not run yet'} |")
    spread = (f" (sd {s['f1_sd']:.4f}, range {s['f1_range'][0]:.4f}-{s['f1_range'][1]:.4f})"
              if s["f1_sd"] is not None else "")
    lines += ["", f"Mean test F1: {s['f1_mean']}{spread}; verdict: **{s['verdict']}**."]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sentences", type=int, help="train on the first N distinct sentences only (a quick look)")
    p.add_argument("--epochs", type=int, help="cap train.epochs (a quick look; default: params.yaml's)")
    al_setup.comparison_options(p, RESULTS)
    args = p.parse_args(argv)
    corpus = al_setup.shared_corpus()
    if corpus is None:
        return 0
    import torch

    from nerloop.data.files import write_json
    from nerloop.data.tags import label_list
    from nerloop.model.inference import predict_tags, seqeval_scores
    from nerloop.model.training import fit

    params, labels = al_setup.shipped_params(args.epochs), label_list(corpus.labels)
    test_ids = {r.id for r in corpus.test}
    sample = [r for r in {r.id: r for r in corpus.train}.values() if r.id not in test_ids][: args.sentences]
    test = corpus.test[: args.test_sentences] if args.test_sentences else corpus.test
    config = {"model": params.model.dict(), "train": params.train.dict(exclude={"seed"}), "sentences": len(sample),
              "test_sentences": args.test_sentences, "device": "cuda" if torch.cuda.is_available() else "cpu"}
    state: dict[str, Any] = json.loads(args.results.read_text()) if args.results.exists() else {}
    old_threads = state.get("config", {}).pop("torch_threads", None)  # the first runs' one figure: now per step
    for st in state.get("seeds", {}).values() if old_threads else ():
        for step in [*st["probes"], *([st["final"]] if "final" in st else [])]:
            step.setdefault("torch_threads", old_threads)
    if state.get("config") != config:  # other params or sizes: nothing there applies
        state = {"config": config, "seeds": {}}
    state.update(sentences=len(sample), test_sentences=len(test))

    def save() -> None:
        state["summary"] = summary(state)
        write_json(args.results, state)
        report(state, args.results)

    for seed in args.seeds:
        st = state["seeds"].setdefault(str(seed), {"probes": []})
        mp, tp = params.model, params.train.copy(update={"seed": seed})
        order = np.random.default_rng(seed).permutation(len(sample))  # as recipes.py draws the nested subsets
        for size in probe_sizes(len(sample), tp.min_probes, tp.probe_growth)[len(st["probes"]):]:
            record, seconds = earlier_probe(sample, order, size, labels, mp, tp)
            st["probes"].append({"record": record, "seconds": seconds, "torch_threads": torch.get_num_threads()})
            print(f"seed {seed}: probe at {size:,}: best epoch {record['best_epoch']} ({seconds:.0f} s)", flush=True)
            save()
        if "final" not in st:
            with tempfile.TemporaryDirectory() as out:
                (result, _), seconds = timed(lambda: fit(sample, labels, mp, tp.copy(update={"recipe": "fitted"}),  # noqa: B023
                                                         Path(out) / "m", [p["record"] for p in st["probes"]]))  # noqa: B023
                pred = predict_tags(Path(out) / "m", test, 64, mp.max_length)
            st["final"] = {"epochs": result["epochs_run"], "probed": result["probed"], "train_seconds": seconds,
                           "torch_threads": torch.get_num_threads(),
                           "f1": round(float(seqeval_scores([r.tags for r in test], pred)["f1"]), 4)}
            print(f"seed {seed}: {len(sample):,} sentences, {st['final']['epochs']} epochs, test F1 "
                  f"{st['final']['f1']}", flush=True)
            save()
    save()
    print(json.dumps(state["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
