"""Held-back sentences: listed with text and reason, counted, released; too many stop a cycle."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from nerloop import held_back, inbox, paths, status
from nerloop.annotation.base import FetchResult
from nerloop.formats import record_from_text, write_json, write_records
from nerloop.held_back import HeldBack, HeldBackError

TWEET = record_from_text("@ada loves #NLP", source="data/raw/pool.txt:7")
PLAIN = record_from_text("Paris is big", source="data/raw/pool.txt:8")
PROBLEMS = [f"sentence {TWEET.id}: the answer in a.conll:3 cannot be mapped: pool tokens: ['@', 'ada']; stays pending",
            "example 12: not ours (no nerloop_id in meta); ignored"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with prepared data, an export manifest of two cycles and an inbox."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dvc").mkdir()
    (tmp_path / "dvc.yaml").write_text("stages: {}\n", encoding="utf-8")
    (tmp_path / "params.yaml").write_text("data: {seed: s.conll, pool: p.txt, gold: g.conll}\n"
                                          "annotation: {simulated: {answers: a.conll}}\n", encoding="utf-8")
    write_records(paths.POOL, [TWEET, PLAIN])
    write_records(paths.SEED, [record_from_text("Ada met Bob", [(0, 3, "PER"), (8, 11, "PER")])])
    write_records(paths.GOLD, [])
    write_json(paths.LABELS, {"entity_types": ["PER", "LOC"]})
    write_json(paths.EXPORT_MANIFEST, {"backend": "simulated", "examples": {
        TWEET.id: {"example": TWEET.id, "cycle": 1}, PLAIN.id: {"example": PLAIN.id, "cycle": 2}}})
    inbox.write(FetchResult(pending=[TWEET.id], problems=PROBLEMS), _exported())
    return tmp_path


def _manifest() -> dict:
    return json.loads(paths.EXPORT_MANIFEST.read_text(encoding="utf-8"))["examples"]


def _exported() -> dict[str, int]:
    return {sid: e["cycle"] for sid, e in _manifest().items()}


def test_record_lists_each_held_back_sentence_with_text_and_reason(project: Path) -> None:
    held = held_back.record(PROBLEMS, _exported())
    assert held == held_back.load()
    assert held[0] == HeldBack(TWEET.id, PROBLEMS[0], 1, "@ada loves #NLP", "data/raw/pool.txt:7")
    assert held[1] == HeldBack(None, PROBLEMS[1])  # a backend problem tied to no sentence is kept too
    line = json.loads(held_back.HELD_BACK.read_text(encoding="utf-8").splitlines()[0])
    assert line["text"] == "@ada loves #NLP" and "cannot be mapped" in line["reason"]
    text = held_back.summary(held)
    assert text.startswith("2 held back (cycle 1: 1)") and "'@ada loves #NLP'" in text and "release" in text
    held_back.record([], _exported())  # the list is the state after the latest import: fixed ones leave it
    assert held_back.load() == [] and held_back.summary([]) == "no sentence is held back"


def test_two_messages_about_one_sentence_make_one_entry(project: Path) -> None:
    held = held_back.record([PROBLEMS[0], f"example 3 (sentence {TWEET.id}): text edited"], _exported())
    assert len(held) == 1 and "text edited" in held[0].reason and "cannot be mapped" in held[0].reason


def test_status_lists_them_and_counts_entities_per_type(project: Path) -> None:
    held_back.record(PROBLEMS[:1], _exported())
    s = status.status()
    assert s["held_back"] == [f"{TWEET.id} '@ada loves #NLP': {PROBLEMS[0]}"]
    assert s["entities_per_type"] == {"PER": 2, "LOC": 0}
    text = status.render(s)
    assert "held back:           1" in text and "release --all" in text and "entities per type:   PER 2, LOC 0" in text


def test_check_share_stops_a_cycle(project: Path) -> None:
    held_back.record(PROBLEMS[:1], _exported())  # cycle 1 exported one sentence: 100% held back
    held_back.check_share(1.0)
    with pytest.raises(HeldBackError, match=r"cycle 1: 100%.*max_held_back_share is 50%.*@ada loves #NLP"):
        held_back.check_share(0.5)


def test_release_returns_sentences_to_the_pool(project: Path) -> None:
    held_back.record(PROBLEMS, _exported())
    with pytest.raises(held_back.NerloopError, match="not held back"):
        held_back.release([PLAIN.id])
    assert held_back.release(None) == [TWEET.id]
    assert set(_exported()) == {PLAIN.id}  # no longer exported: back in the pool for selection
    result, exported = inbox.read()
    assert exported == {PLAIN.id: 2} and result.pending == [] and result.problems == PROBLEMS[1:]
    assert [h.id for h in held_back.load()] == [None]
    held_back.check_share(0.0)


def test_command_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    held_back.record(PROBLEMS[:1], _exported())
    held_back.main(["list"])
    out = capsys.readouterr().out
    assert TWEET.id in out and "data/raw/pool.txt:7" in out and "cannot be mapped" in out
    with pytest.raises(SystemExit):
        held_back.main(["release"])
    held_back.main(["release", TWEET.id])
    assert "released 1 sentence(s)" in capsys.readouterr().out and held_back.load() == []


def test_the_cli_commands_the_readme_names(tiny_project: Path) -> None:
    """`nerloop held-back list` and `... release` exactly as README and status print them."""
    from conftest import project_env, run_in

    assert "no sentence is held back" in run_in(tiny_project, "nerloop", "held-back", "list").stdout
    proc = subprocess.run(["nerloop", "held-back", "release"], cwd=tiny_project, env=project_env(), text=True,
                          capture_output=True)
    assert proc.returncode == 1 and "name the sentence ids to release, or --all" in proc.stderr
