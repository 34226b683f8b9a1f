"""Stage ``import``: append the annotations in the inbox to the ledger.

``nerloop cycle`` fetches finished annotations from the backend into ``data/annotations/inbox.json``
(see ``nerloop.loop.inbox``); this stage only reads that file, so it is an ordinary DVC stage: it runs
when the inbox changed, and a repro with nothing new fetched does nothing. The ledger only ever
appends sentences it has not seen, so running the stage twice adds nothing twice. It also records
what is still waiting (held back and in review apart: see ``nerloop.loop.held_back``), and the per-cycle
figures: sentences and tokens annotated, and how much of the pre-annotation the annotators had to change.
"""

from __future__ import annotations

from nerloop import paths
from nerloop.annotation.core.base import FetchResult
from nerloop.data.files import write_json
from nerloop.data.labelled import entity_types
from nerloop.data.ledger import Ledger
from nerloop.errors import DataError
from nerloop.loop import held_back, inbox
from nerloop.stages import run


def check_labels(result: FetchResult, allowed: set[str]) -> None:
    """Refuse (before anything is written) an annotation using a type outside the label set."""
    for ann in result.done:
        bad = {t[2:] for t in ann.record.tags or [] if t != "O"} - allowed
        if bad:
            raise DataError(paths.INBOX, None, (
                f"sentence {ann.record.id} ({ann.record.text[:60]!r}), annotated by {ann.annotator!r}, uses "
                f"{sorted(bad)}, outside the label set {sorted(allowed)}: add the type to data.labels in params.yaml "
                "(then `nerloop cycle` re-runs prepare) or correct the annotation; nothing was imported"))


def main() -> None:
    result, exported = inbox.read()
    check_labels(result, set(entity_types()))
    ledger = Ledger(paths.LEDGER)
    new = ledger.append(result.done)
    held, review = held_back.split(held_back.record(result, exported))  # data/annotations/held_back.jsonl

    waiting = {sid: c for sid, c in exported.items() if sid not in ledger.ids}
    write_json(paths.PENDING, {"exported": exported, "waiting": waiting, "problems": result.problems,
                               "in_review": result.in_review})
    per_cycle = ledger.per_cycle()
    accepted = ledger.accepted_per_cycle()
    write_json(paths.METRICS / "annotation.json", {
        "cycle": ledger.cycle,
        "annotated_sentences": sum(c["sentences"] for c in per_cycle.values()),
        "annotated_tokens": sum(c["tokens"] for c in per_cycle.values()),
        "last_cycle": per_cycle.get(ledger.cycle, {}),
        "manual_effort": ledger.manual_effort(),  # edits from the pre-annotation / edits from nothing
        # sentences sent as "accept or edit" and returned as pre-annotated (README "Accept in one key")
        "accepted_in_one_key": {"last_cycle": accepted.get(ledger.cycle, 0), "total": sum(accepted.values())},
        # select.unit: window (README "Subsequence selection"); annotated_tokens counts their windows only
        **({"partly_labelled": partial} if (partial := ledger.partial_counts()) else {}),
        "waiting": len(waiting),
        "held_back": len(held),  # entries of held_back.jsonl: sentences, and backend problems tied to none
        "in_review": len(review),  # disagreements waiting on the lead: waiting, not held back
        **({"agreement": result.metrics} if result.metrics else {}),
    })
    revised = sorted(e["id"] for e in new if e.get("revision"))
    late = f"; {len(revised)} of them correct sentences imported before (new revisions: {revised})" if revised else ""
    print(f"imported {len(new)} new annotations (ledger: {len(ledger.entries)} sentences, cycle {ledger.cycle}); "
          f"{len(waiting)} exported sentences still waiting"
          f"{f' ({len(review)} in review, waiting on the lead)' if review else ''}{late}")


if __name__ == "__main__":
    run(main)
