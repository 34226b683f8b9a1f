"""The label set is fixed at prepare: a late type fails at import, naming the sentence."""

from __future__ import annotations

import pytest

from nerloop.annotation.base import Annotation
from nerloop.errors import DataError
from nerloop.labelled import check_new_types
from nerloop.records import Record


def test_type_outside_the_label_set_is_a_named_error_at_import() -> None:
    ok = Annotation(Record.from_tokens(["Ada", "met"], ["B-PER", "O"]), cycle=1, annotator="simulated")
    late = Annotation(Record.from_tokens(["at", "#WWDC"], ["O", "B-EVENT"]), cycle=2, annotator="simulated")
    check_new_types([ok], ["PER"])
    with pytest.raises(DataError) as info:
        check_new_types([ok, late], ["PER"])
    msg = str(info.value)
    assert late.record.id in msg and "'at #WWDC'" in msg and "cycle 2" in msg
    assert "['EVENT']" in msg and "data.labels" in msg
