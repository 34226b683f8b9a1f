"""What every annotation tool sends: the pre-annotation, read and refused the same way by each tool
(``nerloop.annotation.core.protocol``), before anything is sent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nerloop.annotation.doccano import DoccanoBackend, DoccanoDataError
from nerloop.annotation.label_studio import LabelStudioBackend, LabelStudioDataError
from nerloop.errors import NerloopError
from nerloop.params import DoccanoParams, LabelStudioParams
from tool_servers import LABELS, make_record

CLOSED = "http://127.0.0.1:9"  # nothing listens there: a request would fail, not pass
TOOLS: list[Any] = [
    pytest.param(lambda home: DoccanoBackend(DoccanoParams(annotators=["a"]), LABELS, home=home,
                                             creds=(CLOSED, "a", "p")), DoccanoDataError, id="doccano"),
    pytest.param(lambda home: LabelStudioBackend(LabelStudioParams(annotators=["a"]), LABELS, home=home,
                                                 creds=(CLOSED, "t")), LabelStudioDataError, id="label_studio"),
]


@pytest.mark.parametrize(("make", "error"), TOOLS)
def test_bad_pre_annotation_is_refused_before_anything_is_sent(
        tmp_path: Path, make: Callable[[Path], Any], error: type[NerloopError]) -> None:
    be = make(tmp_path)
    rec = make_record(0)
    rec.meta["pre_spans"][0][2] = "MISC"
    with pytest.raises(error, match="MISC"):
        be.export([rec], 1)  # raised before connecting: the URL is a closed port
    rec = make_record(0)
    rec.meta["pre_spans"][0][1] -= 2
    with pytest.raises(error, match="nearest token boundaries"):
        be.export([rec], 1)
