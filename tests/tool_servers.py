"""What the Doccano and Label Studio test modules share: the batch they send, a real server's venv and
life, and what /proc shows.

Both tools' servers are ``LocalServer`` recipes, so one helper installs (or finds) either venv, and one
starts a server on a free loopback port in a temporary home and stops it by pid afterwards. The tests
of what both tools do alike are in ``test_annotation_servers``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from conftest import ROOT, package_index_reachable
from nerloop.annotation.core.base import ToolBackend
from nerloop.annotation.core.local_server import free_port, pid_alive
from nerloop.annotation.core.server import LocalServer
from nerloop.data.records import Record
from nerloop.data.tags import tags_to_spans, token_to_char_spans

B = TypeVar("B", bound=ToolBackend)  # a tool's backend: DoccanoBackend, LabelStudioBackend


def server_venv(server: LocalServer) -> Path:
    """The tool's server venv: ``$<venv_env>`` or the repository's own, installed once; skipped without PyPI."""
    home = ROOT / server.default_home
    venv = Path(os.environ.get(server.venv_env) or home / "venv")
    try:
        return server.install(home, venv=venv)
    except server.error as exc:
        if package_index_reachable(server.package):
            raise
        pytest.skip(f"the {server.name} server venv cannot be installed here (no PyPI access?): {exc}")


@dataclass
class Server:
    """A tool's server the tests started: its home, where it listens, its venv, its pid and the admin's login."""

    home: Path
    url: str
    venv: Path
    pid: int
    creds: dict[str, str]

    @property
    def password(self) -> str:
        return self.creds["password"]

    @property
    def username(self) -> str:  # Doccano's admin logs in by name
        return self.creds["username"]

    @property
    def token(self) -> str:  # Label Studio's admin, by API token
        return self.creds["token"]


def serve(server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The body of a tool's session server fixture (``yield from serve(...)``): a real server on a free
    loopback port in a temporary home, with the venv :func:`server_venv` gives; stopped by pid afterwards."""
    venv = server_venv(server)
    home = tmp_path_factory.mktemp(f"{server.command}-home")
    state = server.up(home, free_port(), venv=venv)
    creds = json.loads((home / "credentials.json").read_text())
    try:
        yield Server(home, state["url"], venv, int(state["pid"]), creds)
    finally:
        server.down(home)
    assert not pid_alive(int(state["pid"]))


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def listening(port: int) -> set[str]:
    """The local addresses listening on ``port`` (hex, as /proc/net/tcp writes them)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return {r.split()[1] for r in rows if r.split()[3] == "0A" and r.split()[1].endswith(f":{port:04X}")}


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# ---------------------------------------------------------------- the batch both tools are sent

LABELS = ["LOC", "ORG", "PER"]
PRE = ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG", "O"]


def make_record(i: int, cycle: int = 1, conf: float = 0.9) -> Record:
    """A sentence with three pre-annotated entities (PER, LOC, ORG); ``i`` makes the text unique."""
    tokens = [f"Alice{i}", "Smith", "visited", "Paris", "with", "Acme", "Corp", "."]
    rec = Record.from_tokens(tokens, source=f"pool.txt:{i + 1}")
    spans = token_to_char_spans(rec.offsets, tags_to_spans(PRE))
    rec.meta = {
        "cycle": cycle,
        "rank": i,
        "cluster": i % 2,
        "pre_tags": PRE,
        "pre_spans": [[s, e, lab, round(conf - 0.1 * j, 2)] for j, (s, e, lab) in enumerate(spans)],
        "scores": {"mnlp": 0.1 * i, "diversity": 0.5},
    }
    return rec


def batch(n: int, start: int = 0, cycle: int = 1) -> list[Record]:
    return [make_record(i, cycle) for i in range(start, start + n)]


def sent_to_alice(make_backend: Callable[..., B], n: int) -> tuple[B, list[Record], dict[str, str]]:
    """(backend, records, manifest): alice alone on the team, a batch of ``n`` exported to her project in
    cycle 1, as the tests of what one person's work in the tool does to an import begin."""
    be = make_backend(annotators=["alice"])
    recs = batch(n)
    return be, recs, be.export(recs, 1)


def nerloop_as_user(root: Path, env_prefix: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """``.venv/bin/nerloop ARGS`` in ``root`` as a user runs it: no variable starting with ``env_prefix``
    (``NERLOOP_DOCCANO``, ``NERLOOP_LABEL_STUDIO``), so the tool's own files are what it reads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(env_prefix)}
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "nerloop"), *args], cwd=root, env=env, text=True,
                          capture_output=True, timeout=300)
    if ok:
        assert proc.returncode == 0, f"nerloop {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def project_with_server_venv(tmp_path: Path, home: str, venv: Path) -> Path:
    """A project root with the shipped params.yaml (label set: ``LABELS``) whose tool home ``home`` links
    the server venv already installed: a fresh install is the same code path, minutes longer."""
    root = tmp_path / "project"
    (root / home).mkdir(parents=True)
    (root / home / "venv").symlink_to(venv)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["labels"] = LABELS
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def project_prefix(request: pytest.FixtureRequest) -> str:
    """A project prefix of this test's own, so tests on one server never see each other's projects."""
    return "t" + str(abs(hash(request.node.name)) % 10**8)

