"""What Doccano and Label Studio do alike, checked once on each: where the credentials come from, who is
on the team, `nerloop <tool> up|status|annotator|down` from a project root, a server's life (pid and
port files, loopback unless asked) and the error an unreachable server gives.

Both backends get this behaviour from ``nerloop.annotation.core``, so one test serves both tools: it is
given a :class:`Tool`, the tool's modules, classes and the wording that legitimately differs. What only
one tool does stays in ``test_doccano`` and ``test_label_studio``, with the session servers and their
annotators. The tests here need none of those: the ones that start servers start their own, in a
temporary home, from the venv the session fixtures use (a session fixture imported here would be a
second fixture, and start each tool's server a second time). Those tests are marked ``doccano`` or
``label_studio``, by the tool they run on.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Protocol

import pytest

from nerloop.annotation import doccano, label_studio
from nerloop.annotation.core.local_server import free_port, pid_alive, port_in_use
from nerloop.annotation.core.server import LocalServer
from nerloop.annotation.doccano import server as ds
from nerloop.annotation.doccano import team as doccano_team
from nerloop.annotation.label_studio import server as lss
from nerloop.annotation.label_studio import team as label_studio_team
from nerloop.errors import NerloopError
from nerloop.params import DoccanoParams, LabelStudioParams
from test_doccano import Annotator as DoccanoAnnotator
from test_label_studio import Annotator as LabelStudioAnnotator
from tool_servers import (
    LABELS,
    batch,
    file_mode,
    listening,
    nerloop_as_user,
    project_with_server_venv,
    server_venv,
)


class Person(Protocol):
    """An annotator logged in to the tool as themselves."""

    def projects(self) -> set[str]: ...


@dataclass(frozen=True)
class Tool:
    """One tool as the shared tests see it: what to call, and what differs in what it writes and shows."""

    command: str  # `nerloop <command> ...`; the server's home is `.<command>`
    server: LocalServer
    server_error: type[NerloopError]
    backend: type[doccano.DoccanoBackend | label_studio.LabelStudioBackend]
    params: type[DoccanoParams | LabelStudioParams]
    team: ModuleType
    credentials: Callable[[Path], tuple[str, ...]]
    env_url: str
    env_secrets: tuple[str, ...]  # an existing server's account: all of them set, or none
    file_keys: tuple[str, ...]  # the same secrets in credentials.json, in the same order
    config_error: type[NerloopError]
    unreachable_error: type[NerloopError]
    person: Callable[[str, str, str], Person]  # (url, account, password): logged in as themselves
    email_domain: str | None  # Label Studio's accounts are e-mails (name@domain); Doccano's are the names
    password_limit: int | None  # Doccano's login form refuses passwords of this length or longer
    readme_port: bool  # `up` on the README's default port, as printed (skipped where it is taken); else --port
    private_files: tuple[str, ...]  # owner-only (0600) under the home once `up` has run
    private_dirs: tuple[str, ...]  # owner-only (0700), besides the home itself
    logs: tuple[str, ...]  # under the home; never a secret in them
    admin_secrets: tuple[str, ...]  # the keys of credentials.json that are never printed or logged
    members_only: bool  # Doccano shows a person only their projects; Label Studio, the organization's

    @property
    def home(self) -> str:
        return f".{self.command}"

    @property
    def env_prefix(self) -> str:
        """``NERLOOP_DOCCANO``: what every variable of the tool starts with."""
        return self.env_url.removesuffix("_URL")

    def account(self, name: str) -> str:
        """How the tool knows the annotator ``name``: the name, or the e-mail made from it."""
        return f"{name}@{self.email_domain}" if self.email_domain else name


TOOLS = {
    "doccano": Tool(
        command="doccano", server=ds.SERVER, server_error=ds.DoccanoServerError, backend=doccano.DoccanoBackend,
        params=DoccanoParams, team=doccano_team, credentials=doccano.credentials, env_url=doccano.ENV_URL,
        env_secrets=(doccano.ENV_USERNAME, doccano.ENV_PASSWORD), file_keys=("username", "password"),
        config_error=doccano.DoccanoConfigError, unreachable_error=doccano.DoccanoUnreachableError,
        person=DoccanoAnnotator, email_domain=None, password_limit=30, readme_port=False,
        private_files=("db.sqlite3", "credentials.json", "secret.json", "server.json", "gunicorn.log", "init.log"),
        private_dirs=("media",), logs=("gunicorn.log", "init.log"), admin_secrets=("password",), members_only=True,
    ),
    "label_studio": Tool(
        command="label-studio", server=lss.SERVER, server_error=lss.LabelStudioServerError,
        backend=label_studio.LabelStudioBackend, params=LabelStudioParams, team=label_studio_team,
        credentials=label_studio.credentials, env_url=label_studio.ENV_URL, env_secrets=(label_studio.ENV_TOKEN,),
        file_keys=("token",), config_error=label_studio.LabelStudioConfigError,
        unreachable_error=label_studio.LabelStudioUnreachableError, person=LabelStudioAnnotator,
        email_domain="nerloop.local", password_limit=None, readme_port=True,
        private_files=("credentials.json", "server.json", "server.log", "init.log", "data/label_studio.sqlite3"),
        private_dirs=(), logs=("server.log", "init.log"), admin_secrets=("password", "token"), members_only=False,
    ),
}


@pytest.fixture(params=list(TOOLS))
def tool(request: pytest.FixtureRequest) -> Tool:
    """Each tool, for the checks that need no server."""
    return TOOLS[request.param]


@pytest.fixture(params=[pytest.param(name, marks=getattr(pytest.mark, name)) for name in TOOLS])
def served_tool(request: pytest.FixtureRequest) -> Tool:
    """Each tool, for the checks that start real servers: marked with the tool's name, as its own tests are."""
    return TOOLS[request.param]


