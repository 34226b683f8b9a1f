"""Label Studio's task format: the task with its ``nerloop_*`` meta and the model's prediction (regions with
their scores, under a ``model_version`` per cycle), and carrying waiting tasks' predictions over to the
next cycle. The backend (``backend``) decides what is sent where; this is how.

A sentence asked about only a window of its words (``core.asked``) is shown three ways: the hint above the text
names the words ("Label only the highlighted words: «…» (words 6-13); …"), the prediction holds one more
region over them, of the hidden ``window`` control (projects.WINDOW_NAME), which Label Studio highlights in its own
colour and import never reads as an entity, and each predicted region wholly outside the window says in its
meta text (the region's details) that it is pre-filled by the model. Its task meta carries ``nerloop_window``.
A whole sentence's task is exactly what it was before windows existed.
"""

from __future__ import annotations

from typing import Any

from nerloop.annotation.core import accept, asked
from nerloop.annotation.core.decide import readable
from nerloop.annotation.core.protocol import META_PREFIX, Listing, item_meta, pre_annotation, review_mode
from nerloop.annotation.label_studio.client import LabelStudioDataError
from nerloop.annotation.label_studio.projects import FROM_NAME, TO_NAME, WINDOW_LABEL, WINDOW_NAME
from nerloop.data.files import json_safe, text_sha1
from nerloop.data.records import Record
from nerloop.data.tags import tags_to_spans, token_to_char_spans

# the task's ``hint`` field, which the labelling config shows above the text (every task has it: an old task
# without it shows nothing there). Ctrl+Enter is Label Studio's hotkey for Submit (Update once submitted), and
# Submit on an untouched task submits the pre-filled prediction as the annotation.
HINT_KEY = "hint"
HINTS = {
    accept.ACCEPT: "The model is confident about this sentence: check its suggestions and press Ctrl+Enter (Submit) "
                   "to accept them all, or fix them first.",
    accept.EDIT: "",
}
WINDOW_HINT = "Label only the highlighted words: {words}; the rest is pre-filled by the model."
# a windowed disagreement in review: the first line of its versions text
REVIEW_WINDOW_HINT = "Decide only {words}: the versions differ only there; the rest is pre-filled by the model."
WINDOW_ID = "window"  # the window region's id in the prediction
PRE_FILLED = "Pre-filled by the model, outside the words to label."  # meta text of a region outside the window


def window_hint(words: str, mode: str) -> str:
    """The hint of a sentence asked about a window (``words`` as ``asked.words`` names them), in review ``mode``."""
    return " ".join(h for h in (WINDOW_HINT.format(words=words), HINTS[mode]) if h)


def region(text: str, start: int, end: int, label: str, score: float | None, rid: str, *,
           from_name: str = FROM_NAME, note: str | None = None) -> dict[str, Any]:
    """One labelled span as a Label Studio result item (``note``: the region's meta text, in its details)."""
    item: dict[str, Any] = {"id": rid, "from_name": from_name, "to_name": TO_NAME, "type": "labels",
                            "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]}}
    if score is not None:
        item["score"] = score
    if note is not None:
        item["meta"] = {"text": [note]}
    return item


def review_task(text: str, offsets: list, meta: dict[str, Any], versions: dict[str, list[str]], agreed: list[str],
                model_version: str) -> dict[str, Any]:
    """A disagreement as a task of the review project: the spans both annotators agree on pre-filled, each
    annotator's version in the ``versions`` text below the sentence (``alice: Alice Smith/PER · Paris/LOC``), led,
    for a sentence asked about a window, by the words the reviewer decides (``REVIEW_WINDOW_HINT``)."""
    win = asked.review_window(text, offsets, meta)
    lines = [REVIEW_WINDOW_HINT.format(words=win)] if win else []
    lines += [f"{who}: {readable(text, offsets, tags)}" for who, tags in versions.items()]
    spans = token_to_char_spans([(int(s), int(e)) for s, e in offsets], tags_to_spans(agreed))
    return {"data": {"text": text, "versions": "\n".join(lines)},
            "meta": {k: v for k, v in meta.items() if k.startswith(META_PREFIX)},
            "predictions": [{"model_version": model_version, "score": 1.0, "result": [
                region(text, s, e, lab, None, f"n{i}") for i, (s, e, lab) in enumerate(spans)]}]}


class LabelStudioTasks:
    """The upload side of ``LabelStudioBackend``: tasks and predictions (a mixin: it uses the backend's
    connection, params and label set)."""

    def model_version(self, cycle: int) -> str:
        """The predictions' ``model_version`` for the batch of annotation ``cycle`` (the ledger's cycle, the
        batch's ``meta["cycle"]``): that batch is predicted by the model committed as ``nerloop cycle <cycle - 1>``,
        and tasks still waiting from older batches are carried over to it with their own spans."""
        return f"{self.params.project}-cycle-{int(cycle)}"

    def _task(self, rec: Record, cycle: int) -> dict[str, Any]:
        """One task with its prediction; ``nerloop_qc`` and ``nerloop_assigned`` are set once shared out."""
        spans, confs, tags = pre_annotation(rec, self.labels, LabelStudioDataError)
        confs = [json_safe(c) for c in confs]
        known = [c for c in confs if c is not None]
        win = asked.window(rec, LabelStudioDataError)
        meta = item_meta(rec, cycle, spans, tags, digest_key=META_PREFIX + "text_sha1", digest=text_sha1(rec.text))
        chars = asked.char_range(rec, win) if win else None
        result = [region(rec.text, s, e, lab, c, f"n{i}",
                         note=PRE_FILLED if chars and asked.outside((s, e), chars) else None)
                  for i, ((s, e, lab), c) in enumerate(zip(spans, confs, strict=True))]
        hint = HINTS[review_mode(rec)]
        if win and chars:
            result.append(region(rec.text, *chars, WINDOW_LABEL, None, WINDOW_ID, from_name=WINDOW_NAME))
            hint = window_hint(asked.words(rec, win), review_mode(rec))
        prediction = {
            "model_version": self.model_version(cycle),
            "score": min(known) if known else 1.0,  # the least sure span: the task's place in a sort
            "result": result,
        }
        data = {"text": rec.text, HINT_KEY: hint}
        return {"data": data, "meta": meta, "predictions": [prediction]}

    def _show_cycle(self, pid: int, cycle: int, listing: Listing) -> None:
        """Make this cycle's predictions the pre-filled ones, carrying older unannotated tasks' over."""
        version = self.model_version(cycle)
        for task in listing.ours.values():
            if task.annotations or not task.predictions:
                continue
            if any(p.get("model_version") == version for p in task.predictions):
                continue
            latest = max(task.predictions, key=lambda p: p.get("created_at") or "")
            self.conn.request("POST", "predictions/", f"carrying task {task.example_id}'s prediction over", json={
                "task": task.example_id, "model_version": version, "score": latest.get("score"),
                "result": latest.get("result") or []})
        self.set_model_version(pid, version)
