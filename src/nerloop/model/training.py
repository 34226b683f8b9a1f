"""Training the token-classification model, and the probes that choose its number of epochs.

Follows the transformers token-classification recipe: words are tokenised with
``is_split_into_words=True``, the first subword of each word carries the word's label
and the other subwords get -100 (ignored by the loss); training runs through
``Trainer`` with dynamic padding, length-grouped batches and early stopping on the
validation F1 (seqeval, strict IOB2). Every cycle trains from the *base* model: a
model fine-tuned again and again on a growing set drifts and forgets, and its scores
are no longer comparable across cycles.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2
from transformers import (
    AutoModelForTokenClassification,
    DataCollatorForTokenClassification,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from nerloop.data.annotations import inside, window_of
from nerloop.data.records import Record
from nerloop.data.tags import iob1_to_iob2
from nerloop.model.augment import entity_swap
from nerloop.model.base import add_word_shape, device, encode, half_precision, load_tokenizer, resolve_base
from nerloop.model.crf import word_emissions
from nerloop.model.inference import attach_crf
from nerloop.params import ModelParams, TrainParams

UNLABELLED = -99  # a word's label outside a partly labelled sentence's window (train.partial: mask): not trained on


def trained_tags(rec: Record, partial: str) -> list[str]:
    """The tags of ``rec`` that training learns from: all of them, or with ``train.partial: mask`` only those
    inside the record's window (``meta["window"]``, a partly labelled sentence)."""
    win = window_of(rec.meta) if partial == "mask" else None
    return [t for i, t in enumerate(rec.tags or []) if inside(win, i)]


def mask_outside_windows(features: list[dict[str, Any]], records: Sequence[Record], partial: str) -> None:
    """With ``train.partial: mask``, give the words outside each record's window the label ``UNLABELLED``
    (their first subword's; the other subwords are -100 already). The softmax loss ignores them like -100 (the
    transformers recipe); the CRF still sees the word and sums over its tags (``CRF.nll``'s ``observed``)."""
    if partial != "mask":
        return
    for feat, rec in zip(features, records, strict=True):
        win = window_of(rec.meta)
        if win is None or "labels" not in feat:
            continue
        for word, j in enumerate(feat["first"]):
            if not inside(win, word):
                feat["labels"][j] = UNLABELLED


