"""Turn everything labelled into a publishable dataset: clean, deduplicate, check, split, count.

Pure functions on ``Record`` lists, used by the stages ``final-split``, ``final-evaluate``
and ``datacard``; nothing here reads params or touches disk (except ``to_dataset_dict``,
which only builds the object). The order of the work matters and is the order here:

1. ``gather``: seed, ledger and (optionally) gold records, each tagged with where it came
   from (``meta["origin"]``: seed | active | gold, and the annotation cycle).
2. ``clean``: Unicode NFKC and whitespace per token; tokens that are left empty go.
3. ``resolve_duplicates``: sentences with the same *dedup key* (the normalised text with
   case and spacing ignored, so ``p<0.05`` and ``P < 0.05`` meet) are one sentence. If
   the copies are labelled differently, that is an inconsistency, resolved by the policy
   (majority / latest) or held back for review, and always reported.
4. ``surface_conflicts``: the same entity string labelled as different types across the
   corpus. Reported always; under ``majority`` a string whose dominant type holds a clear
   share of its mentions gets that type everywhere (below the share, the ambiguity is
   taken as real: ``Washington`` can be a person and a place).
5. ``stratified_group_split``: sentences of one document stay together; entity types are
   spread over the splits in about the split ratios (iterative stratification, rarest
   type first, after Sechidis et al. 2011), deterministically under a seed.
6. ``split_stats`` / ``to_dataset_dict``: the numbers for the card and the HF dataset.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from nerloop.errors import NerloopError
from nerloop.records import Record, normalise_text
from nerloop.tags import iob1_to_iob2, label_list, tags_to_spans

SPLITS = ("train", "validation", "test")
ORIGINS = ("seed", "active", "gold")
POLICIES = ("review", "majority", "latest")

# Characters that NFKC keeps but that are invisible and only split otherwise equal strings.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u2060\ufeff"))
_WS = re.compile(r"\s+")
_EXAMPLES = 3  # examples per type in a surface-conflict report


class FinalizeError(NerloopError):
    """The final dataset cannot be built as asked; the message says what to change."""


# --------------------------------------------------------------------------- gathering


def gather(
    seed: Sequence[Record], ledger_entries: Sequence[dict[str, Any]], gold: Sequence[Record] | None
) -> list[Record]:
    """Seed, then ledger (in annotation order), then gold: copies tagged with origin and cycle.

    The origin travels into the published dataset so users can tell actively selected
    sentences from randomly drawn ones (the seed and gold sets) and filter on it.
    """
    out = [_tagged(r, "seed", 0) for r in seed]
    for e in ledger_entries:
        rec = Record.from_dict(e["record"])
        out.append(_tagged(rec, "active", int(e["cycle"]), annotator=e.get("annotator")))
    out += [_tagged(r, "gold", None) for r in gold or []]
    unlabelled = [r.source or r.id for r in out if r.tags is None]
    if unlabelled:
        raise FinalizeError(f"{len(unlabelled)} sentence(s) have no tags, e.g. {unlabelled[0]}")
    return out


def _tagged(rec: Record, origin: str, cycle: int | None, annotator: str | None = None) -> Record:
    meta = {"origin": origin, "cycle": cycle}
    if annotator:
        meta["annotator"] = annotator
    return Record(rec.id, list(rec.tokens), rec.text, list(rec.offsets), list(rec.tags or []), rec.source,
                  rec.doc_id, meta)


def check_label_set(records: Iterable[Record], types: Sequence[str]) -> None:
    """Every entity type used must be in the fixed label set (else the set changed mid-way)."""
    allowed = set(types)
    for r in records:
        bad = {t[2:] for t in r.tags or [] if t != "O"} - allowed
        if bad:
            raise FinalizeError(
                f"sentence {r.id} ({r.meta.get('origin', '?')}, {r.source or 'no source'}) uses {sorted(bad)}, "
                f"outside the label set {sorted(allowed)}: the label set changed between cycles"
            )


def check_label_history(history: Sequence[dict[str, Any]], types: Sequence[str], gold_types: Sequence[str]) -> None:
    """Fail if the cycles were not all scored on the same label set.

    ``evaluate`` writes ``f1_<Type>`` for every type seen in the (fixed) gold set, so a
    gold type missing from one cycle's row, or a row scoring a type outside today's
    label set, means the label set changed between cycles: sentences annotated before
    the change were never asked about the new types, and the dataset would be
    inconsistent in a way no cleaning can repair.
    """
    allowed = set(types)
    for row in history:
        scored = {k[3:] for k in row if k.startswith("f1_")}
        extra = scored - allowed
        missing = set(gold_types) - scored
        if extra or missing:
            what = (f"scored {sorted(extra)}, outside the current label set {sorted(allowed)}" if extra
                    else f"did not score {sorted(missing)}, which the gold set holds")
            raise FinalizeError(
                f"the label set changed between cycles: cycle {row.get('cycle')} {what}. Sentences annotated "
                "before the change lack the new types; re-annotate them or restart the loop with a fixed data.labels"
            )


# --------------------------------------------------------------------------- cleaning


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


# --------------------------------------------------------------------------- splitting


def check_ratios(ratios: Sequence[float]) -> None:
    if len(ratios) != len(SPLITS) or any(not 0 < x < 1 for x in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise FinalizeError(
            f"final.ratios must be {len(SPLITS)} numbers between 0 and 1 ({', '.join(SPLITS)}) summing to 1, "
            f"got {list(ratios)}"
        )


def group_key(rec: Record) -> str:
    """Sentences of one document share a key; a sentence with no document is its own group.

    Document ids are numbered per input file (CoNLL ``-DOCSTART-`` gives doc1, doc2, ...
    in every file), so the file named in ``source`` is part of the key.
    """
    if rec.doc_id is None:
        return f"sentence:{rec.id}"
    return f"doc:{rec.source.rsplit(':', 1)[0]}#{rec.doc_id}"


def _type_counts(records: Iterable[Record]) -> Counter[str]:
    return Counter(t for r in records for _, _, t in tags_to_spans(r.tags or []))


def stratified_group_split(
    records: Sequence[Record], ratios: Sequence[float], seed: int
) -> dict[str, list[Record]]:
    """Split into train/validation/test by document group, each entity type spread by the ratios.

    Iterative stratification over groups: take the entity type with the fewest mentions
    still unplaced; place each group holding it into the split that (1) has none of
    that type yet, else (2) is furthest below its target count of that type, else (3)
    furthest below its target sentence count; ties fall to the seeded random generator.
    Groups with no entity then fill the splits furthest below their sentence target.
    Rare types go first because they are the ones a careless split leaves out of a split.
    Which split a sentence lands in depends only on the records (not their order) and the seed.
    """
    check_ratios(ratios)
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        groups[group_key(r)].append(r)
    rng = random.Random(seed)
    order = sorted(groups)
    rng.shuffle(order)
    counts = {g: _type_counts(groups[g]) for g in order}
    totals = _type_counts(records)
    k = len(SPLITS)
    want_type = [{t: ratios[s] * n for t, n in totals.items()} for s in range(k)]
    want_size = [ratios[s] * len(records) for s in range(k)]
    has_type: list[set[str]] = [set() for _ in range(k)]
    assigned: dict[str, int] = {}

    def place(g: str, s: int) -> None:
        assigned[g] = s
        want_size[s] -= len(groups[g])
        for t, n in counts[g].items():
            want_type[s][t] -= n
            remaining[t] -= n
            has_type[s].add(t)

    remaining = Counter(totals)
    while any(n > 0 for n in remaining.values()):
        focal = min((t for t, n in remaining.items() if n > 0), key=lambda t: (remaining[t], t))
        for g in order:
            if g not in assigned and counts[g][focal]:
                place(g, max(range(k), key=lambda s: (focal not in has_type[s], want_type[s][focal], want_size[s],
                                                      rng.random())))
    for g in order:
        if g not in assigned:
            place(g, max(range(k), key=lambda s: (want_size[s], rng.random())))
    return {name: [r for r in records if assigned[group_key(r)] == s] for s, name in enumerate(SPLITS)}


def check_coverage(splits: dict[str, list[Record]], types: Sequence[str]) -> list[str]:
    """Fail if an entity type of the data is missing from a split; return types never seen at all.

    A split without some type cannot measure it (test) or teach it (train): the fix is
    more data or larger ratios, never a silent gap.
    """
    everywhere = _type_counts(r for recs in splits.values() for r in recs)
    for name, recs in splits.items():
        here = _type_counts(recs)
        missing = [t for t in types if everywhere[t] and not here[t]]
        if missing:
            raise FinalizeError(
                f"split {name!r} ({len(recs)} sentences) is too small to hold every entity type: no {missing}. "
                f"Those types occur {', '.join(f'{t} {everywhere[t]}x' for t in missing)} in the whole data; "
                "label more sentences holding them, or raise that split's share in final.ratios"
            )
    return [t for t in types if not everywhere[t]]


# --------------------------------------------------------------------------- statistics and export


def split_stats(splits: dict[str, list[Record]], types: Sequence[str]) -> dict[str, Any]:
    """Sentences, tokens, documents, origins and entities per type per split, and each split's share.

    ``share`` is the fraction of all mentions of a type that this split holds: with a good
    stratification it is close to the split's ratio for every type.
    """
    everywhere = _type_counts(r for recs in splits.values() for r in recs)
    n_all = sum(len(v) for v in splits.values())
    out: dict[str, Any] = {}
    for name, recs in splits.items():
        here = _type_counts(recs)
        out[name] = {
            "sentences": len(recs),
            "sentence_share": round(len(recs) / n_all, 4) if n_all else 0.0,
            "tokens": sum(len(r.tokens) for r in recs),
            "documents": len({group_key(r) for r in recs if r.doc_id is not None}),
            "origins": {o: sum(r.meta.get("origin") == o for r in recs) for o in ORIGINS},
            "entities": {t: here[t] for t in types},
            "entity_share": {t: round(here[t] / everywhere[t], 4) if everywhere[t] else 0.0 for t in types},
        }
    out["all"] = {
        "sentences": n_all,
        "tokens": sum(v["tokens"] for k, v in out.items() if k in splits),
        "entities": {t: everywhere[t] for t in types},
    }
    return out


def to_dataset_dict(splits: dict[str, list[Record]], types: Sequence[str]) -> Any:
    """A ``datasets.DatasetDict``: id, tokens, ner_tags (ClassLabel), origin, cycle, doc_id.

    ``origin`` (seed | active | gold) and ``cycle`` let users set the actively selected
    sentences apart, e.g. to measure on the randomly drawn ones only.
    """
    import datasets  # heavy import: only the stages that write the dataset pay for it

    names = label_list(types)
    features = datasets.Features({
        "id": datasets.Value("string"),
        "tokens": datasets.List(datasets.Value("string")),
        "ner_tags": datasets.List(datasets.ClassLabel(names=names)),
        "origin": datasets.Value("string"),
        "cycle": datasets.Value("int32"),
        "doc_id": datasets.Value("string"),
    })
    return datasets.DatasetDict({
        name: datasets.Dataset.from_dict(
            {"id": [r.id for r in recs], "tokens": [r.tokens for r in recs], "ner_tags": [r.tags for r in recs],
             "origin": [r.meta.get("origin") for r in recs], "cycle": [r.meta.get("cycle") for r in recs],
             "doc_id": [r.doc_id for r in recs]},
            features=features,
        )
        for name, recs in splits.items()
    })


def dataset_records(ds: Any) -> list[Record]:
    """One split of the saved dataset back into records (tags as strings), e.g. for training."""
    names = ds.features["ner_tags"].feature.names
    return [
        Record.from_tokens(row["tokens"], [names[i] for i in row["ner_tags"]], source=f"final:{row['id']}",
                           doc_id=row["doc_id"], meta={"origin": row["origin"], "cycle": row["cycle"]})
        for row in ds
    ]


def jsonl_rows(records: Iterable[Record]) -> Iterable[dict[str, Any]]:
    """The published JSONL line of a record: tags as strings, so the file explains itself."""
    for r in records:
        yield {"id": r.id, "tokens": r.tokens, "ner_tags": r.tags, "origin": r.meta.get("origin"),
               "cycle": r.meta.get("cycle"), "doc_id": r.doc_id}
