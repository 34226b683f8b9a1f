"""``nerloop doccano ...``: the local server, the annotation team and the disagreements, from the shell.

Kept apart from ``nerloop.cli`` so the Doccano commands grow without touching the loop's own
commands: ``cli.py`` only builds the ``doccano`` sub-parser with :func:`add_arguments` and hands
the parsed arguments to :func:`run`. Nothing here prints the admin password; an annotator's
generated password is printed once, when the account is made, for the lead to pass on.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from pathlib import Path

from nerloop.annotation.core.plan import REVIEW_SUFFIX
from nerloop.annotation.doccano import DEFAULT_HOME, DoccanoBackend, DoccanoConfigError, team
from nerloop.annotation.doccano import server as ds
from nerloop.annotation.doccano.client import Connection
from nerloop.errors import NerloopError

HOST_WARNING = (
    "WARNING: Doccano listens on {host}:{port}, reachable from other machines over plain HTTP: passwords and "
    "session cookies cross the network unencrypted, and anyone who can reach the port can try to log in. Use it "
    "only on a network you trust (or behind a TLS proxy), and run `nerloop doccano down` when annotation is over."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``doccano`` sub-commands, added to ``parser`` (the sub-parser ``cli.py`` made)."""
    sub = parser.add_subparsers(dest="doccano_command", required=True)
    up = sub.add_parser("up", help="install (once) and start the local Doccano server")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--host", default=ds.LOOPBACK,
                    help="address to listen on (default 127.0.0.1, this machine only); 0.0.0.0 lets annotators on "
                         "other machines in, over plain HTTP: see the README")
    sub.add_parser("down", help="stop the local Doccano server")
    sub.add_parser("status", help="is the local server running, where, which version")
    ann = sub.add_parser("annotator", help="the annotation team: add, list, remove")
    ann_sub = ann.add_subparsers(dest="annotator_command", required=True)
    add = ann_sub.add_parser("add", help="create a Doccano account (password shown once) and add it to the team")
    add.add_argument("name")
    add.add_argument("--existing", action="store_true",
                     help="the account exists already (a server nerloop does not manage): only add it to the team")
    ann_sub.add_parser("list", help="the team, with each annotator's project")
    rm = ann_sub.add_parser("remove", help="take an annotator out of the team and of every nerloop project")
    rm.add_argument("name")
    sub.add_parser("disagreements", help="double-annotated sentences the two annotators disagree on, both versions")


def _labels() -> list[str]:
    """The label set if it is known yet (after prepare, or fixed in params); empty on a fresh clone."""
    from nerloop import paths
    from nerloop.params import load_params

    if paths.LABELS.exists():
        return json.loads(paths.LABELS.read_text(encoding="utf-8"))["entity_types"]
    return list(load_params().data.labels or [])


def _backend(labels: list[str]) -> DoccanoBackend:
    from nerloop.params import load_params

    return DoccanoBackend.from_params(load_params().annotation.doccano, labels, home=DEFAULT_HOME)


def _annotator_url(home: Path) -> str:
    """The address to give annotators: the server's own URL, or this machine's name when it listens wider."""
    state = ds.status(home)
    if state.get("host") and state["host"] != ds.LOOPBACK and state.get("port"):
        return f"http://{socket.getfqdn()}:{state['port']}"
    if state.get("url"):
        return str(state["url"])
    from nerloop.params import load_params

    return load_params().annotation.doccano.url


def _up(port: int, host: str, home: Path) -> None:
    if not ds.is_installed(ds.venv_path(home)):
        print(f"installing Doccano {ds.DOCCANO_VERSION} into {ds.venv_path(home)} (once, about two minutes) ...",
              flush=True)
    state = ds.up(home, port, host=host)
    if state.get("port") != port:
        print(f"a server from {home} was already running on port {state.get('port')}; left as it is")
    print(f"Doccano is running at {state['url']} (pid {state['pid']}, log {home / 'gunicorn.log'})")
    print(f"log in as {ds.ADMIN_USER!r}; the generated password is in {home / 'credentials.json'} (not printed)")
    if state.get("host", ds.LOOPBACK) != ds.LOOPBACK:
        print(f"annotators on other machines use {_annotator_url(home)}")
        print(HOST_WARNING.format(host=state["host"], port=state["port"]))


