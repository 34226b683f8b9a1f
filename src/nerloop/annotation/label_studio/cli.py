"""``nerloop label-studio ...``: the local server, the annotation team and the disagreements, from the shell.

Kept apart from ``nerloop.cli`` as ``doccano_cli`` is: ``cli.py`` builds the ``label-studio``
sub-parser with :func:`add_arguments` and hands the parsed arguments to :func:`run`. Nothing here
prints the admin password or the API token; an annotator's generated password is printed once, when
the account is made, for the lead to pass on.
"""

from __future__ import annotations

import argparse
import json
import socket
import time
from pathlib import Path

from nerloop.annotation.core.plan import REVIEW_SUFFIX
from nerloop.annotation.label_studio import DEFAULT_HOME, LabelStudioBackend, LabelStudioConfigError
from nerloop.annotation.label_studio import server as lss
from nerloop.annotation.label_studio import team as ls_team
from nerloop.annotation.label_studio.client import Connection
from nerloop.errors import NerloopError

HOST_WARNING = (
    "WARNING: Label Studio listens on {host}:{port}, reachable from other machines over plain HTTP: passwords and "
    "session cookies cross the network unencrypted. Use it only on a network you trust (or behind a TLS proxy), "
    "and run `nerloop label-studio down` when annotation is over."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``label-studio`` sub-commands, added to ``parser`` (the sub-parser ``cli.py`` made)."""
    sub = parser.add_subparsers(dest="ls_command", required=True)
    up = sub.add_parser("up", help="install (once) and start the local Label Studio server")
    up.add_argument("--port", type=int, default=lss.DEFAULT_PORT)
    up.add_argument("--host", default=lss.LOOPBACK,
                    help="address to listen on (default 127.0.0.1, this machine only); 0.0.0.0 lets annotators on "
                         "other machines in, over plain HTTP: see the README")
    sub.add_parser("down", help="stop the local Label Studio server")
    sub.add_parser("status", help="is the local server running, where, which version")
    ann = sub.add_parser("annotator", help="the annotation team: add, list, remove")
    ann_sub = ann.add_subparsers(dest="annotator_command", required=True)
    add = ann_sub.add_parser("add", help="sign up a Label Studio account (password shown once) and add it to the team")
    add.add_argument("name")
    add.add_argument("--email", help="the account's e-mail (default NAME@<annotation.label_studio.email_domain>)")
    add.add_argument("--existing", action="store_true",
                     help="the account exists already (a server nerloop does not manage): only add it to the team")
    ann_sub.add_parser("list", help="the team, with each annotator's project")
    rm = ann_sub.add_parser("remove", help="take an annotator out of the team (no new work); their work is kept")
    rm.add_argument("name")
    sub.add_parser("disagreements", help="double-annotated sentences the two annotators disagree on, both versions")
    acc = sub.add_parser("accept", help="import tasks held for a re-check (submitted while a label was missing from "
                                        "the labelling config) as they were submitted")
    acc.add_argument("task", type=int, nargs="+", help="Label Studio task ids, as the held-back message names them")


def _params():
    from nerloop.params import load_params

    return load_params().annotation.label_studio


def _labels() -> list[str]:
    """The label set if it is known yet (after prepare, or fixed in params); empty on a fresh clone."""
    from nerloop import paths
    from nerloop.params import load_params

    if paths.LABELS.exists():
        return json.loads(paths.LABELS.read_text(encoding="utf-8"))["entity_types"]
    return list(load_params().data.labels or [])


def _backend(labels: list[str], home: Path) -> LabelStudioBackend:
    return LabelStudioBackend.from_params(_params(), labels or ["-"], home=home)


def _annotator_url(home: Path) -> str:
    """The address to give annotators: the server's own URL, or this machine's name when it listens wider."""
    state = lss.status(home)
    if state.get("host") and state["host"] != lss.LOOPBACK and state.get("port"):
        return f"http://{socket.getfqdn()}:{state['port']}"
    return str(state.get("url") or _params().url)


def _up(port: int, host: str, home: Path) -> None:
    if not lss.is_installed(lss.venv_path(home)):
        print(f"installing Label Studio {lss.LABEL_STUDIO_VERSION} into {lss.venv_path(home)} (once, a few "
              "minutes) ...", flush=True)
    state = lss.up(home, port, host=host)
    if state.get("port") != port:
        print(f"a server from {home} was already running on port {state.get('port')}; left as it is")
    print(f"Label Studio is running at {state['url']} (pid {state['pid']}, log {home / 'server.log'})")
    print(f"log in as {lss.ADMIN_EMAIL!r}; the generated password and API token are in {home / 'credentials.json'} "
          "(not printed)")
    if state.get("host", lss.LOOPBACK) != lss.LOOPBACK:
        print(f"annotators on other machines use {_annotator_url(home)}")
        print(HOST_WARNING.format(host=state["host"], port=state["port"]))


def _add(name: str, email: str | None, existing: bool, home: Path) -> None:
    ls_team.check_name(name)
    members = ls_team.load(home)
    if name in members:
        raise LabelStudioConfigError(f"{name!r} is in the team already (`nerloop label-studio annotator list`)")
    email = email or f"{name}@{_params().email_domain}"
    be = _backend(_labels(), home)
    conn: Connection = be.conn
    taken = email.lower() in {e.lower() for e in ls_team.users(conn).values()}
    password = None
    if taken and not existing:
        raise LabelStudioConfigError(
            f"Label Studio at {conn.url} has an account {email!r} already. If it is theirs, add it with --existing "
            "(nerloop needs no password for it); otherwise choose another name or --email"
        )
    if not taken and existing:
        raise LabelStudioConfigError(f"Label Studio at {conn.url} has no account {email!r}: leave out --existing")
    if not taken:
        password = ls_team.generate_password()
        ls_team.sign_up(conn, email, password)
    members[name] = {"email": email, "password": password,
                     "added_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    ls_team.save(home, members)
    project = be.project_name(name)
    if _labels():
        be.ensure_project(name)
        where = f"project {project!r}"
    else:
        where = f"project {project!r}, made at the first export (the label set is not known yet)"
    print(f"annotator {name!r} added to the team: {where}")
    print(f"  URL:      {_annotator_url(home)}")
    print(f"  e-mail:   {email}")
    if password:
        print(f"  password: {password}")
        print(f"Pass these on privately; this is the only time nerloop prints the password (kept in {home}/"
              f"{ls_team.TEAM_FILE}, readable by you only). They open project {project!r} and press Label All Tasks.")


def _list(home: Path) -> None:
    members = ls_team.load(home)
    params = _params()
    named = list(params.annotators)
    if not members and not named:
        print("no annotators yet: `nerloop label-studio annotator add NAME`")
    for name in sorted(set(members) | set(named)):
        email = (members.get(name) or {}).get("email") or (name if "@" in name else f"{name}@{params.email_domain}")
        origin = "team.json" if name in members else "params only"
        active = "annotating" if (name in named or not named) else "not in annotation.label_studio.annotators"
        print(f"{name:<16} {email:<32} project {params.project}-{name:<16} {origin:<12} {active}")


def _remove(name: str, home: Path) -> None:
    members = ls_team.load(home)
    if name not in members:
        raise LabelStudioConfigError(f"{name!r} is not in {home / ls_team.TEAM_FILE}")
    members.pop(name)
    ls_team.save(home, members)
    print(f"{name!r} removed from the team: no new work goes to them. Their Label Studio account, project and "
          "annotations are kept (the next cycle still imports what they submitted). Label Studio's open-source "
          "edition has no project membership to revoke; to lock the account, deactivate it in Label Studio's "
          "Organization page. Remove them from annotation.label_studio.annotators too if they are listed there.")


def _disagreements(home: Path) -> None:
    from nerloop import paths
    from nerloop.data.ledger import Ledger

    backend = _backend(_labels(), home)
    result = backend.fetch(Ledger(paths.LEDGER))
    if not result.disagreements:
        print("no disagreements waiting")
    for d in result.disagreements:
        print(f"sentence {d['sentence_id']}: {d['text']}")
        for who in d["annotators"]:
            print(f"  {who:>12} (task {d['examples'][who]}): {d['spans'][who]}")
    if result.disagreements and backend.params.disagreement_policy == "review":
        print(f"resolve them in project {backend.project_name(REVIEW_SUFFIX)!r} and submit each one; the next "
              "`nerloop cycle` imports the resolved version")
    agr = result.metrics.get("cumulative") or {}
    print(f"agreement so far: {agr.get('pairs', 0)} double-annotated sentences, kappa {agr.get('kappa')}, "
          f"entity F1 {agr.get('entity_f1')}")


def run(args: argparse.Namespace, home: Path = DEFAULT_HOME) -> None:
    """Carry out a parsed ``nerloop label-studio ...`` command; errors are NerloopErrors for ``cli`` to print."""
    cmd = args.ls_command
    if cmd == "up":
        _up(args.port, args.host, home)
    elif cmd == "down":
        print("Label Studio stopped" if lss.down(home) else f"no Label Studio server from {home} is running")
    elif cmd == "status":
        for key, value in lss.status(home).items():
            print(f"{key:>12}: {value}")
    elif cmd == "annotator":
        {"add": lambda: _add(args.name, args.email, args.existing, home), "list": lambda: _list(home),
         "remove": lambda: _remove(args.name, home)}[args.annotator_command]()
    elif cmd == "disagreements":
        _disagreements(home)
    elif cmd == "accept":
        for line in _backend(_labels(), home).accept(args.task):
            print(line)
    else:  # argparse only lets the choices above through
        raise NerloopError(f"unknown label-studio command {cmd!r}")
