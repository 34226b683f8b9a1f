"""The annotation backend interface shared by the simulated annotator and Doccano.

A backend is "the outside world" of the pipeline: stage ``export`` sends it a batch of
selected sentences with the model's pre-annotations, and stage ``import`` later asks it
for every annotation that is finished. Keeping both behind one small interface means
the loop, the ledger and the effort figures do not care who annotated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nerloop.records import Record
from nerloop.tags import tags_to_spans

if TYPE_CHECKING:
    from nerloop.ledger import Ledger


@dataclass
class Annotation:
    """A finished annotation of one exported sentence.

    ``record.tags`` holds the annotator's IOB2 tags; ``pre_tags`` the pre-annotation that
    annotator was shown (None if none was), used for the effort figure. ``revision`` marks a
    correction of a sentence already in the ledger (made after it was imported): the ledger
    appends it as a new revision instead of skipping it as already known.
    """

    record: Record
    cycle: int
    annotator: str
    pre_tags: list[str] | None = None
    revision: bool = False


@dataclass
class FetchResult:
    """What ``AnnotationBackend.fetch`` found: finished work, what still waits, and why."""

    done: list[Annotation] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # sentence ids exported and not finished
    problems: list[str] = field(default_factory=list)  # examples held back, one message each
    metrics: dict[str, Any] = field(default_factory=dict)  # e.g. inter-annotator agreement
    # disagreements waiting on the lead in the review project, one message each: pending, but not held back
    # (nothing is wrong with them; the review path never blocks a cycle)
    in_review: list[str] = field(default_factory=list)
    # sentence id -> the finished work of each annotator that is not imported (yet): what releasing would drop
    work: dict[str, list[str]] = field(default_factory=dict)


class AnnotationBackend(ABC):
    """Where selected sentences go to be annotated, and where annotations come back from.

    Batch records carry in ``meta``: ``cycle``, ``pre_tags`` (predicted IOB2 tags),
    ``pre_spans`` ([char_start, char_end, label, confidence] lists) and ``scores``.
    """

    name: str = "base"

    @abstractmethod
    def export(self, batch: list[Record], cycle: int) -> dict[str, str]:
        """Send a batch; return {sentence id: backend example id}.

        Must be idempotent: a sentence already in the backend is not sent again.
        """

    def project_id(self) -> int | None:
        """The backend's project holding our examples, for the export manifest (None: no projects)."""
        return None

    @abstractmethod
    def fetch(self, ledger: Ledger, exported: dict[str, str] | None = None) -> FetchResult:
        """Return every finished annotation whose sentence is not in ``ledger`` yet, and, where the
        backend can see them, corrections of sentences already in it (``Annotation.revision``).

        The whole ledger (not only its ids) is passed so that a backend can tell a late correction
        from the version already imported. ``exported`` (sentence id -> example id, from the export
        manifest) lets a backend report examples that were sent but have since disappeared.
        """


def edit_counts(pre_tags: list[str] | None, final_tags: list[str]) -> dict[str, int]:
    """How much of the pre-annotation the annotator changed: the manual-effort figure.

    Spans with the same boundaries and label are kept; same boundaries with another
    label are relabelled; pre-annotated spans with no same-boundary final span are
    deleted; final spans with no same-boundary pre span are added.
    """
    final = {(s, e): lab for s, e, lab in tags_to_spans(final_tags)}
    pre = {(s, e): lab for s, e, lab in tags_to_spans(pre_tags)} if pre_tags else {}
    kept = sum(1 for k, lab in pre.items() if final.get(k) == lab)
    relabelled = sum(1 for k, lab in pre.items() if k in final and final[k] != lab)
    deleted = sum(1 for k in pre if k not in final)
    added = sum(1 for k in final if k not in pre)
    return {"kept": kept, "added": added, "deleted": deleted, "relabelled": relabelled}
