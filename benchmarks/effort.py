"""Manual effort at the seed guide's milestones, from a loop's ledger (issue #29).

Manual effort (README "Manual effort") is the edits an annotator made starting from the
pre-annotation over the edits labelling the same sentences from nothing would take. The ledger
keeps, for every imported sentence, what the annotator kept, added, deleted and relabelled of
the pre-annotation they were shown; the simulated annotator is counted the same way as people.

Each import covers a range of labelled-set sizes (from the labelled count before it to the count
after it); a milestone (~1,200, ~4,000, ~10,000, ~30,000 labelled sentences) reads the import whose
range holds it: the effort of the sentences annotated while the labelled set passed that size,
pre-annotated by the model trained just before. The seed guide's table is printed beside it, and
issue #29's targets (<= 60% at ~1,200 and <= 40% at ~4,000 on CoNLL-2003) get their verdicts.

    python benchmarks/effort.py                                   # the CoNLL-2003 journey (benchmarks/journey.py)
    python benchmarks/effort.py --corpus bc5cdr --gazetteer       # results/effort-bc5cdr-gazetteer.json
    python benchmarks/effort.py --compare                         # the journeys side by side: results/effort_runs.md
    python benchmarks/effort.py --project DIR --name NAME --results OUT.json

Each journey's figures go to their own file (``effort.json`` for CoNLL-2003 without patterns,
``effort-<corpus>[-gazetteer].json`` for the others); ``--compare`` sets them side by side at the
milestones, each as far as its run reaches, and says "not run yet" for a journey with no cycles.
A run written to its default file refreshes the side-by-side table too.

The journey's work folder holds its ledger; a journey rebuilt on another machine from its cycle
files replays batches without their pre-annotations, so run this where the journey ran.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import al_setup
import journey
from journey import VARIANTS, Variant

from nerloop.data.annotations import EFFORT_KEYS, manual_effort, summed
from nerloop.data.files import read_records, write_json
from nerloop.data.ledger import Ledger

ROOT = al_setup.ROOT
RESULTS = ROOT / "benchmarks" / "results" / "effort.json"
COMPARISON = "effort_runs"  # <results folder>/effort_runs.{json,md}: the journeys side by side
# The seed guide's manual-effort table: labelled sentences -> (low, high) share still done by hand.
SEED_TABLE = {200: (1.0, 1.0), 1_200: (0.6, 0.7), 4_000: (0.4, 0.5), 10_000: (0.3, 0.4), 30_000: (0.2, 0.3)}
TARGETS = {1_200: 0.6, 4_000: 0.4}  # issue #29, CoNLL-2003


def imports(project: Path) -> list[dict[str, Any]]:
    """One row per import: the labelled range it covers, its effort counts and share, and the cumulative share."""
    seed = len(read_records(project / "data" / "prepared" / "seed.jsonl"))
    per_cycle = Ledger(project / "data" / "annotations" / "ledger.jsonl").per_cycle()
    rows, before, so_far = [], seed, []
    for cycle, counts in per_cycle.items():
        so_far.append(counts)
        rows.append({"cycle": cycle, "labelled_from": before, "labelled_to": before + counts["sentences"],
                     "sentences": counts["sentences"], **{k: counts[k] for k in EFFORT_KEYS},
                     "effort": manual_effort(counts), "effort_cumulative": manual_effort(summed(so_far))})
        before += counts["sentences"]
    return rows


def targets_for(v: Variant) -> dict[int, float]:
    """Issue #29's targets are CoNLL-2003's; BC5CDR is reported beside them without a verdict."""
    return TARGETS if v.corpus == "conll2003" else {}


def milestones(rows: list[dict[str, Any]], targets: dict[int, float] = TARGETS) -> dict[str, Any]:
    """The import whose labelled range holds each milestone, beside the seed table and the targets."""
    out = {}
    for m, (low, high) in SEED_TABLE.items():
        row = next((r for r in rows if r["labelled_from"] <= m < r["labelled_to"]), None)
        entry: dict[str, Any] = {"seed_table": [low, high], "cycle": row and row["cycle"],
                                 "effort": row and row["effort"],
                                 "range": row and [row["labelled_from"], row["labelled_to"]]}
        if m in targets:
            entry["target"] = targets[m]
            entry["verdict"] = ("not reached" if row is None or row["effort"] is None
                                else "met" if row["effort"] <= targets[m] else "not met")
        out[str(m)] = entry
    return out


