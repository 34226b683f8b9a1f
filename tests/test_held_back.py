"""Held-back and in-review sentences: listed with text and reason, counted apart, released only with consent;
too many held back stop a cycle at its gate, right after the fetch."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from nerloop import paths
from nerloop.annotation.core.base import FetchResult
from nerloop.data.annotations import Annotation
from nerloop.data.files import write_json, write_records
from nerloop.data.formats import record_from_text
from nerloop.data.ledger import Ledger
from nerloop.loop import held_back, inbox, status
from nerloop.loop.held_back import HeldBack, HeldBackError

TWEET = record_from_text("@ada loves #NLP", source="data/raw/pool.txt:7")
PLAIN = record_from_text("Paris is big", source="data/raw/pool.txt:8")
OTHER = record_from_text("Bob left", source="data/raw/pool.txt:9")
PROBLEMS = [f"sentence {TWEET.id}: the answer in a.conll:3 cannot be mapped: pool tokens: ['@', 'ada']; stays pending",
            "example 12: not ours (no nerloop_id in meta); ignored"]
REVIEW = (f"sentence {PLAIN.id} (alice: example 4, bob: example 9): alice and bob disagree; resolve it in project "
          "'nerloop-review', example 17 (both versions are in its metadata), and mark it done")
WORK = {PLAIN.id: ["alice's version (example 4 in project 'nerloop-alice'): Paris/LOC",
                   "bob's version (example 9 in project 'nerloop-bob'): (no entities)"]}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with prepared data, an export manifest of two cycles and an inbox."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "dvc.yaml").write_text("stages: {}\n", encoding="utf-8")
    (tmp_path / "params.yaml").write_text("data: {seed: s.conll, pool: p.txt, gold: g.conll}\n"
                                          "annotation: {simulated: {answers: a.conll}}\n", encoding="utf-8")
    write_records(paths.POOL, [TWEET, PLAIN, OTHER])
    write_records(paths.SEED, [record_from_text("Ada met Bob", [(0, 3, "PER"), (8, 11, "PER")])])
    write_records(paths.GOLD, [])
    write_json(paths.LABELS, {"entity_types": ["PER", "LOC"]})
    write_json(paths.EXPORT_MANIFEST, {"backend": "simulated", "examples": {
        TWEET.id: {"example": TWEET.id, "cycle": 1}, PLAIN.id: {"example": PLAIN.id, "cycle": 2},
        OTHER.id: {"example": OTHER.id, "cycle": 2}}})
    inbox.write(FetchResult(pending=[TWEET.id], problems=PROBLEMS), _exported())
    return tmp_path


def _manifest() -> dict:
    return json.loads(paths.EXPORT_MANIFEST.read_text(encoding="utf-8"))["examples"]


def _exported() -> dict[str, int]:
    return {sid: e["cycle"] for sid, e in _manifest().items()}


def _review_inbox(problems: list[str] = PROBLEMS[:1]) -> None:
    """The inbox after a fetch that found TWEET held back and PLAIN in review, with both annotators' work."""
    inbox.write(FetchResult(pending=[TWEET.id, PLAIN.id], problems=problems, in_review=[REVIEW], work=WORK),
                _exported())


def test_record_lists_each_held_back_sentence_with_text_and_reason(project: Path) -> None:
    held = held_back.record(FetchResult(problems=PROBLEMS), _exported())
    assert held == held_back.load()
    assert held[0] == HeldBack(None, PROBLEMS[1])  # a backend problem tied to no sentence is kept too
    assert held[1] == HeldBack(TWEET.id, PROBLEMS[0], 1, "@ada loves #NLP", "data/raw/pool.txt:7")
    line = json.loads(held_back.HELD_BACK.read_text(encoding="utf-8").splitlines()[1])
    assert line["text"] == "@ada loves #NLP" and "cannot be mapped" in line["reason"] and line["state"] == "held back"
    text = held_back.summary(held)
    assert text.startswith("2 held back (cycle 1: 1)") and "'@ada loves #NLP'" in text and "release" in text
    held_back.record(FetchResult(), _exported())  # the list is the state after the latest fetch: fixed ones leave it
    assert held_back.load() == [] and held_back.summary([]) == "no sentence is held back"


