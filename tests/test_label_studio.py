"""The Label Studio backend and server against a real Label Studio 1.23 server (no mock of Label Studio).

A session fixture installs the server venv if it is missing (``.label-studio/venv``, or
``$NERLOOP_LABEL_STUDIO_VENV``), starts Label Studio on a free 127.0.0.1 port in a temporary home
and stops it by process id at the end. Two annotators, alice and bob, are signed up once through the
invite link, as ``nerloop label-studio annotator add`` does; each test uses its own project prefix.
The annotators are played through the REST API, logged in through the login form as themselves.
What Label Studio does as Doccano does (credentials, the team, the documented commands, the server's
life, an unreachable server) is tested once for both, in ``test_annotation_servers``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from conftest import ROOT
from nerloop.annotation.label_studio import (
    LabelStudioAuthError,
    LabelStudioBackend,
    LabelStudioTimeoutError,
    team,
)
from nerloop.annotation.label_studio import server as lss
from nerloop.annotation.label_studio.client import Connection
from nerloop.annotation.label_studio.projects import (
    WINDOW_CONTROL,
    WINDOW_LABEL,
    WINDOW_NAME,
    config_labels,
    label_config,
)
from nerloop.annotation.label_studio.tasks import HINT_KEY, PRE_FILLED, WINDOW_ID, review_task
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record
from nerloop.errors import NerloopError
from nerloop.params import LabelStudioParams
from tool_servers import (
    LABELS,
    PRE,
    Server,
    batch,
    make_record,
    nerloop_as_user,
    project_prefix,
    sent_to_alice,
    serve,
)


class Annotator:
    """A person in Label Studio, logged in through the login form as themselves, working through the API."""

    def __init__(self, url: str, email: str, password: str) -> None:
        self.url, self.email = url, email
        self.s = requests.Session()
        self.s.get(f"{url}/user/login/", timeout=30)
        resp = self.s.post(f"{url}/user/login/", allow_redirects=False, timeout=30,
                           data={"csrfmiddlewaretoken": self.s.cookies.get("csrftoken"), "email": email,
                                 "password": password})
        assert resp.status_code == 302, f"login of {email} failed: {resp.status_code}"

    def get(self, path: str, **params: Any) -> Any:
        resp = self.s.get(f"{self.url}/api/{path}", params=params, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def project(self, title: str) -> int:
        return next(p["id"] for p in self.get("projects", page_size=1000)["results"] if p["title"] == title)

    def projects(self) -> set[str]:
        """The titles of the projects this person is shown."""
        return {p["title"] for p in self.get("projects")["results"]}

    def tasks(self, pid: int) -> dict[str, dict[str, Any]]:
        """{sentence id: task, as the labelling page gets it (predictions the project pre-fills)}."""
        ids = [t["id"] for t in self.get("tasks", project=pid, page_size=1000)["tasks"]]
        out = {}
        for tid in ids:
            task = self.get(f"tasks/{tid}")
            out[task["meta"]["nerloop_id"]] = task
        return out

    def submit(self, task: dict[str, Any], spans: list[tuple[int, int, str]] | None = None) -> int:
        """Submit the task: ``spans`` (None: the prediction as it is). Returns the annotation id."""
        text = task["data"]["text"]
        if spans is None:
            result = task["predictions"][0]["result"]
        else:
            result = [{"from_name": "label", "to_name": "text", "type": "labels",
                       "value": {"start": s, "end": e, "text": text[s:e], "labels": [lab]}} for s, e, lab in spans]
        resp = self.s.post(f"{self.url}/api/tasks/{task['id']}/annotations/", params={"project": task["project"]},
                           json={"result": result, "lead_time": 4.2}, timeout=30)
        assert resp.status_code == 201, resp.text
        return int(resp.json()["id"])

    def skip(self, task: dict[str, Any]) -> None:
        resp = self.s.post(f"{self.url}/api/tasks/{task['id']}/annotations/", params={"project": task["project"]},
                           json={"result": [], "was_cancelled": True}, timeout=30)
        assert resp.status_code == 201, resp.text

    def update(self, annotation_id: int, task: dict[str, Any], spans: list[tuple[int, int, str]]) -> None:
        text = task["data"]["text"]
        result = [{"from_name": "label", "to_name": "text", "type": "labels",
                   "value": {"start": s, "end": e, "text": text[s:e], "labels": [lab]}} for s, e, lab in spans]
        resp = self.s.patch(f"{self.url}/api/annotations/{annotation_id}/", json={"result": result}, timeout=30)
        assert resp.status_code == 200, resp.text


def spans_of(rec: Record) -> list[tuple[int, int, str]]:
    return [(int(s), int(e), str(lab)) for s, e, lab, _ in rec.meta["pre_spans"]]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real Label Studio on a free loopback port in a temporary home; stopped by pid afterwards."""
    yield from serve(lss.SERVER, tmp_path_factory)


