"""The Doccano backend and server against a real Doccano 1.8.4 server (no mock of Doccano).

A session fixture installs the server venv if it is missing (``.doccano/venv``, or
``$NERLOOP_DOCCANO_VENV``), starts Doccano on a free 127.0.0.1 port in a temporary home, and stops
it by process id at the end. Two annotator accounts, alice and bob, are made once; each test uses
its own project prefix, so tests do not see each other's examples. The annotators are played
through doccano-client, logged in as themselves, as they would work in the browser. What Doccano
does as Label Studio does (credentials, the team, the documented commands, the server's life, an
unreachable server) is tested once for both, in ``test_annotation_servers``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sklearn.metrics import cohen_kappa_score

from conftest import ROOT
from nerloop.annotation.doccano import (
    ENV_PASSWORD,
    ENV_URL,
    ENV_USERNAME,
    DoccanoAuthError,
    DoccanoBackend,
    DoccanoTimeoutError,
    team,
)
from nerloop.annotation.doccano import server as ds
from nerloop.annotation.doccano.client import Connection
from nerloop.annotation.doccano.tasks import WINDOW_ROW
from nerloop.data.ledger import Ledger
from nerloop.data.tags import tags_to_spans, token_to_char_spans
from nerloop.params import DoccanoParams
from tool_servers import (
    LABELS,
    PRE,
    Server,
    batch,
    children,
    make_record,
    project_prefix,
    sent_to_alice,
    serve,
)


class Annotator:
    """A person in the Doccano UI, played through doccano-client, logged in as themselves."""

    def __init__(self, url: str, username: str, password: str) -> None:
        from doccano_client import DoccanoClient

        self.name = username
        self.c = DoccanoClient(url)
        self.c.login(username=username, password=password)

    def project(self, name: str) -> int:
        return next(p.id for p in self.c.list_projects() if p.name == name)

    def projects(self) -> set[str]:
        return {p.name for p in self.c.list_projects()}

    def examples(self, pid: int) -> dict[str, int]:
        """{sentence id: example id} of what this person sees in the project, in Doccano's order."""
        return {ex.meta["nerloop_id"]: ex.id for ex in self.c.list_examples(pid)}

    def spans(self, pid: int, eid: int) -> list[tuple[int, int, str, float]]:
        names = {lt.id: lt.text for lt in self.c.list_label_types(pid, "span")}
        return sorted((s.start_offset, s.end_offset, names[s.label], s.prob) for s in self.c.list_spans(pid, eid))

    def span_id(self, pid: int, eid: int, start: int) -> int:
        return next(s.id for s in self.c.list_spans(pid, eid) if s.start_offset == start)

    def add(self, pid: int, eid: int, start: int, end: int, label: str) -> None:
        label_id = next(lt.id for lt in self.c.list_label_types(pid, "span") if lt.text == label)
        self.c.create_span(pid, eid, start, end, label_id, human_annotated=True)

    def delete(self, pid: int, eid: int, start: int) -> None:
        self.c.delete_span(pid, eid, self.span_id(pid, eid, start))

    def relabel(self, pid: int, eid: int, start: int, label: str) -> None:
        label_id = next(lt.id for lt in self.c.list_label_types(pid, "span") if lt.text == label)
        self.c.update_span(pid, eid, self.span_id(pid, eid, start), label=label_id)

    def confirm(self, pid: int, eid: int) -> None:
        """Mark done. The API call toggles, so look first (a second call would un-confirm)."""
        if not self.c.find_example_by_id(pid, eid).is_confirmed:
            self.c.update_example_state(pid, eid)

    def annotate(self, pid: int, eid: int, spans: list[tuple[int, int, str]]) -> None:
        """Replace the spans of an example with ``spans`` and confirm it."""
        for s in self.c.list_spans(pid, eid):
            self.c.delete_span(pid, eid, s.id)
        for start, end, label in spans:
            self.add(pid, eid, start, end, label)
        self.confirm(pid, eid)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def doccano_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real Doccano on a free loopback port in a temporary home; stopped by pid afterwards."""
    yield from serve(ds.SERVER, tmp_path_factory)


@pytest.fixture(scope="session")
def accounts(doccano_server: Server) -> dict[str, str]:
    """Two annotator accounts (no admin rights), created as `nerloop doccano annotator add` does."""
    conn = Connection((doccano_server.url, doccano_server.username, doccano_server.password),
                      home=doccano_server.home, default_url="", timeout_s=30)
    out = {}
    for name in ("alice", "bob"):
        out[name] = team.generate_password()
        team.create_user(conn, name, out[name])
    return out


@pytest.fixture
def make_backend(doccano_server: Server, request: pytest.FixtureRequest) -> Callable[..., DoccanoBackend]:
    """Backends on a project prefix of this test's own (params overridable)."""
    prefix = project_prefix(request)

    def make(**overrides: Any) -> DoccanoBackend:
        params = DoccanoParams(**{"project": prefix, "qc_share": 0.0, "annotators": ["alice", "bob"], **overrides})
        creds = (doccano_server.url, doccano_server.username, doccano_server.password)
        return DoccanoBackend(params, LABELS, home=doccano_server.home, creds=creds)

    return make


