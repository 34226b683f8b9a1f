"""One training run per cycle (``fitted``) against a probe + refit every cycle (``refit``), same run.

For each seed and labelled size N (random CoNLL-2003 train sentences), trains N the way a cycle of
the loop does under each recipe, with the model and train params of the shipped ``params.yaml``:

- ``refit``: a probe (80/20, early stopping), then from the base on all N for its best epoch;
- ``fitted``: one run on all N for the epochs the probes the loop would hold by then predict
  (``predicted_epochs``: their best epochs x (probe size / N) ** ``train.epoch_scaling``, the median,
  at least ``train.min_epochs``). Those probes are made here first on nested random subsets, at the
  sizes the loop's rule (``train.min_probes``, ``train.probe_growth``) probes at on the journey's sizes
  (200, 400, 800, 1,600, 3,200, ...): at 1,000 the probes at 200 and 400, at 5,000 those at 200, 400
  and 1,600. Their time was spent in earlier cycles, so it is reported but not counted in N's cycle.

A floor (``--min-epochs``) changes only the final run's epoch count, never the probes: where the same
seed and size already has a run without the floor, its epoch count is the probes' prediction, so a
prediction at or above the floor is that very run (kept as it is, ``same_run_as``), and one below it
trains the floor's epochs without making the probes again (``epochs_from``).

Prints and writes ``results/recipes.json`` and ``.md``: train seconds and test F1 per (N, seed,
recipe), the time ratio fitted / refit and the F1 difference, with the targets' verdicts
(time <= 0.6x, F1 no more than 0.3 points below, 3 seeds). Resumable: each finished run (one recipe,
one seed, one size) is kept.

    python benchmarks/recipes.py                          # N = 1,000 and 5,000, seeds 1 2 3
    python benchmarks/recipes.py --sizes 1000 --seeds 1   # one size, one seed
    python benchmarks/recipes.py --sizes 1000 --epoch-scaling 0.25  # another fitted rule, same refit runs and probes
    python benchmarks/recipes.py --sizes 5000 --min-epochs 7        # another floor under fitted's epochs
    python benchmarks/recipes.py --sizes 20 --seeds 1 --epochs 1 --test-sentences 50 --results /tmp/r.json

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
from typing import Any

import al_setup
import numpy as np

ROOT = al_setup.ROOT
RESULTS = ROOT / "benchmarks" / "results"
JOURNEY_SIZES = [200, 400, 800, 1600, 3200, 6400, 12000]  # the journey's labelled sizes, cycle by cycle
TIME_TARGET, F1_TARGET_POINTS = 0.6, 0.3


def probe_sizes(n: int, min_probes: int, growth: float) -> list[int]:
    """The journey's sizes below ``n`` at which the loop's rule made a probe (``model.needs_probe``)."""
    made: list[int] = []
    for size in (s for s in JOURNEY_SIZES if s < n):
        if len(made) < min_probes or size >= growth * max(made):
            made.append(size)
    return made


def timed(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t0, 1)


def variant(run: dict[str, Any]) -> str:
    """A run's recipe as the report names it: ``refit``, or ``fitted`` with its ``train.epoch_scaling`` and,
    where above 1, its ``train.min_epochs``."""
    if run["recipe"] == "refit":
        return "refit"
    floor = run.get("min_epochs", 1)  # runs made before train.min_epochs existed had none
    return f"fitted@{run['epoch_scaling']}" + (f", min {floor}" if floor > 1 else "")


def unfloored(runs: list[dict], n: int, seed: int, scaling: float) -> dict | None:
    """The fitted run at (``n``, ``seed``, ``scaling``) made without a floor: its epochs are the probes' own
    prediction, which a floor only raises."""
    made = [r for r in runs if r["n"] == n and r["seed"] == seed and r["recipe"] == "fitted"
            and r["epoch_scaling"] == scaling and r.get("min_epochs", 1) == 1]
    return made[0] if made else None


def floored_run(sample: list, test: list, labels: list[str], params: Any, seed: int, earlier: dict) -> dict:
    """The fitted run with ``train.min_epochs`` where ``earlier`` (the same seed and size without the floor)
    already says what the probes predict: the same run if at or above the floor, else the final run of
    ``fit`` (all N, from the base) for the floor's epochs, without making the probes again."""
    from nerloop.model.inference import predict_tags, seqeval_scores
    from nerloop.model.training import train

    floor = params.train.min_epochs
    kept = {"min_epochs": floor, "earlier_probe_records": []}
    if earlier["epochs"] >= floor:
        return {**earlier, **kept, "same_run_as": variant(earlier)}
    tp = params.train.copy(update={"seed": seed, "epochs": floor})
    with tempfile.TemporaryDirectory() as out:
        summary, seconds = timed(lambda: train(sample, [], labels, params.model, tp, Path(out) / "m"))
        pred = predict_tags(Path(out) / "m", test, 64, params.model.max_length)
    return {**earlier, **kept, "train_seconds": seconds, "epochs": summary["epochs_run"],
            "f1": round(seqeval_scores([r.tags for r in test], pred)["f1"], 4),
            "epochs_from": f"the floor: {variant(earlier)} predicted {earlier['epochs']}"}