def nerloop(tool: Tool, root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """`nerloop <tool> ARGS` in ``root`` as a user runs it: none of the tool's variables set."""
    return nerloop_as_user(root, tool.env_prefix, tool.command, *args, ok=ok)


# ---------------------------------------------------------------- no server needed


def test_credentials_env_first_then_file(tool: Tool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (tool.env_url, *tool.env_secrets):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(tool.config_error, match=f"nerloop {tool.command} up"):
        tool.credentials(tmp_path)
    in_file = tuple(f"file-{key}" for key in tool.file_keys)
    (tmp_path / "credentials.json").write_text(
        json.dumps({"url": "http://127.0.0.1:9", **dict(zip(tool.file_keys, in_file, strict=True))})
    )
    assert tool.credentials(tmp_path) == ("http://127.0.0.1:9", *in_file)
    monkeypatch.setenv(tool.env_url, "http://annotation.example:8000")
    assert tool.credentials(tmp_path) == ("http://annotation.example:8000", *in_file)
    *first, last = tool.env_secrets
    for var in first:
        monkeypatch.setenv(var, f"env-{var}")
    if first:  # Doccano's username without its password: refused, naming the one missing
        with pytest.raises(tool.config_error, match=last):
            tool.credentials(tmp_path)
    monkeypatch.setenv(last, f"env-{last}")
    in_env = tuple(f"env-{var}" for var in tool.env_secrets)
    assert tool.credentials(tmp_path) == ("http://annotation.example:8000", *in_env)


def test_team_comes_from_params_else_team_file(tool: Tool, tmp_path: Path) -> None:
    creds = ("u", *tool.file_keys)
    be = tool.backend(tool.params(), LABELS, home=tmp_path, creds=creds)
    with pytest.raises(tool.config_error, match=f"nerloop {tool.command} annotator add"):
        be.team()
    tool.team.save(tmp_path, {"zoe": {"password": "x"}, "yan": {"password": None}})
    assert be.team() == ["yan", "zoe"] and file_mode(tmp_path / tool.team.TEAM_FILE) == 0o600
    named = tool.backend(tool.params(annotators=["bob"]), LABELS, home=tmp_path, creds=creds)
    assert named.team() == ["bob"]
    with pytest.raises(tool.config_error, match="review"):
        tool.backend(tool.params(annotators=["review"]), LABELS, creds=creds).team()
    if tool.password_limit:
        assert len(tool.team.generate_password()) < tool.password_limit


def test_unreachable_server(tool: Tool) -> None:
    """Nothing listens at the URL: the error names it and the command that starts a server."""
    closed = f"http://127.0.0.1:{free_port()}"
    be = tool.backend(tool.params(project="x", annotators=["a"]), LABELS, creds=(closed, *tool.file_keys))
    with pytest.raises(tool.unreachable_error, match="connection refused") as err:
        be.export(batch(1), 1)
    assert closed in str(err.value) and f"nerloop {tool.command} up" in str(err.value)
    assert isinstance(err.value, NerloopError)


# ---------------------------------------------------------------- the documented commands, a server's life


def test_documented_commands_from_a_project_root(served_tool: Tool, tmp_path: Path) -> None:
    """`nerloop <tool> up|status|annotator|down` as the README prints them, from a project root.

    The default home is the relative `.<tool>`; its venv is a link to the one already installed (a fresh
    install is the same code path, minutes longer). Label Studio's `up` takes the README's default port
    8080; Doccano's a free port, through --port.
    """
    tool = served_tool
    if tool.readme_port:
        port, up_args = tool.server.default_port, []
        if port_in_use(port):
            pytest.skip(f"port {port} (the README's default) is taken on this machine")
    else:
        port = free_port()
        up_args = ["--port", str(port)]
    root = project_with_server_venv(tmp_path, tool.home, server_venv(tool.server))
    url = f"http://127.0.0.1:{port}"
    out = nerloop(tool, root, "up", *up_args).stdout
    assert url in out
    home = root / tool.home
    try:
        assert "running: True" in nerloop(tool, root, "status").stdout
        creds = json.loads((home / "credentials.json").read_text())
        secrets = [creds[key] for key in tool.admin_secrets]
        assert not any(secret in out for secret in secrets)
        if tool.password_limit:
            assert len(creds["password"]) < tool.password_limit
        assert file_mode(home) == 0o700
        for name in tool.private_files:
            assert file_mode(home / name) == 0o600, name
        for name in tool.private_dirs:
            assert file_mode(home / name) == 0o700, name
        assert listening(port) == {f"0100007F:{port:04X}"}  # 127.0.0.1 only

        added = nerloop(tool, root, "annotator", "add", "carol").stdout
        password = json.loads((home / "team.json").read_text())["annotators"]["carol"]["password"]
        assert f"password: {password}" in added and file_mode(home / "team.json") == 0o600
        if tool.password_limit:
            assert len(password) < tool.password_limit
        carol = tool.person(url, tool.account("carol"), password)
        if tool.members_only:
            assert carol.projects() == {"nerloop-carol"}  # a member of her project from the start
        else:
            assert "nerloop-carol" in carol.projects()
        again = nerloop(tool, root, "annotator", "add", "carol", ok=False)
        assert again.returncode == 1 and "already" in again.stderr and password not in again.stderr
        listed = nerloop(tool, root, "annotator", "list").stdout
        assert tool.account("carol") in listed and password not in listed
        nerloop(tool, root, "annotator", "remove", "carol")
        assert "carol" not in json.loads((home / "team.json").read_text())["annotators"]
        if tool.members_only:
            assert carol.projects() == set()
        for log in tool.logs:
            text = (home / log).read_text()
            assert password not in text and not any(secret in text for secret in secrets), log
    finally:
        assert "stopped" in nerloop(tool, root, "down").stdout
    assert "running: False" in nerloop(tool, root, "status").stdout
    assert not tool.server.probe(url, timeout_s=0.5)


def test_up_down_status_lifecycle(served_tool: Tool, tmp_path: Path) -> None:
    """The life every tool's server shares: started once per home, stopped by pid, its state file gone,
    its credentials kept; another home cannot take the port; another address only when asked for."""
    server, error = served_tool.server, served_tool.server_error
    venv = server_venv(server)
    home = tmp_path / "home"
    port = free_port()
    state = server.up(home, port, venv=venv)
    pid = state["pid"]
    try:
        assert server.probe(state["url"])
        assert server.up(home, port, venv=venv)["pid"] == pid  # already running: left alone
        with pytest.raises(error, match="already in use"):
            server.up(tmp_path / "other", port, venv=venv)
    finally:
        assert server.down(home) is True
    assert not pid_alive(pid) and not server.probe(state["url"], timeout_s=0.5)
    assert server.status(home)["running"] is False and not (home / "server.json").exists()
    assert server.down(home) is False
    assert (home / "credentials.json").exists()  # kept: the next `up` reuses the same admin password
    wide = server.up(home, port, host="0.0.0.0", venv=venv)  # opt-in: annotators on other machines
    try:
        assert listening(port) == {f"00000000:{port:04X}"} and server.status(home)["host"] == "0.0.0.0"
    finally:
        server.down(home)
    assert not pid_alive(wide["pid"])
