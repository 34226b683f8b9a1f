"""``nerloop doccano ...``: Doccano's part of the tool commands (``nerloop.annotation.core.cli``).

The annotation team differs from tool to tool: in Doccano, nerloop creates each annotator's account
(password shown once) and makes them a member, with the annotator role, of their own project.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from nerloop.annotation.core.cli import ToolCli, labels
from nerloop.annotation.doccano import DEFAULT_HOME, DoccanoBackend, DoccanoConfigError, team
from nerloop.annotation.doccano import server as ds
from nerloop.annotation.doccano.client import Connection


class DoccanoCli(ToolCli):
    backend_class = DoccanoBackend
    server = ds.SERVER
    team = team
    params_key = "doccano"
    install_time = "about two minutes"
    login = f"log in as {ds.ADMIN_USER!r}; the generated password is in {{home}}/credentials.json (not printed)"
    add_help = "create a Doccano account (password shown once) and add it to the team"
    remove_help = "take an annotator out of the team and of every nerloop project"
    item = "example"
    resolve = "mark each one done"
    host_risk = ", and anyone who can reach the port can try to log in"

    def backend(self, labels: list[str], home: Path) -> DoccanoBackend:
        return self.backend_class.from_params(self.params(), labels, home=DEFAULT_HOME)

    def add_annotator(self, args: argparse.Namespace, home: Path) -> None:
        name, existing = args.name, args.existing
        members = self.new_member(name, home)
        known = labels()
        conn = self.backend(known, home).conn if known else Connection(None, home=home, default_url="",
                                                                       timeout_s=30.0)
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
        project = f"{self.params().project}-{name}"
        if known:
            self.backend(known, home).ensure_project(name, [name])
            where = f"project {project!r} (member, annotator role)"
        else:
            where = f"project {project!r}, made at the first export (the label set is not known yet)"
        self.announce(name, where, f"username: {name}", password, home)

    def annotator_columns(self, name: str, member: dict[str, Any], params: Any) -> str:
        return f"{name:<20} project {params.project}-{name:<20}"

    def remove_annotator(self, name: str, home: Path) -> None:
        members = team.load(home)
        left = self.backend(labels() or ["-"], home).remove_member(name)  # no label is created: any set will do
        members.pop(name, None)
        team.save(home, members)
        print(f"{name!r} removed from the team and from {left or 'no project'}; their Doccano account and the work "
              "they did are kept (deleting a Doccano user deletes their annotations). Remove them from "
              "annotation.doccano.annotators too if they are listed there.")


CLI = DoccanoCli()
