"""IOB tag schemes and conversions between tags, token spans and character spans.

Inside nerloop every tag sequence is strict IOB2 (an entity always opens with B-).
Readers convert IOB1 input on the way in; seqeval is then run in strict IOB2 mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from nerloop.errors import TagError

Span = tuple[int, int, str]  # (start, end exclusive, label): token or character positions


def split_tag(tag: str) -> tuple[str, str | None]:
    """'B-PER' -> ('B', 'PER'); 'O' -> ('O', None). Raises TagError on anything else."""
    if tag == "O":
        return "O", None
    if len(tag) > 2 and tag[1] == "-" and tag[0] in "BI":
        return tag[0], tag[2:]
    raise TagError(-1, f"malformed tag {tag!r} (expected O, B-TYPE or I-TYPE)")


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """Convert IOB1 (I- may open an entity; B- only splits two adjacent ones) to IOB2."""
    out: list[str] = []
    prev_type: str | None = None
    for i, tag in enumerate(tags):
        try:
            prefix, etype = split_tag(tag)
        except TagError as exc:
            raise TagError(i, str(exc)) from None  # the position, so readers can name the line
        if prefix == "I" and etype != prev_type:
            tag = f"B-{etype}"
        out.append(tag)
        prev_type = etype
    return out


def check_iob2(tags: Sequence[str], label_set: Iterable[str] | None = None) -> None:
    """Raise TagError at the first tag that breaks strict IOB2 or is outside ``label_set``.

    ``label_set`` holds entity types (PER, ORG, ...), not tags.
    """
    allowed = set(label_set) if label_set is not None else None
    prev_type: str | None = None
    for i, tag in enumerate(tags):
        try:
            prefix, etype = split_tag(tag)
        except TagError as exc:
            raise TagError(i, str(exc)) from None
        if allowed is not None and etype is not None and etype not in allowed:
            raise TagError(i, f"tag {tag!r}: type {etype!r} is not in the label set {sorted(allowed)}")
        if prefix == "I" and etype != prev_type:
            raise TagError(i, f"tag {tag!r} continues an entity of type {etype!r} that is not open (IOB2)")
        prev_type = etype


def tags_to_spans(tags: Sequence[str]) -> list[Span]:
    """Token spans of the entities in an IOB2 sequence."""
    spans: list[Span] = []
    start, etype = -1, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, t = split_tag(tag)
        if etype is not None and (prefix != "I" or t != etype):
            spans.append((start, i, etype))
            etype = None
        if prefix == "B" or (prefix == "I" and etype is None):
            start, etype = i, t
    return spans


def spans_to_tags(n_tokens: int, spans: Iterable[Span]) -> list[str]:
    """IOB2 tags for ``n_tokens`` tokens from non-overlapping token spans."""
    tags = ["O"] * n_tokens
    for start, end, label in sorted(spans):
        if not 0 <= start < end <= n_tokens:
            raise TagError(start, f"span ({start}, {end}) is outside 0..{n_tokens}")
        if any(t != "O" for t in tags[start:end]):
            raise TagError(start, f"span ({start}, {end}, {label}) overlaps another span")
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
    return tags


def token_to_char_spans(offsets: Sequence[tuple[int, int]], spans: Iterable[Span]) -> list[Span]:
    """Token spans -> character spans, using each token's (start, end) offsets."""
    return [(offsets[s][0], offsets[e - 1][1], label) for s, e, label in spans]


def char_to_token_spans(offsets: Sequence[tuple[int, int]], spans: Iterable[Span]) -> list[Span]:
    """Character spans -> token spans. A span must start at a token start and end at a token end.

    Never snaps: a span off token boundaries raises TagError naming the nearest boundaries,
    because silently moving a human's span would change their annotation.
    """
    starts = {s: i for i, (s, _) in enumerate(offsets)}
    ends = {e: i for i, (_, e) in enumerate(offsets)}
    out: list[Span] = []
    for start, end, label in spans:
        if start in starts and end in ends and starts[start] <= ends[end]:
            out.append((starts[start], ends[end] + 1, label))
            continue
        near_s = min((s for s, _ in offsets), key=lambda s: abs(s - start), default=0)
        near_e = min((e for _, e in offsets), key=lambda e: abs(e - end), default=0)
        raise TagError(
            -1,
            f"span [{start}, {end}) {label!r} is not on token boundaries; "
            f"nearest token boundaries are [{near_s}, {near_e})",
        )
    return out


def entity_types(tag_seqs: Iterable[Sequence[str]]) -> list[str]:
    """Sorted entity types that occur in some tag sequences."""
    types = {t[2:] for tags in tag_seqs for t in tags if t != "O"}
    return sorted(types)


def label_list(types: Iterable[str]) -> list[str]:
    """The model's label list: O, then B-/I- for each entity type, in a fixed order."""
    labels = ["O"]
    for t in sorted(types):
        labels += [f"B-{t}", f"I-{t}"]
    return labels
