"""The pool and its scores as shards (what the Ray engine's workers read and write), without a cluster.

The Ray engine's end-to-end agreement with the local engine is in test_ray_scoring.py; here the parts
that decide it: which sentences a shard yields (exclusions, subsample), and that rows merged from
shards come back in pool order through the stage's own writer.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nerloop import paths
from nerloop.data.files import read_records, write_records
from nerloop.data.records import Record
from nerloop.errors import DataError
from nerloop.selection import shards as sharding
from nerloop.selection.scoring import candidates, row_columns
from nerloop.stages import score as score_stage


def _pool(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "pool.jsonl"
    write_records(path, [Record.from_tokens([f"w{i}", "in", "Paris"], source="t") for i in range(n)])
    return path


@pytest.mark.parametrize("subsample", [0, 7])
def test_shards_yield_what_the_local_engine_scores(tmp_path: Path, subsample: int) -> None:
    pool_file = _pool(tmp_path, 23)
    pool = read_records(pool_file)
    excluded = {pool[0].id, pool[5].id, pool[22].id}
    store = sharding.shard_store(str(tmp_path / "shards"))
    shards = sharding.write_pool_shards(pool_file, store, 5)
    assert [(s.first, s.lines) for s in shards] == [(0, 5), (5, 5), (10, 5), (15, 5), (20, 3)]
    assert sharding.count_lines(pool_file) == 23
    keep = sharding.kept_lines(pool_file, excluded, subsample, seed=3)
    from_shards = [r for s in shards for r in sharding.read_pool_shard(store, s, excluded, keep, str(pool_file))]
    assert [r.id for r in from_shards] == [r.id for r in candidates(pool, excluded, subsample, 3)]
    store.remove()
    assert not (tmp_path / "shards").exists() or not any((tmp_path / "shards").iterdir())


def test_a_bad_pool_line_is_named(tmp_path: Path) -> None:
    pool_file = _pool(tmp_path, 4)
    lines = pool_file.read_text().splitlines()
    lines[2] = '{"id": "x"'
    pool_file.write_text("\n".join(lines) + "\n")
    store = sharding.shard_store(str(tmp_path / "shards"))
    shards = sharding.write_pool_shards(pool_file, store, 2)
    with pytest.raises(DataError, match=r"pool.jsonl:3: not a canonical record"):
        sharding.read_pool_shard(store, shards[1], set(), None, str(pool_file))


def _row(i: int) -> dict:
    return {"id": f"s{i}", "n_tokens": i % 7 + 1, "entropy_mean": i / 10, "entropy_max": 0.0, "least_confidence": 0.0,
            "margin": 0.0, "mnlp": float(i), "boundary": 0.0, "pred_tags": json.dumps(["O"]),
            "pred_spans": "[]", "pred_types": "[]", "type_mass": "{}"}


def test_merged_shards_are_written_in_pool_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards finishing in any order, a shard that kept no sentence, several parquet chunks: one table in order."""
    monkeypatch.setattr(score_stage, "CHUNK_ROWS", 4)
    store = sharding.shard_store(str(tmp_path / "shards"))
    shards = sharding.write_pool_shards(_pool(tmp_path, 10), store, 3)  # lines 0-2, 3-5, 6-8, 9
    kept = {0: [0, 1, 2], 3: [], 6: [3, 4, 5], 9: [6]}  # row numbers each shard scored (shard 3-5: all excluded)
    for shard in reversed(shards):
        rows = [_row(i) for i in kept[shard.first]]
        sharding.write_score_shard(store, shard, rows, [np.full(4, i, np.float32) for i in kept[shard.first]],
                          row_columns(False))
    scored = [sharding.Shard(s.first, len(kept[s.first])) for s in reversed(shards)]
    with contextlib.chdir(tmp_path):
        assert score_stage.write_scores(7, 4, False, sharding.merged_scores(store, scored)) == 7
        table = pd.read_parquet(paths.SCORES_FILE)
        emb = np.load(paths.EMBEDDINGS_FILE)
    assert table["id"].tolist() == [f"s{i}" for i in range(7)] and table.index.tolist() == list(range(7))
    assert table.columns.tolist() == row_columns(False)
    assert emb.dtype == np.float16 and emb[:, 0].tolist() == list(range(7))


def test_rows_in_any_order_give_the_same_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The local engine's rows come sorted by sentence length, not in pool order."""
    monkeypatch.setattr(score_stage, "CHUNK_ROWS", 3)
    order = np.random.default_rng(0).permutation(11).tolist()
    written = {}
    for name, seq in (("in order", list(range(11))), ("shuffled", order)):
        with contextlib.chdir(tmp_path):
            score_stage.write_scores(11, 2, False, ((i, _row(i), np.full(2, i, np.float32)) for i in seq))
            written[name] = (pd.read_parquet(paths.SCORES_FILE), np.load(paths.EMBEDDINGS_FILE))
    pd.testing.assert_frame_equal(written["in order"][0], written["shuffled"][0])
    assert np.array_equal(written["in order"][1], written["shuffled"][1])
    with contextlib.chdir(tmp_path), pytest.raises(RuntimeError, match="returned 2 of 3 sentences"):
        score_stage.write_scores(3, 2, False, ((i, _row(i), np.zeros(2)) for i in (0, 1)))
    assert pd.read_parquet(tmp_path / paths.SCORES_FILE).shape[0] == 11  # a failed run leaves the last files