@pytest.fixture
def people(doccano_server: Server, accounts: dict[str, str]) -> dict[str, Annotator]:
    """alice, bob and the lead (the nerloop admin account), each logged in as themselves."""
    out = {name: Annotator(doccano_server.url, name, pw) for name, pw in accounts.items()}
    out["lead"] = Annotator(doccano_server.url, doccano_server.username, doccano_server.password)
    return out


# ---------------------------------------------------------------- what each annotator sees


@pytest.mark.doccano
def test_each_annotator_sees_their_share_with_the_models_spans_and_confidences(
    make_backend: Callable[..., DoccanoBackend], people: dict[str, Annotator]
) -> None:
    be = make_backend(qc_share=0.25)
    recs = batch(8)
    manifest = be.export(recs, 1)
    assert be.export(recs, 1) == manifest  # idempotent: nobody gets a sentence twice
    seen: dict[str, dict[str, int]] = {}
    for who in ("alice", "bob"):
        a = people[who]
        assert {p for p in a.projects() if p.startswith(be.params.project)} == {be.project_name(who)}
        pid = a.project(be.project_name(who))
        seen[who] = a.examples(pid)
        for sid, eid in seen[who].items():
            rec = next(r for r in recs if r.id == sid)
            want = sorted((s, e, lab, c) for s, e, lab, c in rec.meta["pre_spans"])
            got = [(s, e, lab, round(prob, 4)) for s, e, lab, prob in a.spans(pid, eid)]
            assert got == want  # the model's spans, each with its confidence in Doccano's `prob`
        clusters = [next(r for r in recs if r.id == sid).meta["cluster"] for sid in seen[who]]
        assert clusters == sorted(clusters)  # similar sentences together
    both = set(seen["alice"]) & set(seen["bob"])
    assert len(both) == 2  # the QC share (25% of 8) goes to both
    assert set(seen["alice"]) | set(seen["bob"]) == {r.id for r in recs}
    assert len(seen["alice"]) == len(seen["bob"]) == 5  # 3 of their own + the 2 QC sentences each
    from doccano_client.exceptions import DoccanoAPIError

    with pytest.raises(DoccanoAPIError):  # bob cannot open alice's project
        list(people["bob"].c.list_examples(people["lead"].project(be.project_name("alice"))))
    print(f"\nalice sees {len(seen['alice'])} examples, bob {len(seen['bob'])}, {len(both)} of them shared (QC)")


# ---------------------------------------------------------------- import


@pytest.mark.doccano
def test_a_sentence_asked_about_a_window_names_it_first_and_imports_the_entities(
    make_backend: Callable[..., DoccanoBackend], people: dict[str, Annotator], tmp_path: Path
) -> None:
    """Subsequence selection (issue #28): a record with ``meta["window"]`` shows a ``Label only`` row first in the
    sidebar, naming its words; whole sentences around it upload as before (an upload of mixed keys would fail
    whole), and each confirmed unchanged imports exactly the model's entities."""
    be = make_backend(annotators=["alice"])
    recs = batch(3)
    recs[1].meta["window"] = [3, 7]  # 'Paris with Acme Corp': its LOC and ORG are the annotator's to check
    manifest = be.export(recs, 1)
    alice = people["alice"]
    pid = alice.project(be.project_name("alice"))
    eids = alice.examples(pid)
    assert set(eids) == {r.id for r in recs}  # every line uploaded, though their keys differ
    metas = [alice.c.find_example_by_id(pid, eids[r.id]).meta for r in recs]
    assert list(metas[1])[:2] == [WINDOW_ROW, "Model confidence"]
    assert metas[1][WINDOW_ROW] == "«Paris with Acme Corp» (words 4-7); the rest is pre-filled by the model"
    assert metas[1]["nerloop_window"] == [3, 7]
    for meta in (metas[0], metas[2]):  # whole sentences: as before windows existed
        assert next(iter(meta)) == "Model confidence" and WINDOW_ROW not in meta and "nerloop_window" not in meta
    assert all(len(alice.spans(pid, eids[r.id])) == 3 for r in recs)  # the whole pre-annotation, window or not
    for r in recs:
        alice.confirm(pid, eids[r.id])
    res = be.fetch(Ledger(tmp_path / "ledger.jsonl"), manifest)
    assert res.problems == [] and {a.record.id: a.record.tags for a in res.done} == {r.id: PRE for r in recs}
    assert {a.record.id: a.window for a in res.done} == {recs[0].id: None, recs[1].id: [3, 7], recs[2].id: None}