def _add(name: str, existing: bool, home: Path) -> None:
    team.check_name(name)
    members = team.load(home)
    if name in members:
        raise DoccanoConfigError(f"{name!r} is in the team already (`nerloop doccano annotator list`)")
    labels = _labels()
    conn = _backend(labels).conn if labels else Connection(None, home=home, default_url="", timeout_s=30.0)
    password = None
    if team.user_exists(conn, name):
        if not existing:
            raise DoccanoConfigError(
                f"Doccano at {conn.url} has a user {name!r} already. If it is theirs, add it with --existing "
                "(nerloop needs no password for it); otherwise choose another name"
            )
    elif existing:
        raise DoccanoConfigError(f"Doccano at {conn.url} has no user {name!r}: leave out --existing to create it")
    else:
        password = team.generate_password()
        team.create_user(conn, name, password)
    members[name] = {"password": password, "added_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    team.save(home, members)
    project = f"{_backend_prefix()}-{name}"
    if labels:
        _backend(labels).ensure_project(name, [name])
        where = f"project {project!r} (member, annotator role)"
    else:
        where = f"project {project!r}, made at the first export (the label set is not known yet)"
    print(f"annotator {name!r} added to the team: {where}")
    print(f"  URL:      {_annotator_url(home)}")
    print(f"  username: {name}")
    if password:
        print(f"  password: {password}")
        print(f"Pass these on privately; this is the only time nerloop prints the password (kept in {home}/"
              f"{team.TEAM_FILE}, readable by you only).")


def _backend_prefix() -> str:
    from nerloop.params import load_params

    return load_params().annotation.doccano.project


def _list(home: Path) -> None:
    members = team.load(home)
    from nerloop.params import load_params

    named = load_params().annotation.doccano.annotators
    if not members and not named:
        print("no annotators yet: `nerloop doccano annotator add NAME`")
    for name in sorted(set(members) | set(named)):
        origin = "team.json" if name in members else "params only"
        active = "annotating" if (name in named or not named) else "not in annotation.doccano.annotators"
        print(f"{name:<20} project {_backend_prefix()}-{name:<20} {origin:<12} {active}")


def _remove(name: str, home: Path) -> None:
    members = team.load(home)
    labels = _labels() or ["-"]  # no label is created here; the backend only needs a non-empty set
    left = _backend(labels).remove_member(name)
    members.pop(name, None)
    team.save(home, members)
    print(f"{name!r} removed from the team and from {left or 'no project'}; their Doccano account and the work they "
          "did are kept (deleting a Doccano user deletes their annotations). Remove them from "
          "annotation.doccano.annotators too if they are listed there.")


def _disagreements() -> None:
    from nerloop import paths
    from nerloop.data.ledger import Ledger

    backend = _backend(_labels())
    result = backend.fetch(Ledger(paths.LEDGER))
    if not result.disagreements:
        print("no disagreements waiting")
    for d in result.disagreements:
        print(f"sentence {d['sentence_id']}: {d['text']}")
        for who in d["annotators"]:
            print(f"  {who:>12} (example {d['examples'][who]}): {d['spans'][who]}")
    if result.disagreements and backend.params.disagreement_policy == "review":
        print(f"resolve them in project {backend.project_name(REVIEW_SUFFIX)!r} and mark each one done; the next "
              "`nerloop cycle` imports the resolved version")
    agr = result.metrics.get("cumulative") or {}
    print(f"agreement so far: {agr.get('pairs', 0)} double-annotated sentences, kappa {agr.get('kappa')}, "
          f"entity F1 {agr.get('entity_f1')}")


def run(args: argparse.Namespace, home: Path = DEFAULT_HOME) -> None:
    """Carry out a parsed ``nerloop doccano ...`` command; errors are NerloopErrors for ``cli`` to print."""
    cmd = args.doccano_command
    if cmd == "up":
        _up(args.port, args.host, home)
    elif cmd == "down":
        print("Doccano stopped" if ds.down(home) else f"no Doccano server from {home} is running")
    elif cmd == "status":
        for key, value in ds.status(home).items():
            print(f"{key:>12}: {value}")
    elif cmd == "annotator":
        {"add": lambda: _add(args.name, args.existing, home), "list": lambda: _list(home),
         "remove": lambda: _remove(args.name, home)}[args.annotator_command]()
    elif cmd == "disagreements":
        _disagreements()
    else:  # argparse only lets the choices above through
        raise NerloopError(f"unknown doccano command {cmd!r}")
