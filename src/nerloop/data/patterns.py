"""Patterns and gazetteers (``data.patterns``): pre-annotate what the model does not know yet.

Teams rarely start from nothing: they have a list of drug or company names, or a few token patterns.
The seed-only model's first pre-annotations are mostly wrong (issue #29: annotators deleted far more
spans than they kept), so where the model is weak or absent a match from such a list is a better
starting point, and sentences with matches are worth annotating first.

Two file formats, picked by extension:

- ``.txt`` / ``.tsv``: a gazetteer, one name and its type per line separated by a TAB
  (``Acme Corp<TAB>ORG``); blank lines and lines starting with ``#`` are skipped.
- anything else: JSONL in the spaCy EntityRuler / Prodigy patterns format, one object per line:
  ``{"label": "ORG", "pattern": "Acme Corp"}`` (a phrase) or
  ``{"label": "ORG", "pattern": [{"LOWER": "acme"}, {"IS_TITLE": true}]}`` (a token pattern),
  with an optional ``"id"`` that names the pattern in the pre-annotation's sources.

Matching is spaCy's, not a hand-written loop: phrases and gazetteer names go to a ``PhraseMatcher``
(on ``ORTH``, or ``LOWER`` for case-insensitive phrases), token patterns to a ``Matcher``. Both run on
a ``Doc`` built from the record's own tokens, so a match always lands on nerloop's token boundaries;
a phrase is split into tokens by ``data.tokenizer``, the tokeniser the pool is split with. Token
patterns may only use attributes that the words alone determine (``LOWER``, ``IS_TITLE``, ``SHAPE``,
...): nerloop runs no spaCy pipeline, so ``POS`` or ``LEMMA`` would silently never match and are
refused instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from nerloop.data.tags import spans_to_tags
from nerloop.data.tokenizers import TokenizerName, tokenize
from nerloop.errors import DataError

PatternAttr = Literal["ORTH", "LOWER"]
GAZETTEER_SUFFIXES = (".txt", ".tsv")
MODEL_SOURCE = "model"

# token attributes that only a trained spaCy pipeline sets (or that nerloop's Doc does not carry): on nerloop's
# bare tokens they are empty, so a pattern using them could never match
_PIPELINE_ATTRS = {"POS", "TAG", "MORPH", "DEP", "LEMMA", "ENT_TYPE", "ENT_IOB", "ENT_ID", "ENT_KB_ID",
                   "SENT_START", "IS_SENT_START", "SPACY", "_"}


@dataclass(frozen=True)
class Pattern:
    """One entry of a patterns file: a phrase (``str``) or a token pattern (a list of token dicts)."""

    label: str
    pattern: str | list[dict[str, Any]]
    id: str | None
    line: int  # 1-based, so an error at match-compile time can still name it

    @property
    def name(self) -> str:
        """How the pre-annotation names where a span came from: the pattern's id, else its label."""
        return self.id or self.label


class PatternSpan(NamedTuple):
    """A match on a record's tokens: ``end`` exclusive, ``pattern_id`` as :attr:`Pattern.name`."""

    start: int
    end: int
    label: str
    pattern_id: str


class PreSpan(NamedTuple):
    """One span of a merged pre-annotation on token positions, with where it came from."""

    start: int
    end: int
    label: str
    confidence: float | None
    source: str  # "model" or "pattern:<id or label>"