@pytest.fixture(scope="session")
def accounts(ls_server: Server) -> dict[str, str]:
    """alice and bob, signed up through the invite link as `nerloop label-studio annotator add` does."""
    conn = Connection((ls_server.url, ls_server.token), home=ls_server.home, default_url="", timeout_s=30)
    out = {}
    members = {}
    for name in ("alice", "bob"):
        out[name] = team.generate_password()
        team.sign_up(conn, f"{name}@nerloop.local", out[name])
        members[name] = {"email": f"{name}@nerloop.local", "password": out[name]}
    team.save(ls_server.home, members)
    return out


@pytest.fixture
def make_backend(ls_server: Server, accounts: dict[str, str],
                 request: pytest.FixtureRequest) -> Callable[..., LabelStudioBackend]:
    """Backends on a project prefix of this test's own (params overridable)."""
    prefix = project_prefix(request)

    def make(**overrides: Any) -> LabelStudioBackend:
        params = LabelStudioParams(**{"project": prefix, "qc_share": 0.0, "annotators": ["alice", "bob"],
                                      **overrides})
        return LabelStudioBackend(params, LABELS, home=ls_server.home, creds=(ls_server.url, ls_server.token))

    return make


@pytest.fixture
def people(ls_server: Server, accounts: dict[str, str]) -> dict[str, Annotator]:
    return {name: Annotator(ls_server.url, f"{name}@nerloop.local", pw) for name, pw in accounts.items()}


# ---------------------------------------------------------------- no server needed


def test_labelling_config_comes_from_the_label_set() -> None:
    config = label_config(["LOC", "ORG", "PER", "A&B"])
    assert config_labels(config) == {"LOC", "ORG", "PER", "A&B"}  # as Label Studio reads them: never "missing"
    assert '<Text name="text" value="$text"/>' in config and 'toName="text"' in config
    assert WINDOW_CONTROL in config  # the window marker's label is not an entity label: never added to the set
    assert label_config(sorted(config_labels(config))).count(WINDOW_CONTROL) == 1


# ---------------------------------------------------------------- the round trip


