"""Doccano projects for the team: one per annotator, the review project, label types, members, listing.

Kept apart from the backend's export and fetch logic: this is everything that knows how nerloop's
projects are named and set up in Doccano 1.8.4. Each annotator's project is *collaborative*
(``collaborative_annotation``): in 1.8.4 that is the only way spans uploaded by the nerloop
account are visible to the annotator (otherwise the span list is filtered by user), and a project of
one annotator is also the only way to give someone their own share (1.8.4 has no assignment).
Label types outside the label set are never deleted here: deleting a type deletes its spans.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nerloop import paths
from nerloop.annotation.core.protocol import META_PREFIX, Item, Listing
from nerloop.annotation.doccano import team
from nerloop.annotation.doccano.client import Connection, DoccanoConfigError
from nerloop.params import DoccanoParams

THREADS = 4  # concurrent per-example requests (spans, confirmations): Doccano has no bulk route for them
SHA1_KEY = META_PREFIX + "text_sha1"
HASH_GROUP = 8  # hex digits per group of a digest shown in Doccano
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#469990"]
GUIDELINE_FILE = paths.TEMPLATES / "doccano_guideline.md"


@dataclass
class _Example(Item):
    """One of our examples as listed by the API."""

    confirmed: bool


def shown_digest(digest: str) -> str:
    """A hex digest in groups of 8 (``9c182c37 6830d7c2 ...``), as uploaded into an example's meta.

    Doccano's metadata table, at the top of the annotation page's sidebar, is as wide as its longest
    unbreakable value: a 40-digit digest pushed the value column past the sidebar's edge and hid the
    confidence line on its first row. Groups wrap. :meth:`ProjectsMixin.listing` joins them again.
    """
    digest = digest.replace(" ", "")
    return " ".join(digest[i : i + HASH_GROUP] for i in range(0, len(digest), HASH_GROUP))


def _read_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """An example's meta as nerloop uses it: the text digest without the groups it is shown in."""
    if isinstance(meta.get(SHA1_KEY), str):
        return {**meta, SHA1_KEY: meta[SHA1_KEY].replace(" ", "")}
    return meta


def _parallel(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """``fn`` over ``items`` with a few concurrent requests, results in order; the first error is raised.

    Reading spans and confirmations, and writing confidences, is one request per example (Doccano
    1.8.4 has no bulk route); a handful in flight keeps the server's workers busy instead of idle
    between round trips.
    """
    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(fn, items))


