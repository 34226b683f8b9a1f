"""Label Studio projects for the team: one per annotator, the review project, the labelling config, listing.

Kept apart from export and fetch: this is everything that knows how nerloop's projects are named and
set up. The open-source edition has no per-project members and no task assignment (every member of
the organization sees every project and every task), so, as for Doccano 1.8.4, the assignment is
the project: ``<project>-<annotator>`` holds exactly that annotator's share of each batch, and a
quality-control sentence is a task in two annotators' projects, so the two versions stay independent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from xml.sax.saxutils import quoteattr

from nerloop import paths
from nerloop.annotation.core import plan
from nerloop.annotation.core.protocol import Item, Listing
from nerloop.annotation.label_studio import team
from nerloop.annotation.label_studio.client import Connection, LabelStudioConfigError

FROM_NAME, TO_NAME = "label", "text"  # the <Labels> and <Text> names of the labelling config
# an annotator project's config shows the task's accept-in-one-key hint (tasks.HINT_KEY); a project made before
# it lacks this and gets today's config: Label Studio requires no data key for a <Header>, so old tasks still open
HINT_FIELD = '"$hint"'
# the window a sentence is asked about (``core.asked``) is a prediction region of this second, hidden <Labels>: Label
# Studio highlights it in the text in its own colour, and import reads only FROM_NAME's regions as entities. A
# project made before it lacks it and gets it the same way as the hint
WINDOW_NAME, WINDOW_LABEL = "window", "to label"
WINDOW_CONTROL = f'<Labels name="{WINDOW_NAME}"'
LIST_PAGE = 200  # tasks per listing request, LIST_THREADS requests in flight
LIST_THREADS = 4
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#469990"]
TEMPLATES = paths.TEMPLATES
CONFIG_TEMPLATE = TEMPLATES / "label_studio_config.xml"
REVIEW_TEMPLATE = TEMPLATES / "label_studio_review_config.xml"


def label_config(labels: list[str], *, review: bool = False) -> str:
    """The labelling config for the label set (one ``<Label>`` per entity type, a colour each)."""
    rows = "\n".join(f"    <Label value={quoteattr(lab)} background={quoteattr(PALETTE[i % len(PALETTE)])}/>"
                     for i, lab in enumerate(labels))
    return (REVIEW_TEMPLATE if review else CONFIG_TEMPLATE).read_text(encoding="utf-8").replace("{labels}", rows)


def config_labels(config: str) -> set[str]:
    """The entity label values a labelling config offers (none when it is not XML: every label counts as missing);
    the window marker's label is not one."""
    try:
        root = ElementTree.fromstring(config or "")
    except ElementTree.ParseError:
        return set()
    return {str(el.get("value")) for labels in root.iter("Labels") if labels.get("name") != WINDOW_NAME
            for el in labels.iter("Label") if el.get("value") is not None}


@dataclass
class Task(Item):
    """One of our tasks as listed by the API, with every annotation and prediction on it."""

    annotations: list[dict[str, Any]]
    predictions: list[dict[str, Any]]