@pytest.mark.label_studio
def test_round_trip_two_annotators_predictions_qc_and_kappa(
    make_backend: Callable[..., LabelStudioBackend], people: dict[str, Annotator], tmp_path: Path
) -> None:
    be = make_backend(qc_share=0.5, disagreement_policy="review")
    recs = batch(6)
    t0 = time.perf_counter()
    manifest = be.export(recs, 1)
    export_s = time.perf_counter() - t0
    assert make_backend(qc_share=0.5).export(recs, 1) == manifest  # idempotent: nothing sent twice
    by_id = {r.id: r for r in recs}
    qc = [sid for sid, where in manifest.items() if len(where.split()) == 2]
    assert len(qc) == 3

    seen: dict[str, dict[str, dict[str, Any]]] = {}
    for name, person in people.items():
        pid = person.project(be.project_name(name))
        seen[name] = person.tasks(pid)
        for sid, task in seen[name].items():  # every task shows the model's spans, with their scores
            pred = task["predictions"]
            assert len(pred) == 1 and pred[0]["model_version"] == be.model_version(1)
            regions = [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0], r["score"])
                       for r in pred[0]["result"]]
            assert regions == [tuple(x) for x in by_id[sid].meta["pre_spans"]]
            assert pred[0]["score"] == min(x[3] for x in by_id[sid].meta["pre_spans"])
    assert set(seen["alice"]) | set(seen["bob"]) == set(manifest)

    # alice accepts everything; bob drops the ORG on one QC sentence and skips one of his own
    disputed = qc[0]
    own_bob = next(sid for sid in seen["bob"] if sid not in qc)
    annotation_ids = {}
    for sid, task in seen["alice"].items():
        annotation_ids[sid] = people["alice"].submit(task)
    for sid, task in seen["bob"].items():
        if sid == disputed:
            people["bob"].submit(task, spans_of(by_id[sid])[:2])
        elif sid == own_bob:
            people["bob"].skip(task)
        else:
            people["bob"].submit(task)

    ledger = Ledger(tmp_path / "ledger.jsonl")
    t0 = time.perf_counter()
    res = be.fetch(ledger, manifest)
    fetch_s = time.perf_counter() - t0
    done = {a.record.id: a for a in res.done}
    assert set(done) == set(manifest) - {disputed, own_bob}
    assert sorted(res.pending) == sorted([disputed, own_bob]) and res.skipped == [own_bob]
    assert any("skipped by bob" in p for p in res.problems)
    assert done[qc[1]].record.meta["annotators"] == sorted(["alice", "bob"])
    assert all(a.record.tags == PRE for a in done.values())
    m = res.metrics
    assert m["qc_examples"] == 3 and m["disagreements"] == 1 and 0 < m["kappa"] < 1 and 0 < m["entity_f1"] < 1
    assert m["annotators"]["alice"]["1"]["sentences"] == len(seen["alice"])
    assert any("resolve it in project" in p and be.project_name("review") in p for p in res.in_review)
    assert not any(disputed in p for p in res.problems)  # in review: waiting on the lead, not held back
    # in Label Studio's own words: tasks and Submit, not Doccano's examples and "mark it done"
    (told,) = [p for p in res.in_review if "resolve it in project" in p]
    assert ", task " in told and told.endswith("(both versions are shown below the text), and press Submit")
    assert "example" not in told and "mark it done" not in told
    ledger.append(res.done)
    print(f"\nround trip of 6 sentences (3 QC) to 2 annotators: export {export_s:.2f} s, import {fetch_s:.2f} s; "
          f"kappa {m['kappa']}, entity F1 {m['entity_f1']}")

    # the lead resolves the disagreement in the review project; alice corrects one sentence after import
    lead = LabelStudioBackend(be.params, LABELS, home=be.home, creds=be.conn.credentials())
    rpid = lead.ensure_project("review")
    review_task = next(iter(lead.listing(rpid).ours.values()))
    assert review_task.sid == disputed and "bob:" in lead.conn.request("GET", f"tasks/{review_task.example_id}",
                                                                      "t")["data"]["versions"]
    lead.conn.request("POST", f"tasks/{review_task.example_id}/annotations/", "resolving", json={
        "result": [{"from_name": "label", "to_name": "text", "type": "labels",
                    "value": {"start": s, "end": e, "text": "", "labels": [lab]}}
                   for s, e, lab in spans_of(by_id[disputed])]})
    corrected = next(sid for sid in seen["alice"] if sid not in qc)
    people["alice"].update(annotation_ids[corrected], seen["alice"][corrected], spans_of(by_id[corrected])[:1])
    res2 = be.fetch(ledger, manifest)
    done2 = {a.record.id: a for a in res2.done}
    assert set(done2) == {disputed, corrected} and res2.revisions == [corrected] and done2[corrected].revision
    assert done2[disputed].record.tags == PRE and done2[corrected].record.tags[:2] == ["B-PER", "I-PER"]
    assert done2[corrected].record.tags[3] == "O"
    ledger.append(res2.done)
    assert be.fetch(ledger, manifest).done == []  # nothing new: nothing imported twice