class ProjectsMixin:
    """Projects, label types, members and listings; the backend supplies the attributes below."""

    params: DoccanoParams
    labels: list[str]
    home: Path
    conn: Connection
    _projects: dict[str, dict[str, Any]] | None
    _labels_by_pid: dict[int, dict[str, int]]
    accounts = "Doccano usernames"  # what annotation.doccano.annotators lists
    title_key = "name"  # a project's name in Doccano's list of projects

    # ------------------------------------------------------------ team and projects

    def _annotator_names(self) -> list[str]:
        """``annotation.doccano.annotators``, else everyone in ``.doccano/team.json``."""
        return list(self.params.annotators) or team.names(self.home)

    def _project_rows(self) -> Iterable[dict[str, Any]]:
        return self.conn.pages("projects", "listing projects", self.params.page_size)

    def ensure_project(self, who: str, members: list[str]) -> int:
        """The project for ``who`` (an annotator, or ``review``), created collaborative, with the label
        types and ``members`` as annotators. Refuses a same-named project that is not collaborative."""
        name = self.project_name(who)
        project = self._project_list().get(name)
        if project is None:
            with self.conn.guard(f"creating project {name!r}"):
                self.conn.client.create_project(
                    name=name,
                    project_type="SequenceLabeling",
                    description=f"nerloop: named-entity annotation for {who} (active learning)",
                    guideline=GUIDELINE_FILE.read_text(encoding="utf-8"),
                    collaborative_annotation=True,
                    allow_overlapping=False,
                )
            project = self._project_list(refresh=True)[name]
        if project["project_type"] != "SequenceLabeling" or not project["collaborative_annotation"]:
            raise DoccanoConfigError(
                f"Doccano project {name!r} (id {project['id']}) is not a collaborative SequenceLabeling project, so "
                "its annotator would not see the pre-annotations. Rename it in Doccano, or set "
                "annotation.doccano.project to another prefix."
            )
        pid = int(project["id"])
        self.label_ids(pid, create=True)
        for member in members:
            self.add_member(pid, member)
        return pid

    def label_ids(self, pid: int, *, create: bool = False) -> dict[str, int]:
        """Project label types by name; creates the missing ones. Types outside the label set are left
        alone (deleting a type in Doccano deletes its spans): fetch holds back examples that use them."""
        rows = self.conn.request("GET", f"projects/{pid}/span-types", "listing label types")
        types = {r["text"]: int(r["id"]) for r in rows}
        for i, label in enumerate(self.labels):
            if create and label not in types:
                with self.conn.guard(f"creating label type {label!r}"):
                    lt = self.conn.client.create_label_type(pid, "span", label, color=PALETTE[i % len(PALETTE)])
                types[label] = int(lt.id)
        return types

    def members(self, pid: int) -> dict[int, str]:
        """{user id: username} of a project's members (who confirmed what)."""
        rows = self.conn.request("GET", f"projects/{pid}/members", "listing project members")
        return {int(r["user"]): r["username"] for r in rows}

    def add_member(self, pid: int, username: str, role: str = "annotator") -> None:
        """Make ``username`` a member of the project (nothing if already one)."""
        if username in self.members(pid).values():
            return
        if not team.user_exists(self.conn, username):
            raise DoccanoConfigError(
                f"Doccano at {self.conn.url} has no user {username!r}: add them with `nerloop doccano annotator add "
                f"{username}` (a server nerloop manages) or create the account on the server, or remove them from "
                "annotation.doccano.annotators"
            )
        with self.conn.guard(f"adding {username!r} to project {pid}"):
            self.conn.client.add_member(pid, username, role)

    def remove_member(self, username: str) -> list[str]:
        """Take ``username`` out of every nerloop project; return the project names. Their work stays."""
        left = []
        for name, p in self._project_list().items():
            if not name.startswith(self.params.project + "-"):
                continue
            rows = self.conn.request("GET", f"projects/{p['id']}/members", "listing project members")
            ids = [r["id"] for r in rows if r["username"] == username]
            if ids:
                self.conn.request("DELETE", f"projects/{p['id']}/members", f"removing {username!r}", json={"ids": ids})
                left.append(name)
        return left

    # ------------------------------------------------------------ listing

    def listing(self, pid: int) -> Listing:
        """List a project: our examples by sentence id, foreign ones, duplicates."""
        out = Listing()
        for row in self.conn.pages(f"projects/{pid}/examples", "listing examples", self.params.page_size):
            meta = _read_meta(row.get("meta") or {})
            out.add(_Example(int(row["id"]), row.get("text") or "", meta, bool(row.get("is_confirmed"))), pid,
                    "Doccano", "example")
        return out

    def where(self) -> dict[str, dict[str, _Example]]:
        """{sentence id: {annotator: example}} over every annotator project."""
        out: dict[str, dict[str, _Example]] = {}
        for who, pid in self.annotator_projects().items():
            for sid, ex in self.listing(pid).ours.items():
                out.setdefault(sid, {})[who] = ex
        return out

    def _states(self, pid: int, eid: int) -> list[dict[str, Any]]:
        """The example's confirmations (``ExampleState``: confirmed_by, confirmed_at); all users' in a
        collaborative project."""
        return list(self.conn.pages(f"projects/{pid}/examples/{eid}/states", "reading confirmations",
                                    self.params.page_size))

    def _label_cache_all(self, pids: Iterable[int]) -> None:
        """Fill the label cache before threads read it."""
        for pid in pids:
            self._label_cache(pid)

    def _label_cache(self, pid: int) -> dict[str, int]:
        if pid not in self._labels_by_pid:
            self._labels_by_pid[pid] = self.label_ids(pid)
        return self._labels_by_pid[pid]
