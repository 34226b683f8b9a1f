"""How a team backend decides what is done: QC pairs, disagreements, late corrections, figures.

Shared by the Doccano and Label Studio backends, which differ in how they store examples and who
finished them, not in what counts as done. A backend supplies, per sentence, the ``Version`` each
annotator finished (with ``example`` its own example or task object, exposing ``example_id``,
``text``, ``meta`` and ``m(key)`` for the ``nerloop_*`` bookkeeping), and these methods decide:

* a sentence for one annotator is done when that annotator finished it with a valid version;
* a quality-control sentence (two annotators) when both finished it and agree, or, when they do not,
  per ``disagreement_policy``: ``hold`` keeps it back with a message, ``review`` sends it to
  ``<project>-review`` (it is then *in review*, ``FetchResult.in_review``: waiting on the lead, never
  counted as held back) and imports the version the lead finishes there;
* a version the backend doubts (``Version.doubt``: e.g. Doccano deleted spans with their label type) is
  never imported as complete: its sentence is held back, and a late correction from it is not taken;
* what annotators finished on a sentence that is not imported is described in ``FetchResult.work``, so
  that releasing the sentence can say what would be dropped;
* a sentence already in the ledger whose source version changed since is a late correction, imported
  as a new revision (the ledger is append-only; the latest wins);
* figures: agreement per cycle and cumulative (``quality``), effort, speed per annotator and cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from nerloop.annotation.core import plan, quality
from nerloop.annotation.core.base import FetchResult
from nerloop.data.annotations import WINDOW_KEY, Annotation, edit_counts, merge_window
from nerloop.data.records import Record
from nerloop.data.tags import spans_to_tags, tags_to_spans, token_to_char_spans


@dataclass
class TeamFetchResult(FetchResult):
    """``FetchResult`` plus the details behind the agreement and fault counts (JSON-serialisable)."""

    disagreements: list[dict[str, Any]] = field(default_factory=list)  # QC pairs that differ, with both versions
    deleted: list[str] = field(default_factory=list)  # exported sentence ids no longer in the tool
    not_ours: list[int] = field(default_factory=list)  # example / task ids without nerloop_id
    qc_waiting: list[str] = field(default_factory=list)  # QC sentences confirmed by one annotator so far
    revisions: list[str] = field(default_factory=list)  # imported sentences corrected since (new revisions)


@dataclass
class Version:
    """One finished version of one example in one project: who finished it when, and its tags (None: invalid).

    ``example`` is the tool's example or task; it has ``example_id``, ``text``, ``meta`` and ``m(key)``.
    """

    project: str
    example: Any
    confirmed_by: str
    confirmed_at: str
    tags: list[str] | None
    problems: list[str]
    doubt: list[str] = field(default_factory=list)  # why these (valid) tags may be incomplete: held, not imported


def readable(text: str, offsets: list[list[int]], tags: list[str]) -> str:
    """Spans as a person reads them: ``Alice Smith/PER · Paris/LOC`` (or ``(no entities)``)."""
    spans = token_to_char_spans([(int(s), int(e)) for s, e in offsets], tags_to_spans(tags))
    return " · ".join(f"{text[s:e]}/{lab}" for s, e, lab in spans) or "(no entities)"


class DecisionMixin:
    """The decisions above; the backend supplies the attributes below and three methods."""

    SOURCE_KEY: str  # where a ledger record keeps its source: record.meta[SOURCE_KEY]["project"]
    params: Any  # a TeamParams (disagreement_policy, break_s)
    # the tool's own words in messages to the lead: what an item is called, how it is finished, where the
    # two versions of a disagreement are shown
    TOOL = "Doccano"
    ITEM = "example"
    FINISH = "mark it done"
    VERSIONS_SHOWN = "both versions are in its metadata"

    # The backend also supplies project_name(who), annotator_projects(), _project_list(),
    # _provenance(version) -> record.meta[SOURCE_KEY]
    # and _send_to_review(sid, version_a, version_b) -> the review example's id. (No stubs here: a stub
    # would shadow the backend's own mixins in the method resolution order.)

    def _annotation(self, v: Version, annotators: list[str], pre_tags: list[str] | None,
                    revision: bool = False) -> Annotation:
        """What is imported of a decided version: the sentence rebuilt from its item's own meta (no local file
        needed), with the version's tags, its annotators, and where in the tool it was made."""
        assert v.tags is not None
        item = v.example
        record = Record(
            id=item.sid,
            tokens=[str(t) for t in item.m("tokens")],
            text=item.text,
            offsets=[(int(s), int(e)) for s, e in item.m("offsets")],
            tags=v.tags,
            source=item.m("source") or "",
            doc_id=item.m("doc_id"),
            meta={"cycle": int(item.m("cycle", 0)), "scores": item.m("scores") or {}, "selection": item.m("selection"),
                  "annotators": annotators, self.SOURCE_KEY: self._provenance(v)},  # type: ignore[attr-defined]
        )
        # the words the annotator was asked about (select.unit: window): the ledger keeps the pre-annotation elsewhere
        window = item.m("window")
        return Annotation(record=record, cycle=int(item.m("cycle", 0)), annotator=v.confirmed_by, pre_tags=pre_tags,
                          revision=revision, review=item.m("review"),
                          window=[int(x) for x in window] if window is not None else None)

    def _late_correction(self, sid: str, entry: dict[str, Any], mine: dict[str, Version],
                         reviewed: dict[str, Version], result: TeamFetchResult) -> None:
        """An imported sentence whose source example now holds other confirmed spans: a new revision."""
        source = (entry["record"].get("meta") or {}).get(self.SOURCE_KEY) or {}
        project = source.get("project")
        candidates = [*mine.values(), *([reviewed[sid]] if sid in reviewed else [])]
        v = next((c for c in candidates if c.project == project), None)
        if v is None:
            if project:
                result.problems.append(
                    f"sentence {sid}: imported from project {project!r} ({self.ITEM} "
                    f"{source.get(self.ITEM, source.get('example'))}), which no longer has it finished; a change there "
                    f"is imported once you {self.FINISH} again (until then the imported version stays)"
                )
            return
        # a partly labelled entry keeps the pre-annotation outside its window: a change there is none
        if v.tags is not None and merge_window(entry.get("pre_tags"), v.tags, entry.get(WINDOW_KEY)) == \
                entry["record"]["tags"]:
            return
        if v.tags is None or v.doubt:
            result.problems.extend(p + " (a correction after import; the imported version stays)"
                                   for p in [*v.problems, *v.doubt])
            return
        annotators = (entry["record"].get("meta") or {}).get("annotators") or [v.confirmed_by]
        result.done.append(self._annotation(v, annotators, entry.get("pre_tags"), revision=True))
        result.revisions.append(sid)

    def _judge(self, sid: str, assigned: list[str], mine: dict[str, Version], reviewed: dict[str, Version],
               review_ours: dict[str, Any], result: TeamFetchResult) -> Annotation | None:
        """Decide one sentence not yet imported: an Annotation, or None (pending; problems appended)."""
        ann = self._decide(sid, assigned, mine, reviewed, review_ours, result)
        if ann is None:
            finished = [mine[a] for a in assigned if a in mine] + ([reviewed[sid]] if sid in reviewed else [])
            self._keep_work(sid, finished, result)
        return ann

    def _keep_work(self, sid: str, versions: list[Version], result: TeamFetchResult) -> None:
        """Describe each finished version of a sentence that is not imported (what releasing it would drop)."""
        if versions:
            result.work[sid] = [
                f"{v.confirmed_by}'s version ({self.ITEM} {v.example.example_id} in project {v.project!r}): "
                + (readable(v.example.text, v.example.m("offsets"), v.tags) if v.tags is not None
                   else "spans that could not be read (see the reason)")
                for v in versions
            ]

    def _decide(self, sid: str, assigned: list[str], mine: dict[str, Version], reviewed: dict[str, Version],
                review_ours: dict[str, Any], result: TeamFetchResult) -> Annotation | None:
        confirmed = [a for a in assigned if a in mine]
        for a in confirmed:
            result.problems.extend(p + "; the sentence stays pending" for p in [*mine[a].problems, *mine[a].doubt])
        if len(confirmed) < len(assigned):
            if confirmed:
                result.qc_waiting.append(sid)
            return None
        if any(mine[a].tags is None or mine[a].doubt for a in assigned):
            return None
        pre = mine[assigned[0]].example.m("pre_tags")
        if len(assigned) == 1:
            return self._annotation(mine[assigned[0]], assigned, pre)
        a, b = assigned
        # a partly labelled sentence: only the window's answers count, outside it the model's pre-annotation stays
        # (as the ledger keeps it), so the versions compared, shown to the reviewer and agreed on differ only there
        win = mine[a].example.m(WINDOW_KEY)
        va, vb = (replace(mine[u], tags=merge_window(pre, mine[u].tags, win)) for u in (a, b))  # type: ignore[arg-type]
        if va.tags == vb.tags:
            return self._annotation(mine[a], assigned, pre)
        ex = mine[a].example
        offsets = ex.m("offsets")
        result.disagreements.append({
            "sentence_id": sid, "annotators": [a, b], "text": ex.text,
            "examples": {a: mine[a].example.example_id, b: mine[b].example.example_id},
            "spans": {u: readable(ex.text, offsets, v.tags or []) for u, v in ((a, va), (b, vb))},
        })
        where = (f"sentence {sid} ({a}: {self.ITEM} {mine[a].example.example_id}, {b}: {self.ITEM} "
                 f"{mine[b].example.example_id})")
        if self.params.disagreement_policy == "hold":
            result.problems.append(
                f"{where}: {a} and {b} disagree; held back (disagreement_policy: hold). Make both versions match in "
                "their projects, or set disagreement_policy: review"
            )
            return None
        v = reviewed.get(sid)
        if v is not None:
            if v.tags is None or v.doubt:
                result.problems.extend(p + "; the sentence stays pending" for p in [*v.problems, *v.doubt])
                return None
            return self._annotation(v, [a, b, v.confirmed_by], self._agreed(va.tags, vb.tags))
        eid = review_ours[sid].example_id if sid in review_ours else self._send_to_review(sid, va, vb)
        result.in_review.append(
            f"{where}: {a} and {b} disagree; resolve it in project {self.project_name(plan.REVIEW_SUFFIX)!r}, "
            f"{self.ITEM} {eid} ({self.VERSIONS_SHOWN}), and {self.FINISH}"
        )
        return None

    @staticmethod
    def _agreed(a: list[str] | None, b: list[str] | None) -> list[str]:
        """Tags of the entities both versions share (the review project's pre-annotation)."""
        a, b = a or [], b or []
        both = set(tags_to_spans(a)) & set(tags_to_spans(b))
        return spans_to_tags(len(a), sorted(both))

    def _fetch_all(self, result: TeamFetchResult, read: Callable[[str, int], tuple[dict[str, Any], dict[str, Version]]],
                   latest: dict[str, dict[str, Any]], exported: dict[str, str] | None) -> None:
        """Read every annotator project and the review project with ``read(who, project id)`` -> (our items
        and the finished versions in it, by sentence), then decide on every listed sentence: deleted, late
        correction, imported, pending; then the figures.

        Speed and effort count only each annotator's own work; a QC pair counts for agreement once both
        versions are valid and neither is in doubt.
        """
        items: dict[str, dict[str, Any]] = {}  # sid -> annotator -> item
        versions: dict[str, dict[str, Version]] = {}  # sid -> annotator -> finished version
        for who, pid in sorted(self.annotator_projects().items()):
            ours, found = read(who, pid)
            for sid, item in ours.items():
                items.setdefault(sid, {})[who] = item
            for sid, v in found.items():
                versions.setdefault(sid, {})[who] = v
        review_pid = self._project_list().get(self.project_name(plan.REVIEW_SUFFIX), {}).get("id")
        review_ours, reviewed = read(plan.REVIEW_SUFFIX, int(review_pid)) if review_pid is not None else ({}, {})

        result.deleted = sorted(sid for sid in exported or {} if sid not in items and sid not in latest)
        result.problems.extend(
            f"sentence {sid}: its {self.TOOL} {self.ITEM} ({(exported or {})[sid]}) was deleted in {self.TOOL}; "
            "export the sentence again to have it annotated"
            for sid in result.deleted
        )
        pairs: dict[int, list[tuple[list[str], list[str]]]] = {}
        confirmations: list[quality.Confirmation] = []
        for sid in sorted(items):
            first = next(iter(items[sid].values()))
            assigned = [str(a) for a in first.m("assigned") or sorted(items[sid])]
            mine = versions.get(sid, {})
            for who, v in mine.items():
                if v.confirmed_by == who:
                    confirmations.append(quality.Confirmation(
                        who, sid, int(first.m("cycle", 0)), len(first.m("tokens")), v.confirmed_at,
                        first.m("pre_tags"), v.tags, first.m(WINDOW_KEY)))
            if len(assigned) == 2 and all(a in mine and mine[a].tags is not None and not mine[a].doubt
                                          for a in assigned):
                left, right = (quality.asked_part(first.m("pre_tags"), mine[u].tags, first.m(WINDOW_KEY))  # type: ignore[arg-type]
                               for u in assigned)
                pairs.setdefault(int(first.m("cycle", 0)), []).append((left, right))
            if sid in latest:
                self._late_correction(sid, latest[sid], mine, reviewed, result)
                continue
            ann = self._judge(sid, assigned, mine, reviewed, review_ours, result)
            if ann is None:
                result.pending.append(sid)
            else:
                result.done.append(ann)
        result.metrics = self._metrics(result, pairs, confirmations)

    def _metrics(self, result: TeamFetchResult, pairs: dict[int, list[tuple[list[str], list[str]]]],
                 confirmations: list[quality.Confirmation]) -> dict[str, Any]:
        """Counts, agreement per cycle and cumulative, speed and effort per annotator and cycle."""
        per_cycle = {str(c): quality.agreement(p) for c, p in sorted(pairs.items())}
        cumulative = quality.agreement(p for c in sorted(pairs) for p in pairs[c])
        last = per_cycle[str(max(pairs))] if pairs else quality.agreement([])
        effort = {"kept": 0, "added": 0, "deleted": 0, "relabelled": 0}
        for ann in result.done:
            for k, v in edit_counts(ann.pre_tags, ann.record.tags or [], ann.window).items():
                effort[k] += v
        return {
            "done": len(result.done),
            "revisions": len(result.revisions),
            "pending": len(result.pending),
            "problems": len(result.problems),
            "qc_examples": last["pairs"],  # the latest cycle with QC pairs (per_cycle and cumulative: below)
            "kappa": last["kappa"],
            "entity_f1": last["entity_f1"],
            "disagreements": last["disagreements"],
            "kappa_target": quality.KAPPA_TARGET,
            "qc_waiting": len(result.qc_waiting),
            "deleted": len(result.deleted),
            "not_ours": len(result.not_ours),
            **{f"effort_{k}": v for k, v in effort.items()},
            "per_cycle": per_cycle,
            "cumulative": cumulative,
            "annotators": quality.speed_and_effort(confirmations, self.params.break_s),
            "break_s": self.params.break_s,
        }
