"""The simulated annotator: answers exported sentences from held-apart gold labels.

It stands in for humans in the demo, the tests and the benchmarks, so the whole loop
runs unattended. Its "server" is a JSONL file of exported examples under ``state_dir``
(committed with each cycle, like a Doccano database would persist); it answers every
exported sentence at the next import, as an annotator who confirms everything would. A sentence sent with a
window (``select.unit: window``) is answered inside the window only; outside it the pre-annotation stays.

It answers by characters, not tokens: the answer to a pool sentence is found by the
sentence's character key (its text without whitespace), and its entities are carried
onto the pool sentence's own tokens (``nerloop.data.align``). So a plain-text pool, split by
nerloop's tokeniser, is answered from a CoNLL file tokenised another way. What cannot be
answered stays pending with a reason that shows both tokenisations.
"""

from __future__ import annotations

import json
from pathlib import Path

from nerloop.annotation.core.base import AnnotationBackend, FetchResult
from nerloop.data.align import AlignError, char_key, project_tags
from nerloop.data.annotations import Annotation, merge_window, window_of
from nerloop.data.files import _lines, atomic_write
from nerloop.data.formats import read_any
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record
from nerloop.data.tokenizers import TokenizerName
from nerloop.errors import DataError


class SimulatedBackend(AnnotationBackend):
    name = "simulated"

    def __init__(self, answers: str | Path, state_dir: str | Path, tokenizer: TokenizerName = "default") -> None:
        self.answers_path = Path(answers)
        self.tokenizer = tokenizer  # for answers given as text: the pool's tokeniser, so spans map one to one
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

    def _answers(self) -> tuple[dict[str, Record], dict[str, Record]]:
        """The answers by sentence id and by character key (the first of equal keys wins)."""
        by_id: dict[str, Record] = {}
        by_key: dict[str, Record] = {}
        for r in read_any(self.answers_path, tokenizer=self.tokenizer):
            by_id.setdefault(r.id, r)
            by_key.setdefault(char_key(r.tokens)[0], r)
        return by_id, by_key

    def fetch(self, ledger: Ledger, exported: dict[str, str] | None = None) -> FetchResult:
        """Answer every exported sentence the ledger does not hold (answers never change: no revisions).

        With ``exported`` (the export manifest), a sentence missing from it was released
        back to the pool (``nerloop.loop.held_back``) and is not answered until exported again.
        """
        known = ledger.ids
        waiting = [e for e in self._exported()
                   if e["id"] not in known and (exported is None or e["id"] in exported)]
        result = FetchResult()
        if not waiting:
            return result
        by_id, by_key = self._answers()
        for e in waiting:
            rec = Record.from_dict(e["record"])
            gold = by_id.get(rec.id) or by_key.get(char_key(rec.tokens)[0])
            problem, tags = None, None
            if gold is None:
                problem = f"no gold answer in {self.answers_path} (none has this text, spacing ignored)"
            elif gold.tags is None:
                problem = f"the answer in {gold.source} has no tags"
            else:
                try:
                    tags = project_tags(gold.tokens, gold.tags, rec.tokens)
                except AlignError as exc:
                    problem = f"the answer in {gold.source} cannot be mapped: {exc}"
            if tags is None:
                result.pending.append(rec.id)
                result.problems.append(f"sentence {rec.id}: {problem}; stays pending")
                continue
            pre_tags, review, window = rec.meta.get("pre_tags"), rec.meta.get("review"), window_of(rec.meta)
            # asked about a window only, it answers there and leaves what it was shown elsewhere, as a person would
            rec.tags = merge_window(pre_tags, tags, window)
            # keep only how the sentence was chosen; pre-annotation and scores are not part of the annotation
            rec.meta = {"selection": rec.meta["selection"]} if "selection" in rec.meta else {}
            result.done.append(Annotation(record=rec, cycle=e["cycle"], annotator="simulated", pre_tags=pre_tags,
                                          review=review, window=window))
        return result
