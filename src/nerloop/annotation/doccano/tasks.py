"""Doccano's task format: the uploaded line with its ``nerloop_*`` meta, the model's confidences (in
Doccano's own ``prob``, and as the ``Model confidence`` row annotators read first), and the marked
versions a review example shows. The backend (``backend``) decides what is sent where; this is how.

A sentence asked about only a window of its words (``core.asked``) gets one more metadata row, first in the
sidebar: ``Label only``, naming the words (``words 6-13: «…»; the rest is pre-filled by the model``), and
``nerloop_window`` in its meta. Doccano 1.8.4 cannot highlight a range of the text without a span of a label type,
and a project that refuses overlapping spans could not hold one over the entities inside it, so the row is all
there is. A whole sentence's line is exactly what it was before windows existed; since an upload fails whole when
one line lacks a key that others have, the backend uploads lines of different keys separately.
"""

from __future__ import annotations

from typing import Any

from nerloop.annotation.core import accept, asked
from nerloop.annotation.core.protocol import META_PREFIX, Span, item_meta, pre_annotation, review_mode
from nerloop.annotation.doccano.client import DoccanoDataError, DoccanoHTTPError
from nerloop.annotation.doccano.projects import SHA1_KEY, _Example, _parallel, shown_digest
from nerloop.data.files import json_safe, text_sha1
from nerloop.data.records import Record
from nerloop.data.tags import tags_to_spans, token_to_char_spans

BULK_SPANS = 5000  # span confidences per request to the bulk route
# Doccano's annotation page lists an example's metadata at the top of its sidebar, in the order uploaded:
# these keys come first there (and, capitalised, before the nerloop_* keys were the table ever sorted)
CONFIDENCE_KEY = "Model confidence"  # annotator projects: the model's spans, least confident first
# an "accept or edit" sentence: what starts its Model confidence row (short: the table does not wrap, so the row's
# end is cut at the sidebar's edge). Enter is Doccano 1.8.4's shortcut for the check mark (it toggles: Enter again
# un-marks); Doccano has no "accept the pre-annotation" action of its own
ACCEPT_HINT = "ACCEPT IN ONE KEY: Enter if every span is right. "
WINDOW_ROW = "Label only"  # a windowed sentence's first metadata row: which words the annotator labels
WINDOW_TEXT = "{words}; the rest is pre-filled by the model"
# a windowed disagreement in review: its first row names the words the reviewer decides
REVIEW_WINDOW_ROW, REVIEW_WINDOW_TEXT = "Decide only", "{words}; the versions differ only there"
VERSION_PREFIX = "Version "  # review examples: "Version <annotator>", that annotator's spans marked in the text


def confidence_line(text: str, spans: list[Span], confs: list[float | None]) -> str:
    """The model's spans as an annotator reads them, least confident first: ``'Smith' PER 0.41; ...``."""
    if not spans:
        return "the model proposes no entity here"
    if all(c is None for c in confs):
        return "no confidences (pre-annotated from tags)"
    ranked = sorted(zip(spans, confs, strict=True), key=lambda sc: (sc[1] is None, sc[1] or 0.0, sc[0][0]))
    shown = "; ".join(f"{text[s:e]!r} {lab} {'?' if c is None else f'{c:.2f}'}" for (s, e, lab), c in ranked)
    return f"lowest first: {shown}"


def marked(text: str, offsets: list[tuple[int, int]], tags: list[str]) -> str:
    """The sentence with one version's spans marked in it: ``[Alice Smith](PER) visited [Paris](LOC) .``"""
    out, end = [], 0
    for s, e, lab in token_to_char_spans(offsets, tags_to_spans(tags)):
        out += [text[end:s], f"[{text[s:e]}]({lab})"]
        end = e
    return "".join([*out, text[end:]])


