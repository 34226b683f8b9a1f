"""The active-learning benchmark's setup (``al_curve.py``): its constants and targets, the settings of a run,
the CoNLL-2003 corpus (seed set, pool, gold set) and each run's params.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nerloop.data.formats import read_conll
from nerloop.data.records import Record
from nerloop.data.tags import entity_types
from nerloop.params import load_params

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "conll2003"
DEFAULT_WORK = ROOT / "benchmarks" / "work" / "al"
DEFAULT_RESULTS = ROOT / "benchmarks" / "results"
QUICK_WORK = ROOT / "benchmarks" / "work" / "quick" / "al"
QUICK_RESULTS = ROOT / "benchmarks" / "work" / "quick" / "results"
README = ROOT / "benchmarks" / "README.md"

# Strategy key -> what it changes in the select section; everything else stays at the shipped defaults.
STRATEGIES: dict[str, dict[str, Any]] = {
    "random": {"strategy": "random"},
    "uncertainty-mnlp": {"strategy": "uncertainty", "measure": "mnlp"},
    "uncertainty-entropy": {"strategy": "uncertainty", "measure": "entropy_mean"},
    "hybrid": {"strategy": "hybrid"},
}
# Options of issue #28 on top of the default strategy, each measured against it on the same seeds (--methods):
# key -> {params section: what it changes there}.
METHODS: dict[str, dict[str, dict[str, Any]]] = {
    "hybrid-committee": {"score": {"mc_dropout_passes": 10},
                         "select": {"strategy": "hybrid", "measure": "vote_entropy"}},
    "hybrid-swap": {"select": {"strategy": "hybrid"}, "train": {"entity_swap": 0.5}},
    "hybrid-balanced": {"select": {"strategy": "hybrid", "balance_types": True}},
    "hybrid-window-mask": {"select": {"strategy": "hybrid", "unit": "window"}, "train": {"partial": "mask"}},
    "hybrid-window-fill": {"select": {"strategy": "hybrid", "unit": "window"}, "train": {"partial": "fill"}},
}
# every run key -> its changes per section: a strategy changes select only
RUN_KINDS: dict[str, dict[str, dict[str, Any]]] = {k: {"select": v} for k, v in STRATEGIES.items()} | METHODS
TITLES = {
    "random": "random",
    "uncertainty-mnlp": "uncertainty (MNLP)",
    "uncertainty-entropy": "uncertainty (mean token entropy)",
    "hybrid": "hybrid (default)",
    "hybrid-committee": "hybrid, committee (vote entropy, 10 MC-dropout members)",
    "hybrid-swap": "hybrid + entity swap 0.5",
    "hybrid-balanced": "hybrid, balanced types",
    "hybrid-window-mask": "hybrid, 8-word windows, rest masked",
    "hybrid-window-fill": "hybrid, 8-word windows, rest filled",
}
DEFAULT_STRATEGY = "hybrid"  # what params.yaml ships: hybrid, MNLP, alpha 0.7, k 20
BASELINE = "random"
DEFAULT_SEEDS = [1, 2, 3]
REFERENCE_EPOCHS = 8  # the full-data reference's epoch cap; early stopping on valid.txt picks the epoch
REFERENCE_PATIENCE = 2

# Targets of issue #6; fixed here, never tuned to the results.
TARGET_GAIN = 0.03  # mean F1 over cycles 1..N at least 3 points above random at the same sentence count
TARGET_SHARE = 0.60  # random's final F1 reached with at most 60% of random's labelled sentences
# Targets added by issue #12
REACH_SHARES = (0.95, 0.98, 0.99)  # shares of the full-data reference F1 the report says the cost of
TARGET_REACH_TOKENS = 0.20  # 99% of the reference reached with at most 20% of train's tokens
TARGET_TRAIN_SPEED = 25.0  # sentences/s in training (benchmarks/throughput.py)
TARGET_SCORE_RATIO = 0.85  # scoring speed as a share of a bare forward pass (benchmarks/throughput.py)

# Recipe keys that each run sets itself (seeded, or a benchmark setting), left out of the shared recipe.
PER_RUN_KEYS = {
    "model": {"base"},
    "train": {"seed", "epochs", "early_stopping_patience"},
    "score": {"seed", "subsample"},
    "select": {"strategy", "seed", "batch_size"},
}
LOOP_SECTIONS = ("model", "train", "evaluate", "score", "select")


class BenchmarkError(Exception):
    """A problem the user must fix (mixed configurations, a missing file); printed without a traceback."""


@dataclass(frozen=True)
class Settings:
    """The benchmark's own knobs; defaults sized for a 2-core CPU (about 15-25 min per run)."""

    seed_size: int = 200  # randomly drawn, labelled sentences every run starts from
    batch: int = 200  # sentences selected per cycle (select.batch_size)
    cycles: int = 4  # selection cycles after the seed-only cycle 0
    subsample: int = 4000  # pool sentences scored per cycle (score.subsample); 0 = the whole pool
    epochs: int = 15  # train.epochs (at most, in the probe run; early stopping picks the count) as shipped
    patience: int = 3  # train.early_stopping_patience, as shipped
    gold_size: int = 0  # test sentences used as gold; 0 = the whole official test split
    base: str = "minilm"  # model.base
    schedule: tuple[int, ...] = ()  # batch size per cycle (last repeats), as select.batch_size takes it; () = batch
    stop_token_share: float = 0.0  # > 0: stop once labelled tokens reach this share of train's (cycles = at most)

    def batch_sizes(self) -> int | list[int]:
        """select.batch_size of every run: the schedule when there is one."""
        return list(self.schedule) if self.schedule else self.batch


