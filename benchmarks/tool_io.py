"""What the two round-trip benchmarks share (``doccano_io.py``, ``label_studio_io.py``): the batch they send,
their targets, a fresh server of either tool, and the command line.

Issue #4 set the targets for Doccano and issue #13 the same for Label Studio: export of 1,000 sentences
with three pre-annotated entities each under 10 s, import of 1,000 finished ones under 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nerloop.annotation.core.local_server import free_port
from nerloop.annotation.core.server import LocalServer
from nerloop.data.records import Record
from nerloop.data.tags import tags_to_spans, token_to_char_spans

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["LOC", "ORG", "PER"]
EXPORT_TARGET_S = 10.0
IMPORT_TARGET_S = 30.0

FIRST = ["Alice", "Bruno", "Chiara", "Dmitri", "Emeka", "Fatima", "Goran", "Hana", "Ivo", "Jun"]
CITIES = ["Paris", "Lagos", "Osaka", "Lima", "Oslo", "Quito", "Perth", "Turin", "Accra", "Hanoi"]
ORGS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Wonka", "Stark", "Wayne", "Tyrell"]


def make_batch(n: int, cycle: int = 1) -> list[Record]:
    """``n`` distinct sentences of 15 tokens, each with three pre-annotated entities (PER, LOC, ORG)."""
    out = []
    for i in range(n):
        tokens = [
            FIRST[i % 10], f"Surname{i}", "flew", "from", CITIES[(i // 10) % 10], "to", "meet", "the",
            "board", "of", ORGS[(i // 100) % 10], "Corp", "on", "Monday", ".",
        ]  # fmt: skip
        tags = ["B-PER", "I-PER", "O", "O", "B-LOC", "O", "O", "O", "O", "O", "B-ORG", "I-ORG", "O", "O", "O"]
        rec = Record.from_tokens(tokens, source=f"bench:{i}")
        spans = token_to_char_spans(rec.offsets, tags_to_spans(tags))
        rec.meta = {
            "cycle": cycle,
            "pre_tags": tags,
            "pre_spans": [[s, e, lab, 0.8 + 0.001 * (i % 100)] for s, e, lab in spans],
            "scores": {"mnlp": -0.01 * i, "diversity": 0.5},
        }
        out.append(rec)
    return out


def start_server(server: LocalServer, home: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh server of the tool in ``home`` on a free loopback port (its venv installed if missing):
    (its state, its admin credentials)."""
    venv = Path(os.environ.get(server.venv_env) or ROOT / server.default_home / "venv")
    server.install(ROOT / server.default_home, venv=venv)
    t0 = time.perf_counter()
    state = server.up(home, free_port(), venv=venv)
    print(f"server up at {state['url']} in {time.perf_counter() - t0:.1f} s", flush=True)
    return state, json.loads((home / "credentials.json").read_text())


def main(argv: list[str] | None, doc: str, run: Callable[[int, bool, int], dict[str, Any]], result: Path,
         finishing: str) -> int:
    """Parse the benchmark's arguments, run it, print the verdicts and write the result; exit 0 when both met."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="sentences to export and import (default 1000)")
    parser.add_argument("--use-running", action="store_true", help="use the configured server instead of a fresh one")
    parser.add_argument("--threads", type=int, default=4, help=f"parallel sessions for {finishing} (default 4)")
    parser.add_argument("--out", type=Path, default=result)
    args = parser.parse_args(argv)

    res = run(args.n, args.use_running, args.threads)
    for what in ("export", "import"):
        verdict = "met" if res[f"{what}_met"] else "NOT met"
        print(f"{what}: {res[f'{what}_s']:.2f} s (target < {res[f'{what}_target_s']:.0f} s): {verdict}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if res["export_met"] and res["import_met"] else 1
