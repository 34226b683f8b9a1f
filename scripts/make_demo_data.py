"""Build the bundled demo data in data/raw/ from BC5CDR in ../shared/data/bc5cdr.

Run once by the maintainers; the output is committed so a fresh clone has it.
Seed (~200) and pool (~3,000) come from the BC5CDR train split, the gold set (~500)
is drawn at random from its test split, so gold never overlaps what selection sees.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from nerloop.data.files import write_conll
from nerloop.data.formats import read_conll

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "bc5cdr"
OUT = Path(__file__).resolve().parents[1] / "data" / "raw"


def main(n_seed: int = 200, n_pool: int = 3000, n_gold: int = 500, seed: int = 0) -> None:
    if not SHARED.exists():
        sys.exit(f"BC5CDR not found at {SHARED}")
    rng = random.Random(seed)
    train = {r.id: r for r in read_conll(SHARED / "train.tsv")}  # dict: drops exact duplicates
    test = [r for r in {r.id: r for r in read_conll(SHARED / "test.tsv")}.values() if r.id not in train]
    train_list = list(train.values())
    rng.shuffle(train_list)
    seed_set, pool = train_list[:n_seed], train_list[n_seed : n_seed + n_pool]
    gold = rng.sample(test, n_gold)
    OUT.mkdir(parents=True, exist_ok=True)
    write_conll(OUT / "seed.conll", seed_set)
    write_conll(OUT / "gold.conll", gold)
    write_conll(OUT / "pool_answers.conll", pool)  # held apart: only the simulated annotator reads it
    with (OUT / "pool.jsonl").open("w", encoding="utf-8") as fh:
        for r in pool:
            fh.write(json.dumps({"tokens": r.tokens}, ensure_ascii=False) + "\n")
    print(f"seed {len(seed_set)}, pool {len(pool)}, gold {len(gold)} sentences -> {OUT}")


if __name__ == "__main__":
    main()
