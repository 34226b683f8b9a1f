"""The Doccano annotation backend: a real annotation team behind ``AnnotationBackend``.

Design, and the Doccano 1.8.4 facts behind it:

* **One project per annotator** (``<project>-<name>``), *collaborative* (``collaborative_annotation``
  on). Doccano 1.8.4 shows a span only to the account that created it unless the project is
  collaborative, and it has no per-member assignment (that arrives in 1.8.5). A collaborative
  project of one annotator is the only 1.8.4 setup where the pre-annotations nerloop uploads are
  visible to the person who corrects them, and it is also the assignment: the project holds exactly
  that annotator's share of each batch. The quality-control share is uploaded into two annotators'
  projects, so the two versions stay independent. Uploading spans *as* each annotator was the other
  option; it needs every annotator's password, which a server nerloop does not manage never gives.
* Spans are uploaded in bulk (one JSONL upload per project, prob 0.0, as Doccano's import sets it),
  then the confidences are written into Doccano's own ``prob``: in one request per project on a
  server nerloop runs (a route it adds there), else one request per span (172 s for 1,000 sentences).
  That step only touches examples nobody has confirmed, and it repeats harmlessly, so a rerun after
  a crash finishes it. Doccano's page never shows ``prob``, so each example's first metadata row,
  ``Model confidence``, lists the model's spans least confident first: the sidebar shows it on top.
* A server nerloop runs deletes each uploaded file once imported and serves nothing under
  ``media/`` (see ``nerloop.annotation.doccano.server``); another server keeps the uploaded files in its
  ``media/``, which nerloop cannot remove through Doccano's API.
* Everything nerloop needs to rebuild the canonical record travels in the example's meta under
  ``nerloop_*`` keys (id, tokens, offsets, text hash, cycle, pre-tags, scores, QC flag, assigned
  annotators), so fetch does not depend on local files. The prefix keeps them clear of Doccano's
  own columns, and every uploaded line carries the same keys (a missing key fails an upload).
* A sentence asked about a window of its words (``meta["window"]``, issue #28) has a ``Label only`` row first in
  its metadata, naming them (``tasks``): the only place Doccano 1.8.4 can show it. Its line has keys a whole
  sentence's lacks, so uploads are cut where the keys change (``upload_chunks``), the lines kept in order.
* How projects are named, created and joined is in ``projects`` (``ProjectsMixin``), the uploaded
  lines and the confidences in ``tasks`` (``DoccanoTasks``); who gets which
  sentence in ``plan``; the figures in ``quality``.
* Fetch reads examples, spans and ``ExampleState`` (who confirmed, when) through the REST API as
  the nerloop account. No dataset export is made: Doccano writes its zip under the server's ``media/``.
* Fetch takes the ledger: a sentence already imported whose confirmed spans changed since is a
  late correction, imported as a new revision (the ledger is append-only; the latest wins).
* Disagreements on the QC share go to ``<project>-review`` (``disagreement_policy: review``): the
  spans both annotators agree on are pre-annotated, each annotator's version is written into the
  example's meta as the sentence with its spans marked (``Version alice``: ``[Alice](PER) ...``), the
  first rows of the metadata beside the text, and the version the lead confirms there is imported.
* A label type outside the label set never blocks anything: an example that uses it is held back
  with a message naming example, span and label. Deleting a label type in Doccano deletes every span
  of that type, silently, so no message ever suggests it, and fetch watches for it (``label_watch``):
  an example marked done that may have lost spans with a deleted type is held back, naming sentence,
  annotator and type, until it is marked done again; a deleted label-set type is recreated at once.
* A disagreement sent to review is *in review* (``FetchResult.in_review``), not held back.
* Credentials come from ``NERLOOP_DOCCANO_URL/USERNAME/PASSWORD`` or ``.doccano/credentials.json``
  and never appear in messages, metrics or return values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from nerloop.annotation.core import asked, plan
from nerloop.annotation.core.base import ToolBackend
from nerloop.annotation.core.decide import DecisionMixin, TeamFetchResult
from nerloop.annotation.core.decide import Version as _Version
from nerloop.annotation.core.protocol import META_PREFIX, Listing, Span, SpanWords, checked_tags
from nerloop.annotation.doccano import label_watch
from nerloop.annotation.doccano.client import (
    DEFAULT_HOME,
    Connection,
    DoccanoHTTPError,
)
from nerloop.annotation.doccano.projects import SHA1_KEY, ProjectsMixin, _Example, _parallel, shown_digest
from nerloop.annotation.doccano.tasks import (
    REVIEW_WINDOW_ROW,
    REVIEW_WINDOW_TEXT,
    VERSION_PREFIX,
    DoccanoTasks,
    marked,
)
from nerloop.data.files import text_sha1
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record
from nerloop.data.tags import tags_to_spans, token_to_char_spans
from nerloop.params import DoccanoParams

UPLOAD_CHUNK = 500  # examples per upload: a timeout mid-export loses at most one chunk's request
SPAN_WORDS = SpanWords("span", "Doccano", relabel="in Doccano and mark the example done again", refit="in Doccano")

DoccanoFetchResult = TeamFetchResult  # the name callers and tests know


def upload_chunks(lines: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """The lines in order, in uploads of at most ``UPLOAD_CHUNK`` lines that all have the same keys: Doccano fails a
    whole upload where one line lacks a key that others have (a windowed sentence's ``Label only`` row, say)."""
    chunk: list[dict[str, Any]] = []
    for line in lines:
        if chunk and (len(chunk) == UPLOAD_CHUNK or line.keys() != chunk[0].keys()):
            yield chunk
            chunk = []
        chunk.append(line)
    if chunk:
        yield chunk


class DoccanoBackend(DecisionMixin, ProjectsMixin, DoccanoTasks, ToolBackend):
    """Annotation by a team in Doccano 1.8.4 (see the module docstring for the design)."""

    name = "doccano"
    SOURCE_KEY = "doccano"  # record.meta["doccano"]: project, example, confirmed_by, confirmed_at

    connection, default_home = Connection, DEFAULT_HOME

    def __init__(self, params: DoccanoParams, labels: Iterable[str], *, home: Path = DEFAULT_HOME,
                 creds: tuple[str, str, str] | None = None) -> None:
        """``creds`` = (url, username, password)."""
        super().__init__(params, labels, home=home, creds=creds)
        self._labels_by_pid: dict[int, dict[str, int]] = {}
        self.bulk_confidences: bool | None = None  # the server has nerloop's bulk route (None: not tried yet)

    def project_id(self) -> int | None:
        """None: the examples live in one project per annotator; the manifest names them per example."""
        return None

    # ------------------------------------------------------------ export

    def export(self, batch: list[Record], cycle: int) -> dict[str, str]:
        """Share the batch out over the team, with pre-annotations and their confidences.

        Returns {sentence id: "annotator:example id ..."}. Idempotent: a sentence already in any
        annotator project is not sent again (nobody gets it twice), so a rerun after a timeout or
        crash resumes. Everything is validated before anything is sent.
        """
        if not batch:
            return {}
        names = self.team()
        unique = plan.unique_batch(batch)
        lines = {sid: self._line(rec, cycle) for sid, rec in unique.items()}  # validates all first

        pids = {who: self.ensure_project(who, [who]) for who in names}
        where = self.where()
        new = [sid for sid in lines if sid not in where]
        qc = plan.qc_ids(new, self.params.qc_share, cycle) if len(names) > 1 else set()
        assignment = plan.assign(new, names, self.params.weights, qc)
        for who in names:
            todo = []
            for sid, people in assignment.items():
                if who in people:
                    todo.append({**lines[sid], META_PREFIX + "qc": len(people) > 1, META_PREFIX + "assigned": people})
            for chunk in upload_chunks(todo):
                self.conn.upload(pids[who], chunk)
        if new:
            where = self.where()
        missing = [sid for sid in lines if sid not in where]
        if missing:
            raise DoccanoHTTPError(
                f"Doccano at {self.conn.url} accepted the upload but {len(missing)} sentences are in no annotator "
                f"project (first: {missing[:3]}); see the server log and run the stage again"
            )
        self._send_confidences(where, unique)
        return {sid: " ".join(f"{who}:{ex.example_id}" for who, ex in sorted(where[sid].items())) for sid in lines}

    def _spans_of(self, pid: int, ex: _Example, who: str) -> tuple[list[str] | None, list[str], list[int] | None]:
        """The example's spans -> IOB2 tags on the original tokens (or None), the problems found, and the
        label type ids its spans use (None: not read), which ``label_watch`` remembers."""
        where = f"example {ex.example_id} (sentence {ex.sid}) in project {self.project_name(who)!r}"
        if text_sha1(ex.text) != ex.m("text_sha1"):
            return None, [
                f"{where}: the text was edited in Doccano (now {ex.text!r}); spans cannot be mapped to the original "
                "tokens. Undo the edit (restore the original text) or delete the example"
            ], None
        names = {v: k for k, v in self._label_cache(pid).items()}
        offsets = [(int(s), int(e)) for s, e in ex.m("offsets")]
        rows = self.conn.request("GET", f"projects/{pid}/examples/{ex.example_id}/spans", "listing spans")
        used = sorted({int(row["label"]) for row in rows})

        def spans() -> Iterator[Span]:
            for row in rows:
                label = names.get(int(row["label"]))
                if label is None:  # a label type created in Doccano after nerloop's: look it up by id
                    self._labels_by_pid.pop(pid, None)
                    types = self.conn.request("GET", f"projects/{pid}/span-types", "listing label types")
                    label = next((t["text"] for t in types if int(t["id"]) == int(row["label"])), f"#{row['label']}")
                yield int(row["start_offset"]), int(row["end_offset"]), label

        tags, problems = checked_tags(spans(), offsets, ex.text, self.labels, where, SPAN_WORDS)
        return tags, problems, used

    def _types(self, pid: int) -> dict[int, str]:
        """The project's label types now, by id (and the name -> id cache refreshed with them)."""
        rows = self.conn.request("GET", f"projects/{pid}/span-types", "listing label types")
        self._labels_by_pid[pid] = {r["text"]: int(r["id"]) for r in rows}
        return {int(r["id"]): r["text"] for r in rows}

    def _deleted_types(self, pid: int, listing: Listing,
                       before: label_watch.Look | None) -> tuple[dict[str, int | None], dict[int, str]]:
        """Label types deleted from the project since nerloop last looked, and its types now (deleted
        label-set types recreated, empty, so that the annotator can put the lost spans back)."""
        types = self._types(pid)
        pre_types = {t[2:] for ex in listing.ours.values() for t in ex.m("pre_tags") or [] if t != "O"}
        gone = label_watch.deleted_types(before, types, self.labels, pre_types)
        if set(gone) & set(self.labels):
            self.label_ids(pid, create=True)
            types = self._types(pid)
        return gone, types

    def _doubt_message(self, who: str, v: _Version, doubt: label_watch.Doubt) -> str:
        """Why an example marked done is held back after a label type was deleted: sentence, annotator, type."""
        name = self.project_name(who)
        owner = f"the review project {name!r}" if who == plan.REVIEW_SUFFIX else f"{who}'s project {name!r}"
        one = len(doubt.types) == 1
        verb, spans = ("was", "its spans with it") if one else ("were", "their spans with them")
        types = (f"the label type{'' if one else 's'} {' and '.join(repr(t) for t in doubt.types)} {verb} deleted "
                 f"from {owner}; Doccano removed {spans}")
        why = ("nerloop saw a span of that type on it before" if doubt.seen else
               "it was marked done while nerloop did not see its spans, so nerloop cannot tell whether it had one")
        restored = [repr(t) for t in doubt.types if t in self.labels]
        outside = [repr(t) for t in doubt.types if t not in self.labels]
        fix = (f"nerloop recreated {' and '.join(restored)} (empty); " if restored else "") + (
            f"{' and '.join(outside)} is not in the label set {self.labels}: use one of those; " if outside else "")
        return (f"sentence {v.example.sid} (example {v.example.example_id} in project {name!r}, marked done by "
                f"{v.confirmed_by}): {types}, silently, and {why}. Held back, not imported as complete: {fix}"
                "open the example, put back what is missing and mark it done again (click the check mark off, then on)")

    def _versions(self, who: str, pid: int, result: DoccanoFetchResult,
                  looks: dict[str, label_watch.Look]) -> tuple[dict[str, _Example], dict[str, _Version]]:
        """Every example of a project, and a version of each confirmed one (in doubt where a label type was
        deleted since nerloop last looked); ``looks[project name]`` is updated with what this look saw."""
        listing = self.listing(pid)
        result.problems.extend(listing.problems)
        result.not_ours.extend(listing.foreign)
        result.problems.extend(
            f"example {eid} in project {self.project_name(who)!r}: not ours (no nerloop_id in meta); ignored"
            for eid in listing.foreign
        )
        members = self.members(pid)
        name = self.project_name(who)
        p = self._project_list()[name]
        before = looks.get(name)
        if before is not None and before.project != f"{p['id']} {p.get('created_at')}":
            before = None  # a project recreated under the same name: nothing seen there yet
        gone, types = self._deleted_types(pid, listing, before)

        def version(ex: _Example) -> tuple[_Version | None, list[int] | None]:
            states = self._states(pid, ex.example_id)
            if not states:
                return None, None
            state = max(states, key=lambda s: s["confirmed_at"])
            tags, problems, used = self._spans_of(pid, ex, who)
            by = members.get(int(state["confirmed_by"]), f"user #{state['confirmed_by']}")
            return _Version(name, ex, by, state["confirmed_at"], tags, problems), used

        confirmed = [ex for ex in listing.ours.values() if ex.confirmed]
        look = label_watch.Look(f"{p['id']} {p.get('created_at')}", types)
        versions: dict[str, _Version] = {}
        for ex, (v, used) in zip(confirmed, _parallel(version, confirmed), strict=True):
            if v is not None:
                versions[ex.sid] = v
                look.done[ex.example_id] = v.confirmed_at
                if used is not None:
                    look.used[ex.example_id] = used
        look.doubt = label_watch.in_doubt(before, gone, look.done)
        for v in versions.values():
            if v.example.example_id in look.doubt:
                v.doubt.append(self._doubt_message(who, v, look.doubt[v.example.example_id]))
        looks[name] = look
        return listing.ours, versions

    def _provenance(self, version: _Version) -> dict[str, Any]:
        """Where in Doccano the imported tags were made: record.meta["doccano"]."""
        return {"project": version.project, "example": version.example.example_id,
                "confirmed_by": version.confirmed_by, "confirmed_at": version.confirmed_at}

    # ------------------------------------------------------------ fetch

    def fetch(self, ledger: Ledger, exported: dict[str, str] | None = None) -> DoccanoFetchResult:
        """Every confirmed, valid annotation not yet in ``ledger``, and late corrections of those in it.

        ``exported`` (the export manifest, sentence id -> example ids) lets deleted examples be
        reported. A sentence is done when its annotator confirmed it (both, for QC sentences, and
        agreeing, or resolved in the review project) and every confirmed version is valid; otherwise
        it stays pending, with a message when something needs doing in Doccano.
        """
        result = DoccanoFetchResult()
        latest = {e["id"]: e for e in ledger.entries}
        looks = label_watch.load(self.home)
        self._fetch_all(result, lambda who, pid: self._versions(who, pid, result, looks), latest, exported)
        label_watch.save(self.home, looks)  # only after a whole fetch: an interrupted one is simply repeated
        return result

    def _send_to_review(self, sid: str, va: _Version, vb: _Version) -> int:
        """Upload a disagreement to ``<project>-review``; return its example id there."""
        members = [self.params.reviewer] if self.params.reviewer else []
        pid = self.ensure_project(plan.REVIEW_SUFFIX, members)
        ex = va.example
        agreed = self._agreed(va.tags, vb.tags)
        offsets = [(int(s), int(e)) for s, e in ex.m("offsets")]
        win = asked.review_window(ex.text, offsets, ex.meta)
        line = {REVIEW_WINDOW_ROW: REVIEW_WINDOW_TEXT.format(words=win)} if win else {}  # which words to decide, first
        line.update({VERSION_PREFIX + v.confirmed_by: marked(ex.text, offsets, v.tags or []) for v in (va, vb)})
        line.update({  # the versions next: the top rows of the metadata beside the text
            "text": ex.text,
            "label": [[s, e, lab] for s, e, lab in token_to_char_spans(offsets, tags_to_spans(agreed))],
            **{k: v for k, v in ex.meta.items() if k.startswith(META_PREFIX)},
            SHA1_KEY: shown_digest(ex.m("text_sha1")),
        })
        self.conn.upload(pid, [line])
        return self.listing(pid).ours[sid].example_id
