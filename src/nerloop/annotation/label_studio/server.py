"""A local Label Studio 1.23 server for ``nerloop label-studio up|down|status``.

Why it is built this way (as the Doccano server, ``nerloop.annotation.doccano.server``, where the reasons
are the same):

* The server lives in its own virtual environment (``<home>/venv``): Label Studio pins Django 5,
  pydantic 2 and its own SDK, none of which fit beside doccano-client (pydantic 1) and the training
  stack in the project environment. The version is pinned (``LabelStudioServer.requirements``).
* Label Studio's first start migrates an empty sqlite database, which takes one to two minutes on a
  small machine. The install does that once, into ``<venv>/nerloop-empty.sqlite3``, and every new
  home starts from a copy: ``up`` on a fresh home then takes seconds.
* ``label-studio start`` runs Django's own server. It is bound to 127.0.0.1 with
  ``--internal-host`` (Label Studio's ``--host`` only names the public URL; its default bind address
  is 0.0.0.0). ``--host`` of ``nerloop label-studio up`` opts in to another address, with the same
  plain-HTTP warning as for Doccano. Sign-up without the organization's invite link is switched off
  (``LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK``), the version check against PyPI and analytics too.
* The admin account (``admin@nerloop.local``), its password and its API token are generated and
  written only to ``<home>/credentials.json`` (mode 0600; ``.label-studio/`` is git-ignored). They
  reach the server's Python on stdin (``templates/label_studio_user.py.txt``), never on a command
  line or in the environment of the long-running server. Label Studio 1.23 turns legacy API tokens
  off for a new organization; nerloop's own server turns them on for its admin token.
* All state is under ``home`` (the sqlite database, media, exports, logs, ``server.json`` with pid,
  port and url), owner-only: the home is 0700, files 0600, the server runs with umask 077.

The server's life (install, up, down, status, its state files) is ``nerloop.annotation.core.server``;
this module is Label Studio's recipe for it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from nerloop import paths
from nerloop.annotation.core.local_server import PRIVATE_UMASK, log_tail, make_private, open_log, venv_python
from nerloop.annotation.core.server import LOOPBACK, LocalServer
from nerloop.errors import NerloopError

LABEL_STUDIO_VERSION = "1.23.2"
ADMIN_EMAIL = "admin@nerloop.local"
DEFAULT_PORT = 8080
EMPTY_DB = "nerloop-empty.sqlite3"  # a migrated, empty database made at install: new homes copy it
DB_NAME = "label_studio.sqlite3"
USER_SCRIPT = paths.TEMPLATES / "label_studio_user.py.txt"
PASSWORD_BYTES = 18  # token_urlsafe(18): 24 characters


class LabelStudioServerError(NerloopError):
    """The local Label Studio server could not be installed, started, stopped or reached."""


class LabelStudioServer(LocalServer):
    """Label Studio's recipe: ``label-studio start`` on a copy of a database migrated once at install."""

    name = "Label Studio"
    version = LABEL_STUDIO_VERSION
    requirements = (f"label-studio=={LABEL_STUDIO_VERSION}",)
    default_port = DEFAULT_PORT
    wait_s = 120.0
    server_log = "server.log"
    error = LabelStudioServerError

    def probe(self, url: str, timeout_s: float = 2.0) -> bool:
        """True when Label Studio answers ``GET /health`` at ``url``."""
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout_s) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def installed_version(self, venv: Path) -> str | None:
        if not (venv_python(venv).exists() and (venv / "bin" / "label-studio").exists()):
            return None
        found = sorted((venv / "lib").glob("python3*/site-packages/label_studio-*.dist-info"))
        return found[0].name.removeprefix("label_studio-").removesuffix(".dist-info") if found else None

    def install_complete(self, venv: Path) -> bool:
        return (venv / EMPTY_DB).exists()

    def env(self, data_dir: Path, venv: Path, url: str | None = None) -> dict[str, str]:
        """Environment of every server-side process: state under ``data_dir``, no telemetry, invite-only sign-up."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("NERLOOP_LABEL_STUDIO_", "LABEL_STUDIO_", "DJANGO_", "HEARTEX_"))}
        env.update({
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
            "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
            "PYTHONUNBUFFERED": "1",
            "VIRTUAL_ENV": str(venv),
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        })
        if url:
            env["LABEL_STUDIO_HOST"] = url  # the public URL Label Studio puts in links (not the bind address)
        return env

    def finish_install(self, home: Path, venv: Path, log: Path) -> None:
        """Migrate an empty database once, without any account, for every new home to copy."""
        with tempfile.TemporaryDirectory(prefix="nerloop-ls-migrate-") as tmp:
            code = ("from label_studio.server import _apply_database_migrations, _setup_env\n"
                    "_setup_env()\n_apply_database_migrations()\n")
            with open_log(log) as fh:
                fh.write("$ migrating an empty Label Studio database (once per install)\n")
                fh.flush()
                proc = subprocess.run([str(venv_python(venv)), "-c", code], stdout=fh, stderr=subprocess.STDOUT,
                                      env=self.env(Path(tmp), venv), cwd=tmp, check=False, umask=PRIVATE_UMASK)
            if proc.returncode != 0:
                raise LabelStudioServerError(
                    f"migrating Label Studio's database failed; see {log}:\n{log_tail(log)}")
            shutil.copyfile(Path(tmp) / DB_NAME, venv / (EMPTY_DB + ".tmp"))
            os.replace(venv / (EMPTY_DB + ".tmp"), venv / EMPTY_DB)

    def data_dir(self, home: Path, venv: Path) -> Path:
        """``<home>/data`` with a database: a copy of the install's migrated empty one on first use."""
        data = Path(home) / "data"
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        db = data / DB_NAME
        if not db.exists():
            tmp = data / (DB_NAME + ".tmp")
            shutil.copyfile(venv / EMPTY_DB, tmp)
            os.chmod(tmp, 0o600)
            os.replace(tmp, db)
        return data

    def create_account(self, home: Path, email: str, password: str, *, token: str = "", admin: bool = False,
                       venv: Path | None = None) -> None:
        """Create (or reset the password of) a Label Studio account through Django, secrets on stdin.

        Used by ``up`` for the admin (with its API token). Annotators are signed up through the
        organization's invite link instead (``annotation.label_studio.team``), which works on any server.
        """
        if any("\n" in x for x in (email, password, token)):
            raise LabelStudioServerError("a Label Studio e-mail, password or token must not contain a newline")
        home = Path(home).resolve()
        venv = Path(venv).resolve() if venv else self.venv_path(home)
        data_dir = self.data_dir(home, venv)
        self.run_script([str(venv_python(venv)), "-c", USER_SCRIPT.read_text(encoding="utf-8")],
                        env=self.env(data_dir, venv), cwd=data_dir, log=home / "init.log",
                        stdin=f"{email}\n{password}\n{token}\n{'1' if admin else '0'}",
                        what=f"account setup for {email!r}")

    def admin(self, home: Path, venv: Path, url: str) -> dict[str, Any]:
        creds = self.read_json(home / "credentials.json") or {
            "email": ADMIN_EMAIL,
            "password": secrets.token_urlsafe(PASSWORD_BYTES),
            "token": secrets.token_hex(20),  # 40 hex characters, the shape of Label Studio's own tokens
        }
        creds["url"] = url
        self.create_account(home, creds["email"], creds["password"], token=creds["token"], admin=True, venv=venv)
        return creds

    def serve(self, home: Path, venv: Path, host: str, port: int, url: str) -> tuple[list[str], dict[str, str], Path]:
        data_dir = self.data_dir(home, venv)
        cmd = [str(venv / "bin" / "label-studio"), "start", "--no-browser", "--internal-host", host,
               "--port", str(port)]
        return cmd, self.env(data_dir, venv, url), data_dir

    def started(self, home: Path) -> None:
        make_private(home)  # what Label Studio created at start (media/, export/) is owner-only too


SERVER = LabelStudioServer()
VENV_ENV = SERVER.venv_env
up, down, status, install, is_installed = SERVER.up, SERVER.down, SERVER.status, SERVER.install, SERVER.is_installed
venv_path, probe = SERVER.venv_path, SERVER.probe
__all__ = ["LOOPBACK", "LabelStudioServerError", "down", "install", "is_installed", "probe", "status", "up",
           "venv_path"]