@pytest.mark.label_studio
def test_new_cycle_keeps_waiting_tasks_pre_filled(
    make_backend: Callable[..., LabelStudioBackend], people: dict[str, Annotator]
) -> None:
    be = make_backend(annotators=["alice"])
    first = batch(2)
    be.export(first, 1)
    be.export(batch(1, start=2, cycle=2), 2)
    pid = people["alice"].project(be.project_name("alice"))
    tasks = people["alice"].tasks(pid)
    assert len(tasks) == 3
    for sid, task in tasks.items():  # the labelling page pre-fills the project's model version: all have one
        versions = [p["model_version"] for p in task["predictions"]]
        assert versions.count(be.model_version(2)) == 1, (sid, versions)
        assert task["meta"]["nerloop_cycle"] == (2 if sid not in {r.id for r in first} else 1)
    nxt = people["alice"].get(f"projects/{pid}/next")  # what the labelling page opens first: a cycle-1 task
    assert nxt["meta"]["nerloop_cycle"] == 1
    assert [p["model_version"] for p in nxt["predictions"]] == [be.model_version(2)]
    assert len(nxt["predictions"][0]["result"]) == 3


# ---------------------------------------------------------------- a sentence asked about a window of its words

WINDOW_SHOWN = ("Label only the highlighted words: «Paris with Acme Corp» (words 4-7); the rest is pre-filled by the "
                "model.")


def windowed(i: int) -> Record:
    """Sentence ``i`` asked about words 4-7, 'Paris with Acme Corp' (its LOC and ORG); 'Alice Smith' lies outside."""
    rec = make_record(i)
    rec.meta["window"] = [3, 7]
    return rec


@pytest.mark.label_studio
def test_a_window_is_named_and_highlighted_and_import_reads_only_the_entities(
    make_backend: Callable[..., LabelStudioBackend], people: dict[str, Annotator], tmp_path: Path
) -> None:
    """Subsequence selection (issue #28): a windowed task names the words in its hint, highlights them with a region
    of the hidden window control and marks the region outside as pre-filled; whole sentences are sent as before;
    submitted unchanged, or with the window region deleted, each imports exactly the model's entities. A project
    made before the window control gets it."""
    alice = people["alice"]
    pid = make_backend(annotators=["alice"]).ensure_project("alice")
    config = alice.get(f"projects/{pid}")["label_config"]
    old = re.sub(r'  <Labels name="window".*?</Labels>\n', "", config, flags=re.S)
    assert WINDOW_CONTROL in config and WINDOW_CONTROL not in old
    make_backend(annotators=["alice"]).conn.request("PATCH", f"projects/{pid}", "t", json={"label_config": old})

    be = make_backend(annotators=["alice"])
    recs = [make_record(0), windowed(1), windowed(2)]
    manifest = be.export(recs, 1)
    assert alice.get(f"projects/{pid}")["label_config"] == config  # brought up to date
    tasks = alice.tasks(pid)
    whole, win, win2 = (tasks[r.id] for r in recs)
    assert whole["data"][HINT_KEY] == "" and "nerloop_window" not in whole["meta"]
    assert all(r["from_name"] == "label" and "meta" not in r for r in whole["predictions"][0]["result"])
    assert win["data"][HINT_KEY] == WINDOW_SHOWN and win["meta"]["nerloop_window"] == [3, 7]
    result = {r["id"]: r for r in win["predictions"][0]["result"]}
    assert result[WINDOW_ID]["from_name"] == WINDOW_NAME and result[WINDOW_ID]["value"]["labels"] == [WINDOW_LABEL]
    assert result[WINDOW_ID]["value"]["text"] == "Paris with Acme Corp"
    assert result["n0"]["meta"] == {"text": [PRE_FILLED]}  # 'Alice1 Smith', outside the window
    assert "meta" not in result["n1"] and "meta" not in result["n2"]  # 'Paris', 'Acme Corp': the annotator's

    alice.submit(whole)
    alice.submit(win)  # as pre-filled, the window region with it
    alice.s.post(f"{alice.url}/api/tasks/{win2['id']}/annotations/", params={"project": pid}, timeout=30, json={
        "result": [r for r in win2["predictions"][0]["result"] if r["from_name"] != WINDOW_NAME]}).raise_for_status()
    res = be.fetch(Ledger(tmp_path / "ledger.jsonl"), manifest)
    assert res.problems == [] and {a.record.id: a.record.tags for a in res.done} == {r.id: PRE for r in recs}
    assert {a.record.id: a.window for a in res.done} == {recs[0].id: None, recs[1].id: [3, 7], recs[2].id: [3, 7]}


