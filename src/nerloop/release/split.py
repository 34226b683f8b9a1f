"""Steps 5-6 of the release: the stratified, document-grouped split, its coverage check, the numbers for
the card and the Hugging Face dataset built from the splits.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from nerloop.data.records import Record
from nerloop.data.tags import label_list, tags_to_spans
from nerloop.release.gather import ORIGINS, SPLITS, FinalizeError


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
