"""The Doccano annotation backend: a real annotation server behind ``AnnotationBackend``.

Export sends the selected batch, with the model's pre-annotations as spans, to a Doccano 1.8.4
sequence-labelling project; fetch takes back every example that annotators confirmed, converts
their character spans to IOB2 tags on the original tokens, and checks agreement where two people
annotated the same sentence. Design decisions and the Doccano facts behind them:

* The project is *per-annotator* (``collaborative_annotation=False``): each user's spans and
  confirmations are their own, which is what makes an independent second annotation (quality
  control) possible. A consequence in Doccano: uploaded pre-annotations belong to the uploading
  account, so only that account sees them. The annotation of any other user is therefore
  recorded with ``pre_tags=None`` (nothing was shown), which keeps the effort figure honest.
* Everything nerloop needs to rebuild the canonical record travels in the example's meta under
  ``nerloop_*`` keys (id, tokens, offsets, text hash, cycle, pre-tags, scores, QC flag), so
  fetch does not depend on local files. Keys named id/text/label/Comments break Doccano's export,
  and every uploaded line carries the same keys (a missing key fails the whole upload).
* Export is one bulk JSONL upload per chunk (Celery task, eager on a nerloop-started server),
  not one request per example or span; sentences whose ``nerloop_id`` is already in the project
  are skipped, which makes export idempotent and lets a rerun resume after a timeout.
* Fetch lists examples with a large ``limit`` (Doccano pages by 5 by default) and reads every
  user's confirmed spans from one dataset export (a zip with one JSONL per project member, the
  only API route that shows other users' annotations in a per-annotator project).
* Credentials come from ``NERLOOP_DOCCANO_URL/USERNAME/PASSWORD`` or ``.doccano/credentials.json``
  and never appear in messages, metrics or return values.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import random
import tempfile
import time
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from nerloop.annotation.base import Annotation, AnnotationBackend, FetchResult, edit_counts
from nerloop.errors import NerloopError, TagError
from nerloop.params import DoccanoParams
from nerloop.records import Record
from nerloop.tags import char_to_token_spans, spans_to_tags, tags_to_spans, token_to_char_spans

DEFAULT_HOME = Path(".doccano")
ENV_URL = "NERLOOP_DOCCANO_URL"
ENV_USERNAME = "NERLOOP_DOCCANO_USERNAME"
ENV_PASSWORD = "NERLOOP_DOCCANO_PASSWORD"
KAPPA_TARGET = 0.8
UPLOAD_CHUNK = 500  # examples per upload: a timeout mid-export loses at most one chunk's request
META_PREFIX = "nerloop_"
EXPORT_BREAKING_KEYS = {"id", "text", "label", "Comments"}  # meta keys that break or corrupt Doccano's export
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45", "#469990"]
GUIDELINE = (
    "Pre-annotated by nerloop. Correct the spans (whole tokens only, no overlaps), then mark the example "
    "as done (confirm). Examples whose meta says nerloop_qc=true are quality-control items: two annotators "
    "annotate them independently. Do not edit the text."
)

Span = tuple[int, int, str]


# ---------------------------------------------------------------- errors


class DoccanoError(NerloopError):
    """Talking to Doccano failed; the message says what happened and what to do."""


class DoccanoUnreachableError(DoccanoError):
    """No server answers at the URL (connection refused, DNS, ...)."""


class DoccanoTimeoutError(DoccanoError):
    """The server did not answer within ``timeout_s``."""


class DoccanoAuthError(DoccanoError):
    """Wrong credentials, or the account lacks the rights nerloop needs."""


class DoccanoHTTPError(DoccanoError):
    """The server answered with an HTTP error (5xx or an unexpected 4xx)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class DoccanoConfigError(DoccanoError):
    """Credentials missing, or the Doccano project does not fit nerloop (type, labels, settings)."""


class DoccanoDataError(DoccanoError):
    """Data that nerloop cannot send or read (a bad pre-annotation, meta that breaks Doccano's export)."""


# ---------------------------------------------------------------- credentials


