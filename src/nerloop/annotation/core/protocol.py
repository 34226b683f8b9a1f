"""What every tool sends and lists back, the same way for all.

Sending: a batch record carries its pre-annotation in ``meta`` as ``pre_spans`` ([start, end, label,
confidence] character spans, from stage score) or, without confidences, ``pre_tags``. Every tool turns
it into character spans, confidences and IOB2 tags here, so a pre-annotation one tool refuses is
refused by all, before anything is sent.

Listing back: every item a tool holds for nerloop (a Doccano example, a Label Studio task) carries
everything needed to rebuild the record in its meta under ``nerloop_*`` keys, so fetch does not depend
on local files; a project's listing splits its items into ours (by sentence id) and foreign ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
