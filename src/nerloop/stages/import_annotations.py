"""Stage ``import``: take finished annotations back from the backend into the ledger.

This is where the loop closes without a cycle in the DVC graph: the stage reads the
outside world (Doccano, or the simulated annotator), so it always runs, and appends to
the ledger only sentences it has not seen. Re-running adds nothing twice and loses
nothing. It also records what is still waiting, and the per-cycle figures: sentences
and tokens annotated, and how much of the pre-annotation the annotator had to change.
"""

from __future__ import annotations

import logging

from nerloop import paths
from nerloop.annotation import FetchResult, get_backend
from nerloop.formats import write_json
from nerloop.labelled import entity_types
from nerloop.ledger import Ledger
from nerloop.params import load_params
from nerloop.stages import run
from nerloop.stages.export import load_manifest

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    ledger = Ledger(paths.LEDGER)
    manifest = load_manifest()["examples"]
    # Nothing exported yet (cycle 0): no need to reach the backend.
    exported = {sid: e["example"] for sid, e in manifest.items()}
    result = get_backend(params, entity_types()).fetch(ledger, exported) if manifest else FetchResult()
    new = ledger.append(result.done)
    for problem in result.problems:
        log.warning("held back: %s", problem)

    waiting = {sid: e["cycle"] for sid, e in manifest.items() if sid not in ledger.ids}
    write_json(paths.PENDING, {"exported": {sid: e["cycle"] for sid, e in manifest.items()},
                               "waiting": waiting, "problems": result.problems})
    per_cycle = ledger.per_cycle()
    last = per_cycle.get(ledger.cycle, {})
    write_json(paths.METRICS / "annotation.json", {
        "cycle": ledger.cycle,
        "annotated_sentences": sum(c["sentences"] for c in per_cycle.values()),
        "annotated_tokens": sum(c["tokens"] for c in per_cycle.values()),
        "last_cycle": last,
        "waiting": len(waiting),
        "held_back": len(result.problems),
        **({"agreement": result.metrics} if result.metrics else {}),
    })
    revised = sorted(e["id"] for e in new if e.get("revision"))
    late = f"; {len(revised)} of them correct sentences imported before (new revisions: {revised})" if revised else ""
    print(f"imported {len(new)} new annotations (ledger: {len(ledger.entries)} sentences, cycle {ledger.cycle}); "
          f"{len(waiting)} exported sentences still waiting{late}")


if __name__ == "__main__":
    run(main)
