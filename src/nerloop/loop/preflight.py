"""Checks a cycle makes before any expensive work: every input it will need, named by its params key.

``load_params`` checks what params.yaml says (types, ranges, names of strategies and measures);
this checks what it points at, which only exists on disk or in a cache: the input files, the
simulated annotator's answers (read once, so a bad file fails now and not after training), the
patterns file (checked against ``data.labels`` when it lists them; select checks the fixed label set),
and the base model. A cycle that would fail at the select stage, or when it fetches next, fails here
in seconds instead, naming the key, with nothing changed.
"""

from __future__ import annotations

from pathlib import Path

from nerloop.errors import NerloopError, ParamsError
from nerloop.params import Params


def check_inputs(params: Params) -> None:
    """Raise ParamsError naming the key of the first input that is missing or unreadable."""
    for key in ("seed", "pool", "gold"):
        path = Path(getattr(params.data, key))
        if not path.is_file():
            raise ParamsError(f"data.{key}", f"{path} does not exist (or is not a file)")
    simulated = params.annotation.simulated
    if params.annotation.backend == "simulated" and simulated is not None:
        answers = Path(simulated.answers)
        if not answers.is_file():
            raise ParamsError("annotation.simulated.answers", f"{answers} does not exist (or is not a file)")
        from nerloop.data.formats import read_any

        try:
            read_any(answers, tokenizer=params.data.tokenizer)
        except NerloopError as exc:
            raise ParamsError("annotation.simulated.answers", str(exc)) from None
    if params.data.patterns is not None:  # read and compiled once, so a bad line fails now and not at select
        from nerloop.data.patterns import load_patterns

        try:
            load_patterns(params.data.patterns, params.data.labels, params.data.tokenizer, params.data.pattern_attr)
        except NerloopError as exc:
            raise ParamsError("data.patterns", str(exc)) from None
    from nerloop.model.base import resolve_base

    resolve_base(params.model.base)
