"""Subsequence selection through the stages, in-process on a tiny model: select.unit: window from score to the
release (prepare -> import -> train -> score -> select -> export -> simulated answers -> import -> train ->
final-split). The pieces are tested alone in test_windows, test_ledger, test_simulated and test_model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, write_tiny_data
from nerloop import paths
from nerloop.annotation.simulated import SimulatedBackend
from nerloop.data.files import read_records, write_json, write_records
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record
from nerloop.data.tags import tags_to_spans
from nerloop.errors import ParamsError
from nerloop.loop import inbox
from nerloop.release.sections import cleaning_lines, partial_text
from nerloop.stages import export, final_split, import_annotations, prepare, score, select, train

WINDOW = 4
WEIGHTS_SEED = 1  # the tiny BERT's init (seed 0's model predicts one entity over every sentence)


def _project(tmp_path: Path, partial: str) -> None:
    # seeded weights: whether a window is asked depends on what the trained model predicts (an entity it predicts
    # over a whole sentence widens the window to all of it), so the outcome must not hang on a random init
    tiny = write_tiny_data(tmp_path / "data" / "raw", tmp_path / "tiny-bert", pool_size=30, weights_seed=WEIGHTS_SEED)
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["model"]["base"] = str(tiny)
    params["train"].update(recipe="holdout", epochs=1, batch_size=8, partial=partial)
    params["select"].update(batch_size=6, k=3, unit="window", window_tokens=WINDOW)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    inbox.write(inbox.read(tmp_path / "none.json")[0], {}, paths.INBOX)


@pytest.mark.parametrize("partial", ["mask", "fill"])
def test_a_windowed_cycle_from_score_to_the_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    partial: str) -> None:
    monkeypatch.chdir(tmp_path)
    _project(tmp_path, partial)
    for stage in (prepare, import_annotations, train, score, select, export):
        stage.main()
    outbox = read_records(paths.OUTBOX)
    assert len(outbox) == 6
    windowed = [r for r in outbox if "window" in r.meta]
    assert windowed, "every selected sentence is longer than the window"
    for r in outbox:
        if "window" not in r.meta:  # asked whole: short, or a predicted entity at an edge widened its window to all
            edges = [(s, e) for s, e, _ in tags_to_spans(r.meta["pre_tags"]) if s == 0 or e == len(r.tokens)]
            assert len(r.tokens) <= WINDOW or edges, (r.tokens, r.meta["pre_tags"])
            continue
        start, end = r.meta["window"]
        assert 0 <= start < end <= len(r.tokens) and end - start >= WINDOW and (start, end) != (0, len(r.tokens))

    backend = SimulatedBackend(paths.PREPARED.parent / "raw" / "pool_answers.conll", "annotation/simulated")
    backend.export(outbox, 1)
    result = backend.fetch(Ledger(paths.LEDGER), {r.id: r.id for r in outbox})
    inbox.write(result, {r.id: 1 for r in outbox})
    import_annotations.main()
    ledger = Ledger(paths.LEDGER)
    by_id = {e["id"]: e for e in ledger.entries}
    for r in outbox:
        entry = by_id[r.id]
        assert entry.get("window") == r.meta.get("window")
        if "window" in entry:  # outside the window, the pre-annotation as shown
            s, e = entry["window"]
            tags = entry["record"]["tags"]
            assert tags[:s] == r.meta["pre_tags"][:s] and tags[e:] == r.meta["pre_tags"][e:]
    annotation = json.loads((paths.METRICS / "annotation.json").read_text(encoding="utf-8"))
    asked = sum(e["window"][1] - e["window"][0] if "window" in e else len(e["record"]["tokens"])
                for e in ledger.entries)
    assert annotation["annotated_tokens"] == asked
    assert annotation["partly_labelled"]["sentences"] == len(windowed)

    train.main()  # trains on the partly labelled sentences (their windows only, with mask)
    final_split.main()
    stats = json.loads((paths.FINAL / "stats.json").read_text(encoding="utf-8"))
    kept_out = stats["provenance"]["partly_labelled_kept_out"]
    assert sorted(kept_out) == sorted(r.id for r in windowed)
    released = {tuple(json.loads(line)["tokens"]) for name in ("train", "validation", "test")
                for line in (paths.FINAL / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()}
    assert released and not released & {tuple(r.tokens) for r in windowed}
    assert json.loads((paths.METRICS / "final.json").read_text(encoding="utf-8"))["partly_labelled_kept_out"] == \
        len(windowed)
    assert f"{len(windowed)} of {len(outbox)} annotated sentences" in partial_text(stats)
    assert any("partly labelled" in line for line in cleaning_lines(stats, {"conflict_policy": "review"}))


def _scored(tmp_path: Path, word_conf: bool) -> list[Record]:
    """A project after score, by hand: a long uncertain sentence with a predicted entity, and a short one."""
    write_records(paths.SEED, [Record.from_tokens(["Acme", "Corp"], ["B-ORG", "I-ORG"])])
    write_records(paths.GOLD, [Record.from_tokens(["Globex", "."], ["B-ORG", "O"])])
    pool = [Record.from_tokens(["Yesterday", "the", "Acme", "Corp", "board", "met", "in", "town", "."]),
            Record.from_tokens(["Hi", "."])]
    write_records(paths.POOL, pool)
    write_json(paths.LABELS, {"entity_types": ["ORG"]})
    paths.SCORES.mkdir(parents=True)
    pd.DataFrame({
        "id": [r.id for r in pool], "n_tokens": [len(r.tokens) for r in pool], "mnlp": [2.0, 1.0],
        "pred_tags": [json.dumps(["O", "O", "B-ORG", "I-ORG", "O", "O", "O", "O", "O"]), json.dumps(["O", "O"])],
        "pred_spans": [json.dumps([[14, 23, "ORG", 0.6]]), json.dumps([])],
        **({"word_conf": [json.dumps([0.99, 0.99, 0.99, 0.3, 0.2, 0.4, 0.99, 0.99, 0.99]),
                          json.dumps([0.5, 0.5])]} if word_conf else {}),
    }).to_parquet(paths.SCORES_FILE, index=False)
    np.save(paths.EMBEDDINGS_FILE, np.zeros((len(pool), 4), dtype=np.float16))
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["select"].update(strategy="uncertainty", batch_size=2, unit="window", window_tokens=3)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return pool


def test_select_stage_with_unit_window_sets_each_long_sentences_window(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    long, short = _scored(tmp_path, word_conf=True)
    select.main()
    batch = {r.id: r for r in read_records(paths.BATCH)}
    assert batch[long.id].meta["window"] == [2, 6]  # words 3-5 are the least sure; widened over Acme Corp
    assert "window" not in batch[short.id].meta  # two words: asked whole


def test_select_stage_with_unit_window_needs_scores_with_word_confidences(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _scored(tmp_path, word_conf=False)
    with pytest.raises(ParamsError, match=r"select\.unit: window needs each word's confidence"):
        select.main()
    assert not paths.BATCH.exists()
