"""``nerloop label-studio ...``: Label Studio's part of the tool commands (``nerloop.annotation.core.cli``).

The annotation team differs from tool to tool: in Label Studio, nerloop signs each annotator up
through the organization's invite link, with an e-mail (password shown once); the open-source edition
has no project membership, so removing an annotator only stops new work going to them. Label Studio
also has ``accept``: tasks held for a re-check, imported as they were submitted.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nerloop.annotation.core.cli import ToolCli, labels
from nerloop.annotation.label_studio import LabelStudioBackend, LabelStudioConfigError
from nerloop.annotation.label_studio import server as lss
from nerloop.annotation.label_studio import team as ls_team
from nerloop.annotation.label_studio.client import Connection


class LabelStudioCli(ToolCli):
    backend_class = LabelStudioBackend
    server = lss.SERVER
    team = ls_team
    params_key = "label_studio"
    install_time = "a few minutes"
    login = (f"log in as {lss.ADMIN_EMAIL!r}; the generated password and API token are in {{home}}/credentials.json "
             "(not printed)")
    add_help = "sign up a Label Studio account (password shown once) and add it to the team"
    remove_help = "take an annotator out of the team (no new work); their work is kept"
    item = "task"
    resolve = "submit each one"

    def backend(self, labels: list[str], home: Path) -> LabelStudioBackend:
        return self.backend_class.from_params(self.params(), labels or ["-"], home=home)

    def more_arguments(self, sub: Any, add: argparse.ArgumentParser) -> None:
        add.add_argument("--email", help="the account's e-mail (default NAME@<annotation.label_studio.email_domain>)")
        acc = sub.add_parser("accept", help="import tasks held for a re-check (submitted while a label was missing "
                                            "from the labelling config) as they were submitted")
        acc.add_argument("task", type=int, nargs="+", help="Label Studio task ids, as the held-back message names them")

    def more_verbs(self, args: argparse.Namespace, home: Path) -> dict[str, Callable[[], None]]:
        return {"accept": lambda: self.accept(args.task, home)}

    def accept(self, tasks: list[int], home: Path) -> None:
        for line in self.backend(labels(), home).accept(tasks):
            print(line)

    def add_annotator(self, args: argparse.Namespace, home: Path) -> None:
        name, existing = args.name, args.existing
        members = self.new_member(name, home)
        email = args.email or f"{name}@{self.params().email_domain}"
        be = self.backend(labels(), home)
        conn: Connection = be.conn
        taken = email.lower() in {e.lower() for e in ls_team.users(conn).values()}
        password = None
        if taken and not existing:
            raise LabelStudioConfigError(
                f"Label Studio at {conn.url} has an account {email!r} already. If it is theirs, add it with "
                "--existing (nerloop needs no password for it); otherwise choose another name or --email"
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
        if labels():
            be.ensure_project(name)
            where = f"project {project!r}"
        else:
            where = f"project {project!r}, made at the first export (the label set is not known yet)"
        self.announce(name, where, f"e-mail:   {email}", password, home,
                      then=f" They open project {project!r} and press Label All Tasks.")

    def annotator_columns(self, name: str, member: dict[str, Any], params: Any) -> str:
        email = member.get("email") or (name if "@" in name else f"{name}@{params.email_domain}")
        return f"{name:<16} {email:<32} project {params.project}-{name:<16}"

    def remove_annotator(self, name: str, home: Path) -> None:
        members = ls_team.load(home)
        if name not in members:
            raise LabelStudioConfigError(f"{name!r} is not in {home / ls_team.TEAM_FILE}")
        members.pop(name)
        ls_team.save(home, members)
        print(f"{name!r} removed from the team: no new work goes to them. Their Label Studio account, project and "
              "annotations are kept (the next cycle still imports what they submitted). Label Studio's open-source "
              "edition has no project membership to revoke; to lock the account, deactivate it in Label Studio's "
              "Organization page. Remove them from annotation.label_studio.annotators too if they are listed there.")


CLI = LabelStudioCli()
