"""What every tool sends and lists back, the same way for all.

Sending: a batch record carries its pre-annotation in ``meta`` as ``pre_spans`` ([start, end, label,
confidence] character spans, from stage score) or, without confidences, ``pre_tags``. Every tool turns
it into character spans, confidences and IOB2 tags here, so a pre-annotation one tool refuses is
refused by all, before anything is sent.

Listing back: every item a tool holds for nerloop (a Doccano example, a Label Studio task) carries
everything needed to rebuild the record in its meta under ``nerloop_*`` keys, so fetch does not depend
on local files; a project's listing splits its items into ours (by sentence id) and foreign ones. An
annotator's spans are checked the same way in every tool (label set, token boundaries, overlaps) before
they become tags; only the words differ (a Doccano "span", a Label Studio "region").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from nerloop.annotation.core import accept
from nerloop.data.annotations import WINDOW_KEY, window_of
from nerloop.data.files import json_safe
from nerloop.data.records import Record
from nerloop.data.tags import char_to_token_spans, spans_to_tags, tags_to_spans, token_to_char_spans
from nerloop.errors import NerloopError, TagError

Span = tuple[int, int, str]
META_PREFIX = "nerloop_"  # keeps nerloop's keys clear of the tool's own


@dataclass
class Item:
    """One of our items in a tool's project, as listed by its API."""

    example_id: int  # the tool's id of the item (named as ``decide.Version`` expects)
    text: str
    meta: dict[str, Any]

    @property
    def sid(self) -> str:
        return str(self.meta[META_PREFIX + "id"])

    def m(self, key: str, default: Any = None) -> Any:
        return self.meta.get(META_PREFIX + key, default)


@dataclass
class Listing:
    """What listing a project found."""

    ours: dict[str, Any] = field(default_factory=dict)  # our items by sentence id
    foreign: list[int] = field(default_factory=list)  # ids of items without nerloop_id in their meta
    problems: list[str] = field(default_factory=list)

    def add(self, item: Item, pid: int, tool: str, noun: str) -> None:
        """File one listed item: ours by its sentence id, foreign (no ``nerloop_id``), or a second item of one
        sentence, a problem (the first is used); ``noun`` is what ``tool`` calls an item."""
        nid = item.meta.get(META_PREFIX + "id")
        if not isinstance(nid, str) or not nid:
            self.foreign.append(item.example_id)
        elif nid in self.ours:
            first = self.ours[nid].example_id
            self.problems.append(f"sentence {nid}: {tool} {noun}s {first} and {item.example_id} of project {pid} both "
                                 f"carry it; only {noun} {first} is used — delete the other one")
        else:
            self.ours[nid] = item