@pytest.mark.doccano
def test_corrections_effort_speed_and_a_late_correction(
    make_backend: Callable[..., DoccanoBackend], people: dict[str, Annotator], tmp_path: Path
) -> None:
    be = make_backend(annotators=["alice"])
    recs = batch(4, cycle=2)
    manifest = be.export(recs, 2)
    alice = people["alice"]
    pid = alice.project(be.project_name("alice"))
    e0, e1, e2 = (alice.examples(pid)[r.id] for r in recs[:3])
    per, loc, org = (tuple(sp[:2]) for sp in recs[0].meta["pre_spans"])
    # e0: LOC deleted, ORG relabelled to LOC, PER replaced by a PER on the first token only
    alice.delete(pid, e0, loc[0])
    alice.relabel(pid, e0, org[0], "LOC")
    alice.delete(pid, e0, per[0])
    alice.add(pid, e0, per[0], per[0] + len("Alice0"), "PER")
    alice.confirm(pid, e0)
    time.sleep(1.0)
    alice.confirm(pid, e1)  # accepted as pre-annotated
    time.sleep(1.0)
    alice.confirm(pid, e2)

    ledger = Ledger(tmp_path / "ledger.jsonl")
    res = be.fetch(ledger, manifest)
    got = {a.record.id: a for a in res.done}
    assert set(got) == {recs[0].id, recs[1].id, recs[2].id} and res.pending == [recs[3].id]
    a0 = got[recs[0].id]
    assert a0.record.tags == ["B-PER", "O", "O", "O", "O", "B-LOC", "I-LOC", "O"]
    assert a0.record.tokens == recs[0].tokens and a0.record.offsets == recs[0].offsets
    assert a0.cycle == 2 and a0.annotator == "alice" and a0.pre_tags == PRE  # she saw the model's spans
    assert res.problems == []
    speed = res.metrics["annotators"]["alice"]["2"]
    assert speed["sentences"] == 3 and speed["tokens"] == 24 and speed["timed_sentences"] == 2
    assert 1.9 <= speed["seconds"] <= 3.5 and speed["seconds_per_token"] == pytest.approx(speed["seconds"] / 16, 0.01)
    assert {k: speed[k] for k in ("kept", "added", "deleted", "relabelled")} == {
        "kept": 6, "added": 1, "deleted": 2, "relabelled": 1}
    print(f"\nalice, cycle 2: {speed}")
    assert len(ledger.append(res.done)) == 3
    again = make_backend(annotators=["alice"]).fetch(ledger, manifest)  # import run twice
    assert again.done == [] and ledger.append(again.done) == []

    alice.delete(pid, e1, org[0])  # a late correction of an imported, still confirmed sentence
    alice.c.update_example_state(pid, e2)  # e2 un-confirmed after import: the imported version stays
    alice.delete(pid, e2, org[0])  # ... and changed, but not marked done again: not imported
    late = make_backend(annotators=["alice"]).fetch(ledger, manifest)
    assert [a.record.id for a in late.done] == [recs[1].id] and late.revisions == [recs[1].id]
    assert any(recs[2].id in p and "once you mark it done again" in p for p in late.problems)
    (entry,) = ledger.append(late.done)
    assert entry["revision"] == 2 and entry["effort"]["deleted"] == 1
    reopened = Ledger(ledger.path)
    assert len(reopened.entries) == 3 and len(reopened.history) == 4
    assert next(r for r in reopened.records() if r.id == recs[1].id).tags == [*PRE[:5], "O", "O", "O"]
    assert late.metrics["revisions"] == 1


