"""Steps 2-4 of the release: clean tokens, resolve duplicate sentences, drop sentences near the gold set,
and find (and under ``majority`` resolve) one surface string labelled as different types.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from nerloop.data.records import Record, normalise_text
from nerloop.data.tags import iob1_to_iob2, tags_to_spans
from nerloop.release.gather import FinalizeError

POLICIES = ("review", "majority", "latest")

# Characters that NFKC keeps but that are invisible and only split otherwise equal strings.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u2060\ufeff"))
_WS = re.compile(r"\s+")
_EXAMPLES = 3  # examples per type in a surface-conflict report


def clean_token(token: str) -> str:
    """NFKC, invisible characters removed, inner whitespace runs made one space, ends stripped."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", token).translate(_INVISIBLE)).strip()


def clean(records: Sequence[Record]) -> tuple[list[Record], dict[str, Any]]:
    """Normalise every token; rebuild the records whose tokens changed.

    A record whose tokens are unchanged keeps its id and text, so it can still be found
    in the ledger; a changed one gets the id of its cleaned text and keeps the old id in
    ``meta["original_id"]``. Records with no token left are dropped and reported.
    """
    out: list[Record] = []
    changed, tokens_changed, tokens_removed, emptied = 0, 0, 0, []
    examples: list[dict[str, Any]] = []
    for r in records:
        toks = [clean_token(t) for t in r.tokens]
        if toks == r.tokens:
            out.append(r)
            continue
        kept = [(t, tag) for t, tag in zip(toks, r.tags or [], strict=True) if t]
        tokens_changed += sum(a != b and b != "" for a, b in zip(r.tokens, toks, strict=True))
        tokens_removed += len(toks) - len(kept)
        if not kept:
            emptied.append(r.id)
            continue
        changed += 1
        new = Record.from_tokens([t for t, _ in kept], iob1_to_iob2([tag for _, tag in kept]), source=r.source,
                                 doc_id=r.doc_id, meta=r.meta | {"original_id": r.id})
        out.append(new)
        if len(examples) < 5:
            examples.append({"id": r.id, "before": r.text, "after": new.text})
    report = {"records_changed": changed, "tokens_normalised": tokens_changed, "tokens_removed": tokens_removed,
              "records_emptied": emptied, "examples": examples}
    return out, report


# --------------------------------------------------------------------------- duplicates


def dedup_key(tokens: Sequence[str]) -> tuple[str, list[int]]:
    """The text identity for duplicates, and where each token starts in it.

    Normalised, case-folded and with all whitespace removed, so sentences that differ
    only in case, spacing or tokenisation meet. The token starts let two copies with
    different tokenisations compare their entities on the same character positions.
    """
    pieces = [_WS.sub("", normalise_text(t).casefold()) for t in tokens]
    starts, pos = [], 0
    for p in pieces:
        starts.append(pos)
        pos += len(p)
    return "".join(pieces), [*starts, pos]


def labelling(rec: Record) -> tuple[tuple[int, int, str], ...]:
    """A record's entities as character spans in its dedup key: comparable across tokenisations."""
    _, starts = dedup_key(rec.tokens)
    return tuple((starts[s], starts[e], t) for s, e, t in tags_to_spans(rec.tags or []))


def _brief(rec: Record) -> dict[str, Any]:
    """What a reviewer needs to find and fix one copy of a sentence."""
    return {"id": rec.id, "origin": rec.meta.get("origin"), "cycle": rec.meta.get("cycle"), "source": rec.source,
            "tokens": rec.tokens, "tags": rec.tags}


def _entities(rec: Record) -> list[list[str]]:
    return [[" ".join(rec.tokens[s:e]), t] for s, e, t in tags_to_spans(rec.tags or [])]