QUICK = Settings(seed_size=50, batch=50, cycles=2, subsample=500, epochs=1, patience=1, gold_size=500)
# The long run of issue #12: small batches early, larger later, until a quarter of train's tokens are labelled.
# It scores the whole pool, as params.yaml ships: a batch of 1,600 chosen from a 4,000-sentence subsample
# would be 40% of what the strategy sees, close to random by construction.
LONG = Settings(schedule=(200, 200, 400, 800, 1600), stop_token_share=0.25, cycles=12, epochs=15, patience=3,
                subsample=0)
LONG_STRATEGIES = ["random", "hybrid"]
LONG_SEEDS = [1, 2, 3]
# Where --long writes (under the results folder). ``long/`` keeps the two-seed record of the recipe before issue
# #24 (refit, softmax head, no word shape): a folder holds runs of one configuration only, and today's recipe
# (fitted, CRF head, word shape) is measured with three seeds in its own folder (issue #28).
LONG_FOLDER = "long-fitted"
# --methods: random, hybrid and every METHODS option, 4 cycles of 200 with the whole pool scored as shipped.
METHODS_SETTINGS = Settings(subsample=0)
METHODS_SEEDS = [1, 2, 3]
METHODS_FOLDER = "methods"


@dataclass
class Corpus:
    """CoNLL-2003 as read from the shared folder (paths are linked into run folders, never copied)."""

    train_path: Path
    test_path: Path
    train: list[Record]
    test: list[Record]
    labels: list[str]


def find_corpus(data_dir: Path) -> tuple[Path, Path] | None:
    """(train, test) files of the CoNLL-2003 folder, or None when either is missing."""
    train, test = data_dir / "train.txt", data_dir / "test.txt"
    return (train, test) if train.is_file() and test.is_file() else None


def load_corpus(train_path: Path, test_path: Path) -> Corpus:
    train = read_conll(train_path)
    test = read_conll(test_path)
    labels = entity_types(r.tags for r in train + test)
    return Corpus(train_path.resolve(), test_path.resolve(), train, test, labels)


def comparison_options(p: argparse.ArgumentParser, results: Path) -> None:
    """The options of a benchmark that compares variants over a few seeds on the shared corpus: the seeds, a
    quick look on part of the test split, and the results file (which a rerun goes on from)."""
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--test-sentences", type=int, help="score on the first N test sentences only (a quick look)")
    p.add_argument("--results", type=Path, default=results)


def shipped_params(epochs: int | None = None) -> Any:
    """The template's params.yaml, as a benchmark trains the way the loop trains; ``epochs`` caps
    ``train.epochs`` (a quick look)."""
    from nerloop.params import load_params

    params = load_params(ROOT / "params.yaml")
    if epochs:
        params.train.epochs = epochs
    return params


def shared_corpus() -> Corpus | None:
    """CoNLL-2003 from the shared data folder, or None, said on the console, where it is not there: a benchmark
    then has nothing to run (and exits 0, so that a machine without the data set passes)."""
    files = find_corpus(DEFAULT_DATA)
    if files is None:
        print(f"CoNLL-2003 not found in {DEFAULT_DATA}: nothing to run")
        return None
    return load_corpus(*files)


def earlier_runs(results: Path, config: dict[str, Any], test: list[Record], test_sentences: int | None) -> list[Any]:
    """The runs ``results`` holds already for this very ``config``, which a rerun goes on from. A quick look
    (``test_sentences``: part of the test split) gets its size into ``config``, so it never mixes with runs
    scored on the whole split."""
    if test_sentences:
        config["test_sentences"] = len(test)
    state = json.loads(results.read_text()) if results.exists() else {}
    return state.get("runs", []) if state.get("config") == config else []


