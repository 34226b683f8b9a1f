"""data.patterns (issue #29): loading both formats, errors that name file and line, matching on nerloop's own
tokens with spaCy, the merge into the model's pre-annotation, and the selection bonus. No model is trained."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from nerloop import paths
from nerloop.data.files import read_records, write_json, write_records
from nerloop.data.patterns import PatternSpan, PreSpan, load_patterns, merge_pre_annotation, read_patterns
from nerloop.data.records import Record
from nerloop.data.tags import check_iob2
from nerloop.errors import DataError, ParamsError
from nerloop.loop.preflight import check_inputs
from nerloop.params import load_params
from nerloop.selection.strategies import SelectConfig, select
from nerloop.stages import select as select_stage
from nerloop.stages.select import with_patterns

LABELS = ["ORG", "LOC", "PER", "Chemical"]


def _write(tmp_path: Path, name: str, lines: list[str] | str) -> Path:
    path = tmp_path / name
    path.write_text(lines if isinstance(lines, str) else "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _jsonl(tmp_path: Path, *objs: object, name: str = "patterns.jsonl") -> Path:
    return _write(tmp_path, name, [json.dumps(o) for o in objs])


# --- loading ----------------------------------------------------------------------------------------


def test_jsonl_holds_phrase_and_token_patterns_with_optional_ids(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.jsonl", [
        '{"label": "ORG", "pattern": "Acme Corp"}',
        "",
        '{"label": "ORG", "pattern": [{"LOWER": "acme"}, {"IS_TITLE": true}], "id": "acme-title"}',
    ])
    patterns = read_patterns(path, LABELS)
    assert [(p.label, p.pattern, p.id, p.line, p.name) for p in patterns] == [
        ("ORG", "Acme Corp", None, 1, "ORG"),
        ("ORG", [{"LOWER": "acme"}, {"IS_TITLE": True}], "acme-title", 3, "acme-title"),
    ]


@pytest.mark.parametrize("suffix", [".txt", ".tsv"])
def test_gazetteer_is_one_name_and_type_per_line_with_comments(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path, f"names{suffix}", ["# companies and places", "Acme Corp\tORG", "", "  # indented note",
                                              "New York \t LOC"])
    patterns = read_patterns(path, LABELS)
    assert [(p.label, p.pattern, p.id, p.line) for p in patterns] == [("ORG", "Acme Corp", None, 2),
                                                                      ("LOC", "New York", None, 5)]


def test_label_set_none_skips_the_label_check(tmp_path: Path) -> None:
    path = _write(tmp_path, "names.txt", ["Acme\tCOMPANY"])
    assert read_patterns(path, None)[0].label == "COMPANY"
    with pytest.raises(DataError, match=r"names\.txt:1: label 'COMPANY' is not in the label set"):
        read_patterns(path, LABELS)


BAD_JSONL = [
    ('{"label": "DRUG", "pattern": "aspirin"}', "label 'DRUG' is not in the label set"),
    ('{"label": "ORG", "pattern": "Acme"', "not valid JSON"),
    ('["ORG", "Acme"]', "expected an object"),
    ('{"label": "ORG"}', 'no "pattern"'),
    ('{"pattern": "Acme"}', 'no "label"'),
    ('{"label": "ORG", "pattern": "Acme", "kind": "phrase"}', "unknown key(s) ['kind']"),
    ('{"label": "ORG", "pattern": "Acme", "id": 3}', '"id" must be a non-empty string'),
    ('{"label": "ORG", "pattern": 42}', '"pattern" must be a phrase'),
    ('{"label": "ORG", "pattern": "  "}', "empty phrase"),
    ('{"label": "ORG", "pattern": []}', "empty token pattern"),
    ('{"label": "ORG", "pattern": [{"LOWERR": "acme"}]}', "LOWERR] extra fields not permitted"),
    ('{"label": "ORG", "pattern": [{"LOWER": "acme", "OP": "x"}]}', "OP] value is not a valid enumeration member"),
    ('{"label": "ORG", "pattern": [{"POS": "PROPN"}]}', "['POS'] need a trained spaCy pipeline"),
]


BAD_GAZETTEER = [
    ("Acme Corp ORG", "no TAB"),
    ("Acme\tCorp\tORG", "2 TABs"),
    ("Acme Corp\t", "no type after the TAB"),
    ("\tORG", "empty phrase"),
    ("Acme Corp\tCOMPANY", "label 'COMPANY' is not in the label set"),
]


# (file name, its lines around the bad one, which is always line 3)
BAD_FILES = [
    *(("p.jsonl", ['{"label": "ORG", "pattern": "Acme Corp"}', ""], [], line, fragment)
      for line, fragment in BAD_JSONL),
    *(("names.tsv", ["# header", "Acme\tORG"], ["Paris\tLOC"], line, fragment) for line, fragment in BAD_GAZETTEER),
]


@pytest.mark.parametrize(("name", "before", "after", "line", "fragment"), BAD_FILES)
def test_every_bad_line_is_named_with_file_and_line(tmp_path: Path, name: str, before: list[str], after: list[str],
                                                    line: str, fragment: str) -> None:
    path = _write(tmp_path, name, [*before, line, *after])
    with pytest.raises(DataError) as info:
        load_patterns(path, LABELS)
    assert info.value.path == str(path) and info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: ") and fragment in str(info.value)


def test_unreadable_or_empty_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="patterns file not found"):
        load_patterns(tmp_path / "missing.jsonl", LABELS)
    with pytest.raises(DataError, match=r"empty\.jsonl: no patterns in the file"):
        load_patterns(_write(tmp_path, "empty.jsonl", "\n\n"), LABELS)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Acme\tORG\nCaf\xe9\tORG\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.txt:2: not valid UTF-8"):
        load_patterns(bad, LABELS)


# --- matching ---------------------------------------------------------------------------------------


def test_phrase_and_token_patterns_match_on_the_records_own_tokens(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, {"label": "ORG", "pattern": "Acme Corp"},
                  {"label": "PER", "pattern": [{"IS_TITLE": True}, {"LOWER": "smith"}], "id": "smiths"})
    patterns = load_patterns(path, LABELS)
    tags, spans = patterns.match(["Jane", "Smith", "left", "Acme", "Corp", "and", "ACME", "CORP", "."])
    assert spans == [PatternSpan(0, 2, "PER", "smiths"), PatternSpan(3, 5, "ORG", "ORG")]
    assert tags == ["B-PER", "I-PER", "O", "B-ORG", "I-ORG", "O", "O", "O", "O"]
    check_iob2(tags, LABELS)
    assert patterns.match([]) == ([], [])


def test_a_phrase_is_split_by_data_tokenizer_so_it_lands_on_token_boundaries(tmp_path: Path) -> None:
    path = _jsonl(tmp_path, {"label": "Chemical", "pattern": "Na+/K+"})
    tokens = ["Na", "+", "/", "K", "+", "-", "ATPase"]  # as BC5CDR (and data.tokenizer: biomedical) splits it
    assert load_patterns(path, LABELS, tokenizer="biomedical").match(tokens)[1] == [
        PatternSpan(0, 5, "Chemical", "Chemical")]
    assert load_patterns(path, LABELS, tokenizer="default").match(tokens)[1] == [
        PatternSpan(0, 5, "Chemical", "Chemical")]
    assert load_patterns(path, LABELS).match(["Na+/K+"])[1] == []  # one token here: the phrase is five


def test_gazetteer_matches_exact_case_unless_lower_is_asked_for(tmp_path: Path) -> None:
    path = _write(tmp_path, "names.txt", ["Acme Corp\tORG", "aspirin\tChemical"])
    tokens = ["ACME", "corp", "sells", "Aspirin", "and", "aspirin"]
    assert load_patterns(path, LABELS).match(tokens)[1] == [PatternSpan(5, 6, "Chemical", "Chemical")]
    assert load_patterns(path, LABELS, attr="LOWER").match(tokens)[1] == [
        PatternSpan(0, 2, "ORG", "ORG"), PatternSpan(3, 4, "Chemical", "Chemical"),
        PatternSpan(5, 6, "Chemical", "Chemical")]


def test_overlaps_go_to_the_longest_then_earliest_then_first_written_pattern(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path,
        {"label": "LOC", "pattern": "New York"},
        {"label": "ORG", "pattern": "New York Times"},  # longer: beats New York
        {"label": "LOC", "pattern": "Times Square"},  # overlaps the longer ORG: loses
        {"label": "PER", "pattern": "Paris", "id": "paris-person"},  # exact tie with the next: written first, wins
        {"label": "LOC", "pattern": "Paris", "id": "paris-city"},
        {"label": "ORG", "pattern": [{"LOWER": "acme"}, {"IS_TITLE": True, "OP": "+"}]},  # greedy alternatives
    )
    tokens = ["New", "York", "Times", "Square", "in", "Paris", "by", "acme", "Big", "Corp"]
    tags, spans = load_patterns(path, LABELS).match(tokens)
    assert spans == [PatternSpan(0, 3, "ORG", "ORG"), PatternSpan(5, 6, "PER", "paris-person"),
                     PatternSpan(7, 10, "ORG", "ORG")]
    assert tags == ["B-ORG", "I-ORG", "I-ORG", "O", "O", "B-PER", "O", "B-ORG", "I-ORG", "I-ORG"]


def test_adjacent_matches_of_one_type_stay_two_entities(tmp_path: Path) -> None:
    tags, spans = load_patterns(_write(tmp_path, "names.txt", ["Paris\tLOC", "Rome\tLOC"]), LABELS).match(
        ["Paris", "Rome"])
    assert tags == ["B-LOC", "B-LOC"] and len(spans) == 2


# --- merging into the model's pre-annotation --------------------------------------------------------


def test_a_model_span_is_kept_and_a_pattern_of_a_learned_type_only_fills_a_gap() -> None:
    model = [(0, 2, "ORG", 0.9)]
    patterns = [PatternSpan(1, 3, "LOC", "cities"), PatternSpan(4, 5, "LOC", "LOC")]
    assert merge_pre_annotation(model, patterns, {"ORG", "LOC"}, 0.5) == [
        PreSpan(0, 2, "ORG", 0.9, "model"), PreSpan(4, 5, "LOC", 0.5, "pattern:LOC")]


def test_a_type_the_model_has_not_learned_always_comes_from_the_patterns() -> None:
    model = [(0, 2, "ORG", 0.9), (3, 4, "PER", 0.4)]
    patterns = [PatternSpan(1, 2, "Chemical", "drugs")]  # overlaps the model's ORG, which gives way
    assert merge_pre_annotation(model, patterns, {"ORG", "PER"}, 0.6) == [
        PreSpan(1, 2, "Chemical", 0.6, "pattern:drugs"), PreSpan(3, 4, "PER", 0.4, "model")]


def test_without_a_learned_type_every_pattern_span_is_used() -> None:
    model = [(0, 1, "PER", 0.3)]
    patterns = [PatternSpan(0, 2, "ORG", "ORG"), PatternSpan(3, 4, "LOC", "LOC")]
    assert merge_pre_annotation(model, patterns, set(), 0.5) == [
        PreSpan(0, 2, "ORG", 0.5, "pattern:ORG"), PreSpan(3, 4, "LOC", 0.5, "pattern:LOC")]
    assert merge_pre_annotation(model, [], {"PER"}, 0.5) == [PreSpan(0, 1, "PER", 0.3, "model")]


def test_a_model_span_of_a_type_with_no_labelled_span_is_dropped() -> None:
    model = [(0, 1, "PER", 0.3), (2, 3, "Gene", 0.8)]  # an untrained head's Gene: noise, not a suggestion
    assert merge_pre_annotation(model, [], {"PER"}, 0.5) == [PreSpan(0, 1, "PER", 0.3, "model")]


def test_the_batch_record_gets_iob2_pre_tags_char_spans_and_parallel_sources() -> None:
    rec = Record.from_tokens(["Acme", "Corp", "sells", "aspirin", "in", "Paris"])
    pred_spans = [[0, 9, "ORG", 0.91], [27, 32, "PER", 0.42]]  # stage score's [start, end, label, confidence]
    matches = [PatternSpan(3, 4, "Chemical", "drugs"), PatternSpan(5, 6, "LOC", "LOC")]
    meta = with_patterns(rec, pred_spans, matches, {"ORG", "PER", "LOC"}, 0.5)
    assert meta == {
        "pre_tags": ["B-ORG", "I-ORG", "O", "B-Chemical", "O", "B-PER"],
        "pre_spans": [[0, 9, "ORG", 0.91], [16, 23, "Chemical", 0.5], [27, 32, "PER", 0.42]],
        "pre_sources": ["model", "pattern:drugs", "model"],
    }
    assert rec.text[16:23] == "aspirin" and rec.text[27:32] == "Paris"
    check_iob2(meta["pre_tags"], LABELS)


# --- steering the selection -------------------------------------------------------------------------


def _candidates() -> pd.DataFrame:
    return pd.DataFrame({"id": ["a", "b", "c", "d"], "n_tokens": [5, 5, 5, 5], "mnlp": [3.0, 2.0, 1.0, 0.5],
                         "pattern": [0, 0, 2, 1]})


def test_pattern_bonus_lifts_sentences_with_matches_and_says_so() -> None:
    batch = select(_candidates(), None, SelectConfig(strategy="uncertainty", batch_size=2, pattern_bonus=5.0))
    assert list(batch["id"]) == ["c", "d"]  # a flat bonus: two matches count as much as one
    assert list(batch["score"]) == [6.0, 5.5] and "pattern bonus +5.00" in batch["reason"][0]


def test_no_pattern_bonus_leaves_the_ranking_as_it_was() -> None:
    with_column = select(_candidates(), None, SelectConfig(strategy="uncertainty", batch_size=4))
    without = select(_candidates().drop(columns="pattern"), None, SelectConfig(strategy="uncertainty", batch_size=4))
    assert list(with_column["id"]) == list(without["id"]) == ["a", "b", "c", "d"]
    assert list(with_column["score"]) == list(without["score"])
    assert list(with_column["reason"]) == list(without["reason"])


def test_pattern_bonus_works_in_the_hybrid_strategy() -> None:
    embeddings = np.eye(4, 3, dtype=np.float32)
    batch = select(_candidates(), embeddings, SelectConfig(strategy="hybrid", batch_size=1, k=1, pattern_bonus=5.0))
    assert list(batch["id"]) == ["c"]


# --- params and preflight ---------------------------------------------------------------------------


def _params(tmp_path: Path, data: dict, select_section: dict | None = None) -> Path:
    raw = {"data": {"seed": "seed.conll", "pool": "pool.txt", "gold": "gold.conll", **data},
           "annotation": {"backend": "doccano"}, "select": select_section or {}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_params_read_the_pattern_keys_and_refuse_a_bonus_without_patterns(tmp_path: Path) -> None:
    p = load_params(_params(tmp_path, {"patterns": "names.txt", "pattern_attr": "LOWER", "pattern_confidence": 0.3},
                            {"pattern_bonus": 0.2}))
    assert (p.data.patterns, p.data.pattern_attr, p.data.pattern_confidence, p.select.pattern_bonus) == (
        "names.txt", "LOWER", 0.3, 0.2)
    assert load_params(_params(tmp_path, {})).data.patterns is None
    with pytest.raises(ParamsError, match=r"select: pattern_bonus > 0 .* data\.patterns names no patterns file"):
        load_params(_params(tmp_path, {}, {"pattern_bonus": 0.2}))
    with pytest.raises(ParamsError, match=r"data\.pattern_attr"):
        load_params(_params(tmp_path, {"patterns": "names.txt", "pattern_attr": "NORM"}))
    with pytest.raises(ParamsError, match=r"data\.pattern_confidence"):
        load_params(_params(tmp_path, {"patterns": "names.txt", "pattern_confidence": 1.5}))


def test_preflight_names_a_bad_patterns_line_before_any_training(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("seed.conll", "pool.txt", "gold.conll"):
        (tmp_path / name).write_text("x\n", encoding="utf-8")
    _write(tmp_path, "names.txt", ["Acme\tORG", "Paris LOC"])
    params = load_params(_params(tmp_path, {"patterns": "names.txt", "labels": ["ORG", "LOC"]}))
    with pytest.raises(ParamsError, match=r"data\.patterns: names\.txt:2: no TAB"):
        check_inputs(params)


# --- the select stage, on a scores table written by hand (what stage score would have written) --------


POOL = [  # tokens, the model's predicted spans (char offsets, confidence), mnlp
    (["Acme", "sells", "aspirin", "."], [[0, 4, "ORG", 0.8], [11, 18, "ORG", 0.3]], 1.0),
    (["Acme", "hired", "Bob", "."], [[0, 4, "ORG", 0.9]], 2.0),
    (["Nothing", "here", "."], [], 3.0),
]


def _project(tmp_path: Path, patterns: str | None, pattern_bonus: float) -> None:
    """A project after train and score: seed with ORG only (Chemical unlearned), a three-sentence pool."""
    write_records(paths.SEED, [Record.from_tokens(["Acme", "Corp"], ["B-ORG", "I-ORG"])])
    write_records(paths.GOLD, [Record.from_tokens(["Globex", "."], ["B-ORG", "O"])])
    pool = [Record.from_tokens(tokens) for tokens, _, _ in POOL]
    write_records(paths.POOL, pool)
    write_json(paths.LABELS, {"entity_types": ["Chemical", "ORG"]})
    paths.SCORES.mkdir(parents=True)
    pd.DataFrame({
        "id": [r.id for r in pool], "n_tokens": [len(r.tokens) for r in pool], "mnlp": [m for _, _, m in POOL],
        "pred_tags": [json.dumps(["O"] * len(r.tokens)) for r in pool],  # only pred_spans is read with patterns
        "pred_spans": [json.dumps(spans) for _, spans, _ in POOL],
    }).to_parquet(paths.SCORES_FILE, index=False)
    np.save(paths.EMBEDDINGS_FILE, np.zeros((len(pool), 4), dtype=np.float16))
    _write(tmp_path, "names.txt", ["aspirin\tChemical", "Acme\tORG", "Bob\tORG"])
    data = {"seed": "s", "pool": "p", "gold": "g", **({"patterns": patterns} if patterns else {})}
    _params(tmp_path, data, {"strategy": "uncertainty", "batch_size": 2, "pattern_bonus": pattern_bonus})


def test_select_stage_pre_annotates_from_patterns_and_steers_the_batch(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _project(tmp_path, "names.txt", 10.0)
    select_stage.main()
    batch = read_records(paths.BATCH)
    assert [r.tokens[:2] for r in batch] == [["Acme", "hired"], ["Acme", "sells"]]  # the match-less one lost
    hired, sells = batch
    assert hired.meta["pre_sources"] == ["model", "pattern:ORG"]  # Acme: the model's; Bob fills the gap
    assert hired.meta["pre_spans"] == [[0, 4, "ORG", 0.9], [11, 14, "ORG", 0.5]]
    assert hired.meta["pre_tags"] == ["B-ORG", "O", "B-ORG", "O"]
    assert sells.meta["pre_sources"] == ["model", "pattern:Chemical"]  # Chemical is unlearned: replaces the ORG
    assert sells.meta["pre_spans"] == [[0, 4, "ORG", 0.8], [11, 18, "Chemical", 0.5]]
    assert sells.meta["pre_tags"] == ["B-ORG", "O", "B-Chemical", "O"]
    assert "pattern bonus +10.00" in hired.meta["reason"]
    report = (tmp_path / select_stage.REPORT).read_text(encoding="utf-8")
    assert "## Patterns" in report and "matched in 2 of 3 candidate sentences and 2 of the 2 selected" in report
    assert "2 of the batch's 4 pre-annotated spans come from a pattern" in report and "always from patterns: " \
        "Chemical" in report


def test_select_stage_without_patterns_writes_the_model_pre_annotation_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _project(tmp_path, None, 0.0)
    select_stage.main()
    batch = read_records(paths.BATCH)
    assert [r.tokens[0] for r in batch] == ["Nothing", "Acme"]  # the most uncertain, as before
    assert all("pre_sources" not in r.meta for r in batch) and batch[0].meta["pre_tags"] == ["O", "O", "O"]
    assert "## Patterns" not in (tmp_path / select_stage.REPORT).read_text(encoding="utf-8")


def test_select_stage_stops_on_a_bad_patterns_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _project(tmp_path, "names.txt", 0.0)
    _write(tmp_path, "names.txt", ["aspirin\tChemical", "Bob\tPER"])  # PER: not in the fixed label set
    with pytest.raises(DataError, match=r"names\.txt:2: label 'PER' is not in the label set \['Chemical', 'ORG'\]"):
        select_stage.main()
    assert not paths.BATCH.exists()
