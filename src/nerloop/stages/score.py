"""Stage ``score``: run the current model over the unlabelled pool.

Per sentence it stores every uncertainty measure, the sentence embedding (mean of the
encoder's last layer, for diversity), and the predicted spans with confidences (the
pre-annotation annotators will correct). Sentences already labelled or exported are
skipped. Results stream to disk batch by batch, so a 100k pool fits in little memory.

Two engines compute the same rows (``score.engine``): ``local`` runs the model in this
process; ``ray`` (``nerloop.selection.ray_scoring``) runs it in an actor pool on a Ray cluster,
which reads the pool in shards and writes its scores back in shards, so this process never holds
the pool. Both go through ``nerloop.selection.scoring.score_records``, and both hand
``(index, row, embedding)`` to :func:`write_scores`, so the files they write cannot drift apart.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from transformers import AutoConfig

from nerloop import paths
from nerloop.data.files import atomic_write, read_records, write_json
from nerloop.data.labelled import exported_before
from nerloop.data.ledger import Ledger
from nerloop.params import load_params
from nerloop.selection.scoring import candidates, row_columns, score_local
from nerloop.stages import run

CHUNK_ROWS = 10_000  # rows per parquet row group: rows arriving in pool order leave memory this many at a time


def write_scores(n: int, dim: int, mc_dropout: bool, results: Iterable[tuple[int, dict, np.ndarray]],
                 word_conf: bool = False) -> int:
    """Write ``scores.parquet`` (rows in pool order) and ``embeddings.npy`` (float16, row i = sentence i).

    ``results`` may come in any order (each carries its index), one at a time: embeddings go straight
    to a memory-mapped file, and rows are written to the parquet file as soon as every row before them
    is there, ``CHUNK_ROWS`` at a time. So rows that come in pool order (the Ray engine's) never pile up,
    and rows that come sorted by length (the local engine's) are held no longer than they must be. Both
    files are replaced only when complete. Returns the number of rows written.
    """
    paths.SCORES.mkdir(parents=True, exist_ok=True)
    columns = row_columns(mc_dropout, word_conf)
    tmp_emb = paths.EMBEDDINGS_FILE.with_suffix(".tmp.npy")
    emb = np.lib.format.open_memmap(tmp_emb, mode="w+", dtype=np.float16, shape=(n, dim))
    pending: dict[int, dict] = {}  # rows that came before some row ahead of them in pool order
    ready: list[dict] = []  # the next rows in pool order, not yet written
    written = done = 0
    try:
        with atomic_write(paths.SCORES_FILE, "wb") as fh, contextlib.ExitStack() as stack:
            writer: pq.ParquetWriter | None = None

            def flush() -> None:
                nonlocal writer
                # no pandas index metadata: chunks are parts of one table, read back with a plain RangeIndex
                table = pa.Table.from_pandas(pd.DataFrame(ready, columns=columns), preserve_index=False)
                table = table.replace_schema_metadata(None)
                if writer is None:
                    writer = stack.enter_context(pq.ParquetWriter(fh, table.schema))
                writer.write_table(table.cast(writer.schema))
                ready.clear()

            for i, row, embedding in results:
                pending[i] = row
                emb[i] = embedding
                done += 1
                while written in pending:
                    ready.append(pending.pop(written))
                    written += 1
                    if len(ready) == CHUNK_ROWS:
                        flush()
            if done != n:
                raise RuntimeError(f"the scoring engine returned {done} of {n} sentences")
            if ready:
                flush()
            if writer is None:  # an empty pool: a table with no rows
                pd.DataFrame([], columns=["id", "n_tokens"]).to_parquet(fh, index=False)
    except BaseException:
        del emb
        tmp_emb.unlink(missing_ok=True)
        raise
    emb.flush()
    del emb
    os.replace(tmp_emb, paths.EMBEDDINGS_FILE)
    return done


def main() -> None:
    params = load_params()
    sp = params.score
    ledger = Ledger(paths.LEDGER)
    excluded = ledger.ids | exported_before(ledger.cycle + 1)
    dim = AutoConfig.from_pretrained(str(paths.MODEL)).hidden_size
    mc_dropout = sp.mc_dropout_passes > 0
    windows = params.select.unit == "window"  # select then needs each word's confidence
    if sp.engine == "ray":
        from nerloop.selection.ray_scoring import score_on_ray  # ray is an optional dependency

        with score_on_ray(paths.POOL, excluded, sp.seed + ledger.cycle, paths.MODEL, params) as (n, results):
            scored = write_scores(n, dim, mc_dropout, results, windows)
    else:
        pool = candidates(read_records(paths.POOL), excluded, sp.subsample, sp.seed + ledger.cycle)
        scored = write_scores(len(pool), dim, mc_dropout, score_local(pool, paths.MODEL, params), windows)
    # travels with the batch into the ledger (select), so the dataset card knows each cycle's scoring
    write_json(paths.SCORE_SETTINGS, {"scored": scored, "subsample": sp.subsample,
                                      "mc_dropout_passes": sp.mc_dropout_passes})
    write_json(paths.METRICS / "score.json", {"scored_sentences": scored, "excluded": len(excluded)})
    print(f"scored {scored} pool sentences ({len(excluded)} already labelled or exported were skipped)")

if __name__ == "__main__":
    run(main)