def test_a_list_written_before_states_existed_still_loads(project: Path) -> None:
    held_back.HELD_BACK.parent.mkdir(parents=True, exist_ok=True)
    held_back.HELD_BACK.write_text(json.dumps({"id": TWEET.id, "reason": "x", "cycle": 1, "text": None,
                                               "source": None}) + "\n", encoding="utf-8")
    assert held_back.load() == [HeldBack(TWEET.id, "x", 1)] and held_back.load()[0].state == "held back"


def test_two_messages_about_one_sentence_make_one_entry(project: Path) -> None:
    result = FetchResult(problems=[PROBLEMS[0], f"example 3 (sentence {TWEET.id}): text edited"])
    (held,) = held_back.record(result, _exported())
    assert "text edited" in held.reason and "cannot be mapped" in held.reason


def test_a_disagreement_in_review_is_listed_apart_and_never_counted(project: Path) -> None:
    _review_inbox()
    entries = held_back.gate(1.0)
    (tweet,) = [h for h in entries if h.id == TWEET.id]
    (plain,) = [h for h in entries if h.id == PLAIN.id]
    assert tweet.state == "held back" and plain.state == "in review" and plain.work == WORK[PLAIN.id]
    assert plain.text == "Paris is big" and plain.cycle == 2 and "nerloop-review" in plain.reason
    assert held_back.over_share(entries, _manifest(), set(), 0.0) == {1: (1, 1)}  # cycle 2: nothing counted
    assert held_back.summary(entries).startswith("1 held back (cycle 1: 1); 1 in review")
    assert held_back.split(held_back.load()) == ([tweet], [plain])


def test_the_gate_names_the_sentences_and_the_way_out(project: Path) -> None:
    _review_inbox()
    with pytest.raises(HeldBackError) as err:
        held_back.gate(0.5)
    msg = str(err.value)
    assert "cycle 1: 1 of 1 exported sentences (100%); annotation.max_held_back_share is 50%" in msg
    assert "stopped before training, sending or committing anything" in msg
    assert f"  - '@ada loves #NLP': {PROBLEMS[0]}" in msg  # the sentence and what to fix (its reason names it)
    assert "Not counted: 1 in review" in msg and PLAIN.id not in msg.split("Not counted")[0]
    assert "Way out: Fix each where its reason says, then run `nerloop cycle` (it fetches again" in msg
    assert f"nerloop held-back release {TWEET.id}" in msg
    assert [h.id for h in held_back.load() if h.id] == [TWEET.id, PLAIN.id]  # listed even though the cycle stopped
    assert held_back.gate(1.0)  # within the limit: no stop


def test_the_gate_does_not_count_sentences_already_imported(project: Path) -> None:
    _review_inbox()
    rec = record_from_text(TWEET.text, [(0, 4, "PER")])
    Ledger(paths.LEDGER).append([Annotation(record=rec, cycle=1, annotator="alice")])  # a later change is noted
    held_back.gate(0.0)
    assert held_back.blocked(held_back.load(), _manifest(), {TWEET.id}, 0.0) is None


def test_release_asks_before_dropping_an_annotators_work(project: Path) -> None:
    _review_inbox()
    held_back.gate(1.0)
    with pytest.raises(held_back.NerloopError, match=r"(?s)Paris/LOC.*\(no entities\).*run again with --yes"):
        held_back.release([PLAIN.id])  # no terminal to ask in
    assert PLAIN.id in _manifest()  # nothing was released
    questions: list[str] = []

    def no(q: str) -> bool:
        questions.append(q)
        return False

    with pytest.raises(held_back.NerloopError, match="nothing was released"):
        held_back.release([PLAIN.id], ask=no)
    assert "alice's version (example 4 in project 'nerloop-alice'): Paris/LOC" in questions[0]
    assert questions[0].endswith("[y/N] ") and PLAIN.id in _manifest()
    assert held_back.release([PLAIN.id], ask=lambda q: True) == [PLAIN.id]
    assert PLAIN.id not in _manifest() and inbox.read()[0].in_review == [] and PLAIN.id not in inbox.read()[0].work


