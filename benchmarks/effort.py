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
    python benchmarks/effort.py --project DIR --name NAME --results OUT.json

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

from nerloop.data.annotations import EFFORT_KEYS, manual_effort, summed
from nerloop.data.files import read_records, write_json
from nerloop.data.ledger import Ledger

ROOT = al_setup.ROOT
JOURNEY = ROOT / "benchmarks" / "work" / "journey" / "seed1"
RESULTS = ROOT / "benchmarks" / "results" / "effort.json"
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


def milestones(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The import whose labelled range holds each milestone, beside the seed table and the targets."""
    out = {}
    for m, (low, high) in SEED_TABLE.items():
        row = next((r for r in rows if r["labelled_from"] <= m < r["labelled_to"]), None)
        entry: dict[str, Any] = {"seed_table": [low, high], "cycle": row and row["cycle"],
                                 "effort": row and row["effort"],
                                 "range": row and [row["labelled_from"], row["labelled_to"]]}
        if m in TARGETS:
            entry["target"] = TARGETS[m]
            entry["verdict"] = ("not reached" if row is None or row["effort"] is None
                                else "met" if row["effort"] <= TARGETS[m] else "not met")
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--project", type=Path, default=JOURNEY, help="a loop's folder (its data/ holds the ledger)")
    p.add_argument("--name", default="CoNLL-2003 journey (hybrid, fitted recipe, seed 1)")
    p.add_argument("--results", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if not (args.project / "data" / "annotations" / "ledger.jsonl").exists():
        print(f"no ledger in {args.project}: run benchmarks/journey.py first (or give --project)")
        return 0
    rows = imports(args.project)
    marks = milestones(rows)
    write_json(args.results, {"name": args.name, "imports": rows, "milestones": marks})
    text = report(args.name, rows, marks)
    args.results.with_suffix(".md").write_text(text, encoding="utf-8")
    print(text)
    print(json.dumps(marks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
