"""The annotation team: Doccano accounts nerloop creates, and ``.doccano/team.json`` that lists them.

Why it is built this way:

* Accounts are created through Doccano's own REST API (``users/create``, administrators only), so
  the same command works for the local server and for a remote one where the nerloop account is a
  Doccano administrator; no Django shell on the server is needed.
* A generated password is 24 characters: Doccano 1.8.4's login form disables its button for
  passwords of 30 characters or more. It is shown once on the terminal and kept in ``team.json``
  (mode 0600, under the git-ignored ``.doccano/``), so the lead can hand it over later; it never
  goes into params, logs or metrics.
* Removing an annotator takes them out of every nerloop project and out of ``team.json`` but does
  not delete the Doccano account: deleting a user in Doccano deletes their spans and confirmations
  (database cascade), i.e. their work.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from nerloop.annotation.doccano.client import Connection, DoccanoConfigError

TEAM_FILE = "team.json"
PASSWORD_BYTES = 18  # token_urlsafe(18) is 24 characters; Doccano's login form refuses >= 30
NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,100}$")  # Django's username characters, minus '@'


def generate_password() -> str:
    """A random password Doccano's login form accepts (24 URL-safe characters)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def _path(home: Path) -> Path:
    return Path(home) / TEAM_FILE


def load(home: Path) -> dict[str, dict[str, Any]]:
    """{name: {"password": ... or None, "added_at": ...}} from ``<home>/team.json`` (empty if none)."""
    try:
        data = json.loads(_path(home).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise DoccanoConfigError(f"{_path(home)} is corrupt ({exc}); fix or delete it") from None
    return dict(data.get("annotators") or {})


def names(home: Path) -> list[str]:
    """The annotators in ``team.json``, in name order."""
    return sorted(load(home))


def save(home: Path, members: dict[str, dict[str, Any]]) -> None:
    """Write ``team.json`` atomically, readable by the owner only (it holds passwords)."""
    path = _path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"annotators": dict(sorted(members.items()))}, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def user_exists(conn: Connection, username: str) -> bool:
    """True when the Doccano server has an account called ``username``."""
    rows = conn.request("GET", "users", "looking up users", params={"search": username})
    return any(r.get("username") == username for r in rows)


def create_user(conn: Connection, username: str, password: str) -> None:
    """Create a Doccano account through the API (the nerloop account must be an administrator).

    No e-mail is sent: Doccano refuses a blank one but accepts none.
    """
    conn.request("POST", "users/create", f"creating user {username!r}",
                 json={"username": username, "password1": password, "password2": password})


def check_name(username: str) -> str:
    """A username Doccano accepts and nerloop can use in a project name."""
    if not NAME.match(username) or username == "review":
        raise DoccanoConfigError(
            f"annotator name {username!r}: use letters, digits and . _ + - (not 'review', the review project's name)"
        )
    return username
