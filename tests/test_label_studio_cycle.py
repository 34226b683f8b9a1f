"""The README's "Annotating in Label Studio" walk-through, end to end, from a tiny project root.

`nerloop label-studio up` (on a free port: `--port`, as the README says), `annotator add alice` / `bob`,
`annotation.backend: label_studio` in params.yaml, `nerloop cycle`, alice and bob submit in Label Studio
(played through the REST API, logged in as themselves), `nerloop cycle` again, `nerloop status`. Every
command is a subprocess with no NERLOOP_LABEL_STUDIO_* variable: what the README implies, nothing more.
The server venv is the one the session installs (linked into the project's `.label-studio/`, as in
`test_documented_commands_from_a_project_root`); a fresh install is the same code path, minutes longer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import ROOT, project_env
from nerloop.annotation.core.local_server import free_port
from nerloop.annotation.label_studio import server as lss
from test_label_studio import Annotator
from tool_servers import server_venv

pytestmark = [pytest.mark.slow, pytest.mark.label_studio]


def nerloop(project: Path, *args: str) -> str:
    """``nerloop ARGS`` in the project as the lead types it (venv on PATH, a git identity, nothing else)."""
    env = {k: v for k, v in project_env().items() if not k.startswith("NERLOOP_LABEL_STUDIO")}
    t0 = time.perf_counter()
    proc = subprocess.run(["nerloop", *args], cwd=project, env=env, text=True, capture_output=True, timeout=600)
    print(f"\nnerloop {' '.join(args)}: {time.perf_counter() - t0:.1f} s")
    assert proc.returncode == 0, f"nerloop {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, env=project_env(), text=True, capture_output=True,
                          check=True).stdout


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def ledger_entries(project: Path) -> list[dict[str, Any]]:
    path = project / "data/annotations/ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def regions(task: dict[str, Any]) -> list[tuple[int, int, str]]:
    return [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in task["predictions"][0]["result"]]


def test_readme_walk_through_two_cycles_with_alice_and_bob(tiny_project: Path) -> None:
    project = tiny_project
    home = project / ".label-studio"
    home.mkdir()
    (home / "venv").symlink_to(server_venv(lss.SERVER))
    shutil.copy(ROOT / ".gitignore", project / ".gitignore")  # the template's: .label-studio/ stays out of git
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["annotation"]["backend"] = "label_studio"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(project, "add", "-A")
    git(project, "commit", "-qm", "annotate in Label Studio")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        assert url in nerloop(project, "label-studio", "up", "--port", str(port))
        passwords = {}
        for name in ("alice", "bob"):
            out = nerloop(project, "label-studio", "annotator", "add", name)
            passwords[name] = re.search(r"password: (\S+)", out).group(1)
        people = {n: Annotator(url, f"{n}@nerloop.local", pw) for n, pw in passwords.items()}

        # 1. the first cycle trains on the seed, selects, sends each annotator their share with predictions
        out = nerloop(project, "cycle")
        assert "sent 6 sentences for cycle 1 to label_studio" in out
        assert git(project, "log", "-1", "--format=%s").startswith("nerloop cycle 0")
        manifest = read_json(project / "data/export/manifest.json")
        assert manifest["backend"] == "label_studio" and len(manifest["examples"]) == 6
        qc = [sid for sid, e in manifest["examples"].items() if len(e["example"].split()) == 2]
        assert len(qc) == 1  # qc_share 0.1 of 6: one sentence to both
        tasks = {n: p.tasks(p.project(f"nerloop-{n}")) for n, p in people.items()}
        assert set(tasks["alice"]) & set(tasks["bob"]) == set(qc)
        assert set(tasks["alice"]) | set(tasks["bob"]) == set(manifest["examples"])
        assert {len(tasks["alice"]), len(tasks["bob"])} == {3, 4}  # 5 sentences + the QC one, shared evenly
        for ts in tasks.values():
            for task in ts.values():
                (pred,) = task["predictions"]
                assert pred["model_version"] == "nerloop-cycle-1" and task["meta"]["nerloop_cycle"] == 1
                scores = [r["score"] for r in pred["result"]]
                assert all(0.0 <= s <= 1.0 for s in scores)
                if scores:  # the prediction's own score: the least confident region's
                    assert pred["score"] == min(scores)
        assert any(t["predictions"][0]["result"] for ts in tasks.values() for t in ts.values()), \
            "the tiny model proposed no span at all: the pre-filled regions are not exercised"

        # 2. alice submits all of hers as pre-filled; bob fixes one, leaves one untouched, submits the rest
        for task in tasks["alice"].values():
            people["alice"].submit(task)
        bob_own = [sid for sid in tasks["bob"] if sid not in qc]
        untouched, fixed = bob_own[0], bob_own[1]
        for sid, task in tasks["bob"].items():
            if sid == fixed:
                first_word = (0, len(task["data"]["text"].split()[0]), "Chemical")
                people["bob"].submit(task, regions(task)[:-1] if regions(task) else [first_word])
            elif sid != untouched:
                people["bob"].submit(task)  # the QC sentence as pre-filled: alice and bob agree

        out = nerloop(project, "label-studio", "disagreements")
        assert "no disagreements waiting" in out and "1 double-annotated sentences, kappa" in out

        # 3. the next cycle imports what was submitted, retrains, sends the next batch, nothing twice
        out = nerloop(project, "cycle")
        assert "fetched 5 new annotations (1 sentence" in out  # 1 still waiting
        assert git(project, "log", "-1", "--format=%s").startswith("nerloop cycle 1: 29 labelled sentences")
        ledger = ledger_entries(project)
        ids = [e["id"] for e in ledger]
        assert sorted(ids) == sorted(set(manifest["examples"]) - {untouched})  # each once, the QC one too
        by_id = {e["id"]: e for e in ledger}
        assert sorted(by_id[qc[0]]["record"]["meta"]["annotators"]) == ["alice", "bob"]
        assert {by_id[sid]["annotator"] for sid in tasks["alice"] if sid not in qc} == {"alice"}
        ann = read_json(project / "metrics/annotation.json")
        agreement = ann["agreement"]
        assert agreement["qc_examples"] == 1 and agreement["disagreements"] == 0
        assert agreement["cumulative"]["pairs"] == 1 and agreement["entity_f1"] == 1.0
        assert ann["waiting"] == 1 and ann["annotated_sentences"] == 5

        manifest2 = read_json(project / "data/export/manifest.json")["examples"]
        assert len(manifest2) == 12 and {e["cycle"] for e in manifest2.values()} == {1, 2}
        assert {s: e for s, e in manifest2.items() if e["cycle"] == 1} == manifest["examples"]
        for name, person in people.items():
            pid = person.project(f"nerloop-{name}")
            listed = person.get("tasks", project=pid, page_size=1000)["tasks"]
            sids = Counter(t["meta"]["nerloop_id"] for t in listed)
            assert sids and max(sids.values()) == 1, f"a sentence was sent twice to {name}: {sids}"
        now = {n: p.tasks(p.project(f"nerloop-{n}")) for n, p in people.items()}
        assert set(now["alice"]) | set(now["bob"]) == set(manifest2)
        new_batch = {sid for sid, e in manifest2.items() if e["cycle"] == 2}
        for ts in now.values():
            for sid, task in ts.items():
                versions = [p["model_version"] for p in task["predictions"]]
                if sid in new_batch:
                    assert versions == ["nerloop-cycle-2"] and task["meta"]["nerloop_cycle"] == 2
                elif sid == untouched:  # carried over to the project's current model version
                    assert versions.count("nerloop-cycle-2") == 1 and task["meta"]["nerloop_cycle"] == 1

        # 4. status names the backend and counts what waits
        status = json.loads(nerloop(project, "status", "--json"))
        assert status["backend"] == "label_studio" and status["cycle"] == 1
        assert status["labelled_sentences"] == 29 and status["waiting_for_annotation"] == 7
        assert status["pool_left"] == 40 - 12 and status["uncommitted"] == []
        text = nerloop(project, "status")
        assert "backend:             label_studio" in text
        assert "annotate the 7 waiting sentences in label_studio, then: nerloop cycle" in text
        assert git(project, "status", "--porcelain") == ""
    finally:
        nerloop(project, "label-studio", "down")
    assert not lss.probe(url, timeout_s=0.5)
    assert not os.path.exists(home / "server.json")
