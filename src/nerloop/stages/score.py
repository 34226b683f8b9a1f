"""Stage ``score``: run the current model over the unlabelled pool.

Per sentence it stores every uncertainty measure, the sentence embedding (mean of the
encoder's last layer, for diversity), and the predicted spans with confidences (the
pre-annotation annotators will correct). Sentences already labelled or exported are
skipped. Results stream to disk batch by batch, so a 100k pool fits in little memory.

Two engines compute the same rows (``score.engine``): ``local`` runs the model in this
process; ``ray`` (``nerloop.selection.ray_scoring``) runs it in an actor pool on a Ray cluster.
Both go through ``nerloop.selection.scoring.score_records``, and both hand ``(index, row, embedding)`` to
:func:`write_scores`, so the files they write cannot drift apart.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pandas as pd
from transformers import AutoConfig

from nerloop import paths
from nerloop.data.files import atomic_write, read_records, write_json
from nerloop.data.labelled import exported_before
from nerloop.data.ledger import Ledger
from nerloop.params import load_params
from nerloop.selection.scoring import candidates, row_columns, score_local
from nerloop.stages import run


def write_scores(n: int, dim: int, mc_dropout: bool, results: Iterable[tuple[int, dict, np.ndarray]]) -> int:
    """Write ``scores.parquet`` (rows in pool order) and ``embeddings.npy`` (float16, row i = sentence i).

    ``results`` may come in any order (each carries its index), one at a time: embeddings go straight
    to a memory-mapped file, so only the small rows are held in memory. Both files are replaced
    only when complete. Returns the number of rows written.
    """
    paths.SCORES.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = [{} for _ in range(n)]
    tmp_emb = paths.EMBEDDINGS_FILE.with_suffix(".tmp.npy")
    emb = np.lib.format.open_memmap(tmp_emb, mode="w+", dtype=np.float16, shape=(n, dim))
    done = 0
    try:
        for i, row, embedding in results:
            rows[i] = row
            emb[i] = embedding
            done += 1
        if done != n:
            raise RuntimeError(f"the scoring engine returned {done} of {n} sentences")
    except BaseException:
        del emb
        tmp_emb.unlink(missing_ok=True)
        raise
    emb.flush()
    del emb
    os.replace(tmp_emb, paths.EMBEDDINGS_FILE)
    table = pd.DataFrame(rows, columns=row_columns(mc_dropout) if rows else ["id", "n_tokens"])
    with atomic_write(paths.SCORES_FILE, "wb") as fh:
        table.to_parquet(fh, index=False)
    return done


def main() -> None:
    params = load_params()
    sp = params.score
    ledger = Ledger(paths.LEDGER)
    excluded = ledger.ids | exported_before(ledger.cycle + 1)
    pool = candidates(read_records(paths.POOL), excluded, sp.subsample, sp.seed + ledger.cycle)
    dim = AutoConfig.from_pretrained(str(paths.MODEL)).hidden_size
    if sp.engine == "ray" and pool:
        from nerloop.selection.ray_scoring import score_on_ray  # ray is an optional dependency

        results: Iterable[tuple[int, dict, np.ndarray]] = score_on_ray(pool, paths.MODEL, params)
    else:
        results = score_local(pool, paths.MODEL, params)
    write_scores(len(pool), dim, sp.mc_dropout_passes > 0, results)
    # travels with the batch into the ledger (select), so the dataset card knows each cycle's scoring
    write_json(paths.SCORE_SETTINGS, {"scored": len(pool), "subsample": sp.subsample,
                                      "mc_dropout_passes": sp.mc_dropout_passes})
    write_json(paths.METRICS / "score.json", {"scored_sentences": len(pool), "excluded": len(excluded)})
    print(f"scored {len(pool)} pool sentences ({len(excluded)} already labelled or exported were skipped)")


if __name__ == "__main__":
    run(main)