def credentials(home: Path = DEFAULT_HOME, default_url: str | None = None) -> tuple[str, str, str]:
    """(url, username, password): from the environment, else from ``<home>/credentials.json``.

    ``NERLOOP_DOCCANO_USERNAME`` and ``NERLOOP_DOCCANO_PASSWORD`` (both) select an existing
    server's account; ``NERLOOP_DOCCANO_URL`` overrides the URL in either case. Without env
    credentials the file written by ``nerloop doccano up`` is used, with its URL.
    """
    env_url = os.environ.get(ENV_URL) or None
    user, password = os.environ.get(ENV_USERNAME), os.environ.get(ENV_PASSWORD)
    if user and password:
        url = env_url or default_url
        if not url:
            raise DoccanoConfigError(f"{ENV_USERNAME}/{ENV_PASSWORD} are set but no Doccano URL: set {ENV_URL}")
        return url, user, password
    if user or password:
        missing = ENV_PASSWORD if user else ENV_USERNAME
        raise DoccanoConfigError(f"only one of {ENV_USERNAME}/{ENV_PASSWORD} is set: set {missing} too")
    path = Path(home) / "credentials.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return env_url or data.get("url") or default_url or "", data["username"], data["password"]
    except FileNotFoundError:
        raise DoccanoConfigError(
            f"no Doccano credentials: run `nerloop doccano up` (writes {path}) or set "
            f"{ENV_URL}, {ENV_USERNAME} and {ENV_PASSWORD} for an existing server"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise DoccanoConfigError(f"{path} is corrupt: delete it and run `nerloop doccano up` again") from None


# ---------------------------------------------------------------- results


@dataclass
class DoccanoFetchResult(FetchResult):
    """``FetchResult`` plus the details behind the agreement and fault counts.

    ``metrics`` holds only numbers (or None); the lists are here for reports.
    """

    disagreements: list[dict[str, Any]] = field(default_factory=list)  # QC pairs that differ
    deleted: list[str] = field(default_factory=list)  # exported sentence ids no longer in Doccano
    not_ours: list[int] = field(default_factory=list)  # example ids without nerloop_id in meta
    qc_waiting: list[str] = field(default_factory=list)  # QC sentences confirmed by one annotator so far


@dataclass
class _Example:
    """One of our examples as listed by the API."""

    example_id: int
    text: str
    meta: dict[str, Any]

    @property
    def sid(self) -> str:
        return str(self.meta[META_PREFIX + "id"])

    def m(self, key: str, default: Any = None) -> Any:
        return self.meta.get(META_PREFIX + key, default)


@dataclass
class _Listing:
    """What listing a project found."""

    ours: dict[str, _Example] = field(default_factory=dict)  # by sentence id
    foreign: list[int] = field(default_factory=list)  # example ids without nerloop_id
    problems: list[str] = field(default_factory=list)
    breaking: list[tuple[int, list[str]]] = field(default_factory=list)  # (example id, meta keys)


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout: doccano-client sets none, so a hung server would hang nerloop."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().send(request, **kwargs)


def _finite(x: Any) -> Any:
    """JSON-safe scores: NaN/inf become None (Doccano stores meta as strict JSON)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- the backend


class DoccanoBackend(AnnotationBackend):
    """Annotation through a Doccano 1.8.4 server (see the module docstring for the design)."""

    name = "doccano"

    def __init__(
        self,
        params: DoccanoParams,
        labels: Iterable[str],
        *,
        home: Path = DEFAULT_HOME,
        creds: tuple[str, str, str] | None = None,
    ) -> None:
        """``labels`` are the entity types (PER, ORG, ...). ``creds`` = (url, username, password)
        overrides :func:`credentials` (tests); otherwise they are read on first use."""
        self.params = params
        self.labels = sorted(set(labels))
        if not self.labels:
            raise DoccanoConfigError("the label set is empty: set data.labels or label the seed set")
        if params.disagreement_policy == "reviewer" and not params.reviewer:
            raise DoccanoConfigError(
                "params.yaml: annotation.doccano.disagreement_policy is 'reviewer' but annotation.doccano.reviewer "
                "is not set: name the Doccano user whose annotation wins"
            )
        self.home = Path(home)
        self._creds = creds
        self._client: Any = None
        self._project_id: int | None = None

    @classmethod
    def from_params(cls, params: DoccanoParams, labels: Iterable[str], home: Path = DEFAULT_HOME) -> DoccanoBackend:
        """The backend for ``annotation.doccano`` in params.yaml; credentials are read on first use."""
        return cls(params, labels, home=home)

    # ------------------------------------------------------------ connection and error handling

    @property
    def url(self) -> str:
        return self._credentials()[0].rstrip("/")

    @property
    def username(self) -> str:
        return self._credentials()[1]

    def _credentials(self) -> tuple[str, str, str]:
        if self._creds is None:
            self._creds = credentials(self.home, default_url=self.params.url)
        return self._creds

    def _scrub(self, text: str) -> str:
        password = self._credentials()[2]
        return text.replace(password, "***") if password else text

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Turn network and HTTP failures into NerloopErrors that name the URL and the fix."""
        url = self.url
        try:
            yield
        except requests.exceptions.Timeout:
            raise DoccanoTimeoutError(
                f"Doccano at {url} did not answer within {self.params.timeout_s:g} s while {action}. "
                "Nothing already in the ledger is affected; run the stage again to resume "
                "(sentences already in Doccano are not sent twice). If the server is slow, raise "
                "annotation.doccano.timeout_s."
            ) from None
        except requests.exceptions.ConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc).lower() else type(exc).__name__
            raise DoccanoUnreachableError(
                f"cannot reach Doccano at {url} while {action} ({reason}). Start the local server with "
                f"`nerloop doccano up`, or point {ENV_URL} at a running one."
            ) from None
        except requests.exceptions.HTTPError as exc:
            raise self._http_error(exc, action) from None

    def _http_error(self, exc: requests.exceptions.HTTPError, action: str) -> DoccanoError:
        code = exc.response.status_code if exc.response is not None else None
        body = ""
        if exc.response is not None:
            body = self._scrub(exc.response.text[:300].strip())
        if code in (401, 403) and action == "logging in":
            return DoccanoAuthError(
                f"Doccano at {self.url} refused the login of user {self.username!r} (HTTP {code}): wrong username or "
                f"password. Check {ENV_USERNAME}/{ENV_PASSWORD}, or {self.home / 'credentials.json'} for the server "
                "started by `nerloop doccano up`."
            )
        if code == 400 and action == "logging in":
            return DoccanoAuthError(
                f"Doccano at {self.url} refused the login of user {self.username!r}: wrong username or password "
                f"({body}). Check {ENV_USERNAME}/{ENV_PASSWORD}, or {self.home / 'credentials.json'}."
            )
        if code in (401, 403):
            return DoccanoAuthError(
                f"Doccano at {self.url} denied user {self.username!r} while {action} (HTTP {code}): the account "
                f"must be an administrator of project {self.params.project!r}. {body}"
            )
        if code is not None and code >= 500:
            return DoccanoHTTPError(
                f"Doccano at {self.url} failed with HTTP {code} while {action}. This is a server-side error: see "
                "the server log (.doccano/gunicorn.log for the server started by `nerloop doccano up`), fix it and "
                "run the stage again; nothing already in the ledger is affected.",
                code,
            )
        return DoccanoHTTPError(f"Doccano at {self.url} answered HTTP {code} while {action}: {body}", code)

    @property
    def client(self) -> Any:
        """A logged-in ``DoccanoClient`` (created on first use)."""
        if self._client is None:
            from doccano_client import DoccanoClient  # imported late: pydantic-1 package, only for this backend

            url, user, password = self._credentials()
            if not url:
                raise DoccanoConfigError(f"no Doccano URL: set {ENV_URL} or annotation.doccano.url")
            client = DoccanoClient(url)
            session: requests.Session = client._base_repository._session
            adapter = _TimeoutAdapter(self.params.timeout_s)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            with self._guard("logging in"):
                client.login(username=user, password=password)
            self._client = client
        return self._client

    def _get(self, resource: str, params: dict[str, Any] | None = None) -> Any:
        return self.client._base_repository.get(resource, params=params).json()

    # ------------------------------------------------------------ project and label types

    def project_id(self, *, create: bool = False) -> int | None:
        """The id of the project named ``params.project`` (created when ``create``), or None."""
        if self._project_id is not None:
            return self._project_id
        with self._guard(f"looking up project {self.params.project!r}"):
            found = sorted(
                (p for p in self.client.list_projects() if p.name == self.params.project), key=lambda p: p.id
            )
        if found:
            project = found[0]
        elif create:
            with self._guard(f"creating project {self.params.project!r}"):
                project = self.client.create_project(
                    name=self.params.project,
                    project_type="SequenceLabeling",
                    description="Named-entity annotation for nerloop (active learning).",
                    guideline=GUIDELINE,
                    collaborative_annotation=False,
                    allow_overlapping=False,
                )
        else:
            return None
        if project.project_type.value != "SequenceLabeling" or project.collaborative_annotation:
            raise DoccanoConfigError(
                f"Doccano project {self.params.project!r} (id {project.id}) is a "
                f"{'collaborative ' if project.collaborative_annotation else ''}{project.project_type.value} project; "
                "nerloop needs a per-annotator (not collaborative) SequenceLabeling project. Rename or delete it, "
                "or set annotation.doccano.project to another name."
            )
        self._project_id = int(project.id)
        return self._project_id

    def _label_ids(self, pid: int, *, create: bool) -> dict[str, int]:
        """Project label types by name; creates the missing ones and refuses types outside the label set."""
        with self._guard("listing label types"):
            types = {lt.text: lt.id for lt in self.client.list_label_types(pid, "span")}
        extra = sorted(set(types) - set(self.labels))
        if extra and create:
            raise DoccanoConfigError(
                f"Doccano project {self.params.project!r} has label types outside the label set {self.labels}: "
                f"{extra}. Delete them in Doccano (Labels page) or add them to data.labels."
            )
        if create:
            for i, label in enumerate(self.labels):
                if label not in types:
                    with self._guard(f"creating label type {label!r}"):
                        lt = self.client.create_label_type(pid, "span", label, color=PALETTE[i % len(PALETTE)])
                    types[label] = lt.id
        return types

    def add_member(self, username: str, role: str = "annotator") -> None:
        """Give an existing Doccano user access to the project (``role``: annotator, annotation_approver,
        project_admin); does nothing if they are a member already."""
        pid = self.project_id(create=True)
        assert pid is not None
        with self._guard(f"adding {username!r} to project {self.params.project!r}"):
            if any(m.username == username for m in self.client.list_members(pid)):
                return
            self.client.add_member(pid, username, role)

    # ------------------------------------------------------------ listing

    def _iter_examples(self, pid: int) -> Iterator[dict[str, Any]]:
        """All examples of the project, ``page_size`` per request (the server default is 5)."""
        params: dict[str, Any] | None = {"limit": self.params.page_size, "offset": 0}
        resource = f"projects/{pid}/examples"
        while resource:
            with self._guard("listing examples"):
                page = self._get(resource, params)
            yield from page["results"]
            resource, params = page.get("next"), None  # `next` carries limit and offset

    def _ours(self, pid: int) -> _Listing:
        """List the project: our examples by sentence id, foreign ones, duplicates, export-breaking meta."""
        out = _Listing()
        for row in self._iter_examples(pid):
            meta = row.get("meta") or {}
            eid = int(row["id"])
            if set(meta) & EXPORT_BREAKING_KEYS:
                out.breaking.append((eid, sorted(set(meta) & EXPORT_BREAKING_KEYS)))
            nid = meta.get(META_PREFIX + "id")
            if not isinstance(nid, str) or not nid:
                out.foreign.append(eid)
                continue
            ex = _Example(eid, row.get("text") or "", meta)
            if nid in out.ours:
                out.problems.append(
                    f"sentence {nid}: Doccano examples {out.ours[nid].example_id} and {eid} both carry it; only "
                    f"example {out.ours[nid].example_id} is used — delete the other one"
                )
                continue
            out.ours[nid] = ex
        return out

    # ------------------------------------------------------------ export

    def _pre_spans(self, rec: Record) -> tuple[list[Span], list[float | None], list[str]]:
        """The record's pre-annotation as character spans (+ confidences) and IOB2 tags, validated."""
        meta = rec.meta
        spans: list[Span] = []
        confs: list[float | None] = []
        if meta.get("pre_spans") is not None:
            for item in meta["pre_spans"]:
                s, e, label = int(item[0]), int(item[1]), str(item[2])
                spans.append((s, e, label))
                confs.append(float(item[3]) if len(item) > 3 and item[3] is not None else None)
        elif meta.get("pre_tags") is not None:
            spans = token_to_char_spans(rec.offsets, tags_to_spans(meta["pre_tags"]))
            confs = [None] * len(spans)
        bad = sorted({label for _, _, label in spans} - set(self.labels))
        if bad:
            raise DoccanoDataError(
                f"sentence {rec.id}: pre-annotation labels {bad} are not in the label set {self.labels}; "
                "nothing was sent"
            )
        try:
            tags = spans_to_tags(len(rec.tokens), char_to_token_spans(rec.offsets, spans))
        except TagError as exc:
            raise DoccanoDataError(f"sentence {rec.id}: bad pre-annotation: {exc}; nothing was sent") from None
        return spans, confs, tags

    def qc_ids(self, batch: list[Record], cycle: int) -> set[str]:
        """The quality-control share of a batch: deterministic in (cycle, batch ids), at least one if share > 0."""
        ids = sorted({r.id for r in batch})
        if not ids or self.params.qc_share <= 0:
            return set()
        k = min(len(ids), max(1, math.floor(self.params.qc_share * len(ids) + 0.5)))
        return set(random.Random(f"nerloop-qc-{cycle}").sample(ids, k))

    def _line(self, rec: Record, cycle: int, qc: bool) -> dict[str, Any]:
        """One upload line. Every line has exactly these keys (a missing key fails the whole upload)."""
        spans, confs, tags = self._pre_spans(rec)
        return {
            "text": rec.text,
            "label": [[s, e, label] for s, e, label in spans],
            META_PREFIX + "id": rec.id,
            META_PREFIX + "cycle": int(cycle),
            META_PREFIX + "qc": bool(qc),
            META_PREFIX + "tokens": list(rec.tokens),
            META_PREFIX + "offsets": [[int(s), int(e)] for s, e in rec.offsets],
            META_PREFIX + "text_sha1": _sha(rec.text),
            META_PREFIX + "source": rec.source or "",
            META_PREFIX + "doc_id": rec.doc_id,
            META_PREFIX + "pre_tags": tags if spans or rec.meta.get("pre_tags") is not None else None,
            META_PREFIX + "pre_conf": _finite(confs),
            META_PREFIX + "scores": _finite(dict(rec.meta.get("scores") or {})),
            META_PREFIX + "selection": rec.meta.get("selection"),
            META_PREFIX + "uploader": self.username,
        }

    def export(self, batch: list[Record], cycle: int) -> dict[str, str]:
        """Send the batch with its pre-annotations; return {sentence id: Doccano example id}.

        Idempotent: sentences already in the project (by ``meta.nerloop_id``) are not sent again,
        so a rerun after a timeout or crash resumes. Everything is validated before anything is sent.
        """
        if not batch:
            return {}
        qc = self.qc_ids(batch, cycle)
        unique: dict[str, Record] = {}
        for rec in batch:
            unique.setdefault(rec.id, rec)
        lines = {sid: self._line(rec, cycle, sid in qc) for sid, rec in unique.items()}  # validates all first

        pid = self.project_id(create=True)
        assert pid is not None
        self._label_ids(pid, create=True)
        ours = self._ours(pid).ours
        todo = [line for sid, line in lines.items() if sid not in ours]
        for start in range(0, len(todo), UPLOAD_CHUNK):
            self._upload(pid, todo[start : start + UPLOAD_CHUNK])
        if todo:
            ours = self._ours(pid).ours
        missing = [sid for sid in lines if sid not in ours]
        if missing:
            raise DoccanoHTTPError(
                f"Doccano at {self.url} accepted the upload but {len(missing)} sentences are not in project "
                f"{self.params.project!r} (first: {missing[:3]}); see the server log and run the stage again"
            )
        return {sid: str(ours[sid].example_id) for sid in lines}

    def _wait_task(self, task_id: str, what: str) -> Any:
        """Wait for a Doccano Celery task (upload or export), bounded: the client's own wait is one hour.

        On a server started by nerloop tasks run eagerly and are done at once; on another server a
        missing ``doccano task`` worker would otherwise hang the stage.
        """
        limit = max(60.0, 10 * self.params.timeout_s)
        deadline = time.monotonic() + limit
        delay = 0.05
        while True:
            with self._guard(f"waiting for the {what} task"):
                status = self.client._task_status_repository.get(task_id)
            if status.ready:
                return status
            if time.monotonic() > deadline:
                raise DoccanoTimeoutError(
                    f"Doccano at {self.url} did not finish the {what} task within {limit:g} s: is its Celery worker "
                    "(`doccano task`) running? Run the stage again when it is; nothing is sent twice."
                )
            time.sleep(delay)
            delay = min(1.0, delay * 2)

    def _upload(self, pid: int, lines: list[dict[str, Any]]) -> None:
        """One bulk upload (JSONL file -> Doccano's import task) of examples with their spans."""
        repo = self.client._data_import_repository
        with tempfile.TemporaryDirectory(prefix="nerloop-doccano-") as tmp:
            path = Path(tmp) / "batch.jsonl"
            with path.open("w", encoding="utf-8") as fh:
                for line in lines:
                    fh.write(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n")
            with self._guard(f"uploading {len(lines)} examples"):
                upload_id = repo.upload(str(path))
                task_id = repo.ingest(
                    pid, [upload_id], "SequenceLabeling", "JSONL", column_data="text", column_label="label"
                )
        status = self._wait_task(task_id, "upload")
        errors = status.result.get("error") if isinstance(status.result, dict) else None
        if status.error or errors:
            raise DoccanoHTTPError(f"Doccano at {self.url} rejected the upload: {status.error or errors}")

    # ------------------------------------------------------------ fetch

    def missing(self, exported: dict[str, str]) -> list[str]:
        """Sentence ids in an export manifest that are no longer in the Doccano project (deleted there)."""
        pid = self.project_id()
        if pid is None:
            return sorted(exported)
        ours = self._ours(pid).ours
        return sorted(sid for sid in exported if sid not in ours)

    def _download(
        self, pid: int, breaking: list[tuple[int, list[str]]] | None = None
    ) -> dict[str, dict[tuple[str, int], dict[str, Any]]]:
        """Every member's confirmed examples with spans: {username: {(sentence id, example id): export row}}.

        Rows are keyed by our meta id as well as the row's ``id``: a foreign example's meta key ``id``
        overwrites the example id in Doccano's export, so ``id`` alone cannot be trusted.
        """
        repo = self.client._data_export_repository
        with self._guard("starting the export of confirmed annotations"):
            option = repo.find_option_by_name(pid, "JSONL")
            task_id = repo.schedule_download(pid, option, only_approved=True)
        status = self._wait_task(task_id, "export")
        if status.error and breaking:
            raise DoccanoDataError(
                f"Doccano at {self.url} failed to export project {self.params.project!r} ({status.error}) because "
                f"of examples whose meta keys clash with its export columns: {breaking[:5]} (example id, keys). "
                "Remove those meta keys or delete the examples in Doccano, then run import again; nothing was imported."
            )
        if status.error:
            raise DoccanoHTTPError(f"Doccano at {self.url} failed to export the project: {status.error}")
        with tempfile.TemporaryDirectory(prefix="nerloop-doccano-") as tmp:
            with self._guard("downloading confirmed annotations"):
                zpath = repo.download(pid, task_id, tmp)
            data = Path(zpath).read_bytes()
        out: dict[str, dict[tuple[str, int], dict[str, Any]]] = {}
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for name in zf.namelist():
                if not name.endswith(".jsonl"):
                    continue
                user = Path(name).stem
                rows = out.setdefault(user, {})
                for line in zf.read(name).decode("utf-8").splitlines():
                    if line.strip():
                        row = json.loads(line)
                        nid = row.get(META_PREFIX + "id")
                        if isinstance(nid, str) and isinstance(row.get("id"), int | float):
                            rows[(nid, int(row["id"]))] = row
        return out

    def _user_tags(self, ex: _Example, user: str, row: dict[str, Any]) -> tuple[list[str] | None, list[str]]:
        """One annotator's spans -> IOB2 tags on the original tokens, or None and the problems found."""
        where = f"example {ex.example_id} (sentence {ex.sid}), annotator {user!r}"
        offsets = [(int(s), int(e)) for s, e in ex.m("offsets")]
        problems: list[str] = []
        spans: list[Span] = []
        for item in row.get("label") or []:
            s, e, label = int(item[0]), int(item[1]), str(item[2])
            shown = ex.text[s:e]
            if label not in self.labels:
                problems.append(
                    f"{where}: span [{s}, {e}) {shown!r} has label {label!r}, not in the label set {self.labels}"
                )
                continue
            try:
                char_to_token_spans(offsets, [(s, e, label)])
            except TagError as exc:
                problems.append(f"{where}: {exc} (text {shown!r}); fix the span in Doccano")
                continue
            spans.append((s, e, label))
        widest: Span | None = None  # the span reaching furthest right so far
        for s2, e2, l2 in sorted(spans):
            if widest is not None and s2 < widest[1]:
                s1, e1, l1 = widest
                problems.append(
                    f"{where}: spans [{s1}, {e1}) {l1} and [{s2}, {e2}) {l2} overlap; keep one of them in Doccano"
                )
            if widest is None or e2 > widest[1]:
                widest = (s2, e2, l2)
        if problems:
            return None, problems
        try:
            tags = spans_to_tags(len(offsets), char_to_token_spans(offsets, spans))
        except TagError as exc:
            return None, [f"{where}: {exc}"]
        return tags, []

    def _record(self, ex: _Example, tags: list[str]) -> Record:
        return Record(
            id=ex.sid,
            tokens=[str(t) for t in ex.m("tokens")],
            text=ex.text,
            offsets=[(int(s), int(e)) for s, e in ex.m("offsets")],
            tags=tags,
            source=ex.m("source") or "",
            doc_id=ex.m("doc_id"),
            meta={"cycle": int(ex.m("cycle", 0)), "scores": ex.m("scores") or {}, "selection": ex.m("selection"),
                  "doccano_example": ex.example_id},
        )

    def _annotation(self, ex: _Example, user: str, tags: list[str], annotators: list[str]) -> Annotation:
        rec = self._record(ex, tags)
        rec.meta["annotators"] = annotators
        shown = ex.m("pre_tags") if user == ex.m("uploader") else None  # only the uploader saw pre-annotations
        return Annotation(record=rec, cycle=int(ex.m("cycle", 0)), annotator=user, pre_tags=shown)

    def _pair(self, users: list[str]) -> list[str]:
        """The two annotators compared for agreement: non-reviewers first, in name order."""
        reviewer = self.params.reviewer
        others = sorted(u for u in users if u != reviewer)
        return (others + ([reviewer] if reviewer in users else []))[:2]

    def fetch(self, known: set[str], exported: dict[str, str] | None = None) -> DoccanoFetchResult:
        """Every confirmed, valid annotation of our examples whose sentence id is not in ``known``.

        ``exported`` (the export manifests, sentence id -> example id) lets deleted examples be
        reported. An example is done when one annotator confirmed it (two for QC items) and every
        confirmed annotation is valid; otherwise it stays pending, with a problem message when
        something needs fixing in Doccano.
        """
        result = DoccanoFetchResult()
        exported = exported or {}
        pid = self.project_id()
        listing = self._ours(pid) if pid is not None else _Listing()
        ours = listing.ours
        result.problems.extend(listing.problems)
        result.not_ours = listing.foreign
        result.problems.extend(f"example {eid}: not ours (no nerloop_id in meta); ignored" for eid in listing.foreign)
        result.deleted = sorted(sid for sid in exported if sid not in ours and sid not in known)
        result.problems.extend(
            f"sentence {sid}: Doccano example {exported[sid]} was deleted in Doccano; export the sentence again "
            "to have it annotated"
            for sid in result.deleted
        )
        todo = {sid: ex for sid, ex in ours.items() if sid not in known}
        if pid is None or not todo:
            result.metrics = self._metrics(result, [], [], [])
            return result
        confirmed = self._download(pid, listing.breaking)

        qc_a: list[list[str]] = []
        qc_b: list[list[str]] = []
        done_tags: list[tuple[list[str] | None, list[str]]] = []
        for sid, ex in sorted(todo.items(), key=lambda kv: kv[1].example_id):
            ann = self._judge(ex, confirmed, result, qc_a, qc_b)
            if ann is None:
                result.pending.append(sid)
            else:
                result.done.append(ann)
                done_tags.append((ann.pre_tags, ann.record.tags or []))
        result.metrics = self._metrics(result, qc_a, qc_b, done_tags)
        return result

    def _judge(
        self,
        ex: _Example,
        confirmed: dict[str, dict[tuple[str, int], dict[str, Any]]],
        result: DoccanoFetchResult,
        qc_a: list[list[str]],
        qc_b: list[list[str]],
    ) -> Annotation | None:
        """Decide one example: an Annotation for the ledger, or None (pending; problems appended)."""
        where = f"example {ex.example_id} (sentence {ex.sid})"
        if _sha(ex.text) != ex.m("text_sha1"):
            result.problems.append(
                f"{where}: the text was edited in Doccano (now {ex.text!r}); spans cannot be mapped to the original "
                "tokens. Undo the edit (restore the original text) or delete the example; it stays pending"
            )
            return None
        key = (ex.sid, ex.example_id)
        rows = {user: by_key[key] for user, by_key in confirmed.items() if key in by_key}
        users = sorted(rows)
        needed = 2 if ex.m("qc") else 1
        if len(users) < needed:
            if users:
                result.qc_waiting.append(ex.sid)
            return None
        tags: dict[str, list[str]] = {}
        for user in users:
            user_tags, problems = self._user_tags(ex, user, rows[user])
            if user_tags is None:
                result.problems.extend(p + "; the example stays pending" for p in problems)
                return None
            tags[user] = user_tags
        if len(users) == 1:
            return self._annotation(ex, users[0], tags[users[0]], users)

        a, b = self._pair(users)
        qc_a.append(tags[a])
        qc_b.append(tags[b])
        agree = tags[a] == tags[b]
        reviewer = self.params.reviewer
        if not agree:
            result.disagreements.append(
                {
                    "sentence_id": ex.sid,
                    "example_id": ex.example_id,
                    "annotators": [a, b],
                    "spans": {
                        u: [[s, e, lab] for s, e, lab in token_to_char_spans(ex.m("offsets"), tags_to_spans(tags[u]))]
                        for u in (a, b)
                    },
                }
            )
        if self.params.disagreement_policy == "reviewer" and reviewer in tags:
            return self._annotation(ex, reviewer, tags[reviewer], users)
        if agree:
            winner = ex.m("uploader") if ex.m("uploader") in (a, b) else a
            return self._annotation(ex, winner, tags[winner], users)
        if self.params.disagreement_policy == "reviewer":
            result.problems.append(
                f"{where}: annotators {a!r} and {b!r} disagree; waiting for reviewer {reviewer!r} to annotate and "
                "confirm it"
            )
        else:
            result.problems.append(
                f"{where}: annotators {a!r} and {b!r} disagree; held back (disagreement_policy: hold). Resolve it in "
                "Doccano so that both annotations match, or set a reviewer"
            )
        return None

    @staticmethod
    def _metrics(
        result: DoccanoFetchResult,
        qc_a: list[list[str]],
        qc_b: list[list[str]],
        done_tags: list[tuple[list[str] | None, list[str]]],
    ) -> dict[str, Any]:
        """Numbers only: agreement (token-level Cohen's kappa, entity-level F1), counts, effort."""
        kappa = f1 = None
        if qc_a:
            flat_a = [t for seq in qc_a for t in seq]
            flat_b = [t for seq in qc_b for t in seq]
            if flat_a == flat_b:
                kappa = f1 = 1.0
            else:
                from seqeval.metrics import f1_score
                from seqeval.scheme import IOB2
                from sklearn.metrics import cohen_kappa_score

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    k = float(cohen_kappa_score(flat_a, flat_b))
                    kappa = k if math.isfinite(k) else None
                    f1 = float(f1_score(qc_a, qc_b, mode="strict", scheme=IOB2, zero_division=0))
        effort = {"kept": 0, "added": 0, "deleted": 0, "relabelled": 0}
        for pre, final in done_tags:
            for k2, v in edit_counts(pre, final).items():
                effort[k2] += v
        return {
            "done": len(result.done),
            "pending": len(result.pending),
            "problems": len(result.problems),
            "qc_examples": len(qc_a),
            "qc_waiting": len(result.qc_waiting),
            "kappa": None if kappa is None else round(kappa, 4),
            "entity_f1": None if f1 is None else round(f1, 4),
            "kappa_target": KAPPA_TARGET,
            "disagreements": len(result.disagreements),
            "deleted": len(result.deleted),
            "not_ours": len(result.not_ours),
            **{f"effort_{k2}": v for k2, v in effort.items()},
        }
