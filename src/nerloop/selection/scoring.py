"""Scoring pool sentences with the current model: the rows both scoring engines produce.

Per sentence: every uncertainty measure, the predicted spans with confidences (the pre-annotation
annotators will correct) and the sentence embedding (for diversity). ``score.engine: local`` runs
:func:`score_records` in this process, ``ray`` (``nerloop.selection.ray_scoring``) in an actor pool;
both go through :func:`score_records`, so their rows cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from nerloop.data.records import Record
from nerloop.data.tags import tags_to_spans, token_to_char_spans
from nerloop.model.inference import Prediction, load_model, predict
from nerloop.params import Params
from nerloop.selection.uncertainty import MC_MEASURES, MEASURES, score_sentence, type_mass


def subsample_positions(n_left: int, subsample: int, seed: int) -> np.ndarray | None:
    """Which of the ``n_left`` candidates (positions, ascending) a seeded ``score.subsample`` keeps; None = all.

    Both engines draw through here, so a subsampled pool is the same sentences wherever it is scored.
    """
    if subsample and subsample < n_left:
        return np.sort(np.random.default_rng(seed).choice(n_left, subsample, replace=False))
    return None


def candidates(pool: list[Record], excluded: set[str], subsample: int, seed: int) -> list[Record]:
    """The pool minus excluded ids, optionally a seeded random subsample of it."""
    left = [r for r in pool if r.id not in excluded]
    keep = subsample_positions(len(left), subsample, seed)
    return left if keep is None else [left[i] for i in keep]


def pre_annotation(rec: Record, pred: Prediction, labels: list[str]) -> list[list]:
    """Predicted spans as [char_start, char_end, label, confidence]; confidence = mean word prob."""
    out = []
    label_index = {lab: i for i, lab in enumerate(labels)}
    tok_spans = tags_to_spans(pred.tags)
    for (s, e, lab), (cs, ce, _) in zip(tok_spans, token_to_char_spans(rec.offsets, tok_spans), strict=True):
        conf = float(np.mean([pred.probs[i, label_index[pred.tags[i]]] for i in range(s, e)]))
        out.append([cs, ce, lab, round(conf, 4)])
    return out


def row_columns(mc_dropout: bool, word_conf: bool = False) -> list[str]:
    """The columns of ``scores.parquet``, in order (``MC_MEASURES``: bald, vote_entropy only with MC-dropout passes;
    ``word_conf`` only for ``select.unit: window``, so that a sentence-level table stays as it was)."""
    return ["id", "n_tokens", *MEASURES, *(MC_MEASURES if mc_dropout else []), "pred_tags", "pred_spans",
            "pred_types", "type_mass", *(["word_conf"] if word_conf else [])]


def word_confidences(pred: Prediction) -> list[float]:
    """Each word's top-tag probability, 4 decimals: what ``selection.windows`` reads each word's uncertainty from."""
    return [round(float(p), 4) for p in pred.probs.max(axis=1)] if len(pred.probs) else []


def score_row(rec: Record, pred: Prediction, labels: list[str], word_conf: bool = False) -> dict[str, Any]:
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
        **({"word_conf": json.dumps(word_confidences(pred))} if word_conf else {}),
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
    word_conf: bool = False,
) -> Iterator[tuple[int, dict[str, Any], np.ndarray]]:
    """Yield ``(index into records, row, embedding)`` for every record, batch by batch.

    The one scoring path: the local engine runs it over the whole pool, each Ray actor over its
    shard, so the two engines differ only in where the model runs. ``word_conf`` adds each word's
    confidence (``select.unit: window``), from the same forward pass.
    """
    for i, pred in predict(model, tokenizer, labels, records, batch_size=batch_size, max_length=max_length,
                           embeddings=True, mc_passes=mc_passes, progress=progress):
        yield i, score_row(records[i], pred, labels, word_conf), pred.embedding


def score_local(pool: Sequence[Record], model_dir: Path, params: Params) -> Iterator[tuple[int, dict, np.ndarray]]:
    """``score.engine: local``: the model in this process (on its GPU if it has one)."""
    model, tokenizer, labels = load_model(model_dir)
    yield from score_records(model, tokenizer, labels, pool, batch_size=params.score.batch_size,
                             max_length=params.model.max_length, mc_passes=params.score.mc_dropout_passes,
                             word_conf=params.select.unit == "window")
