"""Benchmark the Doccano round trip: export 1,000 pre-annotated sentences, import 1,000 confirmed ones.

Targets (issue #4): export of 1,000 sentences with ~3 pre-annotated spans each under 10 s, each span's
confidence written into Doccano's ``prob`` (checked on a sample; issue #26: one request per project
through the route nerloop adds to the server it runs, where one request per span took 172 s); import
(``fetch``) of 1,000 confirmed examples with their spans under 30 s. A fresh server's ``media/`` is
checked to hold no uploaded file after the export.

By default a fresh Doccano is started in a temporary home on a free loopback port and stopped at
the end (the server venv is ``.doccano/venv`` or ``$NERLOOP_DOCCANO_VENV``, installed if missing).
``--use-running`` uses the server and credentials nerloop would use (``NERLOOP_DOCCANO_*`` or
``.doccano/credentials.json``) instead; a new project is created either way.

Run from the repository root:  ``PYTHONPATH=src python benchmarks/doccano_io.py``
Writes ``benchmarks/results/doccano_io.json``.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import tool_io
from tool_io import EXPORT_TARGET_S, IMPORT_TARGET_S, LABELS, ROOT, make_batch, start_server

from nerloop.annotation.doccano import DoccanoBackend, credentials
from nerloop.annotation.doccano import server as ds
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record
from nerloop.params import DoccanoParams

RESULT = ROOT / "benchmarks" / "results" / "doccano_io.json"



def check_confidences(be: DoccanoBackend, pid: int, manifest: dict[str, str], records: list[Record],
                      sample: int = 20) -> int:
    """Read back the spans of ``sample`` exported examples: each must carry its confidence. Returns spans checked."""
    names = {v: k for k, v in be.label_ids(pid).items()}
    checked = 0
    for rec in records[:: max(1, len(records) // sample)]:
        eid = int(manifest[rec.id].split(":")[1])
        got = {(r["start_offset"], r["end_offset"], names[r["label"]]): r["prob"]
               for r in be.conn.request("GET", f"projects/{pid}/examples/{eid}/spans", "reading spans")}
        want = {(s, e, lab): c for s, e, lab, c in rec.meta["pre_spans"]}
        assert got.keys() == want.keys() and all(abs(got[k] - c) < 1e-6 for k, c in want.items()), (rec.id, got)
        checked += len(got)
    return checked


def confirm_all(url: str, user: str, password: str, project_id: int, example_ids: list[int], threads: int) -> float:
    """Confirm examples as ``user``. Doccano has no bulk confirm: one POST per example, in parallel."""
    from doccano_client import DoccanoClient

    def worker(ids: list[int]) -> None:
        client = DoccanoClient(url)  # one session per thread
        client.login(username=user, password=password)
        for eid in ids:
            client.update_example_state(project_id, eid)  # toggles: each example is confirmed exactly once

    chunks = [example_ids[i::threads] for i in range(threads)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, chunks))
    return time.perf_counter() - t0


def run(n: int, use_running: bool, threads: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="nerloop-bench-doccano-"))
    started = False
    if use_running:
        url, user, password = credentials(ROOT / ".doccano")
    else:
        state, creds = start_server(ds.SERVER, home)
        started = True
        url, user, password = state["url"], creds["username"], creds["password"]
    try:
        # one annotator (the nerloop account itself), so the benchmark confirms as that account
        params = DoccanoParams(project=f"bench-{int(time.time())}", qc_share=0.0, page_size=1000, annotators=[user])
        records = make_batch(n)
        n_spans = sum(len(r.meta["pre_spans"]) for r in records)

        be = DoccanoBackend(params, LABELS, home=home, creds=(url, user, password))
        t0 = time.perf_counter()
        manifest = be.export(records, 1)
        export_s = time.perf_counter() - t0
        assert len(manifest) == n, f"exported {len(manifest)} of {n}"
        print(f"export of {n} sentences ({n_spans} spans): {export_s:.2f} s", flush=True)
        pid = be.annotator_projects()[user]
        spans_checked = check_confidences(be, pid, manifest, records)
        confidences = "one request per project (nerloop's route)" if be.bulk_confidences else "one request per span"
        print(f"confidences: {confidences}; {spans_checked} spans read back, each with its confidence", flush=True)
        media_files = sum(p.is_file() for p in (home / "media").rglob("*")) if started else None

        t0 = time.perf_counter()
        again = DoccanoBackend(params, LABELS, home=home, creds=(url, user, password)).export(records, 1)
        reexport_s = time.perf_counter() - t0
        assert again == manifest
        print(f"re-export (idempotent, nothing sent): {reexport_s:.2f} s", flush=True)

        example_ids = [int(e.split(":")[1]) for e in manifest.values()]  # "annotator:example id"
        confirm_s = confirm_all(url, user, password, pid, example_ids, threads)
        print(f"confirming {n} examples ({threads} parallel sessions): {confirm_s:.2f} s", flush=True)

        fresh = DoccanoBackend(params, LABELS, home=home, creds=(url, user, password))
        t0 = time.perf_counter()
        ledger = Ledger(home / "ledger.jsonl")
        result = fresh.fetch(ledger, {sid: eid for sid, eid in manifest.items()})
        import_s = time.perf_counter() - t0
        assert len(result.done) == n and not result.pending and not result.problems, result.metrics
        assert all(a.record.tags == r.meta["pre_tags"] for a, r in zip(result.done, records, strict=True))
        print(f"import (fetch) of {n} confirmed examples: {import_s:.2f} s", flush=True)

        t0 = time.perf_counter()
        ledger.append(result.done)
        nothing = fresh.fetch(ledger)
        refetch_s = time.perf_counter() - t0
        assert nothing.done == []
        print(f"import again (all known, nothing new): {refetch_s:.2f} s", flush=True)
    finally:
        if started:
            ds.down(home)

    return {
        "benchmark": "doccano_io",
        "sentences": n,
        "pre_annotated_spans": n_spans,
        "page_size": params.page_size,
        "export_s": round(export_s, 3),
        "export_target_s": EXPORT_TARGET_S,
        "export_met": export_s < EXPORT_TARGET_S,
        "confidences_written": confidences,
        "confidence_spans_checked": spans_checked,
        "media_files_after_export": media_files,  # None: an existing server's media/ is not looked at
        "reexport_noop_s": round(reexport_s, 3),
        "confirm_s": round(confirm_s, 3),
        "confirm_threads": threads,
        "import_s": round(import_s, 3),
        "import_target_s": IMPORT_TARGET_S,
        "import_met": import_s < IMPORT_TARGET_S,
        "reimport_noop_s": round(refetch_s, 3),
        "server": "doccano 1.8.4, gunicorn 2 workers, sqlite, eager Celery"
        if started
        else "existing server (--use-running)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)},  # other work slows the server
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    return tool_io.main(argv, __doc__, run, RESULT, "confirming")


if __name__ == "__main__":
    sys.exit(main())
