"""data.patterns (issue #29): loading both formats, errors that name file and line, matching on nerloop's own
tokens with spaCy, and the merge into the model's pre-annotation. No model is trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nerloop.data.patterns import PatternSpan, PreSpan, load_patterns, merge_pre_annotation, read_patterns
from nerloop.data.tags import check_iob2
from nerloop.errors import DataError

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


@pytest.mark.parametrize(("line", "fragment"), BAD_JSONL)
def test_every_bad_jsonl_line_is_named_with_file_and_line(tmp_path: Path, line: str, fragment: str) -> None:
    path = _write(tmp_path, "p.jsonl", ['{"label": "ORG", "pattern": "Acme Corp"}', "", line])
    with pytest.raises(DataError) as info:
        load_patterns(path, LABELS)
    assert info.value.path == str(path) and info.value.line == 3
    assert str(info.value).startswith(f"{path}:3: ") and fragment in str(info.value)


BAD_GAZETTEER = [
    ("Acme Corp ORG", "no TAB"),
    ("Acme\tCorp\tORG", "2 TABs"),
    ("Acme Corp\t", "no type after the TAB"),
    ("\tORG", "empty phrase"),
    ("Acme Corp\tCOMPANY", "label 'COMPANY' is not in the label set"),
]


@pytest.mark.parametrize(("line", "fragment"), BAD_GAZETTEER)
def test_every_bad_gazetteer_line_is_named_with_file_and_line(tmp_path: Path, line: str, fragment: str) -> None:
    path = _write(tmp_path, "names.tsv", ["# header", "Acme\tORG", line, "Paris\tLOC"])
    with pytest.raises(DataError) as info:
        load_patterns(path, LABELS)
    assert info.value.line == 3 and str(info.value).startswith(f"{path}:3: ") and fragment in str(info.value)


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
