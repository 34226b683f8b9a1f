"""The journey: from 200 labelled CoNLL-2003 sentences to 12,000, one cycle at a time (issue #24).

What a team on this machine lives through: the shipped defaults (hybrid selection, the `fitted`
training recipe, the whole remaining pool scored every cycle), growing batches, the train split
as the pool and the test split as gold. Per cycle it records labelled sentences and tokens, test
F1, wall and CPU seconds per stage, the peak RSS, the epoch count and whether the cycle probed,
and the forecast and the stopping rule's decision. From the cycles done so far it refits a cost
model and projects a 30,000-sentence dataset grown from a 100,000-sentence pool.

Resumable across machines: each finished cycle is one committed file,
``<results>/cycle-NN.json``. It holds, besides the figures, the ids of the batch selected next and
the small state files the next cycle reads (the evaluate history, the stop set's predictions, the
training probes): no CoNLL text. On a machine whose work folder is gone, the run is rebuilt by
preparing the same seed and pool and replaying every recorded batch through the simulated
annotator, without training; then it goes on with the next cycle.

Run from the repository root (a cycle at 12,000 labelled sentences takes over an hour here)::

    python benchmarks/journey.py                # resumes; writes benchmarks/results/journey/<device>/
    python benchmarks/journey.py --report-only  # table, PNG and projection from the cycle files
    python benchmarks/journey.py --quick        # a few minutes, into benchmarks/work/quick/journey/
    python benchmarks/journey.py --corpus bc5cdr --gazetteer   # results/journey/<device>-bc5cdr-gazetteer/

The same journey runs on BC5CDR (``--corpus bc5cdr``: its train split as seed and pool, its test
split as gold), and with ``--gazetteer`` the seed's own entity names (``cold_start.gazetteer``,
nothing from the pool or test) pre-annotate beside the model through ``data.patterns``, so that
``effort.py`` can set the manual effort with and without patterns side by side (issue #29).

CoNLL-2003 is read from ``../shared/data/conll2003``, BC5CDR from ``../shared/data/bc5cdr``;
without its corpus the benchmark says so and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import al_runs
import al_setup
import cold_start
import numpy as np
from throughput import peak_rss_mib

from nerloop.data.files import write_json
from nerloop.data.formats import read_conll

ROOT = al_setup.ROOT
RESULTS = ROOT / "benchmarks" / "results" / "journey"
WORK = ROOT / "benchmarks" / "work" / "journey"
QUICK_DIR = ROOT / "benchmarks" / "work" / "quick" / "journey"
STATE_FILES = ("metrics/history.json", "metrics/stop_set.json", "metrics/probes.json")  # what a cycle reads back
PROJECT_POOL, PROJECT_TARGET = 100_000, 30_000  # the projection: a 30k-sentence dataset from a 100k pool
GAZETTEER = "data/raw/seed_names.tsv"  # --gazetteer: the seed's entity names, in the run folder
# corpus -> (title, folder, train file, gold files by preference): gold is never the pool
CORPORA: dict[str, tuple[str, Path, str, tuple[str, ...]]] = {
    "conll2003": ("CoNLL-2003", al_setup.DEFAULT_DATA, "train.txt", ("test.txt",)),
    "bc5cdr": ("BC5CDR", cold_start.DATA.parent, cold_start.DATA.name, ("test.tsv", "devel.tsv")),
}


@dataclass(frozen=True)
class Journey:
    """The run's settings: the shipped recipe plus these."""

    seed: int = 1
    seed_size: int = 200
    schedule: tuple[int, ...] = (200, 400, 800, 1600, 3200, 5600)  # batch per cycle; the last repeats
    target: int = 12_000  # stop once this many sentences are labelled
    epochs: int = 15  # train.epochs as shipped (a probe's cap)
    patience: int = 3
    gold_size: int = 0  # 0 = the whole test split


