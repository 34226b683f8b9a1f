"""Stage ``prepare``: read seed, pool and gold; validate; deduplicate; write canonical JSONL.

The gold set is the fixed yardstick of every cycle, so nothing in it may be selected,
trained on or left in the pool; exact duplicates inside the pool would be asked twice.
"""

from __future__ import annotations

import logging

from nerloop import paths
from nerloop.data.files import write_json, write_records
from nerloop.data.formats import read_any
from nerloop.data.labelled import type_counts
from nerloop.data.records import Record
from nerloop.data.tags import entity_types
from nerloop.errors import DataError
from nerloop.params import DataParams, load_params
from nerloop.stages import run

log = logging.getLogger(__name__)


def dedupe(records: list[Record], exclude: set[str] = frozenset()) -> tuple[list[Record], int]:
    """Keep the first copy of each sentence id not in ``exclude``; return kept and dropped count."""
    seen = set(exclude)
    kept = []
    for r in records:
        if r.id not in seen:
            seen.add(r.id)
            kept.append(r)
    return kept, len(records) - len(kept)


def unseen_types(labels: list[str], sets: dict[str, tuple[str, list[Record]]]) -> dict[str, list[str]]:
    """Per labelled set (name -> (file, records)): the label-set types with no example in it; each is warned about.

    A type with no seed example cannot be learnt by the first model, so it is never
    predicted and its F1 stays 0 until chance brings one in; one with no gold example
    cannot be measured at all. Both are easy to miss in a table of per-type scores.
    """
    out = {}
    for name, (path, records) in sets.items():
        out[name] = [t for t, k in type_counts(records, labels).items() if k == 0]
        for t in out[name]:
            hint = ("the first model cannot learn it; add seed sentences with it, or set select.rare_bonus > 0 so "
                    "selection looks for sentences where the model gives it probability"
                    if name == "seed" else "its F1 cannot be measured")
            log.warning("entity type %r of the label set has no example in the %s set (%s): %s", t, name, path, hint)
    return out


def check_usable(seed: list[Record], pool: list[Record], p: DataParams) -> None:
    """Stop before anything is written when the loop could not learn or select anything.

    Both happened silently before: a pool lying wholly inside the gold (or seed) set committed an
    empty batch, and a seed set without one entity committed a model with gold F1 0.000.
    """
    if not pool:
        raise DataError(p.pool, None, "no pool sentence is left after removing those in the gold set "
                        f"({p.gold}) or the seed set ({p.seed}): the pool must hold sentences to select from")
    if not any(t != "O" for r in seed for t in r.tags or []):
        raise DataError(p.seed, None, "the seed set has no entity at all: label the entities in the seed "
                        "sentences (the model cannot learn a type it has never seen)")


def main() -> None:
    p = load_params().data
    labels = p.labels
    seed = read_any(p.seed, p.format, p.scheme, labels, p.text_mode, p.tokenizer)
    gold = read_any(p.gold, p.format, p.scheme, labels, p.text_mode, p.tokenizer)
    for name, recs, path in (("seed", seed, p.seed), ("gold", gold, p.gold)):
        unlabelled = [r.source for r in recs if r.tags is None]
        if unlabelled:
            raise DataError(path, None, f"the {name} set must be labelled; {unlabelled[0]} has no tags")
    pool = read_any(p.pool, p.format, p.scheme, labels, p.text_mode, p.tokenizer)
    for r in pool:
        r.tags = None  # labels in a pool file are never used: they would leak answers into selection
    if labels is None:
        labels = entity_types(r.tags for r in seed + gold)
        log.info("label set inferred from seed and gold: %s", labels)

    gold, gold_dups = dedupe(gold)
    gold_ids = {r.id for r in gold}
    in_gold = [r for r in seed if r.id in gold_ids]
    if in_gold:  # gold wins (it must stay untrained on), but the seed set shrinks: say so
        log.warning("%d seed sentence(s) are also in the gold set (%s) and are left out of the seed set, e.g. %s "
                    "(%s): take them out of one of the two files to silence this", len(in_gold), p.gold,
                    in_gold[0].source or in_gold[0].id, " ".join(in_gold[0].tokens)[:80])
    seed, seed_dups = dedupe(seed, exclude=gold_ids)
    pool, pool_dropped = dedupe(pool, exclude={r.id for r in gold} | {r.id for r in seed})

    check_usable(seed, pool, p)

    write_records(paths.SEED, seed)
    write_records(paths.GOLD, gold)
    write_records(paths.POOL, pool)
    unseen = unseen_types(labels, {"seed": (p.seed, seed), "gold": (p.gold, gold)})
    write_json(paths.LABELS, {"entity_types": labels, "no_seed_example": unseen["seed"],
                              "no_gold_example": unseen["gold"]})
    stats = {
        "seed_sentences": len(seed),
        "pool_sentences": len(pool),
        "gold_sentences": len(gold),
        "dropped_gold_duplicates": gold_dups,
        "dropped_seed_duplicates_or_in_gold": seed_dups,
        "seed_sentences_in_gold": len(in_gold),
        "dropped_pool_duplicates_or_labelled": pool_dropped,
    }
    write_json(paths.METRICS / "prepare.json", stats)
    print(", ".join(f"{k}={v}" for k, v in stats.items()))


if __name__ == "__main__":
    run(main)
