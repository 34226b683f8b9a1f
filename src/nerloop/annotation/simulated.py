"""The simulated annotator: answers exported sentences from held-apart gold labels.

It stands in for humans in the demo, the tests and the benchmarks, so the whole loop
runs unattended. Its "server" is a JSONL file of exported examples under ``state_dir``
(committed with each cycle, like a Doccano database would persist); it answers every
exported sentence at the next import, as an annotator who confirms everything would.
"""

from __future__ import annotations

import json
from pathlib import Path

from nerloop.annotation.base import Annotation, AnnotationBackend, FetchResult
from nerloop.errors import DataError
from nerloop.formats import _lines, atomic_write, read_any
from nerloop.ledger import Ledger
from nerloop.records import Record


class SimulatedBackend(AnnotationBackend):
    name = "simulated"

    def __init__(self, answers: str | Path, state_dir: str | Path) -> None:
        self.answers_path = Path(answers)
        self.exported_path = Path(state_dir) / "exported.jsonl"

    def _exported(self) -> list[dict]:
        if not self.exported_path.exists():
            return []
        out = []
        for n, line in _lines(self.exported_path):
            if line.strip():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(self.exported_path, n, f"corrupt export entry: {exc}") from None
                if not isinstance(entry, dict) or not {"id", "cycle", "record"} <= entry.keys():
                    raise DataError(self.exported_path, n, "corrupt export entry: needs 'id', 'cycle' and 'record'")
                out.append(entry)
        return out

    def export(self, batch: list[Record], cycle: int) -> dict[str, str]:
        exported = self._exported()
        have = {e["id"] for e in exported}
        new = []
        for r in batch:
            if r.id not in have:  # also keeps one copy of a sentence that occurs twice in the batch
                have.add(r.id)
                new.append({"id": r.id, "cycle": cycle, "record": r.to_dict()})
        if new:
            with atomic_write(self.exported_path) as fh:
                for e in exported + new:
                    fh.write(json.dumps(e, ensure_ascii=False) + "\n")
        return {r.id: r.id for r in batch}

    def fetch(self, ledger: Ledger, exported: dict[str, str] | None = None) -> FetchResult:
        # ``exported`` is not needed: the simulated "server" keeps its own list of what was sent, and
        # its answers never change after import, so there are no late corrections to report.
        known = ledger.ids
        waiting = [e for e in self._exported() if e["id"] not in known]
        result = FetchResult()
        if not waiting:
            return result
        answers = {r.id: r for r in read_any(self.answers_path)}
        for e in waiting:
            rec = Record.from_dict(e["record"])
            gold = answers.get(rec.id)
            problem = None
            if gold is None:
                problem = f"no gold answer in {self.answers_path}"
            elif gold.tags is None:
                problem = f"the answer in {gold.source} has no tags"
            elif gold.tokens != rec.tokens:
                problem = f"the answer in {gold.source} is tokenised differently"
            if problem:
                result.pending.append(rec.id)
                result.problems.append(f"{rec.id}: {problem}; stays pending")
                continue
            pre_tags = rec.meta.get("pre_tags")
            rec.tags = gold.tags
            # keep only how the sentence was chosen; pre-annotation and scores are not part of the annotation
            rec.meta = {"selection": rec.meta["selection"]} if "selection" in rec.meta else {}
            result.done.append(Annotation(record=rec, cycle=e["cycle"], annotator="simulated", pre_tags=pre_tags))
        return result
