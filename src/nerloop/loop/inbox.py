"""The inbox: what the last fetch from the annotation backend brought, as a git-tracked file.

Why a file between the backend and the ``import`` stage: a DVC stage must be a function of its
dependencies, and an annotation server is not a file DVC can hash. ``nerloop cycle`` talks to the
backend (the only step that does) and writes what it found here; stage ``import`` reads it. So
``dvc repro``, ``dvc status`` and ``dvc exp run`` never reach annotators, and a repro with an
unchanged inbox changes nothing.

The inbox holds the annotations that the ledger did not have when they were fetched, plus what
had been sent by then (``exported``: sentence id -> cycle), what is still waiting and why: held back
(``problems``), in review (``in_review``: disagreements waiting on the lead) and the annotators' finished
work on those sentences (``work``). An inbox written before the last two existed reads as having none.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from nerloop import paths
from nerloop.annotation.core.base import FetchResult
from nerloop.data.annotations import Annotation
from nerloop.data.files import write_json
from nerloop.data.records import Record
from nerloop.errors import DataError

EMPTY: dict[str, Any] = {"exported": {}, "done": [], "pending": [], "problems": [], "metrics": {}, "in_review": [],
                         "work": {}}


def annotation_to_dict(ann: Annotation) -> dict[str, Any]:
    """Every field of the annotation, the record as its canonical dict (``window`` only when there is one, so
    that an inbox of whole sentences reads as before the field existed)."""
    out = {f.name: getattr(ann, f.name) for f in dataclasses.fields(ann)
           if not (f.name == "window" and ann.window is None)}
    out["record"] = ann.record.to_dict()
    return out


def annotation_from_dict(data: dict[str, Any]) -> Annotation:
    names = {f.name for f in dataclasses.fields(Annotation)}
    return Annotation(**{k: v for k, v in data.items() if k in names} | {"record": Record.from_dict(data["record"])})


def write(result: FetchResult, exported: dict[str, int], path: Path = paths.INBOX) -> None:
    """Replace the inbox with one fetch's result (atomically)."""
    write_json(path, {
        "exported": dict(sorted(exported.items())),
        "done": [annotation_to_dict(a) for a in result.done],
        "pending": sorted(result.pending),
        "problems": list(result.problems),
        "metrics": result.metrics,
        "in_review": list(result.in_review),
        "work": {sid: list(w) for sid, w in sorted(result.work.items())},
    })


def read(path: Path = paths.INBOX) -> tuple[FetchResult, dict[str, int]]:
    """The fetch result and the exported map; an absent inbox is an empty one (a fresh project)."""
    if not path.exists():
        data = EMPTY
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(path, exc.lineno, f"corrupt inbox: {exc.msg}; restore it with `git checkout -- {path}` "
                            "and run `nerloop cycle` again (the annotations are still in the backend)") from None
    try:
        done = [annotation_from_dict(a) for a in data["done"]]
        result = FetchResult(done=done, pending=list(data["pending"]), problems=list(data["problems"]),
                             metrics=dict(data["metrics"]), in_review=list(data.get("in_review", [])),
                             work={str(k): list(v) for k, v in data.get("work", {}).items()})
        exported = {str(k): int(v) for k, v in data["exported"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(path, None, f"corrupt inbox ({type(exc).__name__}: {exc}); restore it with "
                        f"`git checkout -- {path}` and run `nerloop cycle` again") from None
    return result, exported


def same_waiting(result: FetchResult, path: Path = paths.INBOX) -> bool:
    """True when the inbox already says what ``result`` says about what still waits (pending, held back,
    in review, the work on them): a fetch that brings nothing new then leaves the inbox alone, so a
    cycle with nothing new changes nothing, while a fix or a release that changed only what waits is
    still written (and so reaches ``import`` and the held-back list)."""
    old, _ = read(path)
    return (sorted(old.pending), old.problems, old.in_review, old.work) == (
        sorted(result.pending), result.problems, result.in_review, result.work)