def earlier_probe(sample: list, order: np.ndarray, size: int, labels: list[str], mp: Any,
                  tp: Any) -> tuple[dict, float]:
    """The probe a cycle of the loop made at ``size`` labelled sentences (the first ``size`` of ``order``, so
    each cycle's sentences hold the earlier ones'): its record, as stage train keeps it, and its seconds."""
    from nerloop.model.training import probe_key, probe_record, split_validation, train

    part = [sample[i] for i in sorted(order[:size])]
    tr, va = split_validation(part, tp.validation_share, tp.seed)
    summary, seconds = timed(lambda: train(tr, va, labels, mp, tp, None))
    return probe_record(size, summary, probe_key(mp, tp)), seconds


def known_probes(runs: list[dict], n: int, seed: int) -> tuple[list[dict], float] | None:
    """The earlier probes a fitted run at (``n``, ``seed``) already made, and their seconds: another epoch scaling
    reads the same probes (they do not depend on it), so they are not trained again."""
    made = [r for r in runs if r["n"] == n and r["seed"] == seed and r.get("earlier_probe_records")]
    return (made[0]["earlier_probe_records"], made[0]["earlier_probe_seconds"]) if made else None


def run_size(sample: list, test: list, labels: list[str], params: Any, seed: int, n: int,
             recipes: list[str], known: tuple[list[dict], float] | None = None) -> list[dict]:
    """The probes (``known``: made already), then a cycle at ``n`` under each of ``recipes`` (refit, fitted) for
    one seed."""
    from nerloop.model.inference import predict_tags, seqeval_scores
    from nerloop.model.training import fit, probe_key

    mp, tp = params.model, params.train.copy(update={"seed": seed})
    order = np.random.default_rng(seed).permutation(n)  # nested subsets: the sentences labelled by earlier cycles
    probes, probe_seconds = [], 0.0
    if known is not None and all(p["params"] == probe_key(mp, tp) for p in known[0]):
        probes, probe_seconds = known
    else:
        for size in probe_sizes(n, tp.min_probes, tp.probe_growth) if "fitted" in recipes else []:
            probe, seconds = earlier_probe(sample, order, size, labels, mp, tp)
            probes.append(probe)
            probe_seconds += seconds
    runs = []
    for recipe in recipes:
        earlier = probes if recipe == "fitted" else []
        with tempfile.TemporaryDirectory() as out:
            (summary, _), seconds = timed(
                lambda: fit(sample, labels, mp, tp.copy(update={"recipe": recipe}), Path(out) / "m", earlier))  # noqa: B023
            pred = predict_tags(Path(out) / "m", test, 64, mp.max_length)
        runs.append({"n": n, "seed": seed, "recipe": recipe, "train_seconds": seconds,
                     "f1": round(seqeval_scores([r.tags for r in test], pred)["f1"], 4),
                     "epochs": summary["epochs_run"], "probed": summary["probed"],
                     "epoch_scaling": tp.epoch_scaling if recipe == "fitted" else None,
                     "min_epochs": tp.min_epochs if recipe == "fitted" else None,
                     "earlier_probes": [p["labelled"] for p in earlier], "earlier_probe_records": earlier,
                     "earlier_probe_seconds": round(probe_seconds, 1) if recipe == "fitted" else 0.0})
        print(json.dumps(runs[-1]), flush=True)
    return runs


def summarise(runs: list[dict]) -> dict[str, Any]:
    """Per size and fitted variant (epoch scaling): the F1 and time of fitted against refit, seed by seed."""
    out: dict[str, Any] = {}
    for n in sorted({r["n"] for r in runs}):
        refit = {r["seed"]: r for r in runs if r["n"] == n and r["recipe"] == "refit"}
        for name in sorted({variant(r) for r in runs if r["n"] == n and r["recipe"] == "fitted"}):
            pairs = dict(sorted((r["seed"], {"refit": refit[r["seed"]], "fitted": r}) for r in runs
                                if r["n"] == n and variant(r) == name and r["seed"] in refit))
            if not pairs:
                continue
            ratio = [p["fitted"]["train_seconds"] / p["refit"]["train_seconds"] for p in pairs.values()]
            diff = [100 * (p["fitted"]["f1"] - p["refit"]["f1"]) for p in pairs.values()]
            f1 = {k: [p[k]["f1"] for p in pairs.values()] for k in ("refit", "fitted")}
            mean_ratio, mean_diff = statistics.mean(ratio), statistics.mean(diff)
            time_ok, f1_ok = mean_ratio <= TIME_TARGET, mean_diff >= -F1_TARGET_POINTS
            out[f"{n} {name}"] = {
                "n": n, "variant": name, "seeds": sorted(pairs),
                "epochs": {k: [p[k]["epochs"] for p in pairs.values()] for k in ("refit", "fitted")},
                "f1_mean": {k: round(statistics.mean(v), 4) for k, v in f1.items()},
                "f1_sd": {k: round(statistics.stdev(v), 4) if len(v) > 1 else None for k, v in f1.items()},
                "time_ratio": {"mean": round(mean_ratio, 3), "per_seed": [round(x, 3) for x in ratio]},
                "f1_diff_points": {"mean": round(mean_diff, 2), "per_seed": [round(x, 2) for x in diff]},
                "verdict": (f"{len(pairs)} of 3 seeds run" if len(pairs) < 3 else "met" if time_ok and f1_ok
                            else "not met: " + " and ".join(w for w, ok in (("time", time_ok), ("F1", f1_ok))
                                                            if not ok)),
            }
    return out