def split_seed_pool(corpus: Corpus, size: int, seed: int) -> tuple[list[Record], list[Record]]:
    """A random seed set and the rest of train as pool, both free of duplicates and of test sentences.

    Dropping what prepare would drop anyway (duplicates, sentences also in test) here keeps the
    seed set at exactly ``size`` sentences.
    """
    gold_ids = {r.id for r in corpus.test}
    unique: dict[str, Record] = {}
    for r in corpus.train:
        if r.id not in gold_ids:
            unique.setdefault(r.id, r)
    candidates = list(unique.values())
    if size >= len(candidates):
        raise BenchmarkError(f"--seed-size {size} leaves no pool: train has {len(candidates)} usable sentences")
    chosen = set(np.random.default_rng(seed).choice(len(candidates), size, replace=False).tolist())
    seed_set = [r for i, r in enumerate(candidates) if i in chosen]
    pool = [r for i, r in enumerate(candidates) if i not in chosen]
    return seed_set, pool


def gold_subset(corpus: Corpus, size: int) -> list[Record]:
    """A fixed random subset of the test split (the same for every run), for quick runs only."""
    if size >= len(corpus.test):
        return list(corpus.test)
    idx = np.sort(np.random.default_rng(0).choice(len(corpus.test), size, replace=False))
    return [corpus.test[i] for i in idx]


# --------------------------------------------------------------------------- configuration


def base_recipe(params_path: Path) -> dict[str, dict[str, Any]]:
    """The loop sections of the shipped params.yaml (defaults filled in), minus what each run sets.

    Using the shipped file means the benchmark measures the recipe a user gets.
    """
    full = load_params(params_path).dict()
    return {s: {k: v for k, v in full[s].items() if k not in PER_RUN_KEYS.get(s, set())} for s in LOOP_SECTIONS}


def run_config(settings: Settings, recipe: dict[str, Any], corpus: Corpus) -> dict[str, Any]:
    """Everything that decides a run's figures: runs are only compared, and resumed, under equal configs."""
    config = {
        **asdict(settings),
        "recipe": recipe,
        "data": {"train_sentences": len(corpus.train), "test_sentences": len(corpus.test), "labels": corpus.labels,
                 "train_tokens": sum(len(r.tokens) for r in corpus.train)},
    }
    return json.loads(json.dumps(config))  # JSON types only, so it compares equal to one read back


def run_params(settings: Settings, recipe: dict[str, Any], key: str, seed: int, labels: list[str]) -> dict[str, Any]:
    """params.yaml of one run: the shipped recipe with this run's strategy or method, seeds and sizes."""
    kind = RUN_KINDS[key]
    return {
        "data": {"seed": "data/raw/seed.conll", "pool": "data/raw/pool.jsonl", "gold": "data/raw/gold.conll",
                 "format": "auto", "scheme": "auto", "labels": labels},
        "model": {**recipe["model"], "base": resolve_base(settings.base)},
        "train": {**recipe["train"], **kind.get("train", {}), "seed": seed, "epochs": settings.epochs,
                  "early_stopping_patience": settings.patience},
        "evaluate": recipe["evaluate"],
        "score": {**recipe["score"], **kind.get("score", {}), "subsample": settings.subsample, "seed": seed},
        "select": {**recipe["select"], **kind.get("select", {}), "batch_size": settings.batch_sizes(), "seed": seed},
        "annotation": {"backend": "simulated",
                       "simulated": {"answers": "data/raw/answers.conll", "state_dir": "annotation/simulated"}},
    }


def resolve_base(base: str) -> str:
    """A local checkpoint folder as an absolute path (runs happen in their own folders); names stay."""
    return str(Path(base).resolve()) if Path(base).exists() else base


def scratch(path: Path) -> Path:
    """Create a folder that git ignores by itself: run folders hold CoNLL text, which must never be committed."""
    path.mkdir(parents=True, exist_ok=True)
    marker = path / ".gitignore"
    if not marker.exists():
        marker.write_text("# written by benchmarks/al_curve.py: scratch, holds corpus text; never commit\n*\n")
    return path


def link(target: Path, link_path: Path) -> None:
    """Point ``link_path`` at a shared file: the corpus is read in place, never copied."""
    link_path.parent.mkdir(parents=True, exist_ok=True)
    link_path.unlink(missing_ok=True)
    link_path.symlink_to(target)