class ProjectsMixin:
    """Projects, the labelling config, users and listings; the backend supplies the attributes below."""

    params: Any  # LabelStudioParams
    labels: list[str]
    home: Path
    conn: Connection
    _projects: dict[str, dict[str, Any]] | None
    _users: dict[int, str] | None
    _listings: dict[int, Listing]
    _created: set[int]  # projects this backend created (empty until it imports into them)
    accounts = "Label Studio accounts (e-mails)"  # what annotation.label_studio.annotators lists
    title_key = "title"  # a project's name in Label Studio's list of projects

    # ------------------------------------------------------------ team

    def emails(self) -> dict[str, str]:
        """{annotator name: e-mail}: names from ``team.json``; a params entry with '@' is its own e-mail."""
        members = team.load(self.home)
        names = list(self.params.annotators) or sorted(members)
        return {n: n if "@" in n else str((members.get(n) or {}).get("email") or f"{n}@{self.params.email_domain}")
                for n in names}

    def _annotator_names(self) -> list[str]:
        """``annotation.label_studio.annotators``, else everyone in ``.label-studio/team.json``."""
        return list(self.emails())

    def user_names(self) -> dict[int, str]:
        """{user id: annotator name (or e-mail for accounts outside the team)}."""
        if self._users is None:
            by_email = {email.lower(): name for name, email in self.emails().items()}
            for name, info in team.load(self.home).items():
                by_email.setdefault(str(info.get("email", "")).lower(), name)
            self._users = {uid: by_email.get(email.lower(), email) for uid, email in team.users(self.conn).items()}
        return self._users

    def check_accounts(self, names: list[str]) -> None:
        """Every annotator must have an account, else their work could never be told apart."""
        emails = self.emails()
        known = {e.lower() for e in team.users(self.conn).values()}
        missing = [n for n in names if emails[n].lower() not in known]
        if missing:
            raise LabelStudioConfigError(
                f"Label Studio at {self.conn.url} has no account for {missing} "
                f"({', '.join(emails[n] for n in missing)}): add them with `nerloop label-studio annotator add NAME`, "
                "or remove them from annotation.label_studio.annotators"
            )

    # ------------------------------------------------------------ projects

    def _project_rows(self) -> list[dict[str, Any]]:
        return self.conn.pages("projects", "listing projects", self.params.page_size, "results")

    def ensure_project(self, who: str) -> int:
        """The project for ``who`` (an annotator, or ``review``), created with the labelling config for the
        label set; a label the config lacks is added (labels are never removed: annotations may use them), and an
        annotator project's config made before the accept hint or the window marker existed is brought up to date."""
        name = self.project_name(who)
        review = who == plan.REVIEW_SUFFIX
        project = self._project_list().get(name)
        if project is None:
            self.conn.request("POST", "projects", f"creating project {name!r}", json={
                "title": name,
                "description": f"nerloop: named-entity annotation for {who} (active learning)",
                "label_config": label_config(self.labels, review=review),
                "sampling": "Sequential sampling",  # tasks in upload order: nerloop's annotation order
                "show_collab_predictions": True,  # the model's spans are pre-filled for the annotator
                "show_skip_button": True,
                "maximum_annotations": 1,
            })
            project = self._project_list(refresh=True)[name]
            self._created.add(int(project["id"]))
        pid = int(project["id"])
        current = project.get("label_config", "")
        upgraded = review or (HINT_FIELD in current and WINDOW_CONTROL in current)
        if not set(self.labels) <= config_labels(current) or not upgraded:
            wanted = sorted(set(self.labels) | config_labels(current))
            self.conn.request("PATCH", f"projects/{pid}", f"updating the labelling config of project {name!r}",
                              json={"label_config": label_config(wanted, review=review)})
            project["label_config"] = label_config(wanted, review=review)
        return pid

    def restore_labels(self, who: str, pid: int, before: Callable[[list[str]], None]) -> list[str]:
        """Put back the labels of the label set that the project's labelling config lacks; returns them.

        ``before`` is called with them first, so that work on the tasks (holding them back) is done
        before the config changes: a failure in between leaves the labels missing, found again next time.

        An admin can remove a label in the project's Labeling Interface settings (Label Studio 1.23 refuses
        to drop a label still in use, but counts a project's first annotation by its last region only) or
        through the API (not checked at all). Annotators then cannot mark that type. The config is read
        fresh, not from the project list cached earlier in the command; Label Studio accepts a config that
        only adds labels, with annotations in place.
        """
        name = self.project_name(who)
        project = self.conn.request("GET", f"projects/{pid}", f"reading the labelling config of project {name!r}")
        have = config_labels(project.get("label_config", ""))
        missing = sorted(set(self.labels) - have)
        if missing:
            before(missing)
            config = label_config(sorted(set(self.labels) | have), review=who == plan.REVIEW_SUFFIX)
            self.conn.request("PATCH", f"projects/{pid}", f"putting labels {missing} back into project {name!r}",
                              json={"label_config": config})
            self._project_list().get(name, {})["label_config"] = config
        return missing

    def set_model_version(self, pid: int, version: str) -> None:
        """Make ``version`` the predictions Label Studio pre-fills in the labelling page of the project."""
        project = next((p for p in self._project_list().values() if int(p["id"]) == pid), {})
        if project.get("model_version") != version:
            self.conn.request("PATCH", f"projects/{pid}", "choosing the predictions to show",
                              json={"model_version": version})
            project["model_version"] = version

    # ------------------------------------------------------------ listing

    def listing(self, pid: int) -> Listing:
        """Every task of a project with its annotations and predictions: ours by sentence id, foreign ones."""
        out = Listing()
        rows = self.conn.pages("tasks", "listing tasks", min(LIST_PAGE, self.params.page_size), "tasks",
                               threads=LIST_THREADS, project=pid, fields="all")
        for row in rows:
            task = Task(int(row["id"]), str((row.get("data") or {}).get("text") or ""), row.get("meta") or {},
                        list(row.get("annotations") or []), list(row.get("predictions") or []))
            out.add(task, pid, "Label Studio", "task")
        return out

    def where(self, *, skip: set[int] | frozenset[int] = frozenset()) -> dict[str, dict[str, Task]]:
        """{sentence id: {annotator: task}} over every annotator project (but those in ``skip``, known to be
        empty); each project's listing is kept in ``self._listings`` for the rest of the call."""
        out: dict[str, dict[str, Task]] = {}
        for who, pid in self.annotator_projects().items():
            self._listings[pid] = Listing() if pid in skip else self.listing(pid)
            for sid, task in self._listings[pid].ours.items():
                out.setdefault(sid, {})[who] = task
        return out