@pytest.mark.doccano
def test_disagreements_are_resolved_in_the_review_project(
    make_backend: Callable[..., DoccanoBackend], people: dict[str, Annotator], tmp_path: Path
) -> None:
    be = make_backend(qc_share=1.0)
    recs = batch(2)
    be.export(recs, 1)
    alice, bob, lead = people["alice"], people["bob"], people["lead"]
    pa, pb = alice.project(be.project_name("alice")), bob.project(be.project_name("bob"))
    pre = [tuple(sp[:3]) for sp in recs[0].meta["pre_spans"]]
    for r in recs:
        alice.confirm(pa, alice.examples(pa)[r.id])  # alice accepts the model's spans
    bob.confirm(pb, bob.examples(pb)[recs[0].id])  # bob agrees on the first
    bob_spans = [(s, e, "ORG" if lab == "PER" else lab) for s, e, lab in pre[:2]]  # relabels PER, drops ORG
    bob.annotate(pb, bob.examples(pb)[recs[1].id], bob_spans)

    ledger = Ledger(tmp_path / "ledger.jsonl")
    first = be.fetch(ledger)
    assert [a.record.id for a in first.done] == [recs[0].id] and first.pending == [recs[1].id]
    assert first.done[0].record.meta["annotators"] == ["alice", "bob"]
    (d,) = first.disagreements
    assert d["spans"]["bob"] == "Alice1 Smith/ORG · Paris/LOC" and "Acme Corp/ORG" in d["spans"]["alice"]
    review = lead.project(be.project_name("review"))
    (rid,) = lead.examples(review).values()
    assert any(f"example {rid}" in p and "review" in p and p.endswith("and mark it done") for p in first.in_review)
    assert not any(recs[1].id in p for p in first.problems)  # in review: waiting on the lead, not held back
    meta = lead.c.find_example_by_id(review, rid).meta
    assert list(meta)[:2] == ["Version alice", "Version bob"]  # first: the top rows beside the text
    assert meta["Version bob"] == "[Alice1 Smith](ORG) visited [Paris](LOC) with Acme Corp ."
    assert meta["Version alice"] == "[Alice1 Smith](PER) visited [Paris](LOC) with [Acme Corp](ORG) ."
    assert [s[:3] for s in lead.spans(review, rid)] == [pre[1]]  # only the span both agree on: Paris/LOC
    bob_b = ["B-ORG", "I-ORG", "O", "B-LOC", "O", "O", "O", "O"]
    expected = cohen_kappa_score(PRE + PRE, PRE + bob_b)
    for fig in (first.metrics, first.metrics["per_cycle"]["1"], first.metrics["cumulative"]):
        assert fig["kappa"] == pytest.approx(expected, abs=1e-4) and fig["disagreements"] == 1
        assert fig["entity_f1"] == pytest.approx(2 * 4 / (6 + 5), abs=1e-4)
    ledger.append(first.done)

    lead.annotate(review, rid, [(s, e, lab) for s, e, lab in bob_spans])  # the lead sides with bob
    resolved = be.fetch(ledger)
    (ann,) = resolved.done
    assert ann.record.id == recs[1].id and ann.record.tags == bob_b and ann.annotator == be.conn.username
    assert ann.pre_tags == ["O", "O", "O", "B-LOC", "O", "O", "O", "O"]  # what the lead was shown
    ledger.append(resolved.done)

    # the next cycle: one more pair, agreeing; each pair is counted once, per cycle and cumulatively
    rec2 = make_record(5, cycle=2)
    be.export([rec2], 2)
    alice.confirm(pa, alice.examples(pa)[rec2.id])
    bob.confirm(pb, bob.examples(pb)[rec2.id])
    third = be.fetch(ledger)
    assert [a.record.id for a in third.done] == [rec2.id]
    m = third.metrics
    assert m["per_cycle"]["1"]["pairs"] == 2 and m["per_cycle"]["2"] == {
        "pairs": 1, "kappa": 1.0, "entity_f1": 1.0, "disagreements": 0}
    assert m["cumulative"]["pairs"] == 3 and m["cumulative"]["disagreements"] == 1
    assert m["kappa"] == 1.0 and m["qc_examples"] == 1  # the latest cycle's figures at the top
    print(f"\nagreement per cycle {m['per_cycle']}, cumulative {m['cumulative']}")


@pytest.mark.doccano
def test_a_label_type_outside_the_label_set_holds_back_only_its_examples(
    make_backend: Callable[..., DoccanoBackend], people: dict[str, Annotator], tmp_path: Path
) -> None:
    be = make_backend(annotators=["alice"])
    recs = batch(2)
    be.export(recs, 1)
    alice, lead = people["alice"], people["lead"]
    pid = alice.project(be.project_name("alice"))
    lead.c.create_label_type(pid, "span", "MISC", color="#000000")  # someone added a type in Doccano
    e0, e1 = (alice.examples(pid)[r.id] for r in recs)
    acme = recs[0].text.index("Acme")
    alice.relabel(pid, e0, acme, "MISC")
    alice.confirm(pid, e0)
    alice.confirm(pid, e1)
    more = batch(1, start=10)
    assert set(be.export(more, 1)) == {more[0].id}  # the stray type does not block the next export
    res = be.fetch(Ledger(tmp_path / "ledger.jsonl"))
    assert [a.record.id for a in res.done] == [recs[1].id] and recs[0].id in res.pending
    (msg,) = [p for p in res.problems if "MISC" in p]
    assert f"example {e0}" in msg and f"[{acme}, {acme + 9})" in msg and "'Acme Corp'" in msg
    assert "delete" not in msg.lower()
    assert "MISC" in [s[2] for s in alice.spans(pid, e0)]  # nothing was lost


# ---------------------------------------------------------------- faults


@pytest.mark.doccano
def test_timeout_in_the_middle_of_an_export_then_rerun(
    make_backend: Callable[..., DoccanoBackend], people: dict[str, Annotator], doccano_server: Server
) -> None:
    be = make_backend(timeout_s=2, annotators=["alice"])
    recs = batch(6)
    be.export(recs[:2], 1)
    original = be.conn.upload

    def stalled_upload(pid: int, lines: list[dict[str, Any]]) -> None:
        workers = children(doccano_server.pid)
        for w in workers:  # the server hangs exactly when the upload starts
            os.kill(w, signal.SIGSTOP)
        try:
            original(pid, lines)
        finally:
            for w in workers:
                os.kill(w, signal.SIGCONT)

    be.conn.upload = stalled_upload  # type: ignore[method-assign]
    with pytest.raises(DoccanoTimeoutError, match="run the stage again to resume"):
        be.export(recs, 1)
    manifest = make_backend(annotators=["alice"]).export(recs, 1)
    pid = people["alice"].project(be.project_name("alice"))
    assert len(manifest) == 6 and len(people["alice"].examples(pid)) == 6
    assert all(s[3] > 0 for eid in people["alice"].examples(pid).values() for s in people["alice"].spans(pid, eid))


