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
import time
from typing import Any

import tool_io

from nerloop.annotation.doccano import DoccanoBackend, credentials
from nerloop.annotation.doccano import server as ds
from nerloop.data.records import Record
from nerloop.params import DoccanoParams

RESULT = tool_io.ROOT / "benchmarks" / "results" / "doccano_io.json"



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

    return tool_io.in_sessions(worker, example_ids, threads, f"confirming {len(example_ids)} examples")


def run(n: int, use_running: bool, threads: int) -> dict[str, Any]:
    with tool_io.scratch_server(ds.SERVER, "nerloop-bench-doccano-", use_running) as (home, fresh_server):
        if fresh_server is None:
            url, user, password = credentials(tool_io.ROOT / ".doccano")
        else:
            url, user, password = fresh_server["url"], fresh_server["username"], fresh_server["password"]
        # one annotator (the nerloop account itself), so the benchmark confirms as that account
        params = DoccanoParams(project=f"bench-{int(time.time())}", qc_share=0.0, page_size=1000, annotators=[user])
        records = tool_io.make_batch(n)
        n_spans = sum(len(r.meta["pre_spans"]) for r in records)

        def backend() -> DoccanoBackend:
            return DoccanoBackend(params, tool_io.LABELS, home=home, creds=(url, user, password))

        be = backend()
        manifest, export_s = tool_io.timed_export(be, records, "spans")
        pid = be.annotator_projects()[user]
        spans_checked = check_confidences(be, pid, manifest, records)
        confidences = "one request per project (nerloop's route)" if be.bulk_confidences else "one request per span"
        print(f"confidences: {confidences}; {spans_checked} spans read back, each with its confidence", flush=True)
        media_files = sum(p.is_file() for p in (home / "media").rglob("*")) if fresh_server else None
        reexport_s = tool_io.timed_reexport(backend, records, manifest)

        example_ids = [int(e.split(":")[1]) for e in manifest.values()]  # "annotator:example id"
        confirm_s = confirm_all(url, user, password, pid, example_ids, threads)
        import_s, refetch_s = tool_io.timed_imports(backend(), home, dict(manifest), records, "confirmed examples")

    return {
        "benchmark": "doccano_io",
        "sentences": n,
        "pre_annotated_spans": n_spans,
        "page_size": params.page_size,
        **tool_io.export_figures(export_s),
        "confidences_written": confidences,
        "confidence_spans_checked": spans_checked,
        "media_files_after_export": media_files,  # None: an existing server's media/ is not looked at
        "reexport_noop_s": round(reexport_s, 3),
        "confirm_s": round(confirm_s, 3),
        "confirm_threads": threads,
        **tool_io.import_figures(import_s, refetch_s),
        "server": "doccano 1.8.4, gunicorn 2 workers, sqlite, eager Celery"
        if fresh_server
        else "existing server (--use-running)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)},  # other work slows the server
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    return tool_io.main(argv, __doc__, run, RESULT, "confirming")


if __name__ == "__main__":
    sys.exit(main())
