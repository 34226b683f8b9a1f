"""PNG figures for people (DVC renders the same data as interactive plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def learning_curve(history: list[dict[str, Any]], path: str | Path) -> None:
    """Gold-set F1 against labelled sentences and labelled tokens, one point per cycle."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, x in zip(axes, ("labelled_sentences", "labelled_tokens"), strict=True):
        xs = [h[x] for h in history]
        ax.plot(xs, [h["f1"] for h in history], marker="o", label="micro F1")
        per_type = sorted({k for h in history for k in h if k.startswith("f1_")})
        for key in per_type:
            ax.plot(xs, [h.get(key, 0.0) for h in history], marker=".", alpha=0.6, label=key[3:])
        for h in history:
            ax.annotate(str(h["cycle"]), (h[x], h["f1"]), textcoords="offset points", xytext=(0, 5), fontsize=7)
        ax.set_xlabel(x.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("F1 on the gold set")
    axes[0].legend(fontsize=8)
    fig.suptitle("Learning curve (numbers are cycles)")
    _save(fig, path)


def per_type_f1(per_type: dict[str, dict[str, float]], path: str | Path) -> None:
    """Bars of precision, recall and F1 per entity type."""
    types = sorted(per_type)
    fig, ax = plt.subplots(figsize=(max(4, 1.5 * len(types) + 2), 3.5))
    width = 0.27
    for i, m in enumerate(("precision", "recall", "f1")):
        ax.bar([j + (i - 1) * width for j in range(len(types))], [per_type[t][m] for t in types], width, label=m)
    ax.set_xticks(range(len(types)), types)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Gold-set scores per entity type")
    _save(fig, path)


def _save(fig: Any, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
