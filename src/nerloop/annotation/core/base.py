"""The annotation backend interface shared by the simulated annotator and the annotation tools.

A backend is "the outside world" of the pipeline: stage ``export`` sends it a batch of
selected sentences with the model's pre-annotations, and stage ``import`` later asks it
for every annotation that is finished. Keeping both behind one small interface means
the loop, the ledger and the effort figures do not care who annotated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nerloop.annotation.core import plan
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


class ToolBackend(AnnotationBackend):
    """A backend in an annotation tool's server: made the same way for every tool, from its section of
    params.yaml, a label set that must not be empty, and a home holding the credentials (read on first use)."""

    connection: Any  # the tool's ToolConnection subclass
    default_home: Path  # `nerloop <tool> up`'s home: .doccano, .label-studio
    title_key: str  # the field of a project's name in the tool's list of projects: "name", "title"
    accounts: str  # what annotation.<tool>.annotators lists, in words: "Doccano usernames"

    def __init__(self, params: Any, labels: Iterable[str], *, home: Path | None = None,
                 creds: tuple[str, ...] | None = None) -> None:
        """``labels`` are the entity types (PER, ORG, ...). ``creds`` = (url, secrets ...) overrides the
        environment and ``<home>/credentials.json`` (tests); they are read on first use."""
        self.params = params
        self.labels = sorted(set(labels))
        if not self.labels:
            raise self.connection.errors.config("the label set is empty: set data.labels or label the seed set")
        self.home = Path(home or self.default_home)
        self.conn = self.connection(creds, home=self.home, default_url=params.url, timeout_s=params.timeout_s)
        self._projects: dict[str, dict[str, Any]] | None = None

    @classmethod
    def from_params(cls, params: Any, labels: Iterable[str], home: Path | None = None) -> Any:
        """The backend for the tool's section of ``annotation`` in params.yaml; credentials are read on first use."""
        return cls(params, labels, home=home)

    # ------------------------------------------------------------ the team and its projects (one per annotator)

    def _annotator_names(self) -> list[str]:
        """The annotators as params.yaml names them, else everyone in the tool's team file."""
        raise NotImplementedError

    def team(self) -> list[str]:
        """The annotators, checked: at least one, valid names, none twice."""
        names = self._annotator_names()
        key, command = self.conn.params_key, self.conn.source.command
        if not names:
            raise self.connection.errors.config(
                f"no annotators: add them with `nerloop {command} annotator add NAME` (a server nerloop manages) or "
                f"list existing {self.accounts} in annotation.{key}.annotators"
            )
        try:
            return plan.check_team(names)
        except ValueError as exc:
            raise self.connection.errors.config(f"annotation.{key}.annotators: {exc}") from None

    def _project_rows(self) -> Iterable[dict[str, Any]]:
        """Every project on the server, as the tool lists them."""
        raise NotImplementedError

    def project_name(self, who: str) -> str:
        """``<project>-<annotator>``, or ``<project>-review`` for ``who='review'``."""
        return f"{self.params.project}-{who}"

    def _project_list(self, *, refresh: bool = False) -> dict[str, dict[str, Any]]:
        """The server's projects by name (the oldest of a name), read once; ``refresh`` reads them again."""
        if self._projects is None or refresh:
            self._projects = {}
            for p in sorted(self._project_rows(), key=lambda p: p["id"]):
                self._projects.setdefault(p[self.title_key], p)
        return self._projects

    def annotator_projects(self) -> dict[str, int]:
        """{annotator: project id} of every ``<project>-<name>`` project, including past annotators'."""
        prefix = self.params.project + "-"
        review = self.project_name(plan.REVIEW_SUFFIX)
        return {title[len(prefix):]: int(p["id"]) for title, p in self._project_list().items()
                if title.startswith(prefix) and title != review}