def test_a_windowed_disagreement_in_review_names_the_words_to_decide() -> None:
    """The review task of a sentence asked about a window leads its versions with the words the reviewer decides
    (both versions differ only there); a whole sentence's task is as before: the versions and the agreed spans."""
    rec = windowed(0)
    offsets = [list(o) for o in rec.offsets]
    versions = {"alice": PRE, "bob": ["B-ORG", "I-ORG", *PRE[2:]]}
    agreed = ["O", "O", *PRE[2:]]
    task = review_task(rec.text, offsets, {"nerloop_window": [3, 7], "other": 1}, versions, agreed, "p-agreed")
    hint, alice, bob = task["data"]["versions"].split("\n")
    assert hint == "Decide only «Paris with Acme Corp» (words 4-7): the versions differ only there; the rest is " \
                   "pre-filled by the model."
    assert alice.startswith("alice: Alice0 Smith/PER") and bob.startswith("bob: Alice0 Smith/ORG")
    assert task["meta"] == {"nerloop_window": [3, 7]}  # nerloop's keys only
    assert [r["value"]["labels"] for r in task["predictions"][0]["result"]] == [["LOC"], ["ORG"]]
    whole = review_task(rec.text, offsets, {}, versions, agreed, "p-agreed")
    assert whole["data"]["versions"].split("\n") == [alice, bob]


@pytest.mark.label_studio
def test_an_annotator_sees_the_window_highlighted_and_corrects_a_word_in_it(
    browser, make_backend: Callable[..., LabelStudioBackend], people: dict[str, Annotator],
    accounts: dict[str, str], tmp_path: Path,
) -> None:
    """alice opens a windowed task in the labelling page: the hint names the words, the window is highlighted in
    its own colour around the model's regions; she clicks 'Paris' (LOC), presses PER's hotkey and Submit, and the
    fetch returns exactly her tags."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from test_label_studio_cycle import REGIONS, SUBMIT, log_in

    be = make_backend(annotators=["alice"])
    rec = windowed(0)
    manifest = be.export([rec], 1)
    alice = people["alice"]
    pid = alice.project(be.project_name("alice"))
    (task,) = alice.tasks(pid).values()
    wait = WebDriverWait(browser, 90)

    def region(text: str) -> Any:
        found = [e for e in browser.find_elements(By.CSS_SELECTOR, REGIONS) if e.text.strip() == text]
        return found[0] if found else None

    log_in(browser, alice, accounts["alice"])
    browser.get(f"{alice.url}/projects/{pid}/data?labeling=1")
    try:
        wait.until(lambda d: WINDOW_SHOWN in d.find_element(By.TAG_NAME, "body").text
                   and region("Paris with Acme Corp") and region("Paris") and region("Acme Corp"))
        colour = region("Paris with Acme Corp").value_of_css_property("background-color")
        assert colour.startswith("rgba(255, 212, 0"), colour  # the window label's colour, #FFD400
        region("Paris").click()
        ActionChains(browser).send_keys(str(LABELS.index("PER") + 1)).perform()  # hotkeys 1, 2, 3: LOC, ORG, PER
        wait.until(lambda d: "PER\nParis" in d.find_element(By.TAG_NAME, "body").text)
    finally:  # what alice saw
        browser.save_screenshot(str(tmp_path / "window-page.png"))
    browser.find_element(By.CSS_SELECTOR, SUBMIT).click()
    wait.until(lambda d: alice.get(f"tasks/{task['id']}")["annotations"])
    (ann,) = be.fetch(Ledger(tmp_path / "ledger.jsonl"), manifest).done
    assert ann.record.tags == ["B-PER", "I-PER", "O", "B-PER", "O", "B-ORG", "I-ORG", "O"] and ann.window == [3, 7]
    print(f"\nalice's windowed task, corrected in the page: {ann.record.tags} (screenshot {tmp_path})")


# ---------------------------------------------------------------- what is held back, faults


@pytest.mark.label_studio
def test_label_outside_the_set_off_boundaries_and_edited_text_are_held_back(
    make_backend: Callable[..., LabelStudioBackend], people: dict[str, Annotator], tmp_path: Path
) -> None:
    be, recs, manifest = sent_to_alice(make_backend, 4)
    pid = people["alice"].project(be.project_name("alice"))
    tasks = people["alice"].tasks(pid)
    a, b, c, d = (tasks[r.id] for r in recs)
    be.conn.request("PATCH", f"projects/{pid}", "t", json={"label_config": label_config([*LABELS, "MISC"])})
    people["alice"].submit(a, [(0, 6, "MISC")])
    people["alice"].submit(b, [(0, 4, "PER")])  # "Alic" of "Alice1": off the token boundary
    new_text = c["data"]["text"].replace("Paris", "Lyon")
    be.conn.request("PATCH", f"tasks/{c['id']}", "t", json={"data": {"text": new_text}})
    people["alice"].submit(c)
    people["alice"].submit(d)
    res = be.fetch(Ledger(tmp_path / "ledger.jsonl"), manifest)
    assert [x.record.id for x in res.done] == [recs[3].id]
    assert sorted(res.pending) == sorted(r.id for r in recs[:3])
    assert any(f"task {a['id']}" in p and "'MISC'" in p and "not in the label set" in p for p in res.problems)
    assert any(f"task {b['id']}" in p and "token boundar" in p for p in res.problems)
    assert any(f"task {c['id']}" in p and "text was edited" in p for p in res.problems)


def _nerloop(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """`nerloop ARGS` as the lead types it in ``root``: Label Studio's own files, none of its variables."""
    return nerloop_as_user(root, "NERLOOP_LABEL_STUDIO", *args, ok=ok)