@pytest.mark.doccano
def test_edited_deleted_and_foreign_examples(
    make_backend: Callable[..., DoccanoBackend], people: dict[str, Annotator], tmp_path: Path
) -> None:
    be, recs, manifest = sent_to_alice(make_backend, 3)
    lead = people["lead"]
    pid = lead.project(be.project_name("alice"))
    e0, e1, e2 = (lead.examples(pid)[r.id] for r in recs)
    lead.c.update_example(pid, e0, text=recs[0].text.replace("Paris", "Lyon"))
    people["alice"].confirm(pid, e0)
    lead.c.delete_example(pid, e1)
    people["alice"].confirm(pid, e2)
    foreign = lead.c.create_example(pid, "Somebody else's sentence .", meta={"origin": "manual"})
    people["alice"].confirm(pid, foreign.id)

    res = be.fetch(Ledger(tmp_path / "ledger.jsonl"), manifest)
    assert [a.record.id for a in res.done] == [recs[2].id]
    assert res.pending == [recs[0].id]
    assert any(f"example {e0}" in p and "text was edited" in p for p in res.problems)
    assert res.deleted == [recs[1].id]
    assert any(recs[1].id in p and "deleted in Doccano" in p for p in res.problems)
    assert res.not_ours == [foreign.id] and any("not ours" in p for p in res.problems)
    assert res.metrics["deleted"] == 1 and res.metrics["not_ours"] == 1
    again = be.export(recs, 1)  # the deleted sentence can be sent again
    assert set(again) == set(manifest) and again[recs[1].id] != manifest[recs[1].id]


@pytest.mark.doccano
def test_wrong_password(doccano_server: Server, tmp_path: Path) -> None:
    """Refused in Doccano's words, neither password in the message (an unreachable server:
    ``test_annotation_servers``)."""
    wrong = "not-the-password-" + doccano_server.password[:4]
    be = DoccanoBackend(DoccanoParams(project="x"), LABELS, creds=(doccano_server.url, "admin", wrong))
    with pytest.raises(DoccanoAuthError, match="wrong username or password") as err:
        be.fetch(Ledger(tmp_path / "ledger.jsonl"))
    assert wrong not in str(err.value) and doccano_server.password not in str(err.value)


