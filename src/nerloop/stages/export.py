"""Stage ``export``: the batch as it will be sent to annotators, checked, in ``data/export/outbox.jsonl``.

Sending is an effect on the outside world (people receive work), so it is not part of the DVC
graph: ``nerloop cycle`` sends the outbox after ``dvc repro`` and records what it sent in
``data/export/manifest.json``. This stage makes sure that what would be sent is sound (every
pre-annotated label in the label set, every span on the sentence's tokens), so a bad batch stops
here, before anyone is sent anything, and ``dvc exp run`` can show the batch a change would select.
It also marks each sentence's review mode (``meta["review"]``: "accept" in one key or "edit", by
``annotation.accept_threshold``; see ``nerloop.annotation.core.accept``), so that the outbox is exactly what is sent.
"""

from __future__ import annotations

from nerloop import paths
from nerloop.annotation.core import accept
from nerloop.data.files import read_records, write_records
from nerloop.data.labelled import entity_types
from nerloop.data.records import Record
from nerloop.data.tags import tags_to_spans
from nerloop.errors import DataError, TagError
from nerloop.params import load_params
from nerloop.stages import run


def check(rec: Record, labels: set[str]) -> None:
    """A pre-annotation that a backend can show: IOB2 tags of the label set, one per token."""
    tags = rec.meta.get("pre_tags")
    if tags is None:
        return
    if len(tags) != len(rec.tokens):
        raise DataError(paths.BATCH, None, f"sentence {rec.id}: {len(tags)} pre-annotation tags for "
                        f"{len(rec.tokens)} tokens; nothing is sent")
    try:
        bad = sorted({label for _, _, label in tags_to_spans(tags)} - labels)
    except TagError as exc:
        raise DataError(paths.BATCH, None, f"sentence {rec.id}: bad pre-annotation: {exc}; nothing is sent") from None
    if bad:
        raise DataError(paths.BATCH, None, f"sentence {rec.id}: pre-annotation labels {bad} are not in the label "
                        f"set {sorted(labels)}; nothing is sent")


def main() -> None:
    batch = read_records(paths.BATCH)
    labels = set(entity_types())
    for rec in batch:
        check(rec, labels)
    a = load_params().annotation
    n_accept = accept.mark(batch, a.accept_threshold, a.accept_share)
    write_records(paths.OUTBOX, batch)
    cycle = batch[0].meta["cycle"] if batch else None
    mode = f" ({n_accept} to accept in one key)" if a.accept_threshold is not None else ""
    print(f"outbox: {len(batch)} sentences for cycle {cycle}{mode}; `nerloop cycle` sends them" if batch
          else "outbox: empty (nothing selected)")


if __name__ == "__main__":
    run(main)