def pct(v: float | None) -> str:
    return "–" if v is None else f"{v:.1%}"


def report(name: str, rows: list[dict[str, Any]], marks: dict[str, Any]) -> str:
    lines = [f"# Manual effort: {name}", "",
             "Edits made from the pre-annotation / edits needed from nothing (README \"Manual effort\"), per import.",
             "", "| cycle | labelled before → after | sentences | kept | added | deleted | relabelled | effort "
             "| cumulative |", "|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['cycle']} | {r['labelled_from']:,} → {r['labelled_to']:,} | {r['sentences']:,} | {r['kept']:,} "
              f"| {r['added']:,} | {r['deleted']:,} | {r['relabelled']:,} | {pct(r['effort'])} "
              f"| {pct(r['effort_cumulative'])} |" for r in rows]
    lines += ["", "| labelled | seed guide | nerloop (import covering it) | target | verdict |",
              "|---:|---|---|---|---|"]
    for m, e in marks.items():
        low, high = e["seed_table"]
        seen = "not reached" if e["cycle"] is None else \
            f"{pct(e['effort'])} (cycle {e['cycle']}: {e['range'][0]:,} → {e['range'][1]:,})"
        lines.append(f"| ~{int(m):,} | {low:.0%}-{high:.0%} | {seen} | "
                     f"{'<= ' + format(e['target'], '.0%') if 'target' in e else ''} | {e.get('verdict', '')} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the journeys side by side


def run_name(v: Variant) -> str:
    """The name a journey's effort report carries (the CoNLL-2003 one's as before the side-by-side table)."""
    patterns = " with a gazetteer of the seed's names" if v.gazetteer else ""
    return f"{journey.CORPORA[v.corpus][0]} journey{patterns} (hybrid, fitted recipe, seed 1)"


def effort_file(v: Variant, folder: Path) -> Path:
    return folder / f"effort{v.tag()}.json"


def model_of(cycle: Path) -> str:
    """The model a journey trains, from its cycle 0 (a journey keeps the recipe it started with)."""
    model = json.loads(cycle.read_text(encoding="utf-8"))["config"]["recipe"]["model"]
    return f"{model.get('head', 'softmax')} head, word shape {'on' if model.get('word_shape') else 'off'}"


def run_state(v: Variant, folder: Path, journeys: Path) -> dict[str, Any]:
    """One journey's column: its effort file's milestones, or why there are none (no cycles, or not computed)."""
    path = effort_file(v, folder)
    cycles = [p for device in ("cpu", "gpu") for p in sorted((journeys / f"{device}{v.tag()}").glob("cycle-*.json"))]
    model = {"model": model_of(cycles[0])} if cycles else {}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data["imports"]
        summary = cycles[-1].parent / "summary.json" if cycles else None
        done = json.loads(summary.read_text(encoding="utf-8")) if summary and summary.exists() else {}
        return {"status": "measured", "file": path.name, "name": data["name"], **model,
                "reached": rows[-1]["labelled_to"] if rows else None,
                # a journey still under way (neither at its target nor out of pool) reaches further later
                "journey_done": bool(done.get("reached") or done.get("pool_ran_out")) if done else True,
                "cycles": rows[-1]["cycle"] if rows else 0, "milestones": data["milestones"]}
    if not cycles:
        return {"status": "not run yet", "file": path.name, "name": run_name(v)}
    return {"status": "effort not computed", "file": path.name, "name": run_name(v), **model,
            "journey_cycles": len(cycles),
            "command": "python benchmarks/effort.py" + (f" --corpus {v.corpus}" if v.corpus != "conll2003" else "")
            + (" --gazetteer" if v.gazetteer else "")}


def cell(state: dict[str, Any], m: str) -> str:
    if state["status"] == "not run yet":
        return "not run yet"
    if state["status"] != "measured":
        return f"{state['journey_cycles']} cycle(s) run; effort not computed yet"
    e = state["milestones"][m]
    if e["cycle"] is None:
        if not state["reached"]:
            return "not reached"
        if not state.get("journey_done", True):
            return f"not reached yet (read up to {state['reached']:,}; the journey goes on)"
        return f"not reached (run ends at {state['reached']:,})"
    verdict = f"; {e['verdict']} (<= {e['target']:.0%})" if "target" in e else ""
    return f"{pct(e['effort'])} (cycle {e['cycle']}: {e['range'][0]:,} → {e['range'][1]:,}){verdict}"


def compare(folder: Path, journeys: Path, variants: tuple[Variant, ...] = VARIANTS) -> dict[str, Any]:
    """The journeys side by side at the seed guide's milestones: ``<folder>/effort_runs.{json,md}``."""
    states = {(v.tag() or "-conll2003")[1:]: run_state(v, folder, journeys) for v in variants}
    heads = [v.title().replace(", with a gazetteer of the seed's names", " + seed gazetteer") for v in variants]
    lines = ["# Manual effort at the seed guide's milestones: the journeys side by side", "",
             "Edits made from the pre-annotation / edits needed from nothing (README \"Manual effort\"), read from "
             "the import whose labelled range holds the milestone, as far as each journey reaches (BC5CDR's train "
             "split runs out near 4,500 labelled). The gazetteer holds the seed's own entity names "
             "(`journey.py --gazetteer`). Targets (issue #29, CoNLL-2003): <= 60% at ~1,200, <= 40% at ~4,000.", "",
             f"| labelled | seed guide | {' | '.join(heads)} |", "|---:|---|" + "---|" * len(variants)]
    for m, (low, high) in SEED_TABLE.items():
        lines.append(f"| ~{m:,} | {low:.0%}-{high:.0%} | "
                     + " | ".join(cell(s, str(m)) for s in states.values()) + " |")
    lines += ["", "Each journey keeps the model recipe its cycle 0 recorded, so journeys started at different times "
              "may train different models (column model).", "",
              "| journey | status | model | effort file |", "|---|---|---|---|"]
    for s in states.values():
        status = s["status"] + (f": `{s['command']}` where it ran" if "command" in s else "")
        lines.append(f"| {s['name']} | {status} | {s.get('model', '')} | `{s['file']}` |")
    out = {"seed_table": {str(m): list(v) for m, v in SEED_TABLE.items()},
           "targets_conll2003": {str(m): t for m, t in TARGETS.items()}, "runs": states}
    write_json(folder / f"{COMPARISON}.json", out)
    (folder / f"{COMPARISON}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", choices=sorted(journey.CORPORA), default="conll2003",
                   help="the journey to read (journey.py's --corpus)")
    p.add_argument("--gazetteer", action="store_true", help="the journey run with --gazetteer")
    p.add_argument("--project", type=Path, help="a loop's folder (its data/ holds the ledger; default: the "
                   "journey's work folder)")
    p.add_argument("--name")
    p.add_argument("--results", type=Path, help="default: results/effort.json, or effort-<corpus>[-gazetteer].json")
    p.add_argument("--compare", action="store_true", help="only set the journeys' effort files side by side")
    p.add_argument("--folder", type=Path, default=RESULTS.parent,
                   help="--compare: where the effort files are and effort_runs.{json,md} go")
    p.add_argument("--journeys", type=Path, default=journey.RESULTS,
                   help="--compare: the journeys' cycle folders (<device>[-corpus][-gazetteer]/)")
    args = p.parse_args(argv)
    if args.compare:
        out = compare(args.folder, args.journeys)
        print((args.folder / f"{COMPARISON}.md").read_text(encoding="utf-8"))
        print(json.dumps({k: v["status"] for k, v in out["runs"].items()}))
        return 0
    v = Variant(args.corpus, args.gazetteer)
    project = args.project or journey.work_dir(v) / "seed1"
    results = args.results or effort_file(v, RESULTS.parent)
    name = args.name or run_name(v)
    if not (project / "data" / "annotations" / "ledger.jsonl").exists():
        print(f"no ledger in {project}: run benchmarks/journey.py first (or give --project)")
        return 0
    rows = imports(project)
    marks = milestones(rows, targets_for(v))
    write_json(results, {"name": name, "imports": rows, "milestones": marks})
    text = report(name, rows, marks)
    results.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    print(json.dumps(marks))
    if args.results is None:
        compare(RESULTS.parent, journey.RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
