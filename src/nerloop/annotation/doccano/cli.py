"""``nerloop doccano ...``: Doccano's part of the tool commands (``nerloop.annotation.core.cli``).

The annotation team differs from tool to tool: in Doccano, nerloop creates each annotator's account
(password shown once) and makes them a member, with the annotator role, of their own project.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nerloop.annotation.core.cli import ToolCli, labels
from nerloop.annotation.doccano import DEFAULT_HOME, DoccanoBackend, DoccanoConfigError, team
from nerloop.annotation.doccano import server as ds
from nerloop.annotation.doccano.client import Connection


class DoccanoCli(ToolCli):
    backend_class = DoccanoBackend
    server = ds.SERVER
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
        team.check_name(name)
        members = team.load(home)
        if name in members:
            raise DoccanoConfigError(f"{name!r} is in the team already (`nerloop doccano annotator list`)")
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
        print(f"annotator {name!r} added to the team: {where}")
        print(f"  URL:      {self.annotator_url(home)}")
        print(f"  username: {name}")
        if password:
            print(f"  password: {password}")
            print(f"Pass these on privately; this is the only time nerloop prints the password (kept in {home}/"
                  f"{team.TEAM_FILE}, readable by you only).")

    def list_annotators(self, home: Path) -> None:
        members = team.load(home)
        params = self.params()
        named = params.annotators
        if not members and not named:
            print("no annotators yet: `nerloop doccano annotator add NAME`")
        for name in sorted(set(members) | set(named)):
            origin = "team.json" if name in members else "params only"
            active = "annotating" if (name in named or not named) else "not in annotation.doccano.annotators"
            print(f"{name:<20} project {params.project}-{name:<20} {origin:<12} {active}")

    def remove_annotator(self, name: str, home: Path) -> None:
        members = team.load(home)
        left = self.backend(labels() or ["-"], home).remove_member(name)  # no label is created: any set will do
        members.pop(name, None)
        team.save(home, members)
        print(f"{name!r} removed from the team and from {left or 'no project'}; their Doccano account and the work "
              "they did are kept (deleting a Doccano user deletes their annotations). Remove them from "
              "annotation.doccano.annotators too if they are listed there.")


CLI = DoccanoCli()