def test_doccano_io_benchmark_as_the_readme_runs_it(doccano_server: Server, tmp_path: Path) -> None:
    """``python benchmarks/doccano_io.py`` from the repository root (20 sentences instead of 1,000): it
    starts its own Doccano from the server venv, exports, confirms, imports, and writes its figures."""
    out = tmp_path / "doccano_io.json"
    proc = subprocess.run([sys.executable, "benchmarks/doccano_io.py", "--n", "20", "--out", str(out)],
                          cwd=ROOT, text=True, capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert res["sentences"] == 20 and res["pre_annotated_spans"] > 0
    assert res["export_s"] > 0 and res["import_s"] > 0 and res["machine"]["load_average_1min_at_end"] >= 0


# ---------------------------------------------------------------- issue #26: review never blocks; types never vanish


def test_label_watch_finds_deleted_types_and_the_examples_in_doubt() -> None:
    from nerloop.annotation.doccano.label_watch import Doubt, Look, deleted_types, in_doubt

    before = Look("7 t", {1: "PER", 2: "LOC", 9: "Drug"}, done={10: "t1", 11: "t1"}, used={10: [1, 9], 11: [2]})
    now = {1: "PER", 2: "LOC"}
    assert deleted_types(before, now, ["LOC", "PER"], {"PER"}) == {"Drug": 9}
    assert deleted_types(None, {2: "LOC"}, ["LOC", "PER"], {"PER"}) == {"PER": None}  # known from a pre-annotation
    assert deleted_types(None, {2: "LOC"}, ["LOC", "PER"], set()) == {}  # a new label-set type, never created yet
    gone = {"Drug": 9}
    # 10 used Drug when last seen; 11 did not; 12 was marked done since (never seen); 11 marked done again since
    doubt = in_doubt(before, gone, {10: "t1", 11: "t1", 12: "t2"})
    assert doubt == {10: Doubt("t1", ["Drug"], True), 12: Doubt("t2", ["Drug"], False)}
    assert in_doubt(before, gone, {10: "t1", 11: "t3"}).keys() == {10, 11}
    assert in_doubt(None, gone, {10: "t1"}) == {10: Doubt("t1", ["Drug"], False)}  # no record: every one in doubt
    later = Look("7 t", now, {10: "t1", 12: "t2"}, {10: [1], 12: [2]}, doubt)
    assert in_doubt(later, {}, {10: "t1", 12: "t9"}) == {10: doubt[10]}  # 12 was marked done again: no more doubt


@pytest.mark.doccano
def test_a_deleted_label_type_holds_back_the_examples_that_may_have_lost_spans(
    make_backend: Callable[..., DoccanoBackend], people: dict[str, Annotator], tmp_path: Path
) -> None:
    """Deleting a type deletes its spans, silently, and the example stays marked done: never imported as complete."""
    be, recs, manifest = sent_to_alice(make_backend, 3)
    alice, lead = people["alice"], people["lead"]
    pid = alice.project(be.project_name("alice"))
    e0, e1, e2 = (alice.examples(pid)[r.id] for r in recs)
    drug = lead.c.create_label_type(pid, "span", "Drug", color="#000000")  # someone adds a type in Doccano
    acme = recs[0].text.index("Acme")
    alice.relabel(pid, e0, acme, "Drug")  # alice uses it: held back, the type is outside the label set
    alice.confirm(pid, e0)
    alice.confirm(pid, e1)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    first = be.fetch(ledger, manifest)
    assert [a.record.id for a in first.done] == [recs[1].id] and recs[0].id in first.pending
    ledger.append(first.done)

    lead.c.bulk_delete_label_types(pid, [drug.id], "span")  # the admin deletes it, as Doccano's Labels page does
    assert "Drug" not in [s[2] for s in alice.spans(pid, e0)] and alice.c.find_example_by_id(pid, e0).is_confirmed
    second = make_backend(annotators=["alice"]).fetch(ledger, manifest)
    assert second.done == [] and recs[0].id in second.pending  # e0 now looks valid: it must not come in
    (msg,) = [p for p in second.problems if recs[0].id in p]
    assert msg.startswith(f"sentence {recs[0].id} (example {e0} in project {be.project_name('alice')!r}, marked "
                          "done by alice): the label type 'Drug' was deleted from alice's project")
    assert "Doccano removed its spans with it, silently, and nerloop saw a span of that type on it before" in msg
    assert "is not in the label set" in msg and "mark it done again" in msg
    assert second.work[recs[0].id] == [f"alice's version (example {e0} in project {be.project_name('alice')!r}): "
                                       "Alice0 Smith/PER · Paris/LOC"]  # what releasing it would drop

    # a label-set type deleted: e2, marked done since nerloop last looked, is held (nerloop never saw its
    # spans); e1, imported, keeps its imported version; nerloop recreates the type at once
    per = next(lt.id for lt in lead.c.list_label_types(pid, "span") if lt.text == "PER")
    lead.c.bulk_delete_label_types(pid, [per], "span")
    alice.confirm(pid, e2)
    third = make_backend(annotators=["alice"]).fetch(ledger, manifest)
    assert third.done == [] and "PER" in [lt.text for lt in lead.c.list_label_types(pid, "span")]
    (m2,) = [p for p in third.problems if recs[2].id in p]
    assert "the label type 'PER' was deleted" in m2 and "cannot tell whether it had one" in m2
    assert "nerloop recreated 'PER' (empty)" in m2
    assert any(recs[1].id in p and "'PER' was deleted" in p and "the imported version stays" in p
               for p in third.problems)
    assert any(recs[0].id in p and "the label types 'Drug' and 'PER' were deleted" in p for p in third.problems)

    pre_per = recs[2].meta["pre_spans"][0]
    alice.add(pid, e2, pre_per[0], pre_per[1], "PER")  # alice puts the lost span back ...
    alice.c.update_example_state(pid, e2)  # ... and marks the example done again: off, then on
    alice.confirm(pid, e2)
    fourth = make_backend(annotators=["alice"]).fetch(ledger, manifest)
    assert [(a.record.id, a.record.tags) for a in fourth.done] == [(recs[2].id, PRE)]
    assert not any(recs[2].id in p for p in fourth.problems) and any(recs[0].id in p for p in fourth.problems)


class _ReproReachedError(Exception):
    """Raised instead of `dvc repro`: the cycle got past its fetch and gate (nothing is trained here)."""


@pytest.mark.doccano
def test_a_windowed_disagreement_is_decided_on_its_window_and_the_rest_keeps_the_model_s_labels(
    make_backend: Callable[..., DoccanoBackend], people: dict[str, Annotator], tmp_path: Path
) -> None:
    """A QC sentence asked about words 4-7 ('Paris with Acme Corp'): bob drops the ORG inside the window and also
    relabels 'Alice0 Smith' outside it. Only the window counts: the review example names it first, bob's version
    shows the model's PER outside, the agreed PER and LOC are pre-filled, and the lead's answer outside the window
    is not imported (the model's labels stay there, as for any windowed sentence)."""
    be = make_backend(qc_share=1.0)
    rec = make_record(0)
    rec.meta["window"] = [3, 7]
    be.export([rec], 1)
    alice, bob, lead = people["alice"], people["bob"], people["lead"]
    pa, pb = alice.project(be.project_name("alice")), bob.project(be.project_name("bob"))
    per, loc, org = (tuple(sp[:2]) for sp in rec.meta["pre_spans"])
    alice.confirm(pa, alice.examples(pa)[rec.id])
    bob.annotate(pb, bob.examples(pb)[rec.id], [(*per, "ORG"), (*loc, "LOC")])

    ledger = Ledger(tmp_path / "ledger.jsonl")
    first = be.fetch(ledger)
    (d,) = first.disagreements
    assert d["spans"]["bob"] == "Alice0 Smith/PER · Paris/LOC"  # his change outside the window is not his answer
    review = lead.project(be.project_name("review"))
    (rid,) = lead.examples(review).values()
    meta = lead.c.find_example_by_id(review, rid).meta
    assert list(meta)[:3] == ["Decide only", "Version alice", "Version bob"]
    assert meta["Decide only"] == "«Paris with Acme Corp» (words 4-7); the versions differ only there"
    assert meta["Version bob"] == "[Alice0 Smith](PER) visited [Paris](LOC) with Acme Corp ."
    assert [tuple(s[:3]) for s in lead.spans(review, rid)] == [(*per, "PER"), (*loc, "LOC")]  # agreed: pre-filled

    lead.annotate(review, rid, [(*per, "ORG"), (*loc, "LOC"), (*org, "ORG")])  # keeps ORG; relabels outside too
    (ann,) = be.fetch(ledger).done
    assert ann.window == [3, 7] and ann.pre_tags == ["B-PER", "I-PER", "O", "B-LOC", "O", "O", "O", "O"]
    (entry,) = ledger.append([ann])
    assert entry["record"]["tags"] == PRE  # the window's ORG from the lead, the model's PER outside it


@pytest.mark.doccano
def test_issue_26_a_disagreement_in_review_never_blocks_the_cycle_and_its_resolution_is_fetched(
    make_backend: Callable[..., DoccanoBackend], people: dict[str, Annotator], doccano_server: Server,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue #26's case: a batch of 10, qc_share 0.3, one QC disagreement (to review) and one stray label (held
    back): 1 of 10 held back is within annotation.max_held_back_share (10%), so the cycle passes its gate, which
    comes right after the fetch; the lead resolves the review; the cycle, resumed at repro, fetches it."""
    from nerloop import paths
    from nerloop.data.files import write_json, write_records
    from nerloop.loop import cycle, held_back, inbox, status
    from nerloop.params import load_params

    prefix = make_backend().params.project
    root = tmp_path / "project"
    (root / ".dvc").mkdir(parents=True)
    monkeypatch.chdir(root)
    Path("dvc.yaml").write_text("stages: {}\n")
    for name in ("s.conll", "p.jsonl", "g.conll"):
        Path(name).write_text("")
    Path("params.yaml").write_text(yaml.safe_dump({
        "data": {"seed": "s.conll", "pool": "p.jsonl", "gold": "g.conll", "labels": LABELS},
        "annotation": {"backend": "doccano", "max_held_back_share": 0.1,
                       "doccano": {"project": prefix, "qc_share": 0.3, "annotators": ["alice", "bob"]}}}))
    for var, value in ((ENV_URL, doccano_server.url), (ENV_USERNAME, doccano_server.username),
                       (ENV_PASSWORD, doccano_server.password)):
        monkeypatch.setenv(var, value)
    recs = batch(10)
    for path, records in ((paths.POOL, recs), (paths.SEED, []), (paths.GOLD, []), (paths.OUTBOX, recs)):
        write_records(path, records)
    write_json(paths.LABELS, {"entity_types": LABELS})
    assert cycle.send(load_params()) == 10

    alice, bob, lead = people["alice"], people["bob"], people["lead"]
    pa, pb = alice.project(f"{prefix}-alice"), bob.project(f"{prefix}-bob")
    mine = {"alice": alice.examples(pa), "bob": bob.examples(pb)}
    qc = sorted(mine["alice"].keys() & mine["bob"].keys())
    assert len(qc) == 3
    disputed = qc[0]
    stray = next(sid for sid in mine["alice"] if sid not in qc)
    by_id = {r.id: r for r in recs}
    lead.c.create_label_type(pa, "span", "MISC", color="#000000")
    alice.relabel(pa, mine["alice"][stray], by_id[stray].text.index("Acme"), "MISC")
    bob.relabel(pb, mine["bob"][disputed], by_id[disputed].text.index("Acme"), "LOC")
    for person, pid in ((alice, pa), (bob, pb)):
        for eid in mine[person.name].values():
            person.confirm(pid, eid)

    calls: list[str] = []

    def repro() -> None:
        calls.append(cycle.journal()["step"])
        raise _ReproReachedError

    monkeypatch.setattr(cycle, "repro", repro)
    with pytest.raises(_ReproReachedError):
        cycle.run_cycle()  # before the fix: 2 of 10 "held back", 20% > 10%, refused after an 11-minute repro
    assert calls == ["repro"]
    result, _ = inbox.read()
    assert len(result.done) == 8 and [m for m in result.in_review if disputed in m]
    assert any(stray in p and "'MISC'" in p for p in result.problems)
    assert not any(disputed in p for p in result.problems)
    entries = {h.id: h for h in held_back.load()}
    assert entries[stray].state == "held back" and entries[disputed].state == "in review"
    assert [w.split(" (")[0] for w in entries[disputed].work] == ["alice's version", "bob's version"]
    s = status.status()
    assert s["blocked"] is None and len(s["in_review"]) == 1 and len(s["held_back"]) == 1
    assert "in review:           1 (disagreements waiting on the lead" in status.render(s)

    review = lead.project(f"{prefix}-review")
    (rid,) = lead.examples(review).values()
    lead.annotate(review, rid, token_to_char_spans(by_id[disputed].offsets, tags_to_spans(PRE)))  # the lead decides
    with pytest.raises(_ReproReachedError):
        cycle.run_cycle()  # resumed at step repro: fetches again, so the resolution is seen
    assert calls == ["repro", "repro"]
    result, _ = inbox.read()
    (resolved,) = [a for a in result.done if a.record.id == disputed]
    assert resolved.record.tags == PRE and resolved.annotator == doccano_server.username and result.in_review == []
    assert {h.id: h.state for h in held_back.load() if h.id} == {stray: "held back"}


# ---------------------------------------------------------------- issue #26: media, confidences on the page


def _media_files(server: Server) -> list[str]:
    return sorted(str(p.relative_to(server.home / "media")) for p in (server.home / "media").rglob("*") if p.is_file())


@pytest.mark.doccano
def test_nothing_uploaded_or_exported_stays_in_media_and_media_is_not_served(
    make_backend: Callable[..., DoccanoBackend], people: dict[str, Annotator], doccano_server: Server,
    tmp_path: Path,
) -> None:
    import urllib.error
    import urllib.request

    be = make_backend(annotators=["alice"])
    be.export(batch(3), 1)
    assert _media_files(doccano_server) == []  # the uploaded batch was deleted once imported
    lead = people["lead"]
    pid = lead.project(be.project_name("alice"))
    zipped = lead.c.download(pid, "JSONL", only_approved=False, dir_name=str(tmp_path))  # an export in Doccano
    assert zipped.stat().st_size > 0 and _media_files(doccano_server) == []  # the zip was deleted once downloaded

    left = doccano_server.home / "media" / "left-by-an-older-server" / "batch.jsonl"  # e.g. from before the fix
    left.parent.mkdir()
    left.write_text('{"text": "both versions of a disputed sentence"}\n')
    try:
        for path in ("left-by-an-older-server/batch.jsonl", "", "nothing-here.zip"):
            with pytest.raises(urllib.error.HTTPError) as err:  # no session, no cookie
                urllib.request.urlopen(f"{doccano_server.url}/media/{path}", timeout=10)
            assert err.value.code in (403, 404), path
            assert b"disputed" not in err.value.read()
    finally:
        left.unlink()
        left.parent.rmdir()


@pytest.mark.doccano
def test_confidences_shown_first_in_the_metadata_and_written_in_bulk(
    make_backend: Callable[..., DoccanoBackend], people: dict[str, Annotator],
) -> None:
    be = make_backend(annotators=["alice"])
    recs = batch(2)
    recs[1].meta["pre_spans"][1][3] = None  # a span without a confidence
    be.export(recs, 1)
    assert be.bulk_confidences is True  # one request per project, the route nerloop adds to its server
    alice = people["alice"]
    pid = alice.project(be.project_name("alice"))
    e0, e1 = (alice.examples(pid)[r.id] for r in recs)
    meta = alice.c.find_example_by_id(pid, e0).meta
    assert next(iter(meta)) == "Model confidence"
    assert meta["Model confidence"] == "lowest first: 'Acme Corp' ORG 0.70; 'Paris' LOC 0.80; 'Alice0 Smith' PER 0.90"
    assert alice.c.find_example_by_id(pid, e1).meta["Model confidence"].endswith("'Paris' LOC ?")
    assert [s[3] for s in alice.spans(pid, e0)] == pytest.approx([0.9, 0.8, 0.7])
    assert [s[3] for s in alice.spans(pid, e1)] == pytest.approx([0.9, 0.0, 0.7])

    alice.confirm(pid, e0)  # finished work is never changed: a rerun with other confidences leaves e0 alone
    again = [make_record(i, conf=0.5) for i in range(2)]
    make_backend(annotators=["alice"]).export(again, 1)
    assert [s[3] for s in alice.spans(pid, e0)] == pytest.approx([0.9, 0.8, 0.7])
    assert [s[3] for s in alice.spans(pid, e1)] == pytest.approx([0.5, 0.4, 0.3])

    span_by_span = make_backend(annotators=["alice"])  # a server without the route: Doccano's API, span by span
    span_by_span.bulk_confidences = False
    span_by_span.export([make_record(i, conf=0.6) for i in range(2)], 1)
    assert [s[3] for s in alice.spans(pid, e1)] == pytest.approx([0.6, 0.5, 0.4])

    from doccano_client.exceptions import DoccanoAPIError

    with pytest.raises(DoccanoAPIError):  # an annotator cannot write confidences through the route
        people["bob"].c._base_repository.post(f"projects/{pid}/nerloop/span-probs", json={"spans": []})
