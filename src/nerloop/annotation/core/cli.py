"""``nerloop <tool> ...``: the verbs every annotation tool has, written once.

``up``, ``down``, ``status``, ``annotator add|list|remove`` and ``disagreements`` parse and run the same
way for every tool; a tool's ``cli`` module subclasses :class:`ToolCli` with its server, its backend,
its team commands (accounts are made differently in each tool) and its wording. ``nerloop.cli`` builds
each tool's sub-parser with :meth:`ToolCli.add_arguments` and hands the parsed arguments to
:meth:`ToolCli.run`. Nothing here prints the admin password or a token; an annotator's generated
password is printed once, when the account is made, for the lead to pass on.
"""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from nerloop.annotation.core.plan import REVIEW_SUFFIX
from nerloop.annotation.core.server import LOOPBACK, LocalServer
from nerloop.errors import NerloopError

HOST_WARNING = (
    "WARNING: {name} listens on {{host}}:{{port}}, reachable from other machines over plain HTTP: passwords and "
    "session cookies cross the network unencrypted{risk}. Use it only on a network you trust (or behind a TLS "
    "proxy), and run `nerloop {command} down` when annotation is over."
)


def labels() -> list[str]:
    """The label set if it is known yet (after prepare, or fixed in params); empty on a fresh clone."""
    from nerloop import paths
    from nerloop.params import load_params

    if paths.LABELS.exists():
        return json.loads(paths.LABELS.read_text(encoding="utf-8"))["entity_types"]
    return list(load_params().data.labels or [])


