"""The Label Studio annotation backend: a team in Label Studio 1.23 behind ``AnnotationBackend``.

Design:

* **One project per annotator** (``<project>-<name>``), as for Doccano, because the open-source
  edition has no task assignment: every member sees every task of a project. The project is the
  share; the quality-control share is a task in two annotators' projects (``nerloop.annotation.core.plan``).
* Export imports tasks in bulk (``POST /api/projects/{id}/import``, 500 a request), each with the
  model's pre-annotation as a **prediction**: ``model_version`` names the cycle
  (``<project>-cycle-<n>``), each region's ``score`` is the model's confidence in that span, and the
  prediction's ``score`` (task level) is the least confident span's confidence (1.0 without spans),
  so the Data Manager can sort by it. Tasks are imported in nerloop's annotation order (cluster, then
  least sure first) and the project samples sequentially, so annotators get them in that order.
* Label Studio pre-fills only the predictions whose ``model_version`` is the project's. Each export
  makes the new cycle's version the project's, and copies the prediction of every older task nobody
  has annotated yet under that version (same spans, same scores; the task's ``nerloop_cycle`` keeps
  the cycle it was selected in), so no waiting task loses its pre-annotation.
* The task format (the task, its prediction, carrying predictions over) is ``tasks``
  (``LabelStudioTasks``); this module decides what is sent where, and reads what comes back.
* A sentence asked about a window of its words (``meta["window"]``, issue #28) names them in the task's hint and
  highlights them with a region of the labelling config's hidden ``window`` control (``tasks``); reading an
  annotation, only the entity control's regions are entities, so that region never is, whether submitted,
  deleted or drawn anew.
* Everything nerloop needs to rebuild the record is in the task's ``meta`` under ``nerloop_*`` keys
  (id, tokens, offsets, text hash, cycle, pre-tags, scores, QC flag, assignment); ``data`` holds only
  the text. Export is idempotent: a sentence already a task in any annotator project is not sent
  again, so a rerun after a timeout, an error or a crash resumes; a duplicate task (a request that
  timed out but went through) is reported and only the first is used.
* Fetch lists tasks with their annotations (``GET /api/tasks?fields=all``; no export file is written
  on the server). A task is done when it has a submitted annotation: skipped ones
  (``was_cancelled``) are not, and are reported. The annotation of the project's own annotator is
  preferred, the latest if there are several. Its ``created_at`` is the submission time for speed;
  a change after import (the annotation updated) is a late correction, imported as a revision. The
  QC pairs, disagreement policies, review project and figures are those of the Doccano backend
  (``nerloop.annotation.core.decide``).
* A label outside the label set, a region off token boundaries, a region with several labels,
  overlapping regions, an edited task text: the sentence is held back with a message naming the
  project, task, region and the fix.
* A label of the set removed from a project's labelling config: annotators could not mark that type,
  so every annotation submitted and not imported as it is gets marked for a re-check (task meta
  ``nerloop_recheck``: the labels, and each annotation's ``updated_at``), and then the label is put
  back. A marked annotation is held back, naming task, sentence, annotator and label, until it
  changes (its annotator marks what was missing and presses Update) or the lead accepts it as
  submitted (``accept``).
* The token comes from ``NERLOOP_LABEL_STUDIO_TOKEN`` or ``.label-studio/credentials.json`` and
  never appears in messages, metrics or return values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerloop.annotation.core import plan
from nerloop.annotation.core.base import ToolBackend
from nerloop.annotation.core.decide import DecisionMixin, TeamFetchResult, Version
from nerloop.annotation.core.protocol import META_PREFIX, Listing, Span, SpanWords, checked_tags
from nerloop.annotation.label_studio.client import (
    DEFAULT_HOME,
    Connection,
    LabelStudioHTTPError,
)
from nerloop.annotation.label_studio.projects import WINDOW_NAME, ProjectsMixin, Task
from nerloop.annotation.label_studio.tasks import LabelStudioTasks, review_task
from nerloop.data.files import text_sha1
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record
from nerloop.params import LabelStudioParams

IMPORT_CHUNK = 500  # tasks per import request: a timeout mid-export loses at most one request
RECHECK = "recheck"  # task meta nerloop_recheck: {"labels": [...], "annotations": {annotation id: its updated_at}}
SPAN_WORDS = SpanWords("region", "Label Studio", relabel="in Label Studio and submit again",
                       refit="in Label Studio and submit again")
Stamp = tuple[Any, Any]  # (annotation id, updated_at): one annotation as it was at a moment


@dataclass
class LabelStudioFetchResult(TeamFetchResult):
    """``TeamFetchResult`` (QC pairs, deleted, foreign, revisions) plus the skipped tasks."""

    skipped: list[str] = field(default_factory=list)  # sentence ids whose task was skipped, never submitted


def imported_stamp(entry: dict[str, Any]) -> Stamp:
    """The annotation a ledger entry was imported from, as it was then."""
    source = (entry.get("record", {}).get("meta") or {}).get("label_studio") or {}
    return source.get("annotation"), source.get("updated_at")


class LabelStudioBackend(DecisionMixin, ProjectsMixin, LabelStudioTasks, ToolBackend):
    """Annotation by a team in Label Studio (see the module docstring for the design)."""

    name = "label_studio"
    SOURCE_KEY = "label_studio"  # record.meta["label_studio"]: project, task, annotation, completed_by, ...
    TOOL, ITEM, FINISH = "Label Studio", "task", "press Submit"
    VERSIONS_SHOWN = "both versions are shown below the text"

    connection, default_home = Connection, DEFAULT_HOME

    def __init__(self, params: LabelStudioParams, labels: Iterable[str], *, home: Path = DEFAULT_HOME,
                 creds: tuple[str, str] | None = None) -> None:
        """``creds`` = (url, token)."""
        super().__init__(params, labels, home=home, creds=creds)
        self._users: dict[int, str] | None = None
        self._listings: dict[int, Any] = {}  # project id -> Listing read during this export
        self._created: set[int] = set()

    # ------------------------------------------------------------ export

    def export(self, batch: list[Record], cycle: int) -> dict[str, str]:
        """Share the batch out over the team as tasks with predictions; {sentence id: "annotator:task id ..."}.

        Idempotent: a sentence already in any annotator project is not sent again. Everything is
        validated before anything is sent.
        """
        if not batch:
            return {}
        names = self.team()
        unique = plan.unique_batch(batch)
        tasks = {sid: self._task(rec, cycle) for sid, rec in unique.items()}  # validates all first
        self.check_accounts(names)

        pids = {who: self.ensure_project(who) for who in names}
        where = self.where(skip=self._created)  # a project made just now has no tasks: no need to list it
        self._created = set()  # from now on they may have tasks
        new = [sid for sid in tasks if sid not in where]
        qc = plan.qc_ids(new, self.params.qc_share, cycle) if len(names) > 1 else set()
        assignment = plan.assign(new, names, self.params.weights, qc)
        for who in names:
            todo = [{**tasks[sid], "meta": {**tasks[sid]["meta"], META_PREFIX + "qc": len(people) > 1,
                                            META_PREFIX + "assigned": people}}
                    for sid, people in assignment.items() if who in people]
            for start in range(0, len(todo), IMPORT_CHUNK):
                chunk = todo[start:start + IMPORT_CHUNK]
                self.conn.request("POST", f"projects/{pids[who]}/import", f"importing {len(chunk)} tasks for {who}",
                                  json=chunk, timeout=max(self.params.timeout_s, 120.0))
        where = self.where() if new else where
        missing = [sid for sid in tasks if sid not in where]
        if missing:
            raise LabelStudioHTTPError(
                f"Label Studio at {self.conn.url} accepted the import but {len(missing)} sentences are in no "
                f"annotator project (first: {missing[:3]}); see the server log and run the command again"
            )
        for pid in pids.values():
            self._show_cycle(pid, cycle, self._listings[pid])
        return {sid: " ".join(f"{who}:{t.example_id}" for who, t in sorted(where[sid].items())) for sid in tasks}

    # ------------------------------------------------------------ reading annotations

    def _spans_of(self, task: Task, result: list[dict[str, Any]], project: str) -> tuple[list[str] | None, list[str]]:
        """An annotation's regions -> IOB2 tags on the original tokens, or None and the problems found."""
        where = f"task {task.example_id} (sentence {task.sid}) in project {project!r}"
        if text_sha1(task.text) != task.m("text_sha1"):
            return None, [f"{where}: the task text was edited in Label Studio (now {task.text!r}); regions cannot be "
                          "mapped to the original tokens. Restore the original text or delete the task"]
        offsets = [(int(s), int(e)) for s, e in task.m("offsets")]

        def spans() -> Iterator[Span | str]:
            for item in result:
                if item.get("type") != "labels" or item.get("from_name") == WINDOW_NAME:
                    continue  # relations, comments, the window marker, other controls: not entities
                value = item.get("value") or {}
                s, e, labels = int(value.get("start", 0)), int(value.get("end", 0)), list(value.get("labels") or [])
                if len(labels) != 1:
                    yield (f"{where}: region [{s}, {e}) {task.text[s:e]!r} has {len(labels)} labels {labels}; give it "
                           "exactly one in Label Studio and submit again")
                    continue
                yield s, e, str(labels[0])

        return checked_tags(spans(), offsets, task.text, self.labels, where, SPAN_WORDS)

    def _version(self, who: str, task: Task, result: LabelStudioFetchResult) -> Version | None:
        """The submitted annotation of a task (the project's own annotator's first, the latest), or None."""
        users = self.user_names()
        submitted = [a for a in task.annotations if not a.get("was_cancelled")]
        if not submitted:
            if task.annotations:
                by = sorted({users.get(int(a.get("completed_by") or 0), "?") for a in task.annotations})
                result.skipped.append(task.sid)
                result.problems.append(
                    f"task {task.example_id} (sentence {task.sid}) in project {self.project_name(who)!r} was skipped "
                    f"by {', '.join(by)}; it stays pending until someone submits it (or release it with "
                    "`nerloop held-back release`)"
                )
            return None
        own = [a for a in submitted if users.get(int(a.get("completed_by") or 0)) == who]
        ann = max(own or submitted, key=lambda a: (a.get("updated_at") or "", int(a["id"])))
        by = users.get(int(ann.get("completed_by") or 0), f"user #{ann.get('completed_by')}")
        tags, problems = self._spans_of(task, list(ann.get("result") or []), self.project_name(who))
        if self._marked(task, ann):
            tags, problems = None, [self._recheck_message(task, who, by), *problems]
        v = Version(self.project_name(who), task, by, str(ann.get("created_at") or ""), tags, problems)
        v.annotation = ann  # type: ignore[attr-defined]  # kept for the record's provenance
        return v

    def _provenance(self, version: Version) -> dict[str, Any]:
        """Where in Label Studio the imported tags were made: record.meta["label_studio"]."""
        ann = getattr(version, "annotation", {})
        return {"project": version.project, "task": version.example.example_id, "annotation": ann.get("id"),
                "completed_by": version.confirmed_by, "submitted_at": version.confirmed_at,
                "updated_at": ann.get("updated_at"), "lead_time_s": ann.get("lead_time")}

    def _project_versions(self, who: str, pid: int, result: LabelStudioFetchResult,
                          imported: dict[str, Stamp]) -> tuple[dict[str, Task], dict[str, Version]]:
        listing = self.listing(pid)
        self._check_config(who, pid, listing, imported, result)
        result.problems.extend(listing.problems)
        result.not_ours.extend(listing.foreign)
        result.problems.extend(f"task {tid} in project {self.project_name(who)!r}: not ours (no nerloop_id in its "
                               "meta); ignored" for tid in listing.foreign)
        versions = {}
        for sid, task in listing.ours.items():
            v = self._version(who, task, result)
            if v is not None:
                versions[sid] = v
        return listing.ours, versions

    # ------------------------------------------------------------ labels missing from the config

    def _check_config(self, who: str, pid: int, listing: Listing, imported: dict[str, Stamp],
                      result: LabelStudioFetchResult) -> None:
        """Put back labels removed from the project's config, after marking what was submitted without them."""
        marked: list[int] = []

        def mark(missing: list[str]) -> None:
            for task in listing.ours.values():
                stamps = {str(a["id"]): a.get("updated_at") for a in task.annotations if not a.get("was_cancelled")
                          and (a["id"], a.get("updated_at")) != imported.get(task.sid)}
                if stamps:
                    old = task.m(RECHECK) or {}
                    task.meta[META_PREFIX + RECHECK] = {
                        "labels": sorted({*old.get("labels", []), *missing}),
                        "annotations": {**old.get("annotations", {}), **stamps}}
                    self.conn.request("PATCH", f"tasks/{task.example_id}", f"marking task {task.example_id} for a "
                                      "re-check", json={"meta": task.meta})
                    marked.append(task.example_id)

        missing = self.restore_labels(who, pid, mark)
        if missing:
            result.problems.append(
                f"project {self.project_name(who)!r}: {', '.join(map(repr, missing))} had been removed from its "
                f"labelling config in Label Studio; nerloop put {'it' if len(missing) == 1 else 'them'} back. "
                f"Tasks submitted without it, each waiting for a re-check: {marked or 'none'}"
            )

    @staticmethod
    def _marked(task: Task, ann: dict[str, Any]) -> bool:
        """True when ``ann`` is unchanged since it was marked for a re-check."""
        stamps = (task.m(RECHECK) or {}).get("annotations") or {}
        return str(ann.get("id")) in stamps and stamps[str(ann.get("id"))] == ann.get("updated_at")

    def _recheck_message(self, task: Task, who: str, by: str) -> str:
        labels = (task.m(RECHECK) or {}).get("labels") or []
        named = f"label {labels[0]!r} was" if len(labels) == 1 else f"labels {', '.join(map(repr, labels))} were"
        return (f"task {task.example_id} (sentence {task.sid}) in project {self.project_name(who)!r}: {by} submitted "
                f"it while {named} missing from the project's labelling config (removed in Label Studio), so an "
                f"entity may be missing. The label is back: {by}, open the task, mark any {' / '.join(labels)} "
                f"entity missing and press Update; if none is missing, accept the task as submitted with "
                f"`nerloop label-studio accept {task.example_id}`")

    def accept(self, task_ids: list[int]) -> list[str]:
        """Take the re-check mark off these tasks: their submitted annotations are imported as they are.
        Returns one line per task; a task with no mark is left as it is, and said so."""
        out = []
        for tid in task_ids:
            task = self.conn.request("GET", f"tasks/{tid}", f"reading task {tid}")
            meta = dict(task.get("meta") or {})
            mark = meta.pop(META_PREFIX + RECHECK, None)
            if mark is None:
                out.append(f"task {tid}: not waiting for a re-check; left as it is")
                continue
            self.conn.request("PATCH", f"tasks/{tid}", f"accepting task {tid}", json={"meta": meta})
            out.append(f"task {tid} (sentence {meta.get(META_PREFIX + 'id')}): accepted as submitted without "
                       f"{mark.get('labels')}; the next `nerloop cycle` imports it")
        return out

    # ------------------------------------------------------------ fetch

    def fetch(self, ledger: Ledger, exported: dict[str, str] | None = None) -> LabelStudioFetchResult:
        """Every submitted, valid annotation not yet in ``ledger``, and late corrections of those in it."""
        result = LabelStudioFetchResult()
        latest = {e["id"]: e for e in ledger.entries}
        imported = {sid: imported_stamp(e) for sid, e in latest.items()}
        self._fetch_all(result, lambda who, pid: self._project_versions(who, pid, result, imported), latest,
                        exported)
        result.metrics["skipped"] = len(result.skipped)
        return result

    def _send_to_review(self, sid: str, va: Version, vb: Version) -> int:
        """Put a disagreement into ``<project>-review``: the agreed spans pre-filled, both versions shown."""
        pid = self.ensure_project(plan.REVIEW_SUFFIX)
        task: Task = va.example
        version = f"{self.params.project}-agreed"
        versions = {v.confirmed_by: v.tags or [] for v in (va, vb)}
        self.conn.request("POST", f"projects/{pid}/import", f"sending sentence {sid} to review", json=[
            review_task(task.text, task.m("offsets"), task.meta, versions, self._agreed(va.tags, vb.tags), version)])
        self.set_model_version(pid, version)
        return self.listing(pid).ours[sid].example_id
