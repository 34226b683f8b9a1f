"""Stage logic that is not the model: exclusion, subsampling, pre-annotation, history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from nerloop import paths
from nerloop.data.files import read_records
from nerloop.data.records import Record
from nerloop.model.inference import Prediction
from nerloop.params import ForecastParams, SelectParams
from nerloop.selection.scoring import candidates, pre_annotation, row_columns
from nerloop.stages import evaluate, prepare
from nerloop.stages.score import write_scores
from nerloop.stages.select import REPORT, choose, config_from, rare_mass, rare_types, write_report


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


def test_bad_select_params_are_refused_when_params_are_read() -> None:
    """Names are checked by the params model itself, so a typo fails before any training (and at select)."""
    with pytest.raises(ValidationError, match="'bogus' is not a strategy"):
        SelectParams(strategy="bogus")
    with pytest.raises(ValidationError, match="'bogus' is not an uncertainty measure"):
        SelectParams(measure="bogus")


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


def test_stop_set_kappa_compares_with_the_previous_cycle_and_keeps_two(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics").mkdir()
    ids = ["a", "b"]
    assert evaluate.stop_set_kappa(0, ids, [["O", "B-X"], ["O"]]) is None
    assert evaluate.stop_set_kappa(1, ids, [["O", "B-X"], ["O"]]) == 1.0
    assert evaluate.stop_set_kappa(2, ids, [["O", "O"], ["B-X"]]) < 0
    assert evaluate.stop_set_kappa(2, ids, [["O", "B-X"], ["O"]]) == 1.0  # a re-run compares with cycle 1 again
    saved = json.loads((tmp_path / evaluate.STOP_SET).read_text())
    assert saved == {"ids": ids, "predictions": {"1": ["O B-X", "O"], "2": ["O B-X", "O"]}}
    assert evaluate.stop_set_kappa(3, ["a", "c"], [["O"], ["O"]]) is None  # another stop set: starts afresh


def test_forecast_report_fits_writes_the_png_and_counts_hours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    history = [{"cycle": c, "labelled_sentences": n, "labelled_tokens": 15 * n, "f1": round(0.85 - 0.35 * (n / 200)
                ** -0.6, 4), "stop_kappa": k} for c, (n, k) in enumerate(zip((200, 400, 600, 800),
                                                                            (None, 0.9, 0.995, 0.999), strict=True))]
    fp = ForecastParams(target_f1=0.8, window=2, resamples=30)
    annotation = {"annotators": {"a": {"seconds_per_sentence": 36, "sentences": 10}}}
    report, rows = evaluate.forecast_report(history, fp, {"sentences": 10_000, "tokens": 150_000}, annotation,
                                            {"sentences": 500, "labelled": 3})
    assert report["decision"] == "stop" and report["stable_cycles"] == 2 and report["kappa"] == 0.999
    s = report["sentences"]
    assert s["reachable"] and s["ceiling"] == pytest.approx(0.85, abs=0.01)
    assert s["needed"] == pytest.approx(5123, rel=0.03)  # 200 * ((0.85 - 0.8) / 0.35) ** (-1 / 0.6)
    assert report["tokens"]["needed"] == pytest.approx(15 * s["needed"], rel=0.02)
    assert report["hours_more"] == round(s["more"] * 36 / 3600, 1) and report["gain_per_100_sentences"] > 0
    assert rows[0]["labelled_sentences"] == 200 and rows[-1]["labelled_sentences"] == s["needed"]
    assert all(r["low"] <= r["forecast"] <= r["high"] for r in rows)
    assert (tmp_path / "metrics/forecast.png").stat().st_size > 1000
    fp.kappa_threshold = 0.9999  # the rule does not fire: the forecast decides
    report, _ = evaluate.forecast_report(history, fp, {"sentences": 10_000, "tokens": 150_000}, {}, {})
    assert report["decision"] == "continue" and report["why"] == f"about {s['more']:,} more sentences to F1 0.800"
    assert report["hours_more"] is None


def test_confusion_rows_skip_o_o() -> None:
    rows = evaluate.confusion_rows([["B-DIS", "O", "O"]], [["B-CHEM", "B-DIS", "O"]])
    assert rows == [{"actual": "DIS", "predicted": "CHEM"}, {"actual": "O", "predicted": "DIS"}]


def test_prepare_warns_about_types_without_seed_or_gold_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "data/raw"
    raw.mkdir(parents=True)
    (raw / "seed.conll").write_text("Ada\tB-PER\nran\tO\n", encoding="utf-8")
    (raw / "gold.conll").write_text("Bob\tB-PER\nin\tO\nParis\tB-LOC\n", encoding="utf-8")
    (raw / "pool.conll").write_text("@eve\nat\n#WWDC\n", encoding="utf-8")  # a token-only CoNLL pool
    (tmp_path / "params.yaml").write_text(
        "data: {seed: data/raw/seed.conll, pool: data/raw/pool.conll, gold: data/raw/gold.conll,"
        " labels: [PER, LOC, EVENT]}\nannotation: {simulated: {answers: data/raw/gold.conll}}\n", encoding="utf-8")
    with caplog.at_level("WARNING"):
        prepare.main()
    warned = [r.getMessage() for r in caplog.records]
    assert any("'LOC'" in m and "seed set (data/raw/seed.conll)" in m and "rare_bonus" in m for m in warned)
    assert any("'EVENT'" in m and "seed set" in m for m in warned)
    assert any("'EVENT'" in m and "gold set (data/raw/gold.conll)" in m for m in warned)
    assert not any("'PER'" in m for m in warned)
    labels = json.loads(paths.LABELS.read_text(encoding="utf-8"))
    assert labels == {"entity_types": ["PER", "LOC", "EVENT"], "no_seed_example": ["LOC", "EVENT"],
                      "no_gold_example": ["EVENT"]}
    assert [r.tokens for r in read_records(paths.POOL)] == [["@eve", "at", "#WWDC"]]


def test_rare_bonus_acts_on_probability_mass_of_unseen_types() -> None:
    counts = {"PER": 40, "LOC": 3, "EVENT": 0}
    rare = rare_types(counts, 0.1)
    assert rare == {"LOC", "EVENT"}
    df = pd.DataFrame({"id": ["a", "b"], "type_mass": [json.dumps({"PER": 0.9, "LOC": 0.01, "EVENT": 0.3}),
                                                        json.dumps({"PER": 0.99, "LOC": 0.02, "EVENT": 0.01})]})
    assert rare_mass(df, rare) == [0.3, 0.02]  # no EVENT span is predicted, yet sentence a gets a bonus
    assert rare_mass(pd.DataFrame({"id": [], "n_tokens": []}), rare) == []


def test_report_shows_type_counts_and_each_sentence_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    chosen = pd.DataFrame({"rank": [1], "id": ["s1"], "n_tokens": [3], "score": [0.5], "cluster": [0],
                           "reason": ["mnlp 0.5"]})
    cfg = config_from(SelectParams(strategy="uncertainty"))
    write_report(chosen, cfg, 2, 10, {"PER": 4, "EVENT": 0}, {"EVENT"}, {"s1": "a | b @eve"})
    text = (tmp_path / REPORT).read_text(encoding="utf-8")
    assert "| EVENT | 0 | no example yet" in text and "| PER | 4 |  |" in text
    assert "| 1 | s1 | 3 | 0.500 | 0 | mnlp 0.5 | a \\| b @eve |" in text


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
    from nerloop.annotation.core.base import FetchResult
    from nerloop.data.annotations import Annotation
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
    table = pd.read_parquet(paths.SCORES_FILE)
    assert list(table.columns) == cols and table["id"].tolist() == ["s0", "s1", "s2", "s3"]
    emb = np.load(paths.EMBEDDINGS_FILE)
    assert emb.dtype == np.float16 and emb[:, 0].tolist() == [0, 1, 2, 3]

    with pytest.raises(RuntimeError, match="returned 3 of 4 sentences"):  # a lost shard is an error, not a gap
        write_scores(4, 3, False, results[:3])
    assert sorted(p.name for p in (tmp_path / "data/scores").iterdir()) == ["embeddings.npy", "scores.parquet"]
    assert pd.read_parquet(paths.SCORES_FILE)["id"].tolist() == ["s0", "s1", "s2", "s3"]  # the previous output stands


def test_config_from_reads_the_batch_schedule_for_the_cycle() -> None:
    schedule = SelectParams(batch_size=[5, 10, 20])
    assert [config_from(schedule, c).batch_size for c in (1, 2, 3, 6)] == [5, 10, 20, 20]
