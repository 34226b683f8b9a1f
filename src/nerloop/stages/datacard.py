"""Stage ``datacard``: the dataset card (data/final/README.md) in the Hugging Face format.

The inputs are the files the earlier stages wrote (the final split's figures, the loop's metrics,
what is held back); ``nerloop.release.card`` words the card from them. A missing final-split output
is an error, a missing loop metric is said to be unknown in the card.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from typing import Any

from nerloop import paths
from nerloop.data.files import atomic_write
from nerloop.errors import NerloopError
from nerloop.loop import held_back
from nerloop.params import load_params
from nerloop.release.card import FIGURE, build_card, example_row
from nerloop.stages import run

CARD = paths.FINAL / "README.md"
SOURCE_FIGURE = paths.METRICS / FIGURE
INPUTS = {
    "stats": paths.FINAL / "stats.json",
    "inconsistencies": paths.FINAL / "inconsistencies.json",
    "history": paths.METRICS / "history.json",
    "final_eval": paths.METRICS / "final_eval.json",
    "annotation": paths.METRICS / "annotation.json",
    "forecast": paths.METRICS / "forecast.json",
}


def _read(name: str) -> Any:
    """An input by name; the final-split outputs must exist, the loop's metrics may be missing."""
    path = INPUTS[name]
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    if name in ("stats", "inconsistencies"):
        raise NerloopError(f"{path} not found: run the final-split stage first (dvc repro final-split)")
    return [] if name == "history" else {}


def main() -> None:
    params = load_params()
    inputs = {name: _read(name) for name in INPUTS}
    figure = None
    if SOURCE_FIGURE.exists():
        shutil.copyfile(SOURCE_FIGURE, paths.FINAL / FIGURE)
        figure = FIGURE
    held = [asdict(h) for h in held_back.load()]
    outbox = len(paths.OUTBOX.read_text(encoding="utf-8").splitlines()) if paths.OUTBOX.exists() else 0
    card = build_card(params, **inputs, figure=figure, example=example_row(paths.FINAL), held=held, outbox=outbox)
    with atomic_write(CARD) as fh:
        fh.write(str(card))
    print(f"dataset card written to {CARD}")


if __name__ == "__main__":
    run(main)