QUICK = Journey(seed_size=40, schedule=(20, 40), target=100, epochs=1, patience=1, gold_size=100)
QUICK_POOL = 300  # --quick draws its seed and pool from the first 340 train sentences: scoring stays seconds


@dataclass(frozen=True)
class Variant:
    """What a journey runs on besides the recipe. Only what differs from the default enters the run's
    config, so the CoNLL-2003 journey's committed cycles (made before these options) still resume."""

    corpus: str = "conll2003"
    gazetteer: bool = False  # data.patterns: a gazetteer of the seed's own entity names
    base: str = al_setup.Settings.base  # model.base (a test's tiny model); not part of the folder names
    pool: int = 0  # > 0: seed and pool come from the first seed_size + pool train sentences (a quick look)

    def tag(self) -> str:
        """The suffix of the run's folders: '' for the CoNLL-2003 journey, else '-bc5cdr', '-bc5cdr-gazetteer'..."""
        if self == Variant(base=self.base, pool=self.pool):
            return ""
        return f"-{self.corpus}" + ("-gazetteer" if self.gazetteer else "")

    def title(self) -> str:
        return CORPORA[self.corpus][0] + (", with a gazetteer of the seed's names" if self.gazetteer else "")

    def config(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v != getattr(Variant(), k)}


# every journey effort.py sets side by side, in its column order
VARIANTS = (Variant(), Variant(gazetteer=True), Variant("bc5cdr"), Variant("bc5cdr", gazetteer=True))


def variant_of(config: dict[str, Any]) -> Variant:
    """The variant a stored cycle's config was made with."""
    return Variant(**{k: config[k] for k in ("corpus", "gazetteer", "base", "pool") if k in config})


def results_dir(v: Variant, device: str) -> Path:
    return RESULTS / f"{device}{v.tag()}"


def work_dir(v: Variant) -> Path:
    return WORK.with_name(WORK.name + v.tag())


def corpus_files(name: str) -> tuple[Path, Path] | None:
    """(train, gold) files of a shared corpus: its test split, else its devel split; None when absent."""
    _, folder, train, golds = CORPORA[name]
    gold = next((folder / g for g in golds if (folder / g).is_file()), None)
    return (folder / train, gold) if (folder / train).is_file() and gold is not None else None