def item_meta(rec: Record, cycle: int, spans: list[Span], tags: list[str], *, digest_key: str, digest: str,
              after_tags: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``nerloop_*`` meta of the item that carries ``rec`` (its pre-annotation as :func:`pre_annotation` made
    it), in the order a tool shows it: enough to rebuild the record at fetch, the pre-annotation, why it was chosen.

    The text's digest goes under the tool's own key, and ``after_tags`` (what only one tool sends) after the
    tags; ``nerloop_qc`` and ``nerloop_assigned`` are filled in once the batch is shared out.
    """
    return {
        META_PREFIX + "id": rec.id,
        META_PREFIX + "cycle": int(cycle),
        META_PREFIX + "qc": False,
        META_PREFIX + "assigned": [],
        META_PREFIX + "tokens": list(rec.tokens),
        META_PREFIX + "offsets": [[int(s), int(e)] for s, e in rec.offsets],
        digest_key: digest,
        META_PREFIX + "source": rec.source or "",
        META_PREFIX + "doc_id": rec.doc_id,
        META_PREFIX + "pre_tags": tags if spans or rec.meta.get("pre_tags") is not None else None,
        **(after_tags or {}),
        META_PREFIX + "scores": json_safe(dict(rec.meta.get("scores") or {})),
        META_PREFIX + "selection": rec.meta.get("selection"),
        META_PREFIX + "cluster": rec.meta.get("cluster"),
        META_PREFIX + "review": review_mode(rec),
        # only for a sentence asked in part (select.unit: window), so that other items' meta stays as it was
        **({META_PREFIX + WINDOW_KEY: window_of(rec.meta)} if window_of(rec.meta) is not None else {}),
    }


def review_mode(rec: Record) -> str:
    """How the sentence is to be reviewed: ``accept.ACCEPT`` (in one key) or ``accept.EDIT`` (an outbox made before
    the mode existed has no ``meta["review"]``: edit)."""
    return accept.ACCEPT if rec.meta.get(accept.MODE_KEY) == accept.ACCEPT else accept.EDIT


def pre_annotation(rec: Record, labels: list[str], error: type[NerloopError]
                   ) -> tuple[list[Span], list[float | None], list[str]]:
    """The record's pre-annotation as character spans (+ confidences) and IOB2 tags, validated.

    A label outside ``labels`` or spans that do not fit the tokens raise ``error`` (the tool's own data
    error), naming the sentence.
    """
    spans: list[Span] = []
    confs: list[float | None] = []
    if rec.meta.get("pre_spans") is not None:
        for item in rec.meta["pre_spans"]:
            spans.append((int(item[0]), int(item[1]), str(item[2])))
            confs.append(float(item[3]) if len(item) > 3 and item[3] is not None else None)
    elif rec.meta.get("pre_tags") is not None:
        spans = token_to_char_spans(rec.offsets, tags_to_spans(rec.meta["pre_tags"]))
        confs = [None] * len(spans)
    bad = sorted({label for _, _, label in spans} - set(labels))
    if bad:
        raise error(f"sentence {rec.id}: pre-annotation labels {bad} are not in the label set {labels}; "
                    "nothing was sent")
    try:
        tags = spans_to_tags(len(rec.tokens), char_to_token_spans(rec.offsets, spans))
    except TagError as exc:
        raise error(f"sentence {rec.id}: bad pre-annotation: {exc}; nothing was sent") from None
    return spans, confs, tags


@dataclass(frozen=True)
class SpanWords:
    """How a tool words the problems :func:`checked_tags` finds: what it calls a span, and how each is fixed."""

    noun: str  # "span", "region"
    tool: str  # "Doccano", where the annotator keeps one of two overlapping spans
    relabel: str  # where and how a span with an unknown label is given another: "in Doccano and mark ..."
    refit: str  # where and how a span off the token boundaries is fixed: "in Doccano"


def checked_tags(spans: Iterable[Span | str], offsets: list[tuple[int, int]], text: str, labels: list[str],
                 where: str, words: SpanWords) -> tuple[list[str] | None, list[str]]:
    """An annotator's character spans -> IOB2 tags on the original tokens, or None and the problems found.

    ``spans`` come in the tool's order; a string among them is a problem the tool found reading that span
    itself (a region with two labels), kept in its place so that the problems read in the tool's order.
    """
    problems: list[str] = []
    kept: list[Span] = []
    for span in spans:
        if isinstance(span, str):
            problems.append(span)
            continue
        s, e, label = span
        shown = text[s:e]
        if label not in labels:
            problems.append(
                f"{where}: {words.noun} [{s}, {e}) {shown!r} has label {label!r}, which is not in the label set "
                f"{labels}. Give the {words.noun} one of those labels {words.relabel}, or add {label!r} to "
                "data.labels and re-run prepare"
            )
            continue
        try:
            char_to_token_spans(offsets, [(s, e, label)])
        except TagError as exc:
            problems.append(f"{where}: {exc} (text {shown!r}); fix the {words.noun} {words.refit}")
            continue
        kept.append((s, e, label))
    widest: Span | None = None  # the span reaching furthest right so far
    for s2, e2, l2 in sorted(kept):
        if widest is not None and s2 < widest[1]:
            s1, e1, l1 = widest
            problems.append(f"{where}: {words.noun}s [{s1}, {e1}) {l1} and [{s2}, {e2}) {l2} overlap; keep one of "
                            f"them in {words.tool}")
        if widest is None or e2 > widest[1]:
            widest = (s2, e2, l2)
    if problems:
        return None, problems
    return spans_to_tags(len(offsets), char_to_token_spans(offsets, kept)), []
