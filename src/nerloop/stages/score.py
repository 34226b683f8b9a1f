"""Stage ``score``: run the current model over the unlabelled pool.

Per sentence it stores every uncertainty measure, the sentence embedding (mean of the
encoder's last layer, for diversity), and the predicted spans with confidences (the
pre-annotation annotators will correct). Sentences already labelled or exported are
skipped. Results stream to disk batch by batch, so a 100k pool fits in little memory.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pandas as pd

from nerloop import paths
from nerloop.formats import atomic_write, read_records, write_json
from nerloop.labelled import exported_before
from nerloop.ledger import Ledger
from nerloop.model import Prediction, load_model, predict
from nerloop.params import load_params
from nerloop.records import Record
from nerloop.stages import run
from nerloop.tags import tags_to_spans, token_to_char_spans
from nerloop.uncertainty import score_sentence, type_mass

log = logging.getLogger(__name__)

SCORES_FILE = paths.SCORES / "scores.parquet"
EMBEDDINGS_FILE = paths.SCORES / "embeddings.npy"


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


def main() -> None:
    params = load_params()
    sp = params.score
    ledger = Ledger(paths.LEDGER)
    excluded = ledger.ids | exported_before(ledger.cycle + 1)
    pool = candidates(read_records(paths.POOL), excluded, sp.subsample, sp.seed + ledger.cycle)
    model, tokenizer, labels = load_model(paths.MODEL)
    paths.SCORES.mkdir(parents=True, exist_ok=True)
    dim = model.config.hidden_size
    rows: list[dict] = [{} for _ in pool]
    tmp_emb = EMBEDDINGS_FILE.with_suffix(".tmp.npy")
    emb = np.lib.format.open_memmap(tmp_emb, mode="w+", dtype=np.float16, shape=(len(pool), dim))
    for i, pred in predict(
        model, tokenizer, labels, pool, batch_size=sp.batch_size, max_length=params.model.max_length,
        embeddings=True, mc_passes=sp.mc_dropout_passes,
    ):
        rec = pool[i]
        spans = pre_annotation(rec, pred, labels)
        rows[i] = {
            "id": rec.id,
            "n_tokens": len(rec.tokens),
            **score_sentence(pred.probs, labels, pred.mc_probs),
            "pred_tags": json.dumps(pred.tags),
            "pred_spans": json.dumps(spans),
            "pred_types": json.dumps(sorted({s[2] for s in spans})),
            "type_mass": json.dumps(type_mass(pred.probs, labels)),
        }
        emb[i] = pred.embedding
    emb.flush()
    del emb
    os.replace(tmp_emb, EMBEDDINGS_FILE)
    table = pd.DataFrame(rows, columns=None if rows else ["id", "n_tokens"])
    with atomic_write(SCORES_FILE, "wb") as fh:
        table.to_parquet(fh, index=False)
    write_json(paths.METRICS / "score.json", {"scored_sentences": len(pool), "excluded": len(excluded)})
    print(f"scored {len(pool)} pool sentences ({len(excluded)} already labelled or exported were skipped)")


if __name__ == "__main__":
    run(main)
