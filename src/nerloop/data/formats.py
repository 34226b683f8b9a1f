"""Readers for the formats users bring, all producing canonical ``Record``s.

Supported inputs:
- CoNLL-style columns (token first, tag last; tab or space separated; ``-DOCSTART-``
  lines start a new document; IOB1 or IOB2, converted to IOB2). A file with one column
  (tokens only) is read as unlabelled, for a pool.
- JSONL, one sentence per line: ``{"tokens": [...], "tags": [...]}``, or
  ``{"text": "...", "spans": [[start, end, "TYPE"], ...]}``, or either without labels.
- Plain text for the unlabelled pool: one sentence per line, or one document per line
  that is split into sentences here.

Text (plain-text pools, JSONL ``text`` lines) is split into tokens by the tokeniser named in
``data.tokenizer`` (``nerloop.data.tokenizers``). A language prefix on tokens (``en:Paris``) is
removed the same way in CoNLL and JSONL ``tokens``: when every token of the file has one.

Every error names the file and line. The project's own files (canonical JSONL, JSON, CoNLL out)
are read and written by ``nerloop.data.files``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from nerloop.data.files import _lines
from nerloop.data.records import Record, sentence_id
from nerloop.data.tags import char_to_token_spans, check_iob2, iob1_to_iob2, spans_to_tags
from nerloop.data.tokenizers import TokenizerName, tokenize
from nerloop.errors import DataError, TagError

Scheme = Literal["auto", "iob1", "iob2"]

_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]*(\s+)(?=[\"'(\[]?[A-Z0-9])")
_LANG_PREFIX = re.compile(r"^[a-z]{2,3}:(?=.)")


def _finish_tags(
    path: Path,
    line: int,
    tags: list[str],
    scheme: Scheme,
    label_set: Iterable[str] | None,
    one_token_per_line: bool = True,
) -> list[str]:
    """Convert to IOB2 when allowed and validate against the scheme and the label set.

    ``line`` is the line of the first token. With ``one_token_per_line`` (CoNLL) an error is
    reported on the offending token's own line; otherwise (JSONL) on ``line``, naming the token.
    """

    def error(exc: TagError) -> DataError:
        i = max(exc.index, 0)
        if one_token_per_line:
            return DataError(path, line + i, str(exc))
        return DataError(path, line, f"token {i}: {exc}")

    try:
        if scheme in ("auto", "iob1"):
            tags = iob1_to_iob2(tags)
        check_iob2(tags, label_set)
    except TagError as exc:
        raise error(exc) from None
    return tags


def read_conll(
    path: str | Path, scheme: Scheme = "auto", label_set: Iterable[str] | None = None
) -> list[Record]:
    """Read a CoNLL-style file: token in the first column, tag in the last.

    Columns are split on tabs when the line has one, else on runs of spaces. Every
    non-blank line must have the same number of columns as the first one; a file with a
    single column holds tokens only and gives unlabelled records (a pool). A language
    prefix on tokens (``en:Paris``) is removed when every token of the file has one.
    """
    path = Path(path)
    label_set = list(label_set) if label_set is not None else None
    sentences: list[tuple[int, list[str], list[str], str | None]] = []
    ncols: int | None = None
    doc = 0
    toks: list[str] = []
    tags: list[str] = []
    start = 0
    for n, line in _lines(path):
        line = line.replace("\ufeff", "").strip()  # stray whitespace (a trailing tab) is not a column
        cols = line.split("\t") if "\t" in line else line.split()
        cols = [c.strip() for c in cols]
        if not line:
            if toks:
                sentences.append((start, toks, tags, f"doc{doc}" if doc else None))
            toks, tags = [], []
            continue
        if cols[0] == "-DOCSTART-":
            if toks:
                sentences.append((start, toks, tags, f"doc{doc}" if doc else None))
            toks, tags = [], []
            doc += 1
            continue
        if ncols is None:
            ncols = len(cols)
            if ncols == 1 and line.startswith(("{", "[")):
                raise DataError(path, n, "a JSON line in a file read as CoNLL: name it .jsonl or set format: jsonl")
        if len(cols) != ncols:
            raise DataError(path, n, f"expected {ncols} columns like the first line, found {len(cols)}")
        if not toks:
            start = n
        toks.append(cols[0])
        tags.append(cols[-1])
    if toks:
        sentences.append((start, toks, tags, f"doc{doc}" if doc else None))
    if not sentences:
        raise DataError(path, None, "empty file: no sentences found")

    strip_prefix = _language_prefixed(path, [(start, toks) for start, toks, _, _ in sentences], per_token_lines=True)
    records = []
    for start, toks, tags, doc_id in sentences:
        if strip_prefix:
            toks = [_LANG_PREFIX.sub("", t) for t in toks]
        finished = _finish_tags(path, start, tags, scheme, label_set) if ncols != 1 else None
        records.append(Record.from_tokens(toks, finished, source=f"{path}:{start}", doc_id=doc_id))
    return records


def _language_prefixed(path: Path, sentences: list[tuple[int, list[str]]], per_token_lines: bool) -> bool:
    """Whether every token has a language prefix (``en:``), so all are to be stripped.

    ``sentences`` are (line, tokens). When most tokens carry a prefix but some do not, this
    is an error naming the first token without one: stripping only some would leave a file
    half-mangled, and stripping none would teach the model that ``en:`` is part of a word.
    """
    prefixed = [bool(_LANG_PREFIX.match(t)) for _, toks in sentences for t in toks]
    if all(prefixed):
        return bool(prefixed)
    if 2 * sum(prefixed) > len(prefixed):
        start, toks = next((s, t) for s, t in sentences if not all(_LANG_PREFIX.match(x) for x in t))
        i = next(i for i, t in enumerate(toks) if not _LANG_PREFIX.match(t))
        line, where = (start + i, "") if per_token_lines else (start, f"token {i} ")
        raise DataError(
            path, line, f"{where}{toks[i]!r} has no language prefix (like 'en:') while most tokens have one"
        )
    return False


def split_sentences(text: str) -> list[tuple[int, str]]:
    """Split a document into sentences: (character offset in the document, sentence text)."""
    out, pos = [], 0
    for m in _SENT_END.finditer(text):
        out.append((pos, text[pos : m.start(1)]))  # closing quotes/brackets stay with their sentence
        pos = m.end()
    out.append((pos, text[pos:]))
    return [(p, s) for p, s in out if s.strip()]


def record_from_text(
    text: str,
    spans: list[tuple[int, int, str]] | None = None,
    *,
    source: str = "",
    doc_id: str | None = None,
    tokenizer: TokenizerName = "default",
) -> Record:
    """Tokenise raw text (keeping offsets) and turn character spans into IOB2 tags.

    Raises TagError if a span does not fall on token boundaries or spans overlap.
    """
    tokens, offsets = tokenize(text, tokenizer)
    tags = None
    if spans is not None:
        ordered = sorted(spans)
        for a, b in itertools.pairwise(ordered):
            if b[0] < a[1]:  # say so in the user's character positions, not in token positions
                raise TagError(-1, f"span {list(b)} overlaps span {list(a)}")
        tags = spans_to_tags(len(tokens), char_to_token_spans(offsets, spans))
    return Record(
        id=sentence_id(text), tokens=tokens, text=text, offsets=offsets, tags=tags, source=source, doc_id=doc_id
    )


def _parse_spans(raw: Any) -> list[tuple[int, int, str]]:
    spans = []
    for s in raw:
        if isinstance(s, dict):
            spans.append((int(s["start"]), int(s["end"]), str(s["label"])))
        else:
            start, end, label = s
            spans.append((int(start), int(end), str(label)))
    return spans


def read_jsonl(
    path: str | Path,
    scheme: Scheme = "auto",
    label_set: Iterable[str] | None = None,
    tokenizer: TokenizerName = "default",
) -> list[Record]:
    """Read JSONL with tokens (+tags) or text (+character spans, tokenised by ``tokenizer``) per line."""
    path = Path(path)
    label_set = list(label_set) if label_set is not None else None
    records: list[Record] = []
    token_lines: list[tuple[int, int]] = []  # (line, index in records) of records given as tokens
    for n, line in _lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, n, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise DataError(path, n, "each line must be a JSON object")
        src, doc_id = f"{path}:{n}", obj.get("doc_id")
        if "tokens" in obj:
            tokens = obj["tokens"]
            if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t.strip() for t in tokens):
                raise DataError(path, n, "'tokens' must be a non-empty list of non-blank strings")
            tags = obj.get("tags", obj.get("ner_tags"))
            if tags is not None:
                if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                    raise DataError(path, n, "'tags' must be a list of tag strings (O, B-TYPE, I-TYPE)")
                if len(tags) != len(tokens):
                    raise DataError(path, n, f"{len(tokens)} tokens but {len(tags)} tags")
                tags = _finish_tags(path, n, tags, scheme, label_set, one_token_per_line=False)
            records.append(Record.from_tokens(tokens, tags, source=src, doc_id=doc_id))
            token_lines.append((n, len(records) - 1))
        elif "text" in obj:
            if not isinstance(obj["text"], str):
                raise DataError(path, n, "'text' must be a string")
            raw_spans = obj.get("spans", obj.get("label", obj.get("entities")))
            try:
                spans = _parse_spans(raw_spans) if raw_spans is not None else None
            except (KeyError, TypeError, ValueError) as exc:
                raise DataError(path, n, f"spans must be [start, end, label] triples: {exc}") from None
            if spans and label_set is not None:
                for s in spans:
                    if s[2] not in label_set:
                        raise DataError(path, n, f"span {list(s)}: label {s[2]!r} is not in the label set")
            try:
                rec = record_from_text(obj["text"], spans, source=src, doc_id=doc_id, tokenizer=tokenizer)
            except TagError as exc:
                raise DataError(path, n, str(exc)) from None
            if not rec.tokens:
                raise DataError(path, n, "empty text")
            records.append(rec)
        else:
            raise DataError(path, n, "a line needs 'tokens' or 'text'")
    if not records:
        raise DataError(path, None, "empty file: no sentences found")
    if _language_prefixed(path, [(n, records[i].tokens) for n, i in token_lines], per_token_lines=False):
        for _, i in token_lines:
            r = records[i]
            records[i] = Record.from_tokens([_LANG_PREFIX.sub("", t) for t in r.tokens], r.tags, source=r.source,
                                            doc_id=r.doc_id)
    return records


def read_text(
    path: str | Path, mode: Literal["sentence", "document"] = "sentence", tokenizer: TokenizerName = "default"
) -> list[Record]:
    """Read an unlabelled pool, one sentence per line or one document per line, split by ``tokenizer``."""
    path = Path(path)
    records = []
    for n, line in _lines(path):
        if not line.strip():
            continue
        pieces = split_sentences(line) if mode == "document" else [(0, line)]
        for _, sent in pieces:
            doc_id = f"line{n}" if mode == "document" else None
            rec = record_from_text(sent.strip(), source=f"{path}:{n}", doc_id=doc_id, tokenizer=tokenizer)
            if rec.tokens:
                records.append(rec)
    if not records:
        raise DataError(path, None, "empty file: no sentences found")
    return records


def input_format(path: str | Path, fmt: str = "auto") -> str:
    """The format a file is read as: ``fmt``, or for ``auto`` by extension (.jsonl/.json, .txt, else CoNLL)."""
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower()
    return "jsonl" if suffix in (".jsonl", ".json") else "text" if suffix == ".txt" else "conll"


def read_any(
    path: str | Path,
    fmt: Literal["auto", "conll", "jsonl", "text"] = "auto",
    scheme: Scheme = "auto",
    label_set: Iterable[str] | None = None,
    text_mode: Literal["sentence", "document"] = "sentence",
    tokenizer: TokenizerName = "default",
) -> list[Record]:
    """Read any supported input; ``auto`` picks by extension (.jsonl/.json, .txt, else CoNLL).

    ``tokenizer`` splits text (plain-text lines, JSONL ``text``); CoNLL and JSONL ``tokens``
    keep the tokenisation of the file.
    """
    fmt = input_format(path, fmt)
    if fmt == "jsonl":
        return read_jsonl(path, scheme, label_set, tokenizer)
    if fmt == "text":
        return read_text(path, text_mode, tokenizer)
    return read_conll(path, scheme, label_set)
