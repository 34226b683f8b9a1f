"""The annotation backend interface shared by the simulated annotator and Doccano.

A backend is "the outside world" of the pipeline: stage ``export`` sends it a batch of
selected sentences with the model's pre-annotations, and stage ``import`` later asks it
for every annotation that is finished. Keeping both behind one small interface means
the loop, the ledger and the effort figures do not care who annotated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from nerloop.data.annotations import Annotation
from nerloop.data.ledger import Ledger
from nerloop.data.records import Record


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
