"""A tiny randomly initialised BERT, built from a config, for tests that check mechanics.

Nothing is downloaded: the vocabulary is made from the words the test will use.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizerFast


def make_tiny_bert(path: Path, words: Iterable[str], seed: int | None = None) -> Path:
    """Write a 2-layer, 32-wide BERT and a word-level WordPiece vocab to ``path``.

    Unseeded by default, as most tests check mechanics that hold for any weights; a test whose outcome depends on
    what the trained model predicts passes ``seed`` (the global RNG is left as it was)."""
    path.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted({w.lower() for w in words})]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(path)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=256,
    )
    with torch.random.fork_rng():
        if seed is not None:
            torch.manual_seed(seed)
        BertModel(config).save_pretrained(path)  # a bare encoder, like the bundled base model
    return path
