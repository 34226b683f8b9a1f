"""Readers and writers: CoNLL, JSONL, plain text, canonical JSONL and atomic writes.

Every bad-input test checks the message itself: the file name and the line must be in it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from nerloop.data.files import atomic_write, read_records, write_conll, write_json, write_records
from nerloop.data.formats import read_any, read_conll, read_jsonl, read_text, record_from_text, split_sentences
from nerloop.data.records import Record, sentence_id
from nerloop.data.tokenizers import tokenize
from nerloop.errors import DataError, TagError


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def _data_error(path: Path, line: int | None, call: Callable[..., object], *args: object, **kwargs: object) -> str:
    """Run a reader that must fail; check the error names the file (and line); return the message."""
    with pytest.raises(DataError) as info:
        call(path, *args, **kwargs)
    msg = str(info.value)
    assert info.value.path == str(path)
    assert info.value.line == line, msg
    assert str(path) in msg
    if line is not None:
        assert f"{path}:{line}:" in msg
    return msg


def _core(records: list[Record]) -> list[tuple]:
    return [(r.id, r.tokens, r.tags, r.text, r.offsets) for r in records]


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    with atomic_write(target) as fh:
        fh.write("new ünïcode\n")
    assert target.read_text(encoding="utf-8") == "new ünïcode\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]
    with atomic_write(target, "wb") as fh:
        fh.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"


def test_atomic_write_keeps_old_file_on_error(tmp_path: Path) -> None:
    target = _write(tmp_path / "out.txt", "old\n")
    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as fh:
        fh.write("half a fi")
        raise RuntimeError("boom")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temp file left behind


def test_atomic_write_error_without_old_file_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    with pytest.raises(TypeError):
        write_json(target, {"x": object()})
    assert list(tmp_path.iterdir()) == []


def test_write_json(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", {"é": [1, 2]})
    text = (tmp_path / "a.json").read_text(encoding="utf-8")
    assert "é" in text and text.endswith("\n")
    assert json.loads(text) == {"é": [1, 2]}


# --------------------------------------------------------------------------- canonical JSONL


def test_records_round_trip(tmp_path: Path) -> None:
    recs = [
        Record.from_tokens(["Ada", "met", "Bob"], ["B-PER", "O", "B-PER"], source="s:1", meta={"cycle": 1}),
        record_from_text("Über Paris.", source="t:2", doc_id="line2"),
    ]
    write_records(tmp_path / "r.jsonl", recs)
    assert read_records(tmp_path / "r.jsonl") == recs


def test_read_records_corrupt_line(tmp_path: Path) -> None:
    good = json.dumps(Record.from_tokens(["a"]).to_dict())
    path = _write(tmp_path / "r.jsonl", f"{good}\n\n{{\"id\": \"x\"}}\n")
    msg = _data_error(path, 3, read_records)
    assert "not a canonical record" in msg


# --------------------------------------------------------------------------- CoNLL

CONLL = """-DOCSTART- -X- O O

Ada\tNNP\tB-PER
Lovelace\tNNP\tI-PER
wrote\tVBD\tO
.\t.\tO