def device_name() -> str:
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def peak_rss_reset() -> None:
    """Start a new peak-RSS window (Linux: writing 5 to clear_refs resets VmHWM)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def timed(fn: Any) -> dict[str, float]:
    """Wall and CPU seconds of one stage (CPU: every thread of this process, torch's included)."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return {"wall": round(time.perf_counter() - w0, 2), "cpu": round(time.process_time() - c0, 2)}


def cycle_files(results: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(results.glob("cycle-*.json"))]


def same_config(stored: dict[str, Any], current: dict[str, Any]) -> bool:
    """Equal, counting a params key added since the stored cycles as equal when it has its default value.

    A new option (say ``model.head``) that did not exist when a journey started leaves it resumable
    as long as the option stays at the behaviour the journey ran with.
    """
    from nerloop.params import Params

    recipe = json.loads(json.dumps(stored["recipe"]))
    for section, values in current["recipe"].items():
        fields = Params.__fields__[section].type_.__fields__
        for key, value in values.items():
            if key not in recipe.get(section, {}) and key in fields and value == fields[key].default:
                recipe.setdefault(section, {})[key] = value
    return {**stored, "recipe": recipe} == current


def settings_for(j: Journey) -> al_setup.Settings:
    return al_setup.Settings(seed_size=j.seed_size, schedule=j.schedule, cycles=10_000, subsample=0,
                             epochs=j.epochs, patience=j.patience, gold_size=j.gold_size)


def replay(done: list[dict[str, Any]], stages: dict[str, Any]) -> None:
    """Rebuild the ledger of a fresh run folder from the recorded batches, without training.

    Each batch goes through the simulated annotator exactly as it did (send, then fetch and
    import), so the ledger, manifest and answers are those of the uninterrupted run.
    """
    from nerloop import paths
    from nerloop.data.files import read_records, write_records
    from nerloop.loop import cycle
    from nerloop.params import load_params

    pool = {r.id: r for r in read_records(paths.POOL)}
    for row in done:
        batch = [pool[i] for i in row["next_batch_ids"]]
        for r in batch:
            r.meta["cycle"] = row["cycle"] + 1  # a batch is selected for the next cycle
        write_records(paths.OUTBOX, batch)
        cycle.send(load_params())
        if row is not done[-1]:
            stages["import"].main()  # the next cycle imports the last batch itself
    for rel in STATE_FILES:
        if done[-1]["state"].get(rel) is not None:
            write_json(Path(rel), done[-1]["state"][rel])
    print(f"replayed {len(done)} recorded batch(es): the run resumes at cycle {len(done)}")


def without_target(config: dict[str, Any]) -> dict[str, Any]:
    """A config as resuming compares it: the target only says where to stop, it changes no cycle."""
    return {**config, "journey": {k: v for k, v in config["journey"].items() if k != "target"}}


def run(j: Journey, results: Path, work: Path, variant: Variant = Variant()) -> None:
    files = corpus_files(variant.corpus)
    if files is None:
        print(f"{CORPORA[variant.corpus][0]} not found in {CORPORA[variant.corpus][1]}: nothing to run")
        return
    corpus = al_setup.load_corpus(*files)
    if variant.pool:
        corpus.train = corpus.train[:j.seed_size + variant.pool]
    settings = replace(settings_for(j), base=variant.base)
    results.mkdir(parents=True, exist_ok=True)
    done = cycle_files(results)
    recipe = al_setup.base_recipe(ROOT / "params.yaml")
    if done and not same_config(done[0]["config"], {**done[0]["config"], "recipe": recipe}):
        # A journey keeps the recipe it started with (a key it lacks means the field's default), so a
        # change of shipped defaults never mixes two recipes in one curve.
        print(f"note: {results} continues with the recipe its cycle 0 recorded, not today's params.yaml; "
              "--results <another folder> starts a journey under today's")
        recipe = done[0]["config"]["recipe"]
    config = json.loads(json.dumps({"journey": asdict(j), "recipe": recipe, "device": device_name(),
                                    **variant.config()}))
    if done and not same_config(without_target(done[0]["config"]), without_target(config)):
        raise al_setup.BenchmarkError(f"{results} holds cycles made with other settings; move them or use --results")
    if done and not done[-1]["next_batch_ids"] and "pool_scored" not in done[-1] \
            and done[-1]["labelled_sentences"] < j.target:
        print(f"note: {results} stopped at its earlier target ({done[-1]['labelled_sentences']:,} labelled) and "
              "selected no next batch; a higher --target needs another --results and --work")
    stages = al_runs.stage_modules()
    run_dir = work / f"seed{j.seed}"
    marker = run_dir / "journey.json"
    fresh = not marker.exists() or json.loads(marker.read_text())["cycles"] != len(done)
    if fresh:
        params = al_setup.run_params(settings, recipe, "hybrid", j.seed, corpus.labels)
        if variant.gazetteer:
            params["data"]["patterns"] = GAZETTEER
        al_runs.setup_run(run_dir, corpus, settings, params, j.seed)
        if variant.gazetteer:  # the seed set setup_run drew, as cold_start.py builds its gazetteer
            cold_start.gazetteer(read_conll(run_dir / "data" / "raw" / "seed.conll"), run_dir / GAZETTEER)
    with contextlib.chdir(run_dir):
        if fresh:
            stages["prepare"].main()
            if done:
                replay(done, stages)
            marker.write_text(json.dumps({"cycles": len(done)}))
        c = len(done)
        while not done or (done[-1]["labelled_sentences"] < j.target and done[-1]["next_batch_ids"]):
            print(f"== journey{variant.tag()} seed {j.seed}: cycle {c}")
            peak_rss_reset()
            seconds = {name: timed(stages[name].main) for name in ("import", "train", "evaluate")}
            row = cycle_row(c, seconds)
            if row["labelled_sentences"] < j.target:
                seconds |= {name: timed(stages[name].main) for name in ("score", "select", "export")}
                row["pool_scored"] = al_runs.read_json(Path("metrics/score.json"))["scored_sentences"]
                row["next_batch_ids"] = [json.loads(line)["id"] for line in
                                         Path("data/selection/batch.jsonl").read_text().splitlines()]
            else:
                row["next_batch_ids"] = []
            row["stage_seconds"] = seconds
            row["peak_rss_mib"] = peak_rss_mib()
            row["state"] = {rel: json.loads(Path(rel).read_text()) if Path(rel).exists() else None
                            for rel in STATE_FILES}
            if variant.gazetteer:
                row["gazetteer_names"] = len(Path(GAZETTEER).read_text(encoding="utf-8").splitlines())
            row["config"] = config
            row["finished_at"] = al_runs.now()
            row["nerloop_commit"] = al_runs.git_commit()
            row["machine"] = al_runs.machine()
            write_json(results / f"cycle-{c:02d}.json", row)
            marker.write_text(json.dumps({"cycles": c + 1}))
            done.append(row)
            report(results)
            c += 1
            gc.collect()


def cycle_row(c: int, seconds: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The figures of one cycle, from the stages' own metrics files."""
    read = al_runs.read_json
    ev, tr, fc = read(Path("metrics/eval.json")), read(Path("metrics/train.json")), read(Path("metrics/forecast.json"))
    return {
        "cycle": c,
        "labelled_sentences": ev["labelled_sentences"],
        "labelled_tokens": ev["labelled_tokens"],
        "f1": ev["f1"],
        "f1_per_type": {t: round(v["f1"], 4) for t, v in sorted(ev["per_type"].items())},
        "gold_sentences": ev["gold_sentences"],
        "train": {k: tr.get(k) for k in ("recipe", "probed", "epochs_run", "epochs_from", "train_seconds",
                                         "probe_seconds", "probe_epochs_run", "best_validation_f1",
                                         "train_sentences_per_second", "device")},
        "forecast": {k: fc.get(k) for k in ("decision", "why", "kappa", "stable_cycles", "sentences")},
    }


# --------------------------------------------------------------------------- report


def cost_model(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-unit rates measured on the journey, to project other sizes.

    Training: seconds per sentence-epoch (median over cycles); a probe costs its held-out run on
    80% for its own epochs, and a projected probe finds the median best epoch of the journey's
    probes. Scoring: seconds per pool sentence. The rest of a cycle: its median.
    """
    train_rate = [r["train"]["train_seconds"] / (r["labelled_sentences"] * r["train"]["epochs_run"]) for r in rows]
    score = [r["stage_seconds"]["score"]["wall"] / r["pool_scored"] for r in rows if r.get("pool_scored")]
    other = [sum(v["wall"] for k, v in r["stage_seconds"].items() if k not in ("train", "score")) for r in rows]
    probe_epochs = [r["train"]["probe_epochs_run"] for r in rows if r["train"]["probed"]] or [15]
    probes = rows[-1].get("state", {}).get("metrics/probes.json") or []
    return {"train_s_per_sentence_epoch": float(np.median(train_rate)),
            "score_s_per_pool_sentence": float(np.median(score)) if score else None,
            "other_s_per_cycle": float(np.median(other)),
            "probe_epochs": float(np.median(probe_epochs)),
            "probe_best_epoch": float(np.median([p["best_epoch"] for p in probes])) if probes else 15.0}


def project(model: dict[str, Any], schedule: tuple[int, ...], seed_size: int, pool: int, target: int,
            probe_growth: float, min_probes: int, max_epochs: int, epoch_scaling: float,
            min_epochs: int = 1) -> dict[str, Any]:
    """Hours to grow ``seed_size`` labelled sentences to ``target`` from a pool of ``pool``.

    Each cycle trains the epochs the loop's own rule (``predicted_epochs``) reads off the probes made so
    far, each probe finding the journey's median best epoch.
    """
    from nerloop.model.training import predicted_epochs

    n, i, probed, hours, epochs = seed_size, 0, [], 0.0, []
    cycles = 0
    while True:
        train_s = 0.0
        if len(probed) < min_probes or n >= probe_growth * max(p["labelled"] for p in probed):
            probed.append({"labelled": n, "best_epoch": model["probe_best_epoch"]})
            train_s += model["train_s_per_sentence_epoch"] * 0.8 * n * model["probe_epochs"]
        epochs.append(predicted_epochs(probed, n, max_epochs, epoch_scaling, min_epochs))
        train_s += model["train_s_per_sentence_epoch"] * n * epochs[-1]
        score_s = (model["score_s_per_pool_sentence"] or 0.0) * (pool - n) if n < target else 0.0
        hours += (train_s + score_s + model["other_s_per_cycle"]) / 3600
        cycles += 1
        if n >= target:
            break
        n = min(target, n + schedule[min(i, len(schedule) - 1)])
        i += 1
    return {"cycles": cycles, "hours": round(hours, 1), "probes_at": [p["labelled"] for p in probed],
            "epochs": epochs}


def report(results: Path) -> dict[str, Any] | None:
    rows = cycle_files(results)
    if not rows:
        return None
    j = Journey(**{**rows[-1]["config"]["journey"], "schedule": tuple(rows[-1]["config"]["journey"]["schedule"])})
    variant = variant_of(rows[0]["config"])
    model = cost_model(rows)
    train = rows[0]["config"]["recipe"]["train"]  # the probing rule the journey ran with
    # the projection follows the shipped epoch rule where the journey's recipe predates train.epoch_scaling or
    # train.min_epochs
    shipped = al_setup.base_recipe(ROOT / "params.yaml")["train"]
    scaling = train.get("epoch_scaling", shipped["epoch_scaling"])
    floor = train.get("min_epochs", shipped["min_epochs"])
    rule = {"probe_growth": train["probe_growth"], "min_probes": train["min_probes"], "max_epochs": j.epochs,
            "epoch_scaling": scaling, "min_epochs": floor}
    pool = rows[0]["pool_scored"]  # cycle 0 scores the whole pool
    projection = {"30k_from_100k": project(model, (200, 400, 800, 1600, 3200, 6400, 12800), 200, PROJECT_POOL,
                                           PROJECT_TARGET, **rule),
                  "this_journey": project(model, j.schedule, j.seed_size, pool + j.seed_size,
                                          min(j.target, pool + j.seed_size), **rule)}
    last = rows[-1]
    # a pool smaller than the target (BC5CDR's train split) runs out: its last cycle scored an empty pool
    ran_out = not last["next_batch_ids"] and "pool_scored" in last and last["labelled_sentences"] < j.target
    summary = {"cycles": len(rows), "labelled_sentences": last["labelled_sentences"], "f1": last["f1"],
               "target_sentences": j.target, "reached": last["labelled_sentences"] >= j.target,
               "device": rows[0]["config"]["device"], "cost_model": model, "projection": projection,
               **({"pool_ran_out": True} if ran_out else {})}
    write_json(results / "summary.json", summary)
    lines = [f"# The journey on {variant.title()} ({summary['device'].upper()}, seed {j.seed})", "",
             f"Hybrid selection, `train.recipe: fitted`, the whole remaining pool scored every cycle; batches "
             f"{', '.join(map(str, j.schedule))} (the last repeats) until {j.target:,} sentences are labelled. "
             f"{'Reached' if summary['reached'] else 'The pool ran out' if ran_out else 'Not reached yet'}: "
             f"{last['labelled_sentences']:,} labelled "
             f"after {len(rows)} cycle(s).", "",
             "| cycle | labelled | tokens | test F1 | epochs | probed | train s | score s | cycle s | CPU s | "
             "peak RSS MiB | forecast decision |",
             "|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        st = r["stage_seconds"]
        lines.append(f"| {r['cycle']} | {r['labelled_sentences']:,} | {r['labelled_tokens']:,} | {r['f1']:.4f} | "
                     f"{r['train']['epochs_run']} | {'yes' if r['train']['probed'] else 'no'} | "
                     f"{st['train']['wall']:.0f} | {st.get('score', {}).get('wall', 0):.0f} | "
                     f"{sum(v['wall'] for v in st.values()):.0f} | {sum(v['cpu'] for v in st.values()):.0f} | "
                     f"{r['peak_rss_mib']} | {r['forecast']['decision']} |")
    p30 = projection["30k_from_100k"]
    lines += ["", f"Cost model from these cycles: {model['train_s_per_sentence_epoch'] * 1000:.1f} ms per sentence-"
              f"epoch of training, a probe's run {model['probe_epochs']:.0f} epochs finding epoch "
              f"{model['probe_best_epoch']:.0f} best (medians), "
              + (f"{model['score_s_per_pool_sentence'] * 1000:.2f} ms per pool sentence scored; "
                 if model["score_s_per_pool_sentence"] else "")
              + f"projected: a 30,000-sentence dataset from a 100,000-sentence pool, batches doubling from 200, "
              f"takes {p30['cycles']} cycles and {p30['hours']} h of compute on this {summary['device'].upper()} "
              f"(epochs per cycle by the loop's rule, epoch_scaling {scaling}, min_epochs {floor}: "
              f"{', '.join(map(str, p30['epochs']))}; "
              "probes at "
              f"{', '.join(f'{n:,}' for n in p30['probes_at'])}).",
              "", "![F1 and cycle time](journey.png)"]
    (results / "journey.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plot(rows, results / "journey.png")
    return summary


def plot(rows: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    x = [r["labelled_sentences"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(x, [r["f1"] for r in rows], marker="o")
    a.set(xlabel="labelled sentences", ylabel="test F1", title="F1")
    b.plot(x, [sum(v["wall"] for v in r["stage_seconds"].values()) / 60 for r in rows], marker="o", label="cycle")
    b.plot(x, [r["stage_seconds"]["train"]["wall"] / 60 for r in rows], marker="s", label="training")
    b.set(xlabel="labelled sentences", ylabel="minutes", title="time per cycle")
    b.legend()
    for ax in (a, b):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="a tiny journey into benchmarks/work/quick/journey/")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--corpus", choices=sorted(CORPORA), default="conll2003")
    p.add_argument("--gazetteer", action="store_true",
                   help="pre-annotate with a gazetteer of the seed's entity names too (data.patterns)")
    p.add_argument("--target", type=int, help="stop once this many sentences are labelled (default 12,000; "
                   "a pool smaller than that runs out first)")
    p.add_argument("--base", default=Variant.base, help="model.base (default: the bundled encoder)")
    p.add_argument("--pool", type=int, help=f"draw seed and pool from the first --pool + seed-size train sentences "
                   f"(default: all of train; --quick: {QUICK_POOL})")
    p.add_argument("--results", type=Path)
    p.add_argument("--work", type=Path)
    args = p.parse_args(argv)
    j = QUICK if args.quick else Journey()
    j = Journey(**{**asdict(j), "seed": args.seed, **({"target": args.target} if args.target else {})})
    v = Variant(args.corpus, args.gazetteer, args.base, args.pool or (QUICK_POOL if args.quick else 0))
    results = args.results or (QUICK_DIR / f"results{v.tag()}" if args.quick else results_dir(v, device_name()))
    work = args.work or (QUICK_DIR / f"work{v.tag()}" if args.quick else work_dir(v))
    try:
        if not args.report_only:
            run(j, results, work, v)
        summary = report(results)
    except al_setup.BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if summary:
        print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