class DoccanoTasks:
    """The upload side of ``DoccanoBackend``: lines and confidences (a mixin: it uses the backend's
    connection, label set and label types)."""

    def _line(self, rec: Record, cycle: int) -> dict[str, Any]:
        """One upload line. Every line has exactly these keys (a missing key fails the whole upload);
        ``nerloop_qc`` and ``nerloop_assigned`` are filled in once the batch is shared out."""
        spans, confs, tags = pre_annotation(rec, self.labels, DoccanoDataError)
        win = asked.window(rec, DoccanoDataError)
        line = {
            # first: the top row of Doccano's metadata
            CONFIDENCE_KEY: (ACCEPT_HINT if review_mode(rec) == accept.ACCEPT else "")
            + confidence_line(rec.text, spans, confs),
            "text": rec.text,
            "label": [[s, e, label] for s, e, label in spans],
            **item_meta(rec, cycle, spans, tags, digest_key=SHA1_KEY, digest=shown_digest(text_sha1(rec.text)),
                        after_tags={META_PREFIX + "pre_conf": json_safe(confs)}),
        }
        if win is None:
            return line
        return {WINDOW_ROW: WINDOW_TEXT.format(words=asked.words(rec, win)), **line}


    def _send_confidences(self, where: dict[str, dict[str, _Example]], unique: dict[str, Record]) -> None:
        """Put each pre-annotated span's confidence into Doccano's ``prob`` (file upload stores 0.0).

        One request per project on a server nerloop runs (its bulk route; examples someone confirmed are
        left alone there); elsewhere, where that route answers 404 or 405, one request per span.
        """
        projects = self.annotator_projects()
        self._label_cache_all(projects.values())
        jobs: dict[str, list[tuple[_Example, Record]]] = {}
        for sid, rec in unique.items():
            for who, ex in where[sid].items():
                jobs.setdefault(who, []).append((ex, rec))
        for who, pairs in sorted(jobs.items()):
            pid = projects[who]
            if not self._bulk_confidences(pid, pairs):
                _parallel(lambda pair, pid=pid: self._write_confidences(pid, *pair), pairs)

    def _wanted_confidences(self, rec: Record) -> dict[Span, float]:
        spans, confs, _ = pre_annotation(rec, self.labels, DoccanoDataError)
        return {span: c for span, c in zip(spans, confs, strict=True) if c is not None}

    def _bulk_confidences(self, pid: int, pairs: list[tuple[_Example, Record]]) -> bool:
        """All confidences of a project's examples in one request, through the route nerloop adds to the
        server it runs; False (nothing written) where the server has no such route."""
        if self.bulk_confidences is False:
            return False
        types = self._label_cache(pid)
        rows = [[ex.example_id, s, e, types[lab], c] for ex, rec in pairs
                for (s, e, lab), c in self._wanted_confidences(rec).items()]
        for start in range(0, len(rows), BULK_SPANS):
            try:
                self.conn.request("POST", f"projects/{pid}/nerloop/span-probs", "writing span confidences",
                                  json={"spans": rows[start : start + BULK_SPANS]})
            except DoccanoHTTPError as exc:
                if exc.status not in (404, 405) or self.bulk_confidences:
                    raise
                self.bulk_confidences = False  # not a server nerloop runs: Doccano's own API, span by span
                return False
            self.bulk_confidences = True
        return True

    def _write_confidences(self, pid: int, ex: _Example, rec: Record) -> None:
        """One example's confidences through Doccano's API, a request per span (servers nerloop does not run).

        Only spans that still match a pre-annotated span of an example nobody confirmed are touched.
        """
        wanted = self._wanted_confidences(rec)
        if not wanted or ex.confirmed:
            return
        names = {v: k for k, v in self._label_cache(pid).items()}
        base = f"projects/{pid}/examples/{ex.example_id}"
        for span in self.conn.request("GET", f"{base}/spans", "listing spans"):
            key = (int(span["start_offset"]), int(span["end_offset"]), names.get(int(span["label"]), ""))
            conf = wanted.get(key)
            if conf is not None and abs(float(span.get("prob") or 0.0) - conf) > 1e-6:
                self.conn.request("PATCH", f"{base}/spans/{span['id']}", "writing span confidences",
                                  json={"prob": conf})

    # ------------------------------------------------------------ reading annotations