def resolve_duplicates(records: Sequence[Record], policy: str) -> tuple[list[Record], dict[str, Any]]:
    """Keep one copy of each sentence; resolve or hold back copies labelled differently.

    ``policy``: ``majority`` keeps the labelling most copies agree on (a tie cannot be
    decided and is held back); ``latest`` keeps the last copy in gathering order (seed,
    then cycles in order, then gold: the reference labels count as the latest word);
    ``review`` holds every conflicting sentence back. Held-back sentences are left out
    of the dataset and listed with all their copies, for a person to fix at the source.
    """
    if policy not in POLICIES:
        raise FinalizeError(f"conflict policy must be one of {POLICIES}, got {policy!r}")
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[dedup_key(r.tokens)[0]].append(r)
    kept: list[Record] = []
    dup_examples: list[dict[str, Any]] = []
    conflicts: list[dict[str, Any]] = []
    removed = held = 0  # copies dropped because another copy stays; copies held back for review
    for r in records:  # walk in input order so the output order is the input order
        copies = groups.get(dedup_key(r.tokens)[0])
        if copies is None or copies[0] is not r:
            continue  # not the first copy: its group is handled (or was) at the first one
        variants: dict[tuple, list[Record]] = defaultdict(list)
        for c in copies:
            variants[labelling(c)].append(c)
        if len(variants) == 1:
            kept.append(copies[0])
            removed += len(copies) - 1
            if len(copies) > 1 and len(dup_examples) < 20:
                dup_examples.append({"kept": copies[0].id, "dropped": [c.id for c in copies[1:]],
                                     "text": copies[0].text})
            continue
        ranked = sorted(variants.values(), key=len, reverse=True)
        winner: Record | None = None
        if policy == "majority":
            if len(ranked[0]) > len(ranked[1]):
                winner, resolution = ranked[0][0], f"majority: {len(ranked[0])} of {len(copies)} copies agree"
            else:
                n = len(ranked[0])
                resolution = f"tie ({n} {'copy' if n == 1 else 'copies'} each): held for review"
        elif policy == "latest":
            winner, resolution = copies[-1], f"latest: the {copies[-1].meta.get('origin')} copy"
        else:
            resolution = "held for review (conflict_policy: review)"
        if winner is not None:
            kept.append(winner)
            removed += len(copies) - 1
        else:
            held += len(copies)
        conflicts.append({
            "text": copies[0].text,
            "resolution": resolution,
            "kept": winner.id if winner is not None else None,
            "variants": [{"copies": len(v), "entities": _entities(v[0]), "records": [_brief(c) for c in v]}
                         for v in ranked],
        })
    report = {
        "duplicate_groups": sum(len(g) > 1 for g in groups.values()),
        "removed": removed,
        "examples": dup_examples,
        "same_text_conflicts": len(conflicts),
        "resolved": sum(c["kept"] is not None for c in conflicts),
        "held_for_review": held,
        "conflicts": conflicts,
    }
    return kept, report


def drop_near_gold(records: Sequence[Record], gold: Sequence[Record]) -> tuple[list[Record], list[str]]:
    """Without the gold set in the splits, no near-copy of a gold sentence may be in them either."""
    gold_keys = {dedup_key(g.tokens)[0] for g in gold}
    kept = [r for r in records if dedup_key(r.tokens)[0] not in gold_keys]
    return kept, [r.id for r in records if dedup_key(r.tokens)[0] in gold_keys]


# --------------------------------------------------------------------------- surface strings


def surface(tokens: Sequence[str]) -> str:
    """The comparison form of an entity string: normalised and case-folded."""
    return normalise_text(" ".join(tokens)).casefold()


def surface_conflicts(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Entity strings labelled as more than one type, most frequent first, with examples."""
    types: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, dict[str, list[dict[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        for s, e, t in tags_to_spans(r.tags or []):
            key = surface(r.tokens[s:e])
            types[key][t] += 1
            if len(examples[key][t]) < _EXAMPLES:
                examples[key][t].append({"id": r.id, "origin": r.meta.get("origin"), "text": r.text})
    out = []
    for key, counts in types.items():
        if len(counts) > 1:
            out.append({"surface": key, "mentions": sum(counts.values()), "types": dict(counts.most_common()),
                        "examples": {t: examples[key][t] for t in counts}})
    out.sort(key=lambda c: (-c["mentions"], c["surface"]))
    return out


def resolve_surface_conflicts(
    records: Sequence[Record], conflicts: list[dict[str, Any]], policy: str, min_share: float
) -> tuple[list[Record], list[dict[str, Any]]]:
    """Under ``majority``, give a string its dominant type where that type holds ``min_share``.

    Only the type of a mention changes, never its boundaries. Every change is returned
    (and reported); each conflict gets a ``resolution`` saying what was done. Other
    policies only report: "latest" has no meaning across different sentences.
    """
    target: dict[str, str] = {}
    for c in conflicts:
        top, n = next(iter(c["types"].items()))
        share = n / c["mentions"]
        if policy == "majority" and share >= min_share:
            target[c["surface"]] = top
            c["resolution"] = f"relabelled to {top} ({share:.0%} of mentions >= type_majority {min_share:.0%})"
        elif policy == "majority":
            c["resolution"] = f"left as is: {top} holds only {share:.0%} of mentions (< {min_share:.0%})"
        else:
            c["resolution"] = f"reported only (conflict_policy: {policy})"
    if not target:
        return list(records), []
    out, changes = [], []
    for r in records:
        tags = list(r.tags or [])
        for s, e, t in tags_to_spans(tags):
            new = target.get(surface(r.tokens[s:e]))
            if new and new != t:
                tags[s:e] = [f"B-{new}"] + [f"I-{new}"] * (e - s - 1)
                changes.append({"id": r.id, "origin": r.meta.get("origin"), "surface": " ".join(r.tokens[s:e]),
                                "from": t, "to": new})
        out.append(r if tags == r.tags else Record(r.id, r.tokens, r.text, r.offsets, tags, r.source, r.doc_id,
                                                   r.meta))
    return out, changes
