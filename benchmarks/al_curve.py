"""Active-learning curves on CoNLL-2003: does the loop save annotation? (issue #6)

Runs the real pipeline, stage by stage (prepare once, then per cycle import, train, evaluate,
score, select, export, with the simulated annotator), for several query strategies and seeds
side by side: a random seed set drawn from the CoNLL-2003 train split, the rest of train as the
pool, the official test split as the gold set. The stages are called in-process inside one
directory per run (``--work``), so no DVC or git is needed and the figures are those of the
very code a user runs.

Resumable: a finished (strategy, seed) run is saved as ``<results>/runs/<strategy>-seed<seed>.json``
and skipped on the next call; an unfinished one continues from its last finished cycle (the
stages are idempotent, so redoing a half-done cycle neither loses nor duplicates anything).

The report (Markdown table, targets verdict, PNG curves against sentences and tokens, a JSON
summary) is rebuilt from the run files after every call, or alone with ``--report-only``.
``--reference`` trains once on the whole train split with the same recipe: the full-data F1
that the curves are measured against.

The parts: ``al_setup`` (settings, corpus, params), ``al_runs`` (the runs), ``al_report`` (the
report); this file is the command line. Run from the repository root::

    python benchmarks/al_curve.py                 # 4 strategies x 3 seeds, resumable
    python benchmarks/al_curve.py --reference     # full-data reference
    python benchmarks/al_curve.py --quick         # a few minutes, into benchmarks/work/quick/

CoNLL-2003 is read from ``../shared/data/conll2003`` (``train.txt``, ``test.txt``) and is never
copied into the project: the run folders link to it, and hold only the drawn seed set and the
token-only pool. Without it the benchmark says so and exits 0 without running anything.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict, replace
from pathlib import Path

from al_report import report
from al_runs import run_one, run_reference
from al_setup import (
    BASELINE,
    DEFAULT_DATA,
    DEFAULT_RESULTS,
    DEFAULT_SEEDS,
    DEFAULT_STRATEGY,
    DEFAULT_WORK,
    LONG,
    LONG_FOLDER,
    LONG_SEEDS,
    LONG_STRATEGIES,
    METHODS,
    METHODS_FOLDER,
    METHODS_SEEDS,
    METHODS_SETTINGS,
    QUICK,
    QUICK_RESULTS,
    QUICK_WORK,
    README,
    REFERENCE_EPOCHS,
    REFERENCE_PATIENCE,
    ROOT,
    RUN_KINDS,
    BenchmarkError,
    Settings,
    base_recipe,
    find_corpus,
    load_corpus,
    scratch,
)

from nerloop.errors import NerloopError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    d = Settings()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CoNLL-2003 folder with train.txt and test.txt")
    p.add_argument("--work", type=Path, help=f"run folders (default {DEFAULT_WORK.relative_to(ROOT)})")
    p.add_argument("--results", type=Path, help=f"results folder (default {DEFAULT_RESULTS.relative_to(ROOT)})")
    p.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="the recipe: shipped params.yaml")
    p.add_argument("--strategies", nargs="+", choices=list(RUN_KINDS),
                   help="strategies or methods to run (default: random and hybrid)")
    p.add_argument("--seeds", nargs="+", type=int, help=f"default: {DEFAULT_SEEDS}")
    p.add_argument("--cycles", type=int, help=f"selection cycles after cycle 0 (default {d.cycles})")
    p.add_argument("--seed-size", type=int, help=f"labelled sentences to start from (default {d.seed_size})")
    p.add_argument("--batch", type=int, help=f"sentences selected per cycle (default {d.batch})")
    p.add_argument("--subsample", type=int, help=f"pool sentences scored per cycle, 0 = all (default {d.subsample})")
    p.add_argument("--epochs", type=int, help=f"max training epochs per cycle (default {d.epochs})")
    p.add_argument("--patience", type=int, help=f"early-stopping patience in epochs (default {d.patience})")
    p.add_argument("--gold-size", type=int, help="test sentences used as gold, 0 = all (default 0; quick: 500)")
    p.add_argument("--base", help=f"model.base: bundled name or local checkpoint (default {d.base})")
    presets = p.add_mutually_exclusive_group()
    presets.add_argument("--quick", action="store_true",
                         help="a few minutes: 1 seed, random + hybrid, 2 cycles of 50, 1 epoch, 500 gold sentences;\n"
                              "writes under benchmarks/work/quick/ unless --results/--work are given")
    presets.add_argument("--long", action="store_true",
                         help="the long run: random + hybrid, seeds 1 2 3, growing batches (200 200 400 800 1600,\n"
                              "the last repeating) until a quarter of train's tokens are labelled;\n"
                              f"writes into results/{LONG_FOLDER}/")
    presets.add_argument("--methods", action="store_true",
                         help="issue #28's options against the default: random, hybrid and\n"
                              f"{', '.join(METHODS)}, seeds 1 2 3, 4 cycles of 200, the whole pool scored;\n"
                              f"writes into results/{METHODS_FOLDER}/")
    p.add_argument("--schedule", nargs="+", type=int,
                   help="batch size per cycle, the last repeating (overrides --batch)")
    p.add_argument("--stop-token-share", type=float,
                   help="stop a run once its labelled tokens reach this share of train's (--cycles = at most)")
    p.add_argument("--report-only", action="store_true", help="rebuild table, targets and PNGs from the run files")
    p.add_argument("--reference", action="store_true", help="train once on the full train split (the ceiling)")
    p.add_argument("--reference-epochs", type=int, help=f"epoch cap for --reference (default {REFERENCE_EPOCHS})")
    p.add_argument("--reference-patience", type=int,
                   help=f"early-stopping patience on valid.txt for --reference (default {REFERENCE_PATIENCE})")
    p.add_argument("--keep-models", action="store_true", help="keep each finished run's model folder")
    return p.parse_args(argv)


def resolve(args: argparse.Namespace) -> tuple[Settings, list[str], list[int], Path, Path]:
    """Explicit flags win over the --quick, --long or --methods preset, which wins over the defaults."""
    preset = QUICK if args.quick else LONG if args.long else METHODS_SETTINGS if args.methods else Settings()
    changes = {f: getattr(args, f) for f in asdict(preset) if getattr(args, f, None) is not None}
    if args.schedule:
        changes["schedule"] = tuple(args.schedule)
    settings = replace(preset, **changes)
    strategies = args.strategies or (LONG_STRATEGIES if args.long else [BASELINE, DEFAULT_STRATEGY, *METHODS]
                                      if args.methods else [BASELINE, DEFAULT_STRATEGY])
    seeds = args.seeds or ([DEFAULT_SEEDS[0]] if args.quick else LONG_SEEDS if args.long else METHODS_SEEDS
                           if args.methods else DEFAULT_SEEDS)
    folder = LONG_FOLDER if args.long else METHODS_FOLDER if args.methods else None
    work = args.work or (QUICK_WORK if args.quick else DEFAULT_WORK / folder if folder else DEFAULT_WORK)
    results = args.results or (QUICK_RESULTS if args.quick else DEFAULT_RESULTS)
    if folder:
        results = results / folder  # its own run files: load_runs never mixes configurations
    return settings, strategies, seeds, work.resolve(), results.resolve()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings, strategies, seeds, work, results = resolve(args)
    readme = README if results in (DEFAULT_RESULTS.resolve(), (DEFAULT_RESULTS / LONG_FOLDER).resolve(),
                                   (DEFAULT_RESULTS / METHODS_FOLDER).resolve()) else None
    try:
        if args.report_only:
            report(results, readme)
            return 0
        files = find_corpus(args.data)
        if files is None:
            print(f"skipped: CoNLL-2003 not found at {args.data} (needs train.txt and test.txt); nothing was run. "
                  "Point --data at the folder holding it.")
            return 0
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # "newly initialised head" notes, every cycle, say nothing new
        corpus = load_corpus(*files)
        recipe = base_recipe(args.params)
        scratch(work)
        if results.is_relative_to(ROOT / "benchmarks" / "work"):
            scratch(results)  # quick results are scratch too
        (results / "runs").mkdir(parents=True, exist_ok=True)
        if args.reference:
            ref = run_reference(corpus, settings, recipe, args.reference_epochs or REFERENCE_EPOCHS,
                                args.reference_patience or REFERENCE_PATIENCE, work, results)
            print(f"full-data reference: test F1 {ref['f1']:.4f} after {ref['epochs_run']} epochs")
        else:
            from tqdm.auto import tqdm

            todo = [(k, s) for s in seeds for k in strategies]
            with tqdm(total=len(todo) * (settings.cycles + 1), desc="al_curve", unit="cycle", position=0) as bar:
                for key, seed in todo:
                    before = bar.n
                    run_one(key, seed, corpus, settings, recipe, work, results / "runs", args.keep_models,
                            on_cycle=bar.update)
                    bar.update(before + settings.cycles + 1 - bar.n)  # a skipped run counts as done
        report(results, readme)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NerloopError as exc:  # a stage refused (bad data or params); finished cycles are kept for a rerun
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