Paris\tNNP\tB-LOC
.\t.\tO
-DOCSTART- -X- O O
Bob\tNNP\tB-PER
"""


def test_read_conll_basic(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.conll", CONLL)
    recs = read_conll(path)
    assert [r.tokens for r in recs] == [["Ada", "Lovelace", "wrote", "."], ["Paris", "."], ["Bob"]]
    assert [r.tags for r in recs] == [["B-PER", "I-PER", "O", "O"], ["B-LOC", "O"], ["B-PER"]]
    assert [r.doc_id for r in recs] == ["doc1", "doc1", "doc2"]
    assert [r.source for r in recs] == [f"{path}:3", f"{path}:8", f"{path}:11"]
    assert recs[0].text == "Ada Lovelace wrote ."
    assert recs[0].id == sentence_id("Ada Lovelace wrote .")
    assert recs[0].offsets == [(0, 3), (4, 12), (13, 18), (19, 20)]


def test_read_conll_space_separated_without_docstart(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.txt.conll", "Ada B-PER\nsmiled O\n\n\n\nBob   B-PER\n")
    recs = read_conll(path)
    assert [r.tokens for r in recs] == [["Ada", "smiled"], ["Bob"]]
    assert all(r.doc_id is None for r in recs)


def test_read_conll_stray_whitespace_and_crlf(tmp_path: Path) -> None:
    text = "Ada\tB-PER\t\r\n  smiled\tO  \r\n \t \r\nBob\tB-PER \r\n"
    recs = read_conll(_write(tmp_path / "a.conll", text))
    assert [r.tokens for r in recs] == [["Ada", "smiled"], ["Bob"]]
    assert [r.tags for r in recs] == [["B-PER", "O"], ["B-PER"]]


def test_read_conll_iob1_converted(tmp_path: Path) -> None:
    text = "Ada\tI-PER\nLovelace\tI-PER\nBob\tB-PER\nin\tO\nParis\tI-LOC\n"
    for scheme in ("auto", "iob1"):
        [rec] = read_conll(_write(tmp_path / "a.conll", text), scheme=scheme)
        assert rec.tags == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]


def test_read_conll_iob2_declared_rejects_opening_i(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.conll", "Ada\tB-PER\n\nsaw\tO\nBob\tB-PER\nin\tO\nParis\tI-LOC\n")
    msg = _data_error(path, 6, read_conll, scheme="iob2")
    assert "I-LOC" in msg and "not open" in msg
    # a valid IOB2 file is accepted as is under iob2
    [rec] = read_conll(_write(tmp_path / "b.conll", "Ada\tB-PER\nLovelace\tI-PER\n"), scheme="iob2")
    assert rec.tags == ["B-PER", "I-PER"]


def test_read_conll_label_set(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.conll", "Ada\tB-PER\n\nin\tO\nParis\tB-LOC\n")
    assert len(read_conll(path, label_set=["PER", "LOC"])) == 2
    msg = _data_error(path, 4, read_conll, label_set=["PER"])
    assert "'LOC'" in msg and "label set" in msg


def test_read_conll_malformed_tag_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.conll", "Ada\tO\nsaw\tO\nBob\tPERSON\n")
    for scheme in ("auto", "iob1", "iob2"):
        msg = _data_error(path, 3, read_conll, scheme=scheme)
        assert "'PERSON'" in msg


def test_read_conll_wrong_column_count(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.conll", "Ada\tNNP\tB-PER\nsaw\tO\n")
    msg = _data_error(path, 2, read_conll)
    assert "expected 3 columns" in msg and "found 2" in msg
    path = _write(tmp_path / "b.conll", "Ada\nsaw\tO\n")
    msg = _data_error(path, 2, read_conll)
    assert "expected 1 columns" in msg and "found 2" in msg


def test_read_conll_token_only_pool(tmp_path: Path) -> None:
    path = _write(tmp_path / "pool.conll", "-DOCSTART-\n\n\ufeffAda\nmet \n@bob\n\nen:x\n")
    recs = read_conll(path)
    assert [r.tokens for r in recs] == [["Ada", "met", "@bob"], ["en:x"]]
    assert all(r.tags is None for r in recs) and recs[0].doc_id == "doc1" and recs[1].source.endswith(":7")


@pytest.mark.parametrize("content", ["", "\n\n  \n", "-DOCSTART- -X- O O\n\n", "\ufeff"])
def test_read_conll_empty_file(tmp_path: Path, content: str) -> None:
    msg = _data_error(_write(tmp_path / "a.conll", content), None, read_conll)
    assert "empty" in msg


def test_read_conll_missing_file(tmp_path: Path) -> None:
    msg = _data_error(tmp_path / "nope.conll", None, read_conll)
    assert "not found" in msg


def test_read_conll_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "a.conll"
    path.write_bytes("Ada\tB-PER\n\nM\u00fcnchen\tB-LOC\n".encode("latin-1"))
    msg = _data_error(path, 3, read_conll)
    assert "UTF-8" in msg


def test_read_conll_bom(tmp_path: Path) -> None:
    # a leading BOM, a BOM where a second file was concatenated, and a trailing one
    text = "\ufeffAda\tB-PER\n\n\ufeffBob\tB-PER\n\nCyd\tB-PER\ufeff\n"
    recs = read_conll(_write(tmp_path / "a.conll", text))
    assert [r.tokens for r in recs] == [["Ada"], ["Bob"], ["Cyd"]]
    assert [r.tags for r in recs] == [["B-PER"]] * 3
    assert not any("\ufeff" in r.text for r in recs)


def test_read_conll_language_prefix(tmp_path: Path) -> None:
    recs = read_conll(_write(tmp_path / "a.conll", "en:Paris\tB-LOC\nen:.\tO\n\nde:Köln\tB-LOC\n"))
    assert [r.tokens for r in recs] == [["Paris", "."], ["Köln"]]
    assert recs[0].text == "Paris ." and recs[0].id == sentence_id("Paris .")


def test_read_conll_prefix_like_token_is_kept(tmp_path: Path) -> None:
    [rec] = read_conll(_write(tmp_path / "a.conll", "see\tO\nftp:x\tO\nnow\tO\n"))
    assert rec.tokens == ["see", "ftp:x", "now"]


def test_read_conll_some_tokens_without_prefix_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.conll", "en:Ada\tB-PER\nen:met\tO\n\nen:Bob\tB-PER\n.\tO\n")
    msg = _data_error(path, 5, read_conll)
    assert "'.'" in msg and "language prefix" in msg


def test_write_conll_read_conll_round_trip(tmp_path: Path) -> None:
    recs = [
        Record.from_tokens(["Ada", "Lovelace", "met", "Bob", "."], ["B-PER", "I-PER", "O", "B-PER", "O"]),
        Record.from_tokens(["Über", "Köln", "(", "NRW", ")"], ["O", "B-LOC", "O", "B-LOC", "O"]),
        Record.from_tokens(["x"], ["O"]),
    ]
    path = tmp_path / "out" / "a.conll"
    write_conll(path, recs)
    back = read_conll(path, scheme="iob2")
    assert _core(back) == _core(recs)
    # and a file read from CoNLL survives write + read unchanged
    orig = read_conll(_write(tmp_path / "b.conll", CONLL))
    write_conll(tmp_path / "c.conll", orig)
    assert _core(read_conll(tmp_path / "c.conll")) == _core(orig)


def test_write_conll_rejects_unlabelled(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.conll", "old\tO\n")
    with pytest.raises(DataError) as info:
        write_conll(path, [Record.from_tokens(["a"], ["O"]), Record.from_tokens(["b"])])
    assert str(path) in str(info.value) and "no tags" in str(info.value)
    assert path.read_text() == "old\tO\n"


# --------------------------------------------------------------------------- JSONL


def _jsonl(path: Path, *objs: object) -> Path:
    return _write(path, "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))


def test_read_jsonl_tokens_and_tags(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "a.jsonl",
        {"tokens": ["Ada", "met", "Bob"], "tags": ["B-PER", "O", "B-PER"], "doc_id": "d7"},
        "",
        {"tokens": ["Paris"], "ner_tags": ["I-LOC"]},
        {"tokens": ["no", "labels"]},
    )
    recs = read_jsonl(path)
    assert [r.tags for r in recs] == [["B-PER", "O", "B-PER"], ["B-LOC"], None]
    assert [r.source for r in recs] == [f"{path}:1", f"{path}:3", f"{path}:4"]
    assert recs[0].doc_id == "d7" and recs[0].text == "Ada met Bob"


def test_read_jsonl_text_and_spans(tmp_path: Path) -> None:
    text = "Ada Lovelace visited Paris."
    path = _jsonl(
        tmp_path / "a.jsonl",
        {"text": text, "spans": [[0, 12, "PER"], [21, 26, "LOC"]]},
        {"text": text, "entities": [{"start": 21, "end": 26, "label": "LOC"}]},
        {"text": "  Just text here. "},
    )
    recs = read_jsonl(path)
    assert recs[0].tokens == ["Ada", "Lovelace", "visited", "Paris", "."]
    assert recs[0].tags == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    assert recs[0].text == text and recs[0].id == sentence_id(text)
    assert [text[s:e] for s, e in recs[0].offsets] == recs[0].tokens
    assert recs[1].tags == ["O", "O", "O", "B-LOC", "O"]
    assert recs[2].tags is None and recs[2].tokens == ["Just", "text", "here", "."]
    assert recs[2].offsets[0] == (2, 6)  # offsets index into the text as given


def test_read_jsonl_malformed_json(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", {"tokens": ["a"]}, '{"tokens": ["b"]', {"tokens": ["c"]})
    assert "invalid JSON" in _data_error(path, 2, read_jsonl)
    path = _jsonl(tmp_path / "b.jsonl", {"tokens": ["a"]}, "[1, 2]")
    assert "JSON object" in _data_error(path, 2, read_jsonl)


def test_read_jsonl_length_mismatch(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", {"tokens": ["a"]}, {"tokens": ["a", "b", "c"], "tags": ["O", "O"]})
    msg = _data_error(path, 2, read_jsonl)
    assert "3 tokens but 2 tags" in msg


def test_read_jsonl_tag_errors_name_the_line_and_token(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "a.jsonl",
        {"tokens": ["a"], "tags": ["O"]},
        {"tokens": ["a", "b", "c", "d"], "tags": ["O", "O", "O", "B-X"]},
    )
    msg = _data_error(path, 2, read_jsonl, label_set=["Y"])
    assert "token 3" in msg and "'X'" in msg
    path = _jsonl(tmp_path / "b.jsonl", {"tokens": ["a", "b"], "tags": ["O", "I-Y"]})
    msg = _data_error(path, 1, read_jsonl, scheme="iob2")
    assert "token 1" in msg and "not open" in msg
    assert read_jsonl(path)[0].tags == ["O", "B-Y"]  # auto: IOB1, converted


def test_read_jsonl_span_off_token_boundaries(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", {"text": "Ada"}, {"text": "Ada Lovelace visited", "spans": [[1, 10, "PER"]]})
    msg = _data_error(path, 2, read_jsonl)
    assert "not on token boundaries" in msg and "[0, 12)" in msg


def test_read_jsonl_overlapping_spans(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", {"text": "Ada Lovelace visited", "spans": [[0, 12, "PER"], [4, 20, "X"]]})
    msg = _data_error(path, 1, read_jsonl)
    assert "overlaps" in msg and "[4, 20, 'X']" in msg and "[0, 12, 'PER']" in msg


def test_read_jsonl_span_label_outside_label_set(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", {"text": "Ada visited Paris", "spans": [[12, 17, "LOC"]]})
    assert read_jsonl(path, label_set=["LOC"])[0].tags == ["O", "O", "B-LOC"]
    msg = _data_error(path, 1, read_jsonl, label_set=["PER"])
    assert "'LOC'" in msg and "label set" in msg


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ({"words": ["a"]}, "'tokens' or 'text'"),
        ({"tokens": []}, "'tokens'"),
        ({"tokens": ["a", " "]}, "'tokens'"),
        ({"tokens": "ab"}, "'tokens'"),
        ({"tokens": ["a", "b"], "tags": "OO"}, "'tags'"),
        ({"tokens": ["a"], "tags": [0]}, "'tags'"),
        ({"text": 5}, "'text'"),
        ({"text": "   "}, "empty text"),
        ({"text": "ab cd", "spans": [[0, 2]]}, "triples"),
        ({"text": "ab cd", "spans": [{"start": 0}]}, "triples"),
    ],
)
def test_read_jsonl_bad_shapes(tmp_path: Path, obj: dict, fragment: str) -> None:
    path = _jsonl(tmp_path / "a.jsonl", {"tokens": ["ok"]}, obj)
    assert fragment in _data_error(path, 2, read_jsonl)


def test_read_jsonl_empty_and_non_utf8(tmp_path: Path) -> None:
    assert "empty" in _data_error(_write(tmp_path / "a.jsonl", "\n \n"), None, read_jsonl)
    path = tmp_path / "b.jsonl"
    path.write_bytes(b'{"tokens": ["a"]}\n{"tokens": ["\xe9"]}\n')
    assert "UTF-8" in _data_error(path, 2, read_jsonl)


def test_read_jsonl_language_prefix_like_conll(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", {"tokens": ["en:Paris", "en:."], "tags": ["B-LOC", "O"]},
                  {"text": "Köln ist groß"}, {"tokens": ["de:Köln"]})
    recs = read_jsonl(path)
    assert [r.tokens for r in recs] == [["Paris", "."], ["Köln", "ist", "groß"], ["Köln"]]
    assert recs[0].id == sentence_id("Paris .") and recs[0].tags == ["B-LOC", "O"] and recs[0].source.endswith(":1")
    conll = _write(tmp_path / "a.conll", "en:Paris\tB-LOC\nen:.\tO\n")
    assert _core(read_conll(conll)) == _core(recs[:1])
    mixed = _jsonl(tmp_path / "b.jsonl", {"tokens": ["en:Ada", "en:met"]}, {"tokens": ["en:Bob", "."]})
    msg = _data_error(mixed, 2, read_jsonl)
    assert "token 1 '.'" in msg and "language prefix" in msg


def test_read_jsonl_bom(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.jsonl", '\ufeff{"tokens": ["a"]}\n\ufeff{"tokens": ["b"]}\n')
    assert [r.tokens for r in read_jsonl(path)] == [["a"], ["b"]]


# --------------------------------------------------------------------------- plain text


def test_tokenize_keeps_offsets() -> None:
    text = "Dr. O'Neil paid $3.50 for well-known e-mail, didn’t he?"
    tokens, offsets = tokenize(text)
    assert [text[s:e] for s, e in offsets] == tokens
    assert "O'Neil" in tokens and "3.50" in tokens and "well-known" in tokens and "didn’t" in tokens
    assert tokens[-1] == "?" and "$" in tokens


def test_read_text_with_social_tokenizer_keeps_handles(tmp_path: Path) -> None:
    path = _write(tmp_path / "pool.txt", "@ada_l meets #NLP fans at https://x.org/a?b=1.\n")
    [default] = read_text(path)
    [social] = read_any(path, tokenizer="social")
    assert default.tokens[:3] == ["@", "ada_l", "meets"]
    assert social.tokens == ["@ada_l", "meets", "#NLP", "fans", "at", "https://x.org/a?b=1", "."]
    assert social.id == default.id  # the id is the text's, whatever the tokeniser


def test_read_jsonl_text_uses_the_tokenizer(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "a.jsonl", {"text": "cocaine-induced seizures", "spans": [[0, 7, "Chemical"]]})
    with pytest.raises(DataError, match="not on token boundaries"):
        read_jsonl(path)  # the default keeps cocaine-induced whole
    [rec] = read_jsonl(path, tokenizer="biomedical")
    assert rec.tokens == ["cocaine", "-", "induced", "seizures"] and rec.tags == ["B-Chemical", "O", "O", "O"]


def test_split_sentences() -> None:
    doc = 'He said "Hi." Then he left. (Really.) Next one is 3.5 km away! 42 more? ok'
    out = split_sentences(doc)
    expected = ['He said "Hi."', "Then he left.", "(Really.)", "Next one is 3.5 km away!", "42 more? ok"]
    assert [s for _, s in out] == expected
    for pos, sent in out:
        assert doc[pos : pos + len(sent)] == sent


def test_read_text_sentence_mode(tmp_path: Path) -> None:
    path = _write(tmp_path / "pool.txt", "Ada met Bob.\n\n  Paris is nice.  \nTwo. Sentences here.\n")
    recs = read_text(path)
    assert [r.text for r in recs] == ["Ada met Bob.", "Paris is nice.", "Two. Sentences here."]
    assert [r.source for r in recs] == [f"{path}:1", f"{path}:3", f"{path}:4"]
    assert all(r.tags is None and r.doc_id is None for r in recs)
    for r in recs:
        assert [r.text[s:e] for s, e in r.offsets] == r.tokens
        assert r.id == sentence_id(r.text)


def test_read_text_document_mode(tmp_path: Path) -> None:
    path = _write(tmp_path / "pool.txt", 'She said "Go." Then left.\nOne only\n')
    recs = read_text(path, mode="document")
    assert [r.text for r in recs] == ['She said "Go."', "Then left.", "One only"]
    assert [r.doc_id for r in recs] == ["line1", "line1", "line2"]
    assert recs[0].tokens == ["She", "said", '"', "Go", ".", '"']
    for r in recs:
        assert [r.text[s:e] for s, e in r.offsets] == r.tokens


def test_read_text_errors(tmp_path: Path) -> None:
    assert "empty" in _data_error(_write(tmp_path / "a.txt", "\n   \n"), None, read_text)
    path = tmp_path / "b.txt"
    path.write_bytes(b"fine\nfine\nnot \xff fine\n")
    assert "UTF-8" in _data_error(path, 3, read_text)


def test_record_from_text_spans() -> None:
    rec = record_from_text("Ada met Bob", [(8, 11, "PER"), (0, 3, "PER")], source="s")
    assert rec.tags == ["B-PER", "O", "B-PER"]
    with pytest.raises(TagError, match="not on token boundaries"):
        record_from_text("Ada met Bob", [(0, 2, "PER")])
    with pytest.raises(TagError, match="overlaps"):
        record_from_text("Ada met Bob", [(0, 7, "PER"), (4, 11, "X")])


# --------------------------------------------------------------------------- dispatch


def test_read_any_by_extension_and_explicit(tmp_path: Path) -> None:
    conll = _write(tmp_path / "a.conll", "Ada\tB-PER\n")
    jsonl = _jsonl(tmp_path / "a.jsonl", {"tokens": ["Ada"], "tags": ["B-PER"]})
    txt = _write(tmp_path / "a.txt", "Ada\n")
    assert _core(read_any(conll)) == _core(read_any(jsonl))
    assert read_any(txt)[0].tags is None and read_any(txt)[0].tokens == ["Ada"]
    odd = _write(tmp_path / "data.dat", '{"tokens":["Ada"]}\n')
    assert read_any(odd, fmt="jsonl")[0].tokens == ["Ada"]
    assert "JSON line" in _data_error(odd, 1, read_any)  # auto: an unknown extension is read as CoNLL
    assert read_any(conll, label_set=["PER"])[0].tags == ["B-PER"]
    with pytest.raises(DataError, match="label set"):
        read_any(jsonl, label_set=["LOC"])


def test_write_conll_keeps_document_boundaries(tmp_path):
    recs = [Record.from_tokens(["a"], ["O"], doc_id="d1"), Record.from_tokens(["b"], ["O"], doc_id="d1"),
            Record.from_tokens(["c"], ["O"], doc_id="d2")]
    path = tmp_path / "docs.conll"
    write_conll(path, recs)
    back = read_conll(path)
    assert [r.tokens for r in back] == [["a"], ["b"], ["c"]]
    assert back[0].doc_id == back[1].doc_id != back[2].doc_id