@pytest.mark.label_studio
def test_label_removed_from_the_config_is_put_back_and_what_was_submitted_without_it_waits(
    make_backend: Callable[..., LabelStudioBackend], people: dict[str, Annotator], tmp_path: Path
) -> None:
    """An admin drops PER from alice's labelling config. Label Studio's own check lets it go although alice's
    submitted annotation uses PER; alice submits a task with the PER button gone. The next fetch holds both
    back, naming task, sentence, annotator and label, and puts PER back; an Update by alice or
    `nerloop label-studio accept` lets each in."""
    be, recs, manifest = sent_to_alice(make_backend, 3)
    pid = be.annotator_projects()["alice"]
    alice = people["alice"]
    tasks = alice.tasks(pid)
    a, b, c = (tasks[r.id] for r in recs)
    first = alice.submit(a)  # Alice0 Smith/PER, Paris/LOC, Acme Corp/ORG
    without = label_config(["LOC", "ORG"])
    assert be.conn.request("POST", f"projects/{pid}/validate", "t", json={"label_config": without})  # not refused
    be.conn.request("PATCH", f"projects/{pid}", "t", json={"label_config": without})
    alice.submit(b, spans_of(recs[1])[1:])  # no PER button: "Alice1 Smith" stays unmarked

    ledger = Ledger(tmp_path / "ledger.jsonl")
    res = be.fetch(ledger, manifest)
    assert res.done == [] and sorted(res.pending) == sorted(r.id for r in recs)
    assert config_labels(be.conn.request("GET", f"projects/{pid}", "t")["label_config"]) == set(LABELS)  # put back
    assert any(p.startswith(f"project {be.project_name('alice')!r}: 'PER' had been removed") for p in res.problems)
    for task, rec in ((a, recs[0]), (b, recs[1])):
        (told,) = [p for p in res.problems if p.startswith(f"task {task['id']} (sentence {rec.id})")]
        assert "alice submitted it while label 'PER' was missing" in told and "press Update" in told
        assert f"nerloop label-studio accept {task['id']}" in told and "example" not in told
    assert not any(f"task {c['id']} " in p for p in res.problems)  # not submitted: nothing to re-check

    alice.update(first, a, spans_of(recs[0]))  # alice re-checks task a in the page and presses Update
    alice.submit(c)  # submitted with PER back in the config: nothing to re-check
    assert be.fetch(ledger, manifest).pending == [recs[1].id]  # b still waits
    root = tmp_path / "project"  # the lead types the command the message names, in the project root
    (root / ".label-studio").mkdir(parents=True)
    shutil.copy(be.home / "credentials.json", root / ".label-studio" / "credentials.json")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["labels"] = LABELS
    params["annotation"]["label_studio"] = {"project": be.params.project, "annotators": ["alice"]}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    assert _nerloop(root, "label-studio", "accept", str(b["id"]), str(c["id"])).stdout.splitlines() == [
        f"task {b['id']} (sentence {recs[1].id}): accepted as submitted without ['PER']; the next `nerloop cycle` "
        "imports it", f"task {c['id']}: not waiting for a re-check; left as it is"]
    res = be.fetch(ledger, manifest)
    done = {x.record.id: x.record.tags for x in res.done}
    assert res.pending == [] and not res.problems
    assert done == {recs[0].id: PRE, recs[1].id: ["O", "O", *PRE[2:]], recs[2].id: PRE}


