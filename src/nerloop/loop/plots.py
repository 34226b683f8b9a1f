"""PNG figures for people (DVC renders the same data as interactive plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator


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
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # sentences and tokens come whole: no 192.5
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


def forecast(history: list[dict[str, Any]], fits: dict[str, Any], capacity: dict[str, int], target: float,
             path: str | Path, verdict: str = "") -> None:
    """Observed gold F1, the fitted inverse power law and its 90% band, against sentences and tokens.

    ``fits`` maps "sentences" / "tokens" to a ``nerloop.loop.forecast.Forecast`` (absent before three
    cycles). The curve runs to twice the labelled amount, or to the target, within what the pool holds.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, unit in zip(axes, ("sentences", "tokens"), strict=True):
        xs = [h[f"labelled_{unit}"] for h in history]
        ax.plot(xs, [h["f1"] for h in history], "o", color="black", label="gold F1")
        ax.axhline(target, color="grey", linestyle="--", linewidth=1,
                   label=f"target {target:.2f}" + (f"\n({verdict})" if verdict else ""))
        fc = fits.get(unit)
        if fc is None:
            ax.text(0.5, 0.5, "a forecast needs 3 cycles", transform=ax.transAxes, ha="center")
        else:
            need = fc.law.n_for(target)
            end = min(capacity[unit], max(2 * xs[-1], need if np.isfinite(need) else 0))
            grid = np.linspace(xs[0], max(end, xs[-1]), 200)
            low, high = fc.band(grid)
            ax.fill_between(grid, low, high, alpha=0.2, label="90% band")
            ax.plot(grid, fc.law(grid), label=f"fit, ceiling {fc.law.a:.3f}")
            if need <= end:
                ax.axvline(need, color="grey", linewidth=1)
        ax.set_xlabel(f"labelled {unit}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("F1 on the gold set")
    axes[0].legend(fontsize=8)
    fig.suptitle("Forecast: inverse power law fitted to the learning curve")
    _save(fig, path)


def _save(fig: Any, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
