"""Accept in one key (issue #29 part 2) without a server: the rule that picks "accept or edit" sentences, the
params, what each tool is sent, the ledger's ``accepted`` flag and the card's count."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nerloop.annotation.core import accept
from nerloop.annotation.doccano import DoccanoBackend
from nerloop.annotation.doccano.tasks import ACCEPT_HINT, CONFIDENCE_KEY
from nerloop.annotation.label_studio import LabelStudioBackend
from nerloop.annotation.label_studio.projects import HINT_FIELD, label_config
from nerloop.annotation.label_studio.tasks import HINT_KEY, HINTS
from nerloop.data.annotations import Annotation
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record
from nerloop.errors import DataError, ParamsError
from nerloop.params import DoccanoParams, LabelStudioParams, Params, load_params
from nerloop.release.card import build_card
from nerloop.release.sections import accepted_text
from tool_servers import LABELS, PRE, make_record

CLOSED = "http://127.0.0.1:9"  # nothing listens there: building an upload line connects to nothing


def sentence(p_sequence: float | None, span_confs: list[float | None]) -> Record:
    """A batch record whose whole pre-annotation the model gives ``p_sequence``, with spans of ``span_confs``."""
    rec = Record.from_tokens(["Ada", "met", "Bob", "in", "Rome"])
    rec.meta = {"pre_spans": [[0, 3, "PER", c] for c in span_confs]}
    if p_sequence is not None:  # as stage score rounds it: -mean log of each word's top probability
        rec.meta["scores"] = {"mnlp": round(-math.log(p_sequence) / len(rec.tokens), 5)}
    return rec


@pytest.mark.parametrize(("p_sequence", "spans", "expected"), [
    (0.97, [0.99, 0.98], True),
    (0.96, [0.95], True),  # a span at the threshold counts
    (0.94, [0.99], False),  # the sentence as a whole is not sure enough, whatever its spans
    (0.97, [0.99, 0.90], False),  # one doubtful span is enough to ask for editing
    (0.97, [0.5], False),  # a pattern's span shows the pattern's confidence, not the model's
    (0.97, [None], False),  # a span without a confidence cannot be vouched for
    (0.99, [], True),  # no entity predicted: judged by the words' O probabilities alone
    (0.90, [], False),
    (None, [0.99], False),  # no sequence score recorded: nothing to judge by
])
def test_the_accept_rule(p_sequence: float | None, spans: list[float | None], expected: bool) -> None:
    assert accept.confident(sentence(p_sequence, spans), 0.95) is expected


def test_tiny_sequence_probabilities_survive_the_rounding_of_scores() -> None:
    rec = sentence(1e-9, [0.5])
    assert accept.sequence_confidence(rec) == pytest.approx(1e-9, rel=1e-3)
    assert accept.confident(rec, 1e-10) and not accept.confident(rec, 1e-8)


def test_mark_sets_every_sentences_mode_and_caps_the_share_surest_first() -> None:
    batch = [sentence(p, [p]) for p in (0.96, 0.99, 0.5, 0.97, 0.98)]
    assert accept.mark(batch, None) == 0  # off
    assert [r.meta["review"] for r in batch] == ["edit"] * 5
    assert accept.mark(batch, 0.95) == 4
    assert [r.meta["review"] for r in batch] == ["accept", "accept", "edit", "accept", "accept"]
    assert accept.mark(batch, 0.95, share=0.4) == 2  # floor(0.4 x 5) = 2: the two surest
    assert [r.meta["review"] for r in batch] == ["edit", "accept", "edit", "edit", "accept"]
    assert accept.mark(batch, 0.95, share=0.1) == 0  # floor(0.5) = 0


def test_params_are_checked_and_off_by_default(tmp_path: Path) -> None:
    shipped = load_params(Path(__file__).resolve().parents[1] / "params.yaml").annotation
    assert shipped.accept_threshold is None and shipped.accept_share == 1.0
    base = {"data": {"seed": "s", "pool": "p", "gold": "g"},
            "annotation": {"backend": "simulated", "simulated": {"answers": "a"}}}
    assert Params.parse_obj(base).annotation.accept_threshold is None
    for key, bad in (("accept_threshold", 1.5), ("accept_threshold", 0), ("accept_threshold", True),
                     ("accept_share", 0), ("accept_share", "half")):
        path = tmp_path / "params.yaml"
        path.write_text(json.dumps({**base, "annotation": {**base["annotation"], key: bad}}), encoding="utf-8")
        with pytest.raises(ParamsError, match=f"annotation.{key}"):
            load_params(path)


def test_each_tool_shows_the_mode(tmp_path: Path) -> None:
    sure, normal = make_record(0), make_record(1)
    sure.meta["review"], normal.meta["review"] = "accept", "edit"
    ls = LabelStudioBackend(LabelStudioParams(annotators=["a"]), LABELS, home=tmp_path / "ls", creds=(CLOSED, "t"))
    tasks = [ls._task(r, 1) for r in (sure, normal)]
    assert [t["data"][HINT_KEY] for t in tasks] == [HINTS["accept"], ""]  # every task has the field
    assert "Ctrl+Enter" in HINTS["accept"]
    assert [t["meta"]["nerloop_review"] for t in tasks] == ["accept", "edit"]
    assert HINT_FIELD in label_config(LABELS) and HINT_FIELD not in label_config(LABELS, review=True)
    del normal.meta["review"]  # an outbox written before the mode existed
    assert ls._task(normal, 1)["meta"]["nerloop_review"] == "edit"

    dc = DoccanoBackend(DoccanoParams(annotators=["a"]), LABELS, home=tmp_path / "dc", creds=(CLOSED, "a", "p"))
    lines = [dc._line(r, 1) for r in (sure, normal)]
    assert next(iter(lines[0])) == CONFIDENCE_KEY  # still the first row of Doccano's metadata
    assert lines[0][CONFIDENCE_KEY].startswith(ACCEPT_HINT + "lowest first: ")
    assert lines[1][CONFIDENCE_KEY].startswith("lowest first: ")
    assert "Enter" in ACCEPT_HINT


def _ann(tags: list[str], review: str | None, pre: list[str] | None = PRE, revision: bool = False) -> Annotation:
    rec = make_record(0)
    rec.tags, rec.meta = tags, {}
    return Annotation(record=rec, cycle=1, annotator="alice", pre_tags=pre, revision=revision, review=review)


def test_ledger_marks_accept_sentences_submitted_unchanged(tmp_path: Path) -> None:
    fixed = list(PRE)
    fixed[0] = "B-ORG"
    assert _ann(PRE, "accept").accepted
    assert not _ann(fixed, "accept").accepted  # edited: an ordinary correction
    assert not _ann(PRE, "edit").accepted  # unchanged, but not sent as "accept or edit"
    assert not _ann(PRE, None).accepted and not _ann(["O"] * len(PRE), "accept", pre=None).accepted

    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append([_ann(PRE, "accept")])
    entry = json.loads(ledger.path.read_text(encoding="utf-8"))
    assert entry["accepted"] is True and entry["effort"]["kept"] == 3 and entry["record"]["tags"] == PRE
    assert Ledger(ledger.path).accepted_per_cycle() == {1: 1}
    ledger.append([_ann(fixed, "accept", revision=True)])  # corrected after import: no longer accepted as shown
    reopened = Ledger(ledger.path)
    assert "accepted" not in reopened.history[-1] and reopened.accepted_per_cycle() == {1: 0}


def test_ledgers_without_the_flag_load_and_a_bad_flag_is_refused(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.append([_ann(PRE, None)])
    line = json.loads(ledger.path.read_text(encoding="utf-8"))
    assert "accepted" not in line  # an old ledger's entry, as before the mode
    assert Ledger(ledger.path).accepted_per_cycle() == {1: 0}
    ledger.path.write_text(json.dumps(line | {"accepted": "yes"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="'accepted' must be true or false"):
        Ledger(ledger.path)


def test_card_counts_sentences_accepted_in_one_key() -> None:
    base = {"data": {"seed": "s", "pool": "p", "gold": "g"},
            "annotation": {"backend": "simulated", "simulated": {"answers": "a"}}}
    off, on = Params.parse_obj(base), Params.parse_obj(
        {**base, "annotation": {**base["annotation"], "accept_threshold": 0.95}})
    stats = {"provenance": {"annotated_sentences": 60, "accepted_in_one_key": {"1": 0, "2": 7}}}
    text = accepted_text(on, stats)
    assert "7 of 60 annotated sentences" in text and "(cycle 1: 0; cycle 2: 7)" in text
    none = {"provenance": {"annotated_sentences": 60, "accepted_in_one_key": {"1": 0}}}
    assert accepted_text(off, none) == ""  # never on: nothing to say
    assert "0 of 60" in accepted_text(on, none)
    assert accepted_text(off, {"provenance": {"annotated_sentences": 60}}) == ""  # stats.json from before


def test_the_rendered_card_says_it_under_annotation(tmp_path: Path) -> None:
    from test_datacard import inputs, make_params

    data = inputs(include_gold=True)
    data["stats"]["provenance"]["accepted_in_one_key"] = {"1": 12, "2": 5}
    text = str(build_card(make_params(include_gold=True), **data))
    annotation = text.split("### Annotation and Agreement")[1]
    assert ('**Accepted in one key**: 17 of 60 annotated sentences were sent as "accept or edit"' in annotation
            and "(cycle 1: 12; cycle 2: 5)" in annotation)
    del data["stats"]["provenance"]["accepted_in_one_key"]
    assert "Accepted in one key" not in str(build_card(make_params(include_gold=True), **data))