def class_weights(records: Sequence[Record], labels: list[str], how: str, partial: str = "mask"
                  ) -> torch.Tensor | None:
    """Loss weights per label so that rare entity types are not drowned by O and common types (counted over the
    tags trained on: with ``train.partial: mask`` not those outside a window)."""
    if how == "none":
        return None
    counts = Counter(t for r in records for t in trained_tags(r, partial))
    freq = np.array([max(counts.get(lab, 0), 1) for lab in labels], dtype=np.float64)
    w = (freq.sum() / freq) ** (0.5 if how == "inverse_sqrt" else 1.0)
    return torch.tensor(w / w.mean(), dtype=torch.float32)


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
    *,
    augmented: Sequence[Record] = (),
) -> dict[str, Any]:
    """Fine-tune the base model; save the best epoch (by validation F1) with save_pretrained.

    With no validation records it trains exactly ``train_params.epochs`` epochs and keeps the
    last (the refit of ``fit``). ``out_dir=None`` saves nothing: a probe run is only asked which
    epoch was best. ``augmented`` sentences (``train.entity_swap``, made by ``fit`` from
    ``train_records``) are trained on with them but counted apart: ``train_sentences`` stays the
    labelled ones. Returns a summary: sizes, epochs run, best epoch and its validation F1,
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
    fed = [*train_records, *augmented]  # what the model trains on; validation stays the real sentences only
    train_features = encode(fed, tokenizer, model_params.max_length, label2id, model_params.word_shape)
    val_features = encode(val_records, tokenizer, model_params.max_length, label2id, model_params.word_shape)
    mask_outside_windows(train_features, fed, train_params.partial)
    for f in train_features + val_features:
        f.pop("first")

    weights = class_weights(fed, labels, train_params.class_weighting, train_params.partial)

    def weighted_loss(outputs: Any, target: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        if model_params.head == "crf":  # the sequence's likelihood; class weights do not apply to it
            em, mask = word_emissions(logits.float(), target != -100)
            tags, _ = word_emissions(target.unsqueeze(-1), target != -100)
            tags = tags.squeeze(-1).long()
            observed = (tags >= 0) | ~mask
            return model.crf.nll(em, tags.clamp(min=0), mask, None if bool(observed.all()) else observed)
        w = weights.to(logits.device) if weights is not None else None
        target = target.masked_fill(target == UNLABELLED, -100)
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
        # only with train.entity_swap on, so that a summary made without it stays as it was
        **({"augmented_sentences": len(augmented)} if train_params.entity_swap else {}),
        "validation_sentences": len(val_records),
        "epochs_run": epochs_run,
        "best_epoch": keep_best.best_epoch if val_records else epochs_run,
        "best_validation_f1": round(keep_best.best, 4) if val_records else None,
        "validation_f1_per_epoch": [round(h["eval_f1"], 4) for h in history],
        "train_seconds": round(runtime, 1),
        "train_sentences_per_second": round(len(fed) * epochs_run / runtime, 1) if runtime else 0.0,
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
    """The params a probe's best epoch depends on: probes made under other values are not reused.

    ``train.entity_swap`` is in the key only when on, so that probes.json made without it stays as it was.
    """
    return {
        "base": model_params.base,
        "max_length": model_params.max_length,
        "word_shape": model_params.word_shape,
        "head": model_params.head,
        **{k: getattr(train_params, k) for k in (
            "learning_rate", "epochs", "batch_size", "validation_share", "early_stopping_patience",
            "weight_decay", "warmup_ratio", "class_weighting")},
        **({"entity_swap": train_params.entity_swap} if train_params.entity_swap else {}),
        **({"partial": train_params.partial} if train_params.partial != "mask" else {}),
    }


# options added later: absent from a probe's params (or from the key) means these
PROBE_KEY_DEFAULTS = {"word_shape": False, "head": "softmax", "entity_swap": 0.0, "partial": "mask"}


def same_probe_params(probe: dict[str, Any], key: dict[str, Any]) -> bool:
    """Whether ``probe`` was made under the params ``key`` (a probe saved before an option existed counts
    as made with the option's default)."""
    return {**PROBE_KEY_DEFAULTS, **probe.get("params", {})} == {**PROBE_KEY_DEFAULTS, **key}


def needs_probe(n_labelled: int, probes: Sequence[dict[str, Any]], train_params: TrainParams) -> bool:
    """Whether this cycle's epoch count must be measured rather than predicted from earlier probes.

    Too few probes, or a labelled set that has outgrown the largest probed one by
    ``probe_growth``: the epoch count of a much larger set is not read off small ones.
    """
    if len(probes) < train_params.min_probes:
        return True
    return n_labelled >= train_params.probe_growth * max(p["labelled"] for p in probes)


def predicted_epochs(probes: Sequence[dict[str, Any]], n_labelled: int, max_epochs: int, scaling: float,
                     min_epochs: int = 1) -> int:
    """The epoch count the probes agree on for ``n_labelled`` sentences (``train.epoch_scaling``).

    Each probe's best epoch is scaled to this labelled size by ``(probe size / n_labelled) ** scaling``,
    then the median is taken. With ``scaling`` 0.5 a set 4x larger trains half the epochs, so the number
    of updates grows with the square root of the labelled set rather than linearly; with 0, every size
    trains the probes' median. Small probes stop late (15, 15, 12 epochs at 200, 400 and 1,600
    sentences on the CoNLL-2003 journey, where 1,000-sentence probes stopped at 5 to 8), so read
    unscaled they make a large set train far longer than a probe of its own would; scaled, they may
    make it train too short: ``benchmarks/recipes.py`` measures both. The median of the scaled counts
    is robust to one noisy probe (early stopping on a few hundred held-out sentences can stop anywhere
    from 4 to 15 epochs at the same size).

    ``min_epochs`` (``train.min_epochs``) is the floor under the scaled count: at 5,000 sentences the
    scaling alone trained 4-5 epochs where refit's own probes picked 7, 13 and 14, and lost 0.4-0.6 F1
    points (``benchmarks/results/recipes.md``).
    """
    scaled = [p["best_epoch"] * (p["labelled"] / n_labelled) ** scaling for p in probes]
    return min(max_epochs, max(min_epochs, 1, round(float(np.median(scaled)))))


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
    epoch count predicted from earlier cycles' probes, scaled to this size (``predicted_epochs``). A probe (a run on
    ``1 - validation_share`` of the labels that stops early on the rest) is made only while there
    are fewer than ``min_probes`` probes, or when the labelled set has grown ``probe_growth``-fold
    since the largest probe; that cycle then trains twice, as ``refit`` does.
    ``refit``: a probe every cycle, then the model from the base on all labels for its best epoch.
    ``holdout``: the probe's model is the model (the held-out share is never trained on).
    The gold set plays no part in any of these choices.

    With ``train.entity_swap`` each run also trains on entity-swapped copies of its own training
    sentences (``augment.entity_swap``), never of a probe's validation side.

    Partly labelled sentences (``select.unit: window``; ``meta["window"]``) go to the training side of a probe,
    never to its validation side, and with ``train.partial: mask`` only their window is learned from
    (:func:`mask_outside_windows`) and they are not entity-swapped.
    """

    def swapped(recs: Sequence[Record]) -> list[Record]:
        if train_params.partial == "mask":  # a copy has new word positions: its window would not fit it
            recs = [r for r in recs if window_of(r.meta) is None]
        return entity_swap(recs, train_params.entity_swap, train_params.seed)

    key = probe_key(model_params, train_params)
    probes = [p for p in probes if same_probe_params(p, key)]
    recipe = train_params.recipe
    probe: dict[str, Any] | None = None
    if recipe != "fitted" or needs_probe(len(records), probes, train_params):
        # partly labelled sentences are trained on, never validated on: early stopping judges whole answers
        whole = [r for r in records if window_of(r.meta) is None]
        partly = [r for r in records if window_of(r.meta) is not None] if len(whole) >= 2 else []
        train_recs, val_recs = split_validation(whole if partly else records, train_params.validation_share,
                                                train_params.seed)
        train_recs += partly
        if recipe == "holdout":
            summary = train(train_recs, val_recs, labels, model_params, train_params, out_dir,
                            augmented=swapped(train_recs))
            return {**summary, "recipe": "holdout"}, probes
        probe = train(train_recs, val_recs, labels, model_params, train_params, None, augmented=swapped(train_recs))
        probes = [*probes, probe_record(len(records), probe, key)]
    if recipe == "refit" and probe:
        epochs = max(1, probe["best_epoch"])
    else:
        epochs = predicted_epochs(probes, len(records), train_params.epochs, train_params.epoch_scaling,
                                  train_params.min_epochs)
    final = train(records, [], labels, model_params, train_params.copy(update={"epochs": epochs}), out_dir,
                  augmented=swapped(records))
    summary = {**final, "recipe": recipe, "probed": probe is not None,
               "epochs_from": "this cycle's probe" if recipe == "refit" else
               f"median best epoch of {len(probes)} probe(s) at {', '.join(str(p['labelled']) for p in probes)} "
               f"labelled sentences, each x (probe size / {len(records)}) ** {train_params.epoch_scaling}, "
               f"at least {train_params.min_epochs}"}
    if probe is not None:
        summary |= {
            "validation_sentences": probe["validation_sentences"],
            "best_validation_f1": probe["best_validation_f1"],
            "validation_f1_per_epoch": probe["validation_f1_per_epoch"],
            "probe_epochs_run": probe["epochs_run"],
            "probe_seconds": probe["train_seconds"],
        }
    return summary, probes