def _parse_jsonl_line(path: Path, n: int, line: str) -> Pattern:
    """One JSONL line as a Pattern; a DataError naming the line for anything a matcher could not take."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(path, n, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise DataError(path, n, f'expected an object like {{"label": "ORG", "pattern": "Acme Corp"}}, got '
                                 f"{type(obj).__name__}")
    unknown = sorted(set(obj) - {"label", "pattern", "id"})
    if unknown:
        raise DataError(path, n, f"unknown key(s) {unknown}: a pattern has only label, pattern and an optional id")
    for key in ("label", "pattern"):
        if key not in obj:
            raise DataError(path, n, f'no "{key}"')
    label, pattern, pid = obj["label"], obj["pattern"], obj.get("id")
    if not isinstance(label, str) or not label:
        raise DataError(path, n, f'"label" must be a non-empty string, got {label!r}')
    if pid is not None and (not isinstance(pid, str) or not pid):
        raise DataError(path, n, f'"id" must be a non-empty string, got {pid!r}')
    if isinstance(pattern, str):
        return Pattern(label, pattern, pid, n)
    if not isinstance(pattern, list) or not all(isinstance(t, dict) for t in pattern):
        raise DataError(path, n, '"pattern" must be a phrase (a string) or a token pattern (a list of objects, '
                                 'e.g. [{"LOWER": "acme"}])')
    if not pattern:
        raise DataError(path, n, "empty token pattern: it would match nothing")
    for i, token in enumerate(pattern):
        needs_pipeline = sorted(k for k in token if k.upper() in _PIPELINE_ATTRS)
        if needs_pipeline:
            raise DataError(path, n, f"token {i}: attribute(s) {needs_pipeline} need a trained spaCy pipeline, which "
                                     "nerloop does not run: use ORTH, LOWER, SHAPE, IS_TITLE, LIKE_NUM and the like")
    return Pattern(label, pattern, pid, n)


def _parse_gazetteer_line(path: Path, n: int, line: str) -> Pattern | None:
    """One gazetteer line (``name<TAB>type``) as a Pattern; None for a blank line or a ``#`` comment."""
    if not line.strip() or line.lstrip().startswith("#"):
        return None
    fields = line.split("\t")
    if len(fields) != 2:
        what = "no TAB" if len(fields) == 1 else f"{len(fields) - 1} TABs"
        raise DataError(path, n, f"{what}: a gazetteer line is a name and its type separated by one TAB "
                                 f"(Acme Corp<TAB>ORG), got {line!r}")
    name, label = fields[0].strip(), fields[1].strip()
    if not label:
        raise DataError(path, n, f"no type after the TAB in {line!r}")
    return Pattern(label, name, None, n)


def read_patterns(path: str | Path, labels: Iterable[str] | None) -> list[Pattern]:
    """Every entry of a patterns file (format by extension), checked, or a DataError naming file and line.

    ``labels`` is the label set: a pattern of another type is an error (its matches could not be
    sent). ``None`` skips that check, for callers that do not know the label set yet.
    """
    path = Path(path)
    allowed = sorted(labels) if labels is not None else None
    gazetteer = path.suffix.lower() in GAZETTEER_SUFFIXES
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, None, "patterns file not found") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(path, line, "not valid UTF-8") from None
    patterns: list[Pattern] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.lstrip("\ufeff") if n == 1 else raw
        if gazetteer:
            pattern = _parse_gazetteer_line(path, n, line)
        else:
            pattern = _parse_jsonl_line(path, n, line) if line.strip() else None
        if pattern is None:
            continue
        if isinstance(pattern.pattern, str) and not pattern.pattern.strip():
            raise DataError(path, n, "empty phrase: it would match nothing")
        if allowed is not None and pattern.label not in allowed:
            raise DataError(path, n, f"label {pattern.label!r} is not in the label set {allowed}")
        patterns.append(pattern)
    if not patterns:
        raise DataError(path, None, "no patterns in the file")
    return patterns


def _problems(exc: Exception) -> str:
    """spaCy's multi-line validation message as one line: the ``- [pattern -> ...] problem`` items."""
    items = [ln.strip()[2:] for ln in str(exc).splitlines() if ln.strip().startswith("- ")]
    return "; ".join(items) or " ".join(str(exc).split())


