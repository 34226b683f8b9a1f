"""Stage ``score``: run the current model over the unlabelled pool.

Per sentence it stores every uncertainty measure, the sentence embedding (mean of the
encoder's last layer, for diversity), and the predicted spans with confidences (the
pre-annotation annotators will correct). Sentences already labelled or exported are
skipped. Results stream to disk batch by batch, so a 100k pool fits in little memory.

Two engines compute the same rows (``score.engine``): ``local`` runs the model in this
process; ``ray`` (``nerloop.ray_scoring``) runs it in an actor pool on a Ray cluster. Both
go through :func:`score_records`, and both hand ``(index, row, embedding)`` to
:func:`write_scores`, so the files they write cannot drift apart.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase

from nerloop import paths
from nerloop.formats import atomic_write, read_records, write_json
from nerloop.labelled import exported_before
from nerloop.ledger import Ledger
from nerloop.model import Prediction, load_model, predict
from nerloop.params import Params, load_params
from nerloop.records import Record
from nerloop.stages import run
from nerloop.tags import tags_to_spans, token_to_char_spans
from nerloop.uncertainty import MEASURES, score_sentence, type_mass

log = logging.getLogger(__name__)



def candidates(pool: list[Record], excluded: set[str], subsample: int, seed: int) -> list[Record]:
    """The pool minus excluded ids, optionally a seeded random subsample of it."""
    left = [r for r in pool if r.id not in excluded]
    if subsample and subsample < len(left):
        idx = np.sort(np.random.default_rng(seed).choice(len(left), subsample, replace=False))
        left = [left[i] for i in idx]
    return left


def pre_annotation(rec: Record, pred: Prediction, labels: list[str]) -> list[list]:
    """Predicted spans as [char_start, char_end, label, confidence]; confidence = mean word prob."""
    out = []
    label_index = {lab: i for i, lab in enumerate(labels)}
    tok_spans = tags_to_spans(pred.tags)
    for (s, e, lab), (cs, ce, _) in zip(tok_spans, token_to_char_spans(rec.offsets, tok_spans), strict=True):
        conf = float(np.mean([pred.probs[i, label_index[pred.tags[i]]] for i in range(s, e)]))
        out.append([cs, ce, lab, round(conf, 4)])
    return out


def row_columns(mc_dropout: bool) -> list[str]:
    """The columns of ``scores.parquet``, in order (``bald`` only with MC-dropout passes)."""
    return ["id", "n_tokens", *MEASURES, *(["bald"] if mc_dropout else []), "pred_tags", "pred_spans", "pred_types",
            "type_mass"]


def score_row(rec: Record, pred: Prediction, labels: list[str]) -> dict[str, Any]:
    """One sentence's row of ``scores.parquet``: every measure and the pre-annotation (the per-sentence step)."""
    spans = pre_annotation(rec, pred, labels)
    return {
        "id": rec.id,
        "n_tokens": len(rec.tokens),
        **score_sentence(pred.probs, labels, pred.mc_probs),
        "pred_tags": json.dumps(pred.tags),
        "pred_spans": json.dumps(spans),
        "pred_types": json.dumps(sorted({s[2] for s in spans})),
        "type_mass": json.dumps(type_mass(pred.probs, labels)),
    }


def score_records(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    labels: list[str],
    records: Sequence[Record],
    *,
    batch_size: int,
    max_length: int,
    mc_passes: int,
    progress: bool = True,
) -> Iterator[tuple[int, dict[str, Any], np.ndarray]]:
    """Yield ``(index into records, row, embedding)`` for every record, batch by batch.

    The one scoring path: the local engine runs it over the whole pool, each Ray actor over its
    shard, so the two engines differ only in where the model runs.
    """
    for i, pred in predict(model, tokenizer, labels, records, batch_size=batch_size, max_length=max_length,
                           embeddings=True, mc_passes=mc_passes, progress=progress):
        yield i, score_row(records[i], pred, labels), pred.embedding


def score_local(pool: Sequence[Record], model_dir: Path, params: Params) -> Iterator[tuple[int, dict, np.ndarray]]:
    """``score.engine: local``: the model in this process (on its GPU if it has one)."""
    model, tokenizer, labels = load_model(model_dir)
    yield from score_records(model, tokenizer, labels, pool, batch_size=params.score.batch_size,
                             max_length=params.model.max_length, mc_passes=params.score.mc_dropout_passes)


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
        from nerloop.ray_scoring import score_on_ray  # ray is an optional dependency

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
