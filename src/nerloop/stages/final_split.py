"""Stage ``final-split``: the final dataset, cleaned, deduplicated, checked and split 80/10/10.

Combines the seed set, every annotation in the ledger and (``final.include_gold``) the
gold set; the steps and their reasons are in ``nerloop.release``. Writes to data/final/:

- ``dataset/``: a ``datasets.DatasetDict`` (``save_to_disk``; ``load_from_disk`` works offline)
- ``{train,validation,test}.conll`` and ``.jsonl``: the same splits for other tools
- ``stats.json``: sentences, tokens and entities per type per split, and where the data came from (with the
  partly labelled sentences, ``select.unit: window``, that are kept out of the splits: ``gather.split_partial``)
- ``inconsistencies.json``: duplicates, conflicting labels and what was done about each

and a DVC metric summary to metrics/final.json. Nothing inconsistent is fixed silently:
every change or held-back sentence is in the report, and the card repeats the counts.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from pathlib import Path

from nerloop import paths
from nerloop.data.files import atomic_write, read_records, write_conll, write_json
from nerloop.data.labelled import entity_types
from nerloop.data.ledger import Ledger
from nerloop.data.tags import entity_types as types_in
from nerloop.data.tags import label_list
from nerloop.params import load_params
from nerloop.release import clean, gather, split
from nerloop.stages import run

log = logging.getLogger(__name__)

DATASET = paths.FINAL / "dataset"
STATS = paths.FINAL / "stats.json"
REPORT = paths.FINAL / "inconsistencies.json"
METRICS = paths.METRICS / "final.json"
HISTORY = paths.METRICS / "history.json"


def save_dataset(dd: object, target: Path) -> None:
    """``save_to_disk`` into a sibling folder, then swap: never a half-written dataset."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    dd.save_to_disk(str(tmp))  # type: ignore[attr-defined]
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def main() -> None:
    p = load_params().final
    split.check_ratios(p.ratios)
    types = entity_types()
    ledger = Ledger(paths.LEDGER)
    seed, gold = read_records(paths.SEED), read_records(paths.GOLD)
    history = json.loads(HISTORY.read_text(encoding="utf-8")) if HISTORY.exists() else []

    released, partial = gather.split_partial(ledger.entries)  # partly labelled sentences are kept out
    records = gather.gather(seed, released, gold if p.include_gold else None)
    gather.check_label_set(records, types)
    gather.check_label_history(history, types, types_in(r.tags or [] for r in gold))

    records, cleaning = clean.clean(records)
    near_gold: list[str] = []
    if not p.include_gold:
        records, near_gold = clean.drop_near_gold(records, gold)
    records, dups = clean.resolve_duplicates(records, p.conflict_policy)
    conflicts = clean.surface_conflicts(records)
    records, changes = clean.resolve_surface_conflicts(records, conflicts, p.conflict_policy, p.type_majority)

    splits = split.stratified_group_split(records, p.ratios, p.seed)
    never_seen = split.check_coverage(splits, types)
    stats = split.split_stats(splits, types)

    save_dataset(split.to_dataset_dict(splits, types), DATASET)
    for name, recs in splits.items():
        write_conll(paths.FINAL / f"{name}.conll", recs)
        with atomic_write(paths.FINAL / f"{name}.jsonl") as fh:
            for row in split.jsonl_rows(recs):
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    summary = {
        "records_cleaned": cleaning["records_changed"],
        "records_emptied": len(cleaning["records_emptied"]),
        "near_gold_removed": len(near_gold),
        "duplicates_removed": dups["removed"],
        "same_text_conflicts": dups["same_text_conflicts"],
        "same_text_resolved": dups["resolved"],
        "held_for_review": dups["held_for_review"],
        "surface_type_conflicts": len(conflicts),
        "relabelled_mentions": len(changes),
    }
    write_json(REPORT, {
        "conflict_policy": p.conflict_policy,
        "type_majority": p.type_majority,
        "summary": summary,
        "cleaning": cleaning,
        "near_gold_removed": near_gold,
        "duplicates": {k: v for k, v in dups.items() if k != "conflicts"},
        "same_text_conflicts": dups["conflicts"],
        "surface_type_conflicts": conflicts,
        "relabelled": changes,
    })
    write_json(STATS, {
        "splits": {k: v for k, v in stats.items() if k != "all"},
        "all": stats["all"],
        "labels": label_list(types),
        "entity_types": types,
        "types_never_seen": never_seen,
        "cleaning": summary,
        "provenance": {
            "seed_sentences": len(seed),
            "annotated_sentences": len(ledger.entries),
            "gold_sentences": len(gold),
            "include_gold": p.include_gold,
            "cycles": [{"cycle": c, **row} for c, row in ledger.per_cycle().items()],
            "accepted_in_one_key": {str(c): n for c, n in ledger.accepted_per_cycle().items()},
            # only when there are some (select.unit: window), so that stats made without them stay as they were
            **({"partly_labelled_kept_out": partial} if partial else {}),
            "annotators": dict(Counter(e.get("annotator") or "unknown" for e in ledger.entries)),
            "ratios": p.ratios,
            "seed": p.seed,
            "conflict_policy": p.conflict_policy,
        },
    })
    write_json(METRICS, {
        **{f"{name}_sentences": len(recs) for name, recs in splits.items()},
        "sentences": stats["all"]["sentences"],
        "tokens": stats["all"]["tokens"],
        **{f"entities_{t}": n for t, n in stats["all"]["entities"].items()},
        **summary,
        "gold_included": p.include_gold,
        **({"partly_labelled_kept_out": len(partial)} if partial else {}),
    })

    if summary["held_for_review"]:
        log.warning("%d sentence(s) in %d conflict(s) held back for review (left out of the dataset): see %s",
                    summary["held_for_review"], dups["same_text_conflicts"] - dups["resolved"], REPORT)
    if conflicts:
        log.warning("%d entity string(s) labelled as more than one type; %d mention(s) relabelled: see %s",
                    len(conflicts), len(changes), REPORT)
    if never_seen:
        log.warning("entity type(s) %s never occur in the data", never_seen)
    if partial:
        log.warning("%d partly labelled sentence(s) (asked about a window only) kept out of the splits: see %s",
                    len(partial), STATS)
    print(", ".join(f"{name} {len(recs)}" for name, recs in splits.items())
          + f" sentences -> {paths.FINAL}/ ({summary['duplicates_removed']} duplicates removed, "
          f"{summary['same_text_conflicts']} same-text conflicts, {len(conflicts)} surface-type conflicts)")


if __name__ == "__main__":
    run(main)