def test_release_all_returns_the_held_back_to_the_pool_not_those_in_review(project: Path) -> None:
    _review_inbox(PROBLEMS)
    held_back.gate(1.0)
    with pytest.raises(held_back.NerloopError, match="not held back or in review"):
        held_back.release([OTHER.id])
    assert held_back.release(None) == [TWEET.id]  # no annotator's work on it: nothing to ask
    assert set(_exported()) == {PLAIN.id, OTHER.id}  # no longer exported: back in the pool for selection
    result, exported = inbox.read()
    assert TWEET.id not in exported and result.pending == [PLAIN.id] and result.problems == PROBLEMS[1:]
    assert result.in_review == [REVIEW]
    assert [(h.id, h.state) for h in held_back.load()] == [(None, "held back"), (PLAIN.id, "in review")]
    held_back.gate(0.0)


def test_command_line(project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _review_inbox()
    held_back.gate(1.0)
    held_back.main(["list"])
    out = capsys.readouterr().out
    assert TWEET.id in out and "data/raw/pool.txt:7" in out and "cannot be mapped" in out
    assert f"{PLAIN.id}\tin review (waiting on the lead)\tcycle 2" in out
    assert "finished work, not imported: alice's version" in out
    with pytest.raises(SystemExit):
        held_back.main(["release"])
    with pytest.raises(SystemExit):
        held_back.main(["release", PLAIN.id])  # stdin is no terminal under pytest
    assert "run again with --yes" in capsys.readouterr().err and PLAIN.id in _manifest()

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    with pytest.raises(SystemExit):
        held_back.main(["release", PLAIN.id])
    assert "Release them and drop this work? [y/N]" in capsys.readouterr().out and PLAIN.id in _manifest()
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    held_back.main(["release", PLAIN.id])
    assert "released 1 sentence(s)" in capsys.readouterr().out and PLAIN.id not in _manifest()
    held_back.main(["release", TWEET.id, "--yes"])
    assert "released 1 sentence(s)" in capsys.readouterr().out and held_back.load() == []


def test_status_counts_them_apart_and_names_the_way_out_when_stopped(project: Path) -> None:
    _review_inbox()
    held_back.gate(1.0)
    s = status.status()
    assert s["held_back"] == [f"{TWEET.id} '@ada loves #NLP': {PROBLEMS[0]}"]
    assert s["in_review"] == [f"{PLAIN.id} 'Paris is big': {REVIEW}"]
    assert s["entities_per_type"] == {"PER": 2, "LOC": 0}
    assert s["blocked"]["sentences"] == [TWEET.id]  # cycle 1: 100% over the default 10%
    text = status.render(s)
    assert "held back:           1" in text and "in review:           1 (disagreements waiting on the lead" in text
    assert "stopped:             too many held back (cycle 1: 1 of 1" in text
    assert f"next:                the loop is stopped by too many held-back sentences ({TWEET.id};" in text
    assert f"nerloop held-back release {TWEET.id}" in text and "then run `nerloop cycle`" in text


def test_the_cli_commands_the_readme_names(tiny_project: Path) -> None:
    """`nerloop held-back list` and `... release` exactly as README and status print them."""
    from conftest import project_env, run_in

    assert "no sentence is held back" in run_in(tiny_project, "nerloop", "held-back", "list").stdout
    proc = subprocess.run(["nerloop", "held-back", "release"], cwd=tiny_project, env=project_env(), text=True,
                          capture_output=True)
    assert proc.returncode == 1 and "name the sentence ids to release, or --all" in proc.stderr