def trouble_during_imports(be: LabelStudioBackend, trouble: Callable[[dict[str, Any]], Iterator[None]]) -> None:
    """Make the real server misbehave exactly while ``be`` imports tasks: ``trouble`` (a generator function
    given the request's keyword arguments) sets the trouble up, yields while the request runs, then ends it."""
    original = be.conn.request
    during = contextmanager(trouble)

    def request(method: str, resource: str, action: str, **kwargs: Any) -> Any:
        if not resource.endswith("/import"):
            return original(method, resource, action, **kwargs)
        with during(kwargs):
            return original(method, resource, action, **kwargs)

    be.conn.request = request  # type: ignore[method-assign]


def assert_sent_once(make_backend: Callable[..., LabelStudioBackend], people: dict[str, Annotator],
                     recs: list[Record]) -> None:
    """A rerun of the interrupted export: every sentence in alice's project, nothing lost, nothing twice."""
    be = make_backend(annotators=["alice"])
    manifest = be.export(recs, 1)
    pid = people["alice"].project(be.project_name("alice"))
    tasks = people["alice"].get("tasks", project=pid, page_size=1000)["tasks"]
    assert len(manifest) == len(recs) and len(tasks) == len(recs)


@pytest.mark.label_studio
def test_timeout_in_the_middle_of_an_export_then_rerun(
    make_backend: Callable[..., LabelStudioBackend], people: dict[str, Annotator], ls_server: Server
) -> None:
    be = make_backend(annotators=["alice"], timeout_s=2)
    recs = batch(6)
    be.export(recs[:2], 1)

    def stalled(kwargs: dict[str, Any]) -> Iterator[None]:  # the server hangs exactly when the import starts
        os.kill(ls_server.pid, signal.SIGSTOP)
        kwargs["timeout"] = 2
        try:
            yield
        finally:
            os.kill(ls_server.pid, signal.SIGCONT)

    trouble_during_imports(be, stalled)
    with pytest.raises(LabelStudioTimeoutError, match="run the command again to resume"):
        be.export(recs, 1)
    time.sleep(2)  # the stalled request may still go through once the server runs again
    assert_sent_once(make_backend, people, recs)


@pytest.mark.label_studio
def test_wrong_token(ls_server: Server, tmp_path: Path) -> None:
    """Refused with Label Studio's HTTP 401, neither token in the message (an unreachable server:
    ``test_annotation_servers``)."""
    wrong = "0" * 40
    be = LabelStudioBackend(LabelStudioParams(project="x"), LABELS, creds=(ls_server.url, wrong))
    with pytest.raises(LabelStudioAuthError, match="HTTP 401") as err:
        be.fetch(Ledger(tmp_path / "ledger.jsonl"))
    assert wrong not in str(err.value) and ls_server.token not in str(err.value)


@pytest.mark.label_studio
def test_server_error_in_the_middle_of_an_export_then_rerun(
    make_backend: Callable[..., LabelStudioBackend], people: dict[str, Annotator], ls_server: Server
) -> None:
    """A real HTTP 500: the server's sqlite database is locked by another writer while the import runs."""
    import sqlite3

    be = make_backend(annotators=["alice"], timeout_s=60)
    recs = batch(4)

    def locked(kwargs: dict[str, Any]) -> Iterator[None]:
        db = sqlite3.connect(ls_server.home / "data" / "label_studio.sqlite3", timeout=1, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")  # Label Studio waits for the lock, gives up, answers HTTP 500
        try:
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()

    trouble_during_imports(be, locked)
    with pytest.raises(NerloopError, match="HTTP 500") as err:
        be.export(recs, 1)
    assert "server log" in str(err.value) and ls_server.token not in str(err.value)
    assert_sent_once(make_backend, people, recs)
