"""The PNG figures: sentence and token axes tick at whole numbers (no '192.5 sentences')."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from nerloop.loop import plots


def test_learning_curve_ticks_are_whole_numbers(tmp_path: Path, monkeypatch) -> None:
    history = [{"cycle": c, "labelled_sentences": 190 + 5 * c, "labelled_tokens": 2000 + 3 * c, "f1": 0.5 + c / 100}
               for c in range(3)]
    seen = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.append(fig))
    plots.learning_curve(history, tmp_path / "lc.png")
    (fig,) = seen
    for ax in fig.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    plt.close(fig)
