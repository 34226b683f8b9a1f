"""The annotation team in Label Studio: accounts nerloop signs up, and ``.label-studio/team.json``.

Why it is built this way:

* Label Studio logs people in by e-mail, and its open-source API can create a user but not give it a
  password. So ``annotator add NAME`` signs ``NAME@<email_domain>`` up through the organization's
  invite link (``GET /api/invite``, then the sign-up form, as a person following the link would).
  That works on the local server (where sign-up without the link is off) and on an existing one,
  and the account lands in the organization of nerloop's own account.
* The generated password (24 characters) is shown once and kept in ``team.json`` (mode 0600, in the
  git-ignored ``.label-studio/``); never in params, logs or metrics.
* In the open-source edition every member of the organization sees every project: there are no
  per-project members or roles. nerloop's per-annotator project is the assignment, not a lock.
  Removing an annotator takes them out of ``team.json`` (no new work is sent to them); their account
  and their annotations are kept (deactivating a member is done in Label Studio's Organization page,
  by the owner).
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any

import requests

from nerloop.annotation.core import plan
from nerloop.annotation.core.local_server import write_private
from nerloop.annotation.label_studio.client import Connection, LabelStudioConfigError, LabelStudioHTTPError

TEAM_FILE = "team.json"
NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,100}$")


def generate_password() -> str:
    """A random 24-character password."""
    return secrets.token_urlsafe(18)


def load(home: Path) -> dict[str, dict[str, Any]]:
    """{name: {"email", "password" (or None), "added_at"}} from ``<home>/team.json`` (empty if none)."""
    path = Path(home) / TEAM_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise LabelStudioConfigError(f"{path} is corrupt ({exc}); fix or delete it") from None
    return dict(data.get("annotators") or {})


def save(home: Path, members: dict[str, dict[str, Any]]) -> None:
    """Write ``team.json`` atomically, owner-only (it holds passwords)."""
    write_private(Path(home) / TEAM_FILE, {"annotators": dict(sorted(members.items()))})


def check_name(name: str) -> str:
    """A name nerloop can use in a project title (``<project>-<name>``)."""
    if not NAME.match(name) or name == plan.REVIEW_SUFFIX:
        raise LabelStudioConfigError(
            f"annotator name {name!r}: use letters, digits and . _ + - (not {plan.REVIEW_SUFFIX!r}, the review "
            "project's name)"
        )
    return name


def users(conn: Connection) -> dict[int, str]:
    """{user id: e-mail} of the organization's accounts."""
    rows = conn.request("GET", "users/", "listing users")
    rows = rows.get("results", []) if isinstance(rows, dict) else rows
    return {int(r["id"]): str(r.get("email") or "") for r in rows}


def sign_up(conn: Connection, email: str, password: str) -> None:
    """Create an account through the organization's invite link, as a person following it would."""
    invite = conn.request("GET", "invite", "reading the organization's invite link")
    token = invite["token"]
    signup = f"{conn.url}/user/signup/?token={token}"
    browser = requests.Session()  # a fresh, anonymous session: the new person's, not nerloop's
    with conn.guard(f"signing up {email!r}"):
        browser.get(signup, timeout=conn.timeout_s)
        resp = browser.post(signup, timeout=conn.timeout_s, allow_redirects=False, headers={"Referer": signup},
                            data={"csrfmiddlewaretoken": browser.cookies.get("csrftoken", ""), "email": email,
                                  "password": password})
    if resp.status_code != 302:  # the form is shown again, with its errors, when sign-up fails
        errors = re.findall(r'class="[^"]*error[^"]*"[^>]*>([^<]{3,200})<', resp.text)
        raise LabelStudioHTTPError(
            f"Label Studio at {conn.url} did not sign up {email!r} (HTTP {resp.status_code}"
            f"{': ' + '; '.join(e.strip() for e in errors) if errors else ''}); is the e-mail taken?",
            resp.status_code,
        )
