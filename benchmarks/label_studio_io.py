"""Benchmark the Label Studio round trip: export 1,000 pre-annotated sentences, import 1,000 submitted ones.

Targets (issue #13, as for Doccano in issue #4): export of 1,000 sentences with three predicted
regions each under 10 s; import (``fetch``) of 1,000 submitted annotations under 30 s.

By default a fresh Label Studio is started in a temporary home on a free loopback port and stopped
at the end (the server venv is ``.label-studio/venv`` or ``$NERLOOP_LABEL_STUDIO_VENV``, installed if
missing). ``--use-running`` uses the server and token nerloop would use (``NERLOOP_LABEL_STUDIO_*``
or ``.label-studio/credentials.json``) instead; a new project is created either way.

Run from the repository root:  ``PYTHONPATH=src python benchmarks/label_studio_io.py``
Writes ``benchmarks/results/label_studio_io.json``.
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

import requests
import tool_io
from tool_io import EXPORT_TARGET_S, IMPORT_TARGET_S, LABELS, ROOT, make_batch, start_server

from nerloop.annotation.label_studio import LabelStudioBackend, credentials
from nerloop.annotation.label_studio import server as lss
from nerloop.annotation.label_studio.tasks import region
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record
from nerloop.params import LabelStudioParams

RESULT = ROOT / "benchmarks" / "results" / "label_studio_io.json"



def submit_all(url: str, token: str, project_id: int, jobs: list[tuple[int, Record]], threads: int) -> float:
    """Submit every task with the model's spans as the annotation, as the benchmark account: one POST per
    task (Label Studio has no bulk submit), ``threads`` sessions in parallel."""

    def worker(chunk: list[tuple[int, Record]]) -> None:
        s = requests.Session()
        s.headers["Authorization"] = f"Token {token}"
        for tid, rec in chunk:
            result = [region(rec.text, st, en, lab, None, f"a{i}") for i, (st, en, lab, _) in
                      enumerate(rec.meta["pre_spans"])]
            resp = s.post(f"{url}/api/tasks/{tid}/annotations/", params={"project": project_id}, timeout=60,
                          json={"result": result, "lead_time": 3.0})
            resp.raise_for_status()

    chunks = [jobs[i::threads] for i in range(threads)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, chunks))
    return time.perf_counter() - t0


def run(n: int, use_running: bool, threads: int) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="nerloop-bench-ls-"))
    started = False
    if use_running:
        url, token = credentials(ROOT / ".label-studio")
        email = requests.get(f"{url}/api/current-user/whoami", headers={"Authorization": f"Token {token}"},
                             timeout=30).json()["email"]
    else:
        state, creds = start_server(lss.SERVER, home)
        started = True
        url, token, email = state["url"], creds["token"], creds["email"]
    try:
        # one annotator (the nerloop account itself, named by its e-mail), so the benchmark submits as it
        params = LabelStudioParams(project=f"bench-{int(time.time())}", qc_share=0.0, annotators=[email])
        records = make_batch(n)
        n_spans = sum(len(r.meta["pre_spans"]) for r in records)

        be = LabelStudioBackend(params, LABELS, home=home, creds=(url, token))
        t0 = time.perf_counter()
        manifest = be.export(records, 1)
        export_s = time.perf_counter() - t0
        assert len(manifest) == n, f"exported {len(manifest)} of {n}"
        print(f"export of {n} sentences ({n_spans} predicted regions): {export_s:.2f} s", flush=True)

        t0 = time.perf_counter()
        again = LabelStudioBackend(params, LABELS, home=home, creds=(url, token)).export(records, 1)
        reexport_s = time.perf_counter() - t0
        assert again == manifest
        print(f"re-export (idempotent, nothing sent): {reexport_s:.2f} s", flush=True)

        jobs = [(int(manifest[r.id].split(":")[-1]), r) for r in records]  # "annotator:task id"
        submit_s = submit_all(url, token, be.annotator_projects()[email], jobs, threads)
        print(f"submitting {n} annotations ({threads} parallel sessions): {submit_s:.2f} s", flush=True)

        fresh = LabelStudioBackend(params, LABELS, home=home, creds=(url, token))
        ledger = Ledger(home / "ledger.jsonl")
        t0 = time.perf_counter()
        result = fresh.fetch(ledger, dict(manifest))
        import_s = time.perf_counter() - t0
        assert len(result.done) == n and not result.pending and not result.problems, result.metrics
        by_id = {r.id: r for r in records}
        assert all(a.record.tags == by_id[a.record.id].meta["pre_tags"] for a in result.done)
        print(f"import (fetch) of {n} submitted annotations: {import_s:.2f} s", flush=True)

        t0 = time.perf_counter()
        ledger.append(result.done)
        nothing = fresh.fetch(ledger)
        refetch_s = time.perf_counter() - t0
        assert nothing.done == []
        print(f"import again (all known, nothing new): {refetch_s:.2f} s", flush=True)
    finally:
        if started:
            lss.down(home)

    return {
        "benchmark": "label_studio_io",
        "sentences": n,
        "predicted_regions": n_spans,
        "export_s": round(export_s, 3),
        "export_target_s": EXPORT_TARGET_S,
        "export_met": export_s < EXPORT_TARGET_S,
        "reexport_noop_s": round(reexport_s, 3),
        "submit_s": round(submit_s, 3),
        "submit_threads": threads,
        "import_s": round(import_s, 3),
        "import_target_s": IMPORT_TARGET_S,
        "import_met": import_s < IMPORT_TARGET_S,
        "reimport_noop_s": round(refetch_s, 3),
        "server": f"label-studio {lss.LABEL_STUDIO_VERSION}, Django runserver, sqlite" if started
        else "existing server (--use-running)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    return tool_io.main(argv, __doc__, run, RESULT, "submitting")


if __name__ == "__main__":
    sys.exit(main())