class PatternSet:
    """Compiled patterns: one spaCy PhraseMatcher and one Matcher, ready to match any record's tokens.

    Each pattern is added under its own key (its position in the file), so an exact tie between two
    matches (the same tokens, two types) goes to the pattern written first, not to whatever order
    spaCy returns them in. spaCy is imported here, not with the module: it takes seconds to load, and
    a project without ``data.patterns`` never needs it.
    """

    def __init__(self, path: str | Path, patterns: Sequence[Pattern], tokenizer: TokenizerName = "default",
                 attr: PatternAttr = "ORTH") -> None:
        import spacy
        from spacy.matcher import Matcher, PhraseMatcher
        from spacy.tokens import Doc

        self.path = Path(path)
        self.patterns = list(patterns)
        self.vocab = spacy.blank("en").vocab  # English lexical attributes (IS_STOP, LIKE_NUM); no model is loaded
        self.phrases = PhraseMatcher(self.vocab, attr=attr)
        self.tokens = Matcher(self.vocab, validate=True)
        for i, p in enumerate(self.patterns):
            try:
                if isinstance(p.pattern, str):
                    words = tokenize(p.pattern, tokenizer)[0]
                    self.phrases.add(str(i), [Doc(self.vocab, words=words)])
                else:
                    self.tokens.add(str(i), [p.pattern])
            except (ValueError, KeyError, TypeError) as exc:  # spaCy's MatchPatternError is a ValueError
                raise DataError(self.path, p.line, f"spaCy cannot use this pattern: {_problems(exc)}") from None

    def __len__(self) -> int:
        return len(self.patterns)

    def match(self, tokens: Sequence[str]) -> tuple[list[str], list[PatternSpan]]:
        """IOB2 tags over ``tokens`` and the matched spans, overlaps resolved as spaCy's ``filter_spans`` does.

        Longest match first, then the earliest; an exact tie goes to the pattern earlier in the file.
        """
        from spacy.tokens import Doc, Span
        from spacy.util import filter_spans

        doc = Doc(self.vocab, words=list(tokens))
        matchers = [m for m in (self.phrases, self.tokens) if len(m)]  # an empty one would warn on every call
        found = {(s, e, int(self.vocab.strings[key])) for m in matchers for key, s, e in m(doc)}
        spans = [Span(doc, s, e, label=str(i)) for s, e, i in sorted(found, key=lambda m: (m[2], m[0], m[1]))]
        out = [PatternSpan(sp.start, sp.end, self.patterns[int(sp.label_)].label, self.patterns[int(sp.label_)].name)
               for sp in filter_spans(spans)]
        return spans_to_tags(len(tokens), [(s.start, s.end, s.label) for s in out]), out


def load_patterns(path: str | Path, labels: Iterable[str] | None, tokenizer: TokenizerName = "default",
                  attr: PatternAttr = "ORTH") -> PatternSet:
    """Read, check and compile a patterns file in one step: a PatternSet, or a DataError naming file and line.

    Nothing is half-applied: the first bad line stops the load, and no partial set is returned.
    """
    return PatternSet(path, read_patterns(path, labels), tokenizer, attr)


def merge_pre_annotation(model: Sequence[tuple[int, int, str, float | None]], patterns: Sequence[PatternSpan],
                         learned: set[str], pattern_confidence: float) -> list[PreSpan]:
    """The model's pre-annotation with pattern matches added where the model is weak or absent.

    - A match of a type the model has not learned (no labelled span of it so far; every type when
      there is no model) is always used: the model cannot propose it, so any model span on its
      tokens is dropped in its favour.
    - A match of a learned type is used only where the model predicts no entity on any of its
      tokens: where the model has an opinion it is kept, since a name list knows no context.
    - A model span of a type with no labelled span is dropped: the head for that type has learned
      nothing, so what it proposes is noise, not a suggestion worth correcting.
    - Every other model span is kept as it was.

    ``model`` holds token spans with confidences; pattern spans never overlap one another (see
    :meth:`PatternSet.match`), so the result never overlaps either. Sorted by start.
    """
    forced = [p for p in patterns if p.label not in learned]
    taken = {i for p in forced for i in range(p.start, p.end)}
    predicted = {i for s, e, _, _ in model for i in range(s, e)}
    out = [PreSpan(s, e, lab, conf, MODEL_SOURCE) for s, e, lab, conf in model
           if lab in learned and not taken.intersection(range(s, e))]
    out += [PreSpan(p.start, p.end, p.label, pattern_confidence, f"pattern:{p.pattern_id}") for p in patterns
            if p.label not in learned or not predicted.intersection(range(p.start, p.end))]
    return sorted(out, key=lambda sp: sp.start)
