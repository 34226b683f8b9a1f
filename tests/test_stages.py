"""Stage logic that is not the model: exclusion, subsampling, pre-annotation, history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nerloop import paths
from nerloop.errors import ParamsError
from nerloop.model import Prediction
from nerloop.params import SelectParams
from nerloop.records import Record
from nerloop.stages import evaluate
from nerloop.stages.score import EMBEDDINGS_FILE, SCORES_FILE, candidates, pre_annotation, row_columns, write_scores
from nerloop.stages.select import choose, config_from


def table(n: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"id": [f"s{i}" for i in range(n)], "n_tokens": rng.integers(3, 30, n),
                       "mnlp": rng.random(n), "entropy_mean": rng.random(n), "rare": np.zeros(n)})
    return df, rng.normal(size=(n, 8)).astype(np.float32)


@pytest.mark.parametrize("strategy", ["random", "uncertainty", "hybrid"])
def test_choose_never_picks_excluded_sentences(strategy: str) -> None:
    df, emb = table(50)
    excluded = {f"s{i}" for i in range(0, 50, 2)}  # labelled, exported earlier or gold
    cfg = config_from(SelectParams(strategy=strategy, batch_size=10, k=3))
    chosen = choose(df, emb, excluded, cfg)
    assert len(chosen) == 10 and not set(chosen["id"]) & excluded
    assert chosen["id"].tolist() == choose(df, emb, excluded, cfg)["id"].tolist()  # same seed, same batch


def test_batch_larger_than_pool_takes_what_is_left_and_empty_pool_is_fine() -> None:
    df, emb = table(6)
    cfg = config_from(SelectParams(strategy="uncertainty", batch_size=10))
    assert len(choose(df, emb, {"s0"}, cfg)) == 5
    assert choose(df, emb, set(df["id"]), cfg).empty


def test_pool_running_low_shrinks_k_instead_of_failing(caplog: pytest.LogCaptureFixture) -> None:
    df, emb = table(6)
    chosen = choose(df, emb, {"s0"}, config_from(SelectParams(strategy="hybrid", k=20, batch_size=10)))
    assert sorted(chosen["id"]) == [f"s{i}" for i in range(1, 6)]  # all five left, one per cluster
    assert "select.k=20 but only 5 sentences are left in the pool: using k=5" in caplog.text


def test_bad_select_params_name_the_key() -> None:
    with pytest.raises(ParamsError, match=r"select\.strategy"):
        config_from(SelectParams(strategy="bogus"))
    with pytest.raises(ParamsError, match=r"select\.measure"):
        config_from(SelectParams(measure="bogus"))


def test_candidates_exclude_and_subsample_deterministically() -> None:
    pool = [Record.from_tokens([f"w{i}", "x"]) for i in range(20)]
    excluded = {pool[0].id, pool[1].id}
    a = candidates(pool, excluded, subsample=5, seed=3)
    assert len(a) == 5 and not {r.id for r in a} & excluded
    assert [r.id for r in a] == [r.id for r in candidates(pool, excluded, subsample=5, seed=3)]
    assert len(candidates(pool, excluded, subsample=0, seed=3)) == 18


def test_pre_annotation_gives_char_spans_with_mean_confidence() -> None:
    labels = ["O", "B-DIS", "I-DIS"]
    rec = Record.from_tokens(["heart", "failure", "now"])
    probs = np.array([[0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.9, 0.05, 0.05]], dtype=np.float32)
    spans = pre_annotation(rec, Prediction(probs=probs, tags=["B-DIS", "I-DIS", "O"]), labels)
    assert spans == [[0, 13, "DIS", pytest.approx(0.7)]]
    assert rec.text[0:13] == "heart failure"


def test_history_upserts_one_row_per_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    evaluate.update_history({"cycle": 0, "f1": 0.1})
    evaluate.update_history({"cycle": 1, "f1": 0.2})
    evaluate.update_history({"cycle": 1, "f1": 0.3})  # the same cycle re-run replaces its row
    assert json.loads((tmp_path / evaluate.HISTORY).read_text()) == [{"cycle": 0, "f1": 0.1}, {"cycle": 1, "f1": 0.3}]
    assert paths.METRICS.name == "metrics"


def test_confusion_rows_skip_o_o() -> None:
    rows = evaluate.confusion_rows([["B-DIS", "O", "O"]], [["B-CHEM", "B-DIS", "O"]])
    assert rows == [{"actual": "DIS", "predicted": "CHEM"}, {"actual": "O", "predicted": "DIS"}]


def test_prepare_refuses_an_empty_pool_and_a_seed_without_entities() -> None:
    from nerloop.errors import DataError
    from nerloop.params import DataParams
    from nerloop.stages.prepare import check_usable

    p = DataParams(seed="seed.conll", pool="pool.txt", gold="gold.conll")
    seed = [Record.from_tokens(["Aspirin", "."])]
    seed[0].tags = ["B-Chemical", "O"]
    with pytest.raises(DataError, match=r"pool.txt: no pool sentence is left .* gold set \(gold.conll\)"):
        check_usable(seed, [], p)
    seed[0].tags = ["O", "O"]
    with pytest.raises(DataError, match=r"seed\.conll: the seed set has no entity at all"):
        check_usable(seed, [Record.from_tokens(["x"])], p)


def test_export_checks_the_pre_annotation_before_anything_is_sent() -> None:
    from nerloop.errors import DataError
    from nerloop.stages.export import check

    rec = Record.from_tokens(["Aspirin", "helps", "."])
    rec.meta = {"pre_tags": ["B-Chemical", "O", "O"]}
    check(rec, {"Chemical"})
    rec.meta = {"pre_tags": ["B-Gene", "O", "O"]}
    with pytest.raises(DataError, match=r"sentence .*: pre-annotation labels \['Gene'\] are not in the label set"):
        check(rec, {"Chemical"})
    rec.meta = {"pre_tags": ["O", "O"]}
    with pytest.raises(DataError, match="2 pre-annotation tags for 3 tokens"):
        check(rec, {"Chemical"})


def test_import_refuses_a_type_outside_the_label_set_naming_the_sentence() -> None:
    from nerloop.annotation.base import Annotation, FetchResult
    from nerloop.errors import DataError
    from nerloop.stages.import_annotations import check_labels

    rec = Record.from_tokens(["BRCA1", "mutations"])
    rec.tags = ["B-Gene", "O"]
    result = FetchResult(done=[Annotation(record=rec, cycle=1, annotator="alice")])
    with pytest.raises(DataError, match=rf"sentence {rec.id} \('BRCA1 mutations'\), annotated by 'alice', uses "
                                        r"\['Gene'\].*add the type to data.labels"):
        check_labels(result, {"Chemical", "Disease"})


def test_write_scores_puts_rows_in_pool_order_whatever_order_they_come_in(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Both engines hand (index, row, embedding) to write_scores; Ray's shards finish in any order."""
    monkeypatch.chdir(tmp_path)
    cols = row_columns(mc_dropout=False)
    rows = [{c: (f"s{i}" if c == "id" else i if c == "n_tokens" else "[]" if c.startswith("pred_") else i / 10)
             for c in cols} for i in range(4)]
    results = [(i, rows[i], np.full(3, i, dtype=np.float32)) for i in (2, 0, 3, 1)]
    assert write_scores(4, 3, False, results) == 4
    table = pd.read_parquet(SCORES_FILE)
    assert list(table.columns) == cols and table["id"].tolist() == ["s0", "s1", "s2", "s3"]
    emb = np.load(EMBEDDINGS_FILE)
    assert emb.dtype == np.float16 and emb[:, 0].tolist() == [0, 1, 2, 3]

    with pytest.raises(RuntimeError, match="returned 3 of 4 sentences"):  # a lost shard is an error, not a gap
        write_scores(4, 3, False, results[:3])
    assert sorted(p.name for p in (tmp_path / "data/scores").iterdir()) == ["embeddings.npy", "scores.parquet"]
    assert pd.read_parquet(SCORES_FILE)["id"].tolist() == ["s0", "s1", "s2", "s3"]  # the previous output stands
