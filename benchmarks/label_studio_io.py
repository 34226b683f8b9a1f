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
import time
from typing import Any

import requests
import tool_io

from nerloop.annotation.label_studio import LabelStudioBackend, credentials
from nerloop.annotation.label_studio import server as lss
from nerloop.annotation.label_studio.tasks import region
from nerloop.data.records import Record
from nerloop.params import LabelStudioParams

RESULT = tool_io.ROOT / "benchmarks" / "results" / "label_studio_io.json"



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

    return tool_io.in_sessions(worker, jobs, threads, f"submitting {len(jobs)} annotations")


def run(n: int, use_running: bool, threads: int) -> dict[str, Any]:
    with tool_io.scratch_server(lss.SERVER, "nerloop-bench-ls-", use_running) as (home, fresh_server):
        if fresh_server is None:
            url, token = credentials(tool_io.ROOT / ".label-studio")
            email = requests.get(f"{url}/api/current-user/whoami", headers={"Authorization": f"Token {token}"},
                                 timeout=30).json()["email"]
        else:
            url, token, email = fresh_server["url"], fresh_server["token"], fresh_server["email"]
        # one annotator (the nerloop account itself, named by its e-mail), so the benchmark submits as it
        params = LabelStudioParams(project=f"bench-{int(time.time())}", qc_share=0.0, annotators=[email])
        records = tool_io.make_batch(n)
        n_spans = sum(len(r.meta["pre_spans"]) for r in records)

        def backend() -> LabelStudioBackend:
            return LabelStudioBackend(params, tool_io.LABELS, home=home, creds=(url, token))

        be = backend()
        manifest, export_s = tool_io.timed_export(be, records, "predicted regions")
        reexport_s = tool_io.timed_reexport(backend, records, manifest)

        jobs = [(int(manifest[r.id].split(":")[-1]), r) for r in records]  # "annotator:task id"
        submit_s = submit_all(url, token, be.annotator_projects()[email], jobs, threads)
        import_s, refetch_s = tool_io.timed_imports(backend(), home, dict(manifest), records, "submitted annotations")

    return {
        "benchmark": "label_studio_io",
        "sentences": n,
        "predicted_regions": n_spans,
        **tool_io.export_figures(export_s),
        "reexport_noop_s": round(reexport_s, 3),
        "submit_s": round(submit_s, 3),
        "submit_threads": threads,
        **tool_io.import_figures(import_s, refetch_s),
        "server": f"label-studio {lss.LABEL_STUDIO_VERSION}, Django runserver, sqlite" if fresh_server
        else "existing server (--use-running)",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    return tool_io.main(argv, __doc__, run, RESULT, "submitting")


if __name__ == "__main__":
    sys.exit(main())
