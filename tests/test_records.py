"""The canonical record: stable ids, offsets, and the dict round trip."""

from __future__ import annotations

import hashlib
import json

from nerloop.data.records import Record, join_tokens, normalise_text, sentence_id


def test_normalise_text() -> None:
    assert normalise_text("  Paris \t is\n\nnice ") == "Paris is nice"
    assert normalise_text("ﬁne") == "fine"  # NFKC folds the ligature
    assert normalise_text("Paris") != normalise_text("paris")  # case is kept


def test_sentence_id_is_stable_and_ignores_whitespace() -> None:
    a = sentence_id("Paris is nice .")
    assert a == sentence_id(" Paris  is\tnice . ")
    assert a != sentence_id("Paris is nice")
    assert len(a) == 16 and int(a, 16) >= 0
    # ids are persisted (ledger, backends): pin the definition, sha1 of the normalised text
    assert a == hashlib.sha1(b"Paris is nice .").hexdigest()[:16]


def test_join_tokens_offsets() -> None:
    text, offsets = join_tokens(["Ada", "met", "Bob", "."])
    assert text == "Ada met Bob ."
    assert offsets == [(0, 3), (4, 7), (8, 11), (12, 13)]
    assert [text[s:e] for s, e in offsets] == ["Ada", "met", "Bob", "."]
    assert join_tokens([]) == ("", [])


def test_from_tokens() -> None:
    rec = Record.from_tokens(["Ada", "met", "Bob"], ["B-PER", "O", "B-PER"], source="f.conll:3", doc_id="doc1")
    assert rec.text == "Ada met Bob"
    assert rec.id == sentence_id("Ada met Bob")
    assert rec.labelled
    assert rec.source == "f.conll:3" and rec.doc_id == "doc1"
    unlabelled = Record.from_tokens(["Ada", "met", "Bob"])
    assert unlabelled.tags is None and not unlabelled.labelled
    assert unlabelled.id == rec.id  # the id depends on the text only


def test_from_tokens_copies_its_inputs() -> None:
    tokens, tags, meta = ["a", "b"], ["O", "O"], {"cycle": 1}
    rec = Record.from_tokens(tokens, tags, meta=meta)
    tokens.append("c")
    tags[0] = "B-X"
    meta["cycle"] = 2
    assert rec.tokens == ["a", "b"] and rec.tags == ["O", "O"] and rec.meta == {"cycle": 1}


def test_dict_round_trip_through_json() -> None:
    rec = Record.from_tokens(
        ["Ada", "met", "Bob"], ["B-PER", "O", "B-PER"], source="x:1", doc_id="d", meta={"cycle": 2, "s": [0.5]}
    )
    d = json.loads(json.dumps(rec.to_dict()))
    assert d["offsets"] == [[0, 3], [4, 7], [8, 11]]
    back = Record.from_dict(d)
    assert back == rec
    assert back.offsets == [(0, 3), (4, 7), (8, 11)]


def test_dict_round_trip_unlabelled_and_defaults() -> None:
    rec = Record.from_tokens(["x", "y"])
    assert Record.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec
    minimal = {"id": "i", "tokens": ["x"], "text": "x", "offsets": [[0, 1]]}
    back = Record.from_dict(minimal)
    assert back.tags is None and back.source == "" and back.doc_id is None and back.meta == {}
