"""Prediction with a trained model, and the scores predictions are judged by.

Word-level probabilities and valid IOB2 tags (softmax or the CRF's Viterbi path), sentence
embeddings for diversity, MC-dropout passes for BALD; and seqeval's strict entity-level figures,
which training's early stopping and the evaluate stages share.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from tqdm.auto import tqdm
from transformers import (
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from nerloop.data.records import Record
from nerloop.data.tags import iob1_to_iob2
from nerloop.model.base import autocast, device, encode, load_tokenizer, uses_word_shape
from nerloop.model.crf import CRF, word_emissions


def seqeval_scores(true: list[list[str]], pred: list[list[str]]) -> dict[str, Any]:
    """Entity-level micro P/R/F1 and per-type figures (strict IOB2), plus token accuracy."""
    report = classification_report(true, pred, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    n_tok = sum(len(t) for t in true)
    correct = sum(a == b for t, p in zip(true, pred, strict=True) for a, b in zip(t, p, strict=True))
    per_type = {
        k: {"precision": v["precision"], "recall": v["recall"], "f1": v["f1-score"], "support": int(v["support"])}
        for k, v in report.items()
        if not k.endswith(" avg")
    }
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    return {
        "precision": micro["precision"],
        "recall": micro["recall"],
        "f1": micro["f1-score"],
        "token_accuracy": correct / n_tok if n_tok else 0.0,
        "per_type": per_type,
    }


@dataclass
class Prediction:
    """Word-level output of the model for one sentence."""

    probs: np.ndarray  # (n_words, n_labels) softmax of the first subword of each word
    tags: list[str]  # argmax tags, made valid IOB2 (a dangling I- opens its entity, as IOB1 reads it)
    embedding: np.ndarray | None = None  # mean of the last layer over the sentence's subwords
    mc_probs: np.ndarray | None = None  # (passes, n_words, n_labels) with dropout on, for BALD


def load_model(path: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, list[str]]:
    """A trained model folder -> (model on the right device, tokenizer, label list)."""
    model = AutoModelForTokenClassification.from_pretrained(str(path))
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if getattr(model.config, "nerloop_head", "softmax") == "crf":
        attach_crf(model, labels, Path(path))
    return model.to(device()).eval(), load_tokenizer(path), labels


def attach_crf(model: PreTrainedModel, labels: list[str], trained: Path | None = None) -> None:
    """Give ``model`` a CRF head (``model.head: crf``), fresh or with the scores saved in ``trained``.

    The CRF is a submodule, so the Trainer optimises it and ``save_pretrained`` writes its scores
    into the checkpoint (as ``crf.*``); transformers does not know it and skips those on loading,
    so they are read back here.
    """
    model.crf = CRF(labels)
    model.config.nerloop_head = "crf"
    if trained is not None:
        from safetensors.torch import load_file

        saved = {k[4:]: v for f in sorted(trained.glob("*.safetensors")) for k, v in load_file(str(f)).items()
                 if k.startswith("crf.")}
        model.crf.load_state_dict(saved)


def predict(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    labels: list[str],
    records: Sequence[Record],
    *,
    batch_size: int = 64,
    max_length: int = 128,
    embeddings: bool = False,
    mc_passes: int = 0,
    progress: bool = True,
) -> Iterator[tuple[int, Prediction]]:
    """Yield (index into ``records``, Prediction), batch by batch, longest sentences last.

    Batches are formed over sentences sorted by length, so padding is minimal; results
    stream out so a caller can write them to disk without holding a 100k pool in memory.
    """
    features = encode(records, tokenizer, max_length, shapes=uses_word_shape(model))
    inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in features[0]] if features else []
    order = sorted(range(len(records)), key=lambda i: len(features[i]["input_ids"]))
    collator = DataCollatorForTokenClassification(tokenizer)
    dev = next(model.parameters()).device
    generator = torch.Generator(device=dev).manual_seed(0)  # the same dropout masks on every run
    o_index = labels.index("O")
    bar = tqdm(total=len(records), desc="predict", unit="sent", disable=not progress)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = collator([{k: features[i][k] for k in inputs} for i in idx])
        batch = {k: v.to(dev) for k, v in batch.items()}
        with torch.inference_mode(), autocast():
            model.eval()
            out = model(**batch, output_hidden_states=embeddings or bool(mc_passes))
            probs = torch.softmax(out.logits.float(), dim=-1).cpu().numpy()
            crf_probs, crf_tags = crf_decode(model, out.logits, [features[i]["first"] for i in idx])
            emb = None
            if embeddings:
                mask = batch["attention_mask"].unsqueeze(-1).to(out.hidden_states[-1].dtype)
                emb = ((out.hidden_states[-1] * mask).sum(1) / mask.sum(1)).float().cpu().numpy()
            mc = mc_dropout_probs(model, batch, out.hidden_states[-1], mc_passes, generator) if mc_passes else None
        for b, i in enumerate(idx):
            n_words = len(records[i].tokens)
            first = features[i]["first"]
            word_probs = np.zeros((n_words, len(labels)), dtype=np.float32)
            word_probs[:, o_index] = 1.0  # words cut off by truncation
            word_probs[: len(first)] = probs[b, first] if crf_probs is None else crf_probs[b, : len(first)]
            best = word_probs.argmax(1) if crf_tags is None else [*crf_tags[b], *[o_index] * (n_words - len(first))]
            pred = Prediction(
                probs=word_probs,
                tags=iob1_to_iob2([labels[j] for j in best]),
                embedding=emb[b] if emb is not None else None,
                mc_probs=mc[:, b, first] if mc is not None else None,
            )
            yield i, pred
        bar.update(len(idx))
    bar.close()


def crf_decode(model: PreTrainedModel, logits: torch.Tensor, firsts: list[list[int]]
               ) -> tuple[np.ndarray | None, list[list[int]] | None]:
    """With a CRF head: per-word marginals (batch, words, labels) and Viterbi tags; (None, None) without."""
    crf = getattr(model, "crf", None)
    if crf is None:
        return None, None
    first = torch.zeros(logits.shape[:2], dtype=torch.bool, device=logits.device)
    for b, positions in enumerate(firsts):
        first[b, positions] = True
    em, mask = word_emissions(logits.float(), first)
    return crf.marginals(em, mask).cpu().numpy(), crf.viterbi(em, mask)


def mc_dropout_probs(
    model: PreTrainedModel, batch: dict[str, torch.Tensor], hidden: torch.Tensor, passes: int,
    generator: torch.Generator,
) -> np.ndarray:
    """Softmax of ``passes`` Monte Carlo dropout samples, shape (passes, batch, subwords, labels).

    Dropout on the classification head only (Shelmanov et al. 2021): the encoder runs once and
    only the head's dropout and linear layer are sampled, so BALD costs little more than one
    forward pass and stays deterministic (seeded masks). A model without a plain
    ``dropout`` + ``classifier`` head falls back to dropout in the whole network.
    """
    head, drop = getattr(model, "classifier", None), getattr(model, "dropout", None)
    if isinstance(head, torch.nn.Linear) and isinstance(drop, torch.nn.Dropout) and drop.p > 0:
        keep = 1.0 - drop.p
        samples = []
        for _ in range(passes):
            mask = torch.bernoulli(torch.full(hidden.shape, keep, device=hidden.device), generator=generator)
            samples.append(torch.softmax(head(hidden * mask.to(hidden.dtype) / keep).float(), -1).cpu().numpy())
        return np.stack(samples)
    model.train()  # dropout on everywhere: Monte Carlo samples of the posterior (Gal & Ghahramani)
    try:
        return np.stack([torch.softmax(model(**batch).logits.float(), -1).cpu().numpy() for _ in range(passes)])
    finally:
        model.eval()


def predict_tags(model_dir: str | Path, records: Sequence[Record], batch_size: int, max_length: int) -> list[list[str]]:
    """Argmax IOB2 tags for every record, in input order."""
    model, tokenizer, labels = load_model(model_dir)
    out: list[list[str]] = [[] for _ in records]
    for i, pred in predict(model, tokenizer, labels, records, batch_size=batch_size, max_length=max_length):
        out[i] = pred.tags
    return out
