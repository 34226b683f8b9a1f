"""The README's "Annotating in Label Studio" walk-through, end to end, from a tiny project root.

`nerloop label-studio up` (on a free port: `--port`, as the README says), `annotator add alice` / `bob`,
`annotation.backend: label_studio` in params.yaml, `nerloop cycle`; one pre-annotated sentence is corrected
in a real browser by its annotator (a region relabelled with a hotkey, Submit), another is accepted there in one
key (README "Accept in one key": every sentence goes out as "accept or edit" here, the threshold set near 0), the
other tasks are submitted through the REST API, logged in as themselves; `nerloop cycle` again imports exactly what
the page held, the accepted one marked so; `nerloop status`. Every command is a subprocess with no
NERLOOP_LABEL_STUDIO_* variable: what the README implies, nothing more.
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
from nerloop.annotation.core.server import LocalServer
from nerloop.annotation.label_studio import server as lss
from nerloop.annotation.label_studio.tasks import HINT_KEY, HINTS
from nerloop.data.records import join_tokens
from nerloop.data.tags import char_to_token_spans, spans_to_tags
from test_label_studio import Annotator
from tool_servers import server_venv

pytestmark = [pytest.mark.slow, pytest.mark.label_studio]

REGIONS = "span.htx-highlight"  # a highlighted region in the text of the labelling page
SUBMIT = "button[aria-label='Submit current annotation']"


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


def annotate_in(project: Path, server: LocalServer, backend: str, **annotation: Any) -> Path:
    """The lead's set-up, committed: ``annotation.backend`` (and any other ``annotation`` keys given) in
    params.yaml, the template's .gitignore (the tool's home stays out of git), and the tool's home holding a link
    to the session's server venv."""
    home = project / server.default_home
    home.mkdir()
    (home / "venv").symlink_to(server_venv(server))
    shutil.copy(ROOT / ".gitignore", project / ".gitignore")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["annotation"].update(backend=backend, **annotation)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git(project, "add", "-A")
    git(project, "commit", "-qm", f"annotate in {server.name}")
    return home