class ToolCli:
    """One tool's ``nerloop <tool>`` commands. Subclasses set the attributes and the team methods."""

    server: LocalServer
    team: ModuleType  # its team module: check_name(name), load(home), save(home, members), TEAM_FILE
    backend_class: Any  # its AnnotationBackend, made with ``from_params(section, labels, home=...)``
    params_key: str  # its section under ``annotation`` in params.yaml
    install_time: str  # how long the first install takes, in words
    login: str  # how to log in as the admin; ``{home}`` is the server's home
    add_help: str
    remove_help: str
    item: str  # what the tool calls one sentence sent to an annotator
    resolve: str  # how the lead resolves a disagreement in the review project
    host_risk: str = ""  # what else an open port risks, in words

    # ------------------------------------------------------------ what differs per tool

    def backend(self, labels: list[str], home: Path) -> Any:
        """The tool's annotation backend from params, for the commands that talk to its projects."""
        raise NotImplementedError

    def add_annotator(self, args: argparse.Namespace, home: Path) -> None:
        raise NotImplementedError

    def annotator_columns(self, name: str, member: dict[str, Any], params: Any) -> str:
        """The first columns of the annotator's row in ``annotator list``: who they are, their project."""
        raise NotImplementedError

    def remove_annotator(self, name: str, home: Path) -> None:
        raise NotImplementedError

    def more_arguments(self, sub: Any, add: argparse.ArgumentParser) -> None:
        """Options and verbs only this tool has (none unless a tool adds some)."""

    def more_verbs(self, args: argparse.Namespace, home: Path) -> dict[str, Callable[[], None]]:
        """What those verbs run, by name."""
        return {}

    # ------------------------------------------------------------ the verbs, the same for every tool

    def params(self) -> Any:
        from nerloop.params import load_params

        return getattr(load_params().annotation, self.params_key)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The tool's sub-commands, added to ``parser`` (the sub-parser ``cli.py`` made)."""
        name = self.server.name
        sub = parser.add_subparsers(dest="tool_command", required=True)
        up = sub.add_parser("up", help=f"install (once) and start the local {name} server")
        up.add_argument("--port", type=int, default=self.server.default_port)
        up.add_argument("--host", default=LOOPBACK,
                        help="address to listen on (default 127.0.0.1, this machine only); 0.0.0.0 lets annotators "
                             "on other machines in, over plain HTTP: see the README")
        sub.add_parser("down", help=f"stop the local {name} server")
        sub.add_parser("status", help="is the local server running, where, which version")
        ann = sub.add_parser("annotator", help="the annotation team: add, list, remove")
        ann_sub = ann.add_subparsers(dest="annotator_command", required=True)
        add = ann_sub.add_parser("add", help=self.add_help)
        add.add_argument("name")
        add.add_argument("--existing", action="store_true",
                         help="the account exists already (a server nerloop does not manage): only add it to the team")
        ann_sub.add_parser("list", help="the team, with each annotator's project")
        rm = ann_sub.add_parser("remove", help=self.remove_help)
        rm.add_argument("name")
        sub.add_parser("disagreements", help="double-annotated sentences the two annotators disagree on, both versions")
        self.more_arguments(sub, add)

    def new_member(self, name: str, home: Path) -> dict[str, Any]:
        """The team as it stands, once ``name`` is checked as a valid name and new to it."""
        self.team.check_name(name)
        members = self.team.load(home)
        if name in members:
            raise self.backend_class.connection.errors.config(
                f"{name!r} is in the team already (`nerloop {self.server.command} annotator list`)")
        return members

    def announce(self, name: str, where: str, account: str, password: str | None, home: Path, then: str = "") -> None:
        """Tell the lead what to pass on to a new annotator: the address, the account, and a generated password,
        printed here once and nowhere else."""
        print(f"annotator {name!r} added to the team: {where}")
        print(f"  URL:      {self.annotator_url(home)}")
        print(f"  {account}")
        if password:
            print(f"  password: {password}")
            print(f"Pass these on privately; this is the only time nerloop prints the password (kept in {home}/"
                  f"{self.team.TEAM_FILE}, readable by you only).{then}")

    def list_annotators(self, home: Path) -> None:
        members = self.team.load(home)
        params = self.params()
        named = list(params.annotators)
        if not members and not named:
            print(f"no annotators yet: `nerloop {self.server.command} annotator add NAME`")
        for name in sorted(set(members) | set(named)):
            origin = "team.json" if name in members else "params only"
            active = "annotating" if (name in named or not named) else f"not in annotation.{self.params_key}.annotators"
            print(f"{self.annotator_columns(name, members.get(name) or {}, params)} {origin:<12} {active}")

    def annotator_url(self, home: Path) -> str:
        """The address to give annotators: the server's own URL, or this machine's name when it listens wider."""
        state = self.server.status(home)
        if state.get("host") and state["host"] != LOOPBACK and state.get("port"):
            return f"http://{socket.getfqdn()}:{state['port']}"
        return str(state.get("url") or self.params().url)

    def up(self, port: int, host: str, home: Path) -> None:
        server = self.server
        if not server.is_installed(server.venv_path(home)):
            print(f"installing {server.name} {server.version} into {server.venv_path(home)} (once, "
                  f"{self.install_time}) ...", flush=True)
        state = server.up(home, port, host=host)
        if state.get("port") != port:
            print(f"a server from {home} was already running on port {state.get('port')}; left as it is")
        print(f"{server.name} is running at {state['url']} (pid {state['pid']}, log {home / server.server_log})")
        print(self.login.format(home=home))
        if state.get("host", LOOPBACK) != LOOPBACK:
            print(f"annotators on other machines use {self.annotator_url(home)}")
            warning = HOST_WARNING.format(name=server.name, risk=self.host_risk, command=server.command)
            print(warning.format(host=state["host"], port=state["port"]))

    def disagreements(self, home: Path) -> None:
        from nerloop import paths
        from nerloop.data.ledger import Ledger

        backend = self.backend(labels(), home)
        result = backend.fetch(Ledger(paths.LEDGER))
        if not result.disagreements:
            print("no disagreements waiting")
        for d in result.disagreements:
            print(f"sentence {d['sentence_id']}: {d['text']}")
            for who in d["annotators"]:
                print(f"  {who:>12} ({self.item} {d['examples'][who]}): {d['spans'][who]}")
        if result.disagreements and backend.params.disagreement_policy == "review":
            print(f"resolve them in project {backend.project_name(REVIEW_SUFFIX)!r} and {self.resolve}; the next "
                  "`nerloop cycle` imports the resolved version")
        agr = result.metrics.get("cumulative") or {}
        print(f"agreement so far: {agr.get('pairs', 0)} double-annotated sentences, kappa {agr.get('kappa')}, "
              f"entity F1 {agr.get('entity_f1')}")

    def run(self, args: argparse.Namespace, home: Path | None = None) -> None:
        """Carry out a parsed ``nerloop <tool> ...`` command; errors are NerloopErrors for ``cli`` to print."""
        home = home or self.server.default_home
        name = self.server.name
        verbs: dict[str, Callable[[], None]] = {
            "up": lambda: self.up(args.port, args.host, home),
            "down": lambda: print(f"{name} stopped" if self.server.down(home)
                                  else f"no {name} server from {home} is running"),
            "status": lambda: print("\n".join(f"{k:>12}: {v}" for k, v in self.server.status(home).items())),
            "annotator": lambda: {"add": lambda: self.add_annotator(args, home),
                                  "list": lambda: self.list_annotators(home),
                                  "remove": lambda: self.remove_annotator(args.name, home)}[args.annotator_command](),
            "disagreements": lambda: self.disagreements(home),
            **self.more_verbs(args, home),
        }
        if args.tool_command not in verbs:  # argparse only lets the verbs above through
            raise NerloopError(f"unknown {self.server.command} command {args.tool_command!r}")
        verbs[args.tool_command]()
