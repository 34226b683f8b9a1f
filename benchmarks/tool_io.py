"""What the two round-trip benchmarks share (``doccano_io.py``, ``label_studio_io.py``): the batch they send,
their targets, a fresh server of either tool, annotators' sessions in parallel, the timed imports, and
the command line.

Issue #4 set the targets for Doccano and issue #13 the same for Label Studio: export of 1,000 sentences
with three pre-annotated entities each under 10 s, import of 1,000 finished ones under 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nerloop.annotation.core.base import AnnotationBackend
from nerloop.annotation.core.local_server import free_port
from nerloop.annotation.core.server import LocalServer
from nerloop.data.ledger import Ledger
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


@contextmanager
def scratch_server(server: LocalServer, prefix: str, use_running: bool) -> Iterator[tuple[Path, dict[str, Any] | None]]:
    """A scratch home and, unless ``use_running``, a fresh server of the tool in it on a free loopback port (its
    venv installed if missing), stopped at the end: (home, its URL and admin credentials, or None)."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    if use_running:
        yield home, None
        return
    venv = Path(os.environ.get(server.venv_env) or ROOT / server.default_home / "venv")
    server.install(ROOT / server.default_home, venv=venv)
    t0 = time.perf_counter()
    state = server.up(home, free_port(), venv=venv)
    print(f"server up at {state['url']} in {time.perf_counter() - t0:.1f} s", flush=True)
    try:
        yield home, {**json.loads((home / "credentials.json").read_text()), "url": state["url"]}
    finally:
        server.down(home)


def timed_export(be: AnnotationBackend, records: list[Record], spans: str) -> tuple[dict[str, str], float]:
    """Export the batch, every sentence once: the manifest and the seconds, as the target counts them.
    ``spans``: what the tool calls the pre-annotated spans, in the line printed."""
    n, n_spans = len(records), sum(len(r.meta["pre_spans"]) for r in records)
    t0 = time.perf_counter()
    manifest = be.export(records, 1)
    export_s = time.perf_counter() - t0
    assert len(manifest) == n, f"exported {len(manifest)} of {n}"
    print(f"export of {n} sentences ({n_spans} {spans}): {export_s:.2f} s", flush=True)
    return manifest, export_s


def timed_reexport(backend: Callable[[], AnnotationBackend], records: list[Record], manifest: dict[str, str]) -> float:
    """Export the batch again with a new backend, which must send nothing: the seconds, making it included."""
    t0 = time.perf_counter()
    again = backend().export(records, 1)
    reexport_s = time.perf_counter() - t0
    assert again == manifest
    print(f"re-export (idempotent, nothing sent): {reexport_s:.2f} s", flush=True)
    return reexport_s


def in_sessions(worker: Callable[[list[Any]], None], jobs: list[Any], threads: int, doing: str) -> float:
    """Seconds to finish ``jobs`` as annotators would, ``threads`` sessions in parallel (``worker`` opens one
    and works through its share, every ``threads``-th job); ``doing`` names the work in the line printed."""
    chunks = [jobs[i::threads] for i in range(threads)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, chunks))
    seconds = time.perf_counter() - t0
    print(f"{doing} ({threads} parallel sessions): {seconds:.2f} s", flush=True)
    return seconds


def timed_imports(backend: AnnotationBackend, home: Path, exported: dict[str, str], records: list[Record],
                  finished: str) -> tuple[float, float]:
    """Import the finished batch, every sentence with its pre-annotation as the annotators left it, then import
    again with all of it in the ledger (nothing new): the seconds of each, as the targets count them."""
    n, ledger = len(records), Ledger(home / "ledger.jsonl")
    t0 = time.perf_counter()
    result = backend.fetch(ledger, exported)
    import_s = time.perf_counter() - t0
    assert len(result.done) == n and not result.pending and not result.problems, result.metrics
    by_id = {r.id: r for r in records}
    assert all(a.record.tags == by_id[a.record.id].meta["pre_tags"] for a in result.done)
    print(f"import (fetch) of {n} {finished}: {import_s:.2f} s", flush=True)

    t0 = time.perf_counter()
    ledger.append(result.done)
    nothing = backend.fetch(ledger)
    refetch_s = time.perf_counter() - t0
    assert nothing.done == []
    print(f"import again (all known, nothing new): {refetch_s:.2f} s", flush=True)
    return import_s, refetch_s


def export_figures(export_s: float) -> dict[str, Any]:
    """The export's seconds against its target, as the result file holds them."""
    return {"export_s": round(export_s, 3), "export_target_s": EXPORT_TARGET_S,
            "export_met": export_s < EXPORT_TARGET_S}


def import_figures(import_s: float, refetch_s: float) -> dict[str, Any]:
    """The import's seconds against its target, and the import again, as the result file holds them."""
    return {"import_s": round(import_s, 3), "import_target_s": IMPORT_TARGET_S,
            "import_met": import_s < IMPORT_TARGET_S, "reimport_noop_s": round(refetch_s, 3)}


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