def by_task_id(tasks: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(sentence id, task) in the order of the task ids: the order of the labelling stream."""
    return sorted(tasks.items(), key=lambda item: item[1]["id"])


def log_in(browser: Any, person: Annotator, password: str) -> None:
    """The annotator logs in through Label Studio's form."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 90)
    browser.get(f"{person.url}/user/login/")
    wait.until(ec.presence_of_element_located((By.NAME, "password")))
    browser.find_element(By.NAME, "email").send_keys(person.email)
    browser.find_element(By.NAME, "password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda d: "/user/login" not in d.current_url)


def open_in_the_stream(browser: Any, person: Annotator, task: dict[str, Any], shot: Path, *shown: str) -> None:
    """The logged-in annotator opens "Label All Tasks", which shows ``task`` (the first one not done) with its
    text, its predicted regions and every string of ``shown``; a screenshot of the page is kept in ``shot``."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{person.url}/projects/{task['project']}/data?labeling=1")  # the stream opens `task`
    try:
        WebDriverWait(browser, 90).until(
            lambda d: all(s in d.find_element(By.TAG_NAME, "body").text for s in (task["data"]["text"], *shown))
            and len(d.find_elements(By.CSS_SELECTOR, REGIONS)) >= len(regions(task)))
    finally:  # what the annotator saw, also when it is not what the test expects
        browser.save_screenshot(str(shot))


def relabel_first_region_in_the_page(browser: Any, person: Annotator, task: dict[str, Any], shots: Path) -> list[str]:
    """The annotator opens "Label All Tasks", sees ``task`` with its predicted regions, selects the first region,
    presses another label's hotkey and clicks Submit. Returns the IOB2 tags of what the page then holds: what
    nerloop must import."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 90)
    predicted, text = sorted(regions(task)), task["data"]["text"]  # in the text's order, as the page marks them
    first = min(task["predictions"][0]["result"], key=lambda r: r["value"]["start"])
    score = f"{first['score']:.2f}"  # its score, in the region list
    open_in_the_stream(browser, person, task, shots / "labelling-page.png", score)
    labels = re.findall(r'<Label value="([^"]+)"', person.get(f"projects/{task['project']}")["label_config"])
    start, end, old = predicted[0]
    new = next(lab for lab in labels if lab != old)
    browser.find_elements(By.CSS_SELECTOR, REGIONS)[0].click()
    ActionChains(browser).send_keys(str(labels.index(new) + 1)).perform()  # Label Studio's hotkeys: 1, 2, ...
    wait.until(lambda d: f"{new}\n{text[start:end]}" in d.find_element(By.TAG_NAME, "body").text)
    browser.save_screenshot(str(shots / "corrected.png"))
    browser.find_element(By.CSS_SELECTOR, SUBMIT).click()
    wait.until(lambda d: person.get(f"tasks/{task['id']}")["annotations"])
    return iob2(text, [(start, end, new), *predicted[1:]])


def accept_in_one_key(browser: Any, person: Annotator, task: dict[str, Any], shots: Path) -> None:
    """The annotator opens "Label All Tasks", sees ``task`` with the accept hint and its predicted regions, and
    presses Label Studio's Submit hotkey (Ctrl+Enter) once, touching nothing else."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_in_the_stream(browser, person, task, shots / "accept-page.png", HINTS["accept"])
    assert not person.get(f"tasks/{task['id']}")["annotations"]
    ActionChains(browser).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(Keys.CONTROL).perform()
    WebDriverWait(browser, 90).until(lambda d: person.get(f"tasks/{task['id']}")["annotations"])


def iob2(text: str, spans: list[tuple[int, int, str]]) -> list[str]:
    """The IOB2 tags of character ``spans`` in a sentence whose tokens are joined by single spaces."""
    tokens = text.split()
    return spans_to_tags(len(tokens), char_to_token_spans(join_tokens(tokens)[1], spans))


def test_readme_walk_through_two_cycles_with_alice_and_bob(browser, tiny_project: Path, tmp_path: Path) -> None:
    project = tiny_project
    home = annotate_in(project, lss.SERVER, "label_studio", accept_threshold=1e-300)  # every sentence: accept or edit

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
                assert task["meta"]["nerloop_review"] == "accept" and task["data"][HINT_KEY] == HINTS["accept"]
                (pred,) = task["predictions"]
                assert pred["model_version"] == "nerloop-cycle-1" and task["meta"]["nerloop_cycle"] == 1
                scores = [r["score"] for r in pred["result"]]
                assert all(0.0 <= s <= 1.0 for s in scores)
                if scores:  # the prediction's own score: the least confident region's
                    assert pred["score"] == min(scores)
        assert any(t["predictions"][0]["result"] for ts in tasks.values() for t in ts.values()), \
            "the tiny model proposed no span at all: the pre-filled regions are not exercised"

        # 2. one pre-annotated sentence is corrected in the browser by its annotator (a region relabelled, Submit),
        #    another of theirs accepted there in one key (Ctrl+Enter); of the others, one is left untouched and the
        #    rest are submitted as pre-filled (the QC one: both agree)
        owner, fixed = next((n, sid) for n in ("alice", "bob") for sid, t in by_task_id(tasks[n])
                            if sid not in qc and regions(t))
        other = "bob" if owner == "alice" else "alice"
        untouched = next(sid for sid in tasks[other] if sid not in qc)
        accepted = max((sid for sid in tasks[owner] if sid not in {*qc, fixed}),
                       key=lambda sid: len(regions(tasks[owner][sid])))  # one with regions, where there is one
        first = [sid for sid, _ in by_task_id(tasks[owner]) if sid not in {fixed, accepted}]
        for sid in first:  # done before, so the labelling stream opens `fixed` and `accepted`, in their order
            people[owner].submit(tasks[owner][sid])
        log_in(browser, people[owner], passwords[owner])
        for sid, task in by_task_id({s: tasks[owner][s] for s in (fixed, accepted)}):
            if sid == fixed:
                made = relabel_first_region_in_the_page(browser, people[owner], task, tmp_path)
            else:
                accept_in_one_key(browser, people[owner], task, tmp_path)
        for name, ts in tasks.items():
            for sid, task in ts.items():
                if sid not in {fixed, accepted, untouched, *(first if name == owner else [])}:
                    people[name].submit(task)
        # a project made before the accept hint: its labelling config lacks it, and the next cycle puts it in
        other_pid = people[other].project(f"nerloop-{other}")
        config = people[other].get(f"projects/{other_pid}")["label_config"]
        old = config.replace('  <Header value="$hint" size="5"/>\n', "")
        assert old != config and "$hint" not in old
        resp = people[other].s.patch(f"{url}/api/projects/{other_pid}", json={"label_config": old}, timeout=30,
                                   headers={"X-CSRFToken": people[other].s.cookies.get("csrftoken") or ""})
        assert resp.ok, resp.text

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
        assert by_id[fixed]["annotator"] == owner and by_id[fixed]["record"]["tags"] == made  # exactly the page's
        assert by_id[fixed]["pre_tags"] == iob2(tasks[owner][fixed]["data"]["text"], regions(tasks[owner][fixed]))
        shown = iob2(tasks[owner][accepted]["data"]["text"], regions(tasks[owner][accepted]))
        assert by_id[accepted]["accepted"] is True and by_id[accepted]["annotator"] == owner
        assert by_id[accepted]["record"]["tags"] == by_id[accepted]["pre_tags"] == shown  # exactly the prediction
        assert "accepted" not in by_id[fixed]  # sent as "accept or edit", but edited
        assert {e["id"] for e in ledger if e.get("accepted")} == set(ids) - {fixed}  # the API's, as pre-filled too
        assert sorted(by_id[qc[0]]["record"]["meta"]["annotators"]) == ["alice", "bob"]
        assert {by_id[sid]["annotator"] for sid in tasks["alice"] if sid not in qc} == {"alice"}
        ann = read_json(project / "metrics/annotation.json")
        agreement = ann["agreement"]
        assert agreement["qc_examples"] == 1 and agreement["disagreements"] == 0
        assert agreement["cumulative"]["pairs"] == 1 and agreement["entity_f1"] == 1.0
        assert ann["waiting"] == 1 and ann["annotated_sentences"] == 5
        assert ann["accepted_in_one_key"] == {"last_cycle": 4, "total": 4}
        assert "**Accepted in one key**: 4 of 5 annotated sentences" in (project / "data/final/README.md").read_text()
        assert people[other].get(f"projects/{other_pid}")["label_config"] == config  # brought up to date

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
        # the shipped stopping rule (kappa >= 0.96 for 1 cycle) may already say stop for the tiny model, whose two
        # cycles can predict the stop set alike; then status says to finish rather than to annotate
        stops = status["forecast"]["decision"] == "stop"
        assert ("nerloop cycle --no-send, then nerloop finalize   # stop: " if stops else
                "annotate the 7 waiting sentences in label_studio, then: nerloop cycle") in text
        assert git(project, "status", "--porcelain") == ""
    finally:
        nerloop(project, "label-studio", "down")
    assert not lss.probe(url, timeout_s=0.5)
    assert not os.path.exists(home / "server.json")