def report(state: dict[str, Any], path: Path) -> None:
    lines = ["# One run per cycle (`fitted`) against probe + refit (`refit`), same machine, same run", "",
             f"Model and train params of the shipped params.yaml ({state['config']['model']}); test split of "
             f"CoNLL-2003. Targets: fitted's train time <= {TIME_TARGET}x refit's, test F1 no more than "
             f"{F1_TARGET_POINTS} points below, 3 seeds.", "",
             "| labelled | fitted's epoch scaling, floor | seeds | epochs refit / fitted | refit F1 | fitted F1 "
             "| F1 diff, points (per seed) | time fitted/refit (per seed) | verdict |",
             "|---:|---|---|---|---:|---:|---|---|---|"]
    for s in state["summary"].values():
        epochs = " / ".join(", ".join(map(str, s["epochs"][k])) for k in ("refit", "fitted"))
        lines.append(
            f"| {s['n']:,} | {s['variant'].split('@')[1]} | {s['seeds']} | {epochs} | {s['f1_mean']['refit']:.4f} | "
            f"{s['f1_mean']['fitted']:.4f} | "
            f"{s['f1_diff_points']['mean']:+.2f} ({', '.join(f'{x:+.2f}' for x in s['f1_diff_points']['per_seed'])})"
            f" | {s['time_ratio']['mean']:.2f} ({', '.join(f'{x:.2f}' for x in s['time_ratio']['per_seed'])}) "
            f"| {s['verdict']} |")
    lines += ["", "Per run: `recipes.json` (`earlier_probe_seconds`: the fitted recipe's probes, spent in earlier "
              "cycles, not in this one)."]
    path.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    p.add_argument("--epochs", type=int, help="cap train.epochs (a quick look; default: params.yaml's)")
    p.add_argument("--epoch-scaling", type=float, help="fitted's train.epoch_scaling (default: params.yaml's); "
                   "refit runs already made are shared")
    p.add_argument("--min-epochs", type=int, help="fitted's train.min_epochs (default: params.yaml's)")
    al_setup.comparison_options(p, RESULTS / "recipes.json")
    args = p.parse_args(argv)
    corpus = al_setup.shared_corpus()
    if corpus is None:
        return 0
    import torch

    from nerloop.data.files import write_json
    from nerloop.data.tags import label_list

    params = al_setup.shipped_params(args.epochs)
    train_all, labels = corpus.train, label_list(corpus.labels)
    test = corpus.test[: args.test_sentences] if args.test_sentences else corpus.test
    if args.epoch_scaling is not None:
        params.train.epoch_scaling = args.epoch_scaling
    if args.min_epochs is not None:
        params.train.min_epochs = args.min_epochs
    # runs of every fitted rule share a results file (refit does not depend on it): not part of the config
    config = {"model": params.model.dict(),
              "train": params.train.dict(exclude={"seed", "recipe", "epoch_scaling", "min_epochs"}),
              "device": "cuda" if torch.cuda.is_available() else "cpu", "torch_threads": torch.get_num_threads()}
    runs = al_setup.earlier_runs(args.results, config, test, args.test_sentences)
    for n in args.sizes:
        for seed in args.seeds:
            have = {variant(r) for r in runs if r["n"] == n and r["seed"] == seed}
            # fitted first: the shorter of the two (~25 min with its probes at 5,000, refit ~40-55), so a session
            # that ends mid-seed more often keeps one of them
            fitted = variant({"recipe": "fitted", "epoch_scaling": params.train.epoch_scaling,
                              "min_epochs": params.train.min_epochs})
            todo = [k for k, name in (("fitted", fitted), ("refit", "refit")) if name not in have]
            if not todo:
                continue
            idx = np.random.default_rng(seed).choice(len(train_all), n, replace=False)
            sample = [train_all[i] for i in sorted(idx)]
            for recipe in todo:  # one recipe at a time, kept as soon as it is done: a run at 5,000 takes ~30 min
                probes = known_probes(runs, n, seed)
                earlier = unfloored(runs, n, seed, params.train.epoch_scaling)
                if recipe == "fitted" and params.train.min_epochs > 1 and earlier and probes is None:
                    runs.append(floored_run(sample, test, labels, params, seed, earlier))
                    print(json.dumps(runs[-1]), flush=True)
                else:
                    runs += run_size(sample, test, labels, params, seed, n, [recipe], probes)
                state = {"config": config, "runs": runs, "summary": summarise(runs)}
                write_json(args.results, state)
                report(state, args.results)
    state = {"config": config, "runs": runs, "summary": summarise(runs)}
    write_json(args.results, state)
    report(state, args.results)
    print(json.dumps(state["summary"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
