"""The project's own files: atomic writes, JSON, canonical JSONL records, CoNLL out, and checked line reading.

Every write goes to a temporary file that replaces the target only when complete, so an interrupted
stage never leaves half a file behind; every read error names the file and line.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from nerloop.data.records import Record
from nerloop.errors import DataError


@contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; move it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: str | Path, default: Any = None) -> Any:
    """A JSON file written by ``write_json``, or ``default`` when it does not exist (yet)."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def json_safe(x: Any) -> Any:
    """Scores made strict-JSON-safe (annotation tools store meta as strict JSON): NaN/inf become None."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    return x


def text_sha1(text: str) -> str:
    """Fingerprint of a sentence's exact text: an annotation tool's copy that no longer matches was edited."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def write_json(path: str | Path, obj: Any) -> None:
    """Write pretty JSON atomically."""
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")


def write_records(path: str | Path, records: Iterable[Record]) -> None:
    """Write canonical records as JSONL, atomically."""
    with atomic_write(path) as fh:
        for rec in records:
            fh.write(json.dumps(rec.to_dict(), ensure_ascii=False) + "\n")


def write_conll(path: str | Path, records: Iterable[Record]) -> None:
    """Write labelled records as ``token<TAB>tag`` lines, a blank line between sentences.

    A ``-DOCSTART-`` line opens each new document (records with a ``doc_id``), so that
    document grouping survives a round trip through CoNLL.
    """
    with atomic_write(path) as fh:
        doc = None
        for rec in records:
            if rec.tags is None:
                raise DataError(path, None, f"record {rec.id} has no tags; cannot write CoNLL")
            if rec.doc_id is not None and rec.doc_id != doc:
                fh.write("-DOCSTART-\tO\n\n")
            doc = rec.doc_id
            for tok, tag in zip(rec.tokens, rec.tags, strict=True):
                fh.write(f"{tok}\t{tag}\n")
            fh.write("\n")


# --------------------------------------------------------------------------- reading


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text) with a per-line UTF-8 check and BOM removal."""
    if not path.exists():
        raise DataError(path, None, "file not found")
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(path, n, f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
            # A BOM opens the file, but also turns up where files were concatenated, or at a line's end
            yield n, line.rstrip("\r\n").strip("\ufeff")


def parse_record(line: str | bytes, path: str | Path, n: int) -> Record:
    """One line of canonical JSONL as a record; a line that is not one fails naming ``path`` and line ``n``."""
    try:
        return Record.from_dict(json.loads(line))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(path, n, f"not a canonical record: {exc}") from None


def iter_records(path: str | Path) -> Iterator[Record]:
    """Canonical JSONL written by ``write_records``, one record at a time (a million-line pool in little memory)."""
    path = Path(path)
    for n, line in _lines(path):
        if line.strip():
            yield parse_record(line, path, n)


def read_records(path: str | Path) -> list[Record]:
    """Read canonical JSONL written by ``write_records``."""
    return list(iter_records(path))
