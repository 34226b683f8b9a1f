"""A local Doccano 1.8.4 server for ``nerloop doccano up|down|status``.

Why it is built this way:

* The server lives in its own virtual environment (``<home>/venv``): it pins Django 4.2, pandas<2,
  SQLAlchemy<2 and pydantic>=2, none of which fit beside doccano-client (pydantic<2) and the
  training stack in the project environment. Versions are pinned (``DoccanoServer.requirements``);
  ``numpy<2`` and ``setuptools<81`` are needed for it to import at all.
* gunicorn is started directly, bound to 127.0.0.1: ``doccano webserver`` would bind 0.0.0.0.
  ``--host`` opts in to another address (annotators on other machines); the server then speaks
  plain HTTP to the network (passwords and session cookies readable on the wire), so it is meant
  for a trusted network or behind a TLS proxy.
* Celery tasks (file upload and dataset export, which nerloop uses for both stages) run *eagerly*
  inside the web process, through a small settings module written into ``<home>``. A separate
  ``doccano task`` worker would be one more process to start, watch and stop by pid, and it polls
  its sqlite broker in the same database file as the web server on a 2-core machine; eager tasks
  also make an upload finish inside its HTTP request, so the client knows when it is done. The
  cost is that a large upload holds one web worker for its duration (gunicorn's timeout is raised).
* The admin password is generated (``secrets.token_urlsafe``, 24 characters: Doccano's login form
  refuses 30 or more) and written only to ``<home>/credentials.json`` (mode 0600; ``.doccano/`` is
  git-ignored). Passwords are passed to the server's Python on stdin, never on a command line
  (visible in ``ps``) or in a log.
* All state is under ``home``, made absolute first (server commands run in Doccano's backend
  folder, so the default relative ``.doccano`` would point nowhere): sqlite database, media,
  upload temp files, logs, ``server.json`` (pid, port, url). It is owner-only: the home is 0700,
  files 0600, and server processes run with umask 077 (Doccano creates its sqlite, which holds
  every API token, world-readable). Tests pass a temporary ``home`` and a free port.
* Nothing stays served without login. Doccano keeps a copy of every imported file under
  ``media/`` and, run standalone, serves that folder to anyone; export zips land there too. The
  server's URLs (``doccano_urls``) answer 404 under ``/media/`` and delete an export zip once it is
  downloaded; a small app (``doccano_hooks``) deletes each uploaded file as soon as Doccano has
  imported it. The same URLs add one bulk route, the confidences of many spans in one request.
* Templates (the settings module, the app, the URLs, the user script) are files under ``nerloop/templates``.

The server's life (install, up, down, status, its state files) is ``nerloop.annotation.core.server``;
this module is Doccano's recipe for it.
"""

from __future__ import annotations

import os
import secrets
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from nerloop import paths
from nerloop.annotation.core.local_server import venv_python, write_private
from nerloop.annotation.core.server import LOOPBACK, LocalServer
from nerloop.errors import NerloopError

DOCCANO_VERSION = "1.8.4"
PAGE_SIZE = 1000  # DOCCANO_PAGE_SIZE: the server default of 5 makes every list call page
SETTINGS_MODULE = "nerloop_doccano_settings"
ADMIN_USER = "admin"

# Python modules written into the home, on the server's path: settings (Celery tasks run inline, eager),
# nerloop's app (uploaded files deleted once imported) and URLs (media/ not served, export zips deleted
# once downloaded, bulk span confidences)
SERVER_MODULES = {
    SETTINGS_MODULE: paths.TEMPLATES / "doccano_settings.py.txt",
    "nerloop_doccano_hooks": paths.TEMPLATES / "doccano_hooks.py.txt",
    "nerloop_doccano_urls": paths.TEMPLATES / "doccano_urls.py.txt",
}
USER_SCRIPT = paths.TEMPLATES / "doccano_user.py.txt"  # run by the server's Python: create or reset one user
PASSWORD_BYTES = 18  # token_urlsafe(18): 24 characters; Doccano's login form refuses passwords of 30 or more


class DoccanoServerError(NerloopError):
    """The local Doccano server could not be installed, started, stopped or reached."""


class DoccanoServer(LocalServer):
    """Doccano's recipe: gunicorn over Doccano's backend, our settings module, eager Celery tasks."""

    name = "Doccano"
    version = DOCCANO_VERSION
    requirements = (f"doccano=={DOCCANO_VERSION}", "numpy<2", "setuptools<81", "marshmallow<4")
    default_port = 8000
    wait_s = 90.0
    server_log = "gunicorn.log"
    error = DoccanoServerError

    def site_packages(self, venv: Path) -> Path:
        found = sorted((venv / "lib").glob("python3*/site-packages"))
        if not found:
            raise DoccanoServerError(f"{venv} has no site-packages; run `nerloop doccano up` to install the server")
        return found[0]

    def probe(self, url: str, timeout_s: float = 2.0) -> bool:
        """True when a Doccano API answers at ``url``.

        Uses ``GET /v1/projects`` (403 before login means "up"); ``/v1/health/`` blocks for seconds
        and queues a Celery task on every call.
        """
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/v1/projects", timeout=timeout_s) as resp:
                return resp.status < 500
        except urllib.error.HTTPError as exc:
            return exc.code in (401, 403)
        except (OSError, ValueError):
            return False

    def installed_version(self, venv: Path) -> str | None:
        if not (venv_python(venv).exists() and (venv / "bin" / "gunicorn").exists()):
            return None
        try:
            dist = next(self.site_packages(venv).glob("doccano-*.dist-info"), None)
        except DoccanoServerError:
            return None
        return dist.name.removeprefix("doccano-").removesuffix(".dist-info") if dist else None

    def env(self, home: Path, venv: Path) -> dict[str, str]:
        """Environment for every server-side process: all state under ``home``, our settings module."""
        home = Path(home).resolve()
        secret = self.read_json(home / "secret.json")
        if secret is None:
            secret = {"secret_key": secrets.token_urlsafe(50)}  # not Doccano's public default key
            write_private(home / "secret.json", secret)
        (home / "media").mkdir(parents=True, exist_ok=True)
        (home / "upload-tmp").mkdir(parents=True, exist_ok=True)
        for module, template in SERVER_MODULES.items():
            (home / f"{module}.py").write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
        backend = self.site_packages(venv) / "backend"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NERLOOP_DOCCANO_", "DJANGO_", "CELERY_"))}
        env.update(
            {
                "DOCCANO_HOME": str(home),
                "STANDALONE": "True",
                "DEBUG": "False",
                "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
                "PYTHONPATH": os.pathsep.join([str(home), str(backend)]),
                "DATABASE_URL": f"sqlite:///{home / 'db.sqlite3'}",
                "MEDIA_ROOT": str(home / "media"),
                "NERLOOP_DOCCANO_UPLOAD_TMP": str(home / "upload-tmp"),
                "SECRET_KEY": secret["secret_key"],
                "DOCCANO_PAGE_SIZE": str(PAGE_SIZE),
                "IMPORT_BATCH_SIZE": "1000",
                "PYTHONUNBUFFERED": "1",
                "VIRTUAL_ENV": str(venv),
                "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )
        return env

    def run_server_cmd(self, home: Path, venv: Path, argv: list[str], *, what: str, stdin: str = "") -> None:
        """Run a command of the server venv in Doccano's backend folder; its output goes to ``init.log``."""
        self.run_script(argv, env=self.env(home, venv), cwd=self.site_packages(venv) / "backend",
                        log=Path(home) / "init.log", stdin=stdin, what=what)

    def init_db(self, home: Path, venv: Path) -> None:
        """``doccano init`` (migrate + roles) once per home; a marker makes a half-done init run again."""
        marker = Path(home) / "initialised"
        if marker.exists():
            return
        self.run_server_cmd(home, venv, [str(venv / "bin" / "doccano"), "init"], what="`init`")
        marker.write_text(DOCCANO_VERSION, encoding="utf-8")

    def create_user(self, home: Path, username: str, password: str, *, superuser: bool = False,
                    venv: Path | None = None) -> None:
        """Create (or reset the password of) a Doccano user through Django, the password passed on stdin.

        Used by ``up`` for the admin. The user still has to be added to a project
        (``DoccanoClient.add_member``) to see it.
        """
        if "\n" in username or "\n" in password:
            raise DoccanoServerError("a Doccano username or password must not contain a newline")
        home = Path(home).resolve()
        venv = Path(venv).resolve() if venv else self.venv_path(home)
        self.init_db(home, venv)
        self.run_server_cmd(home, venv, [str(venv_python(venv)), "-c", USER_SCRIPT.read_text(encoding="utf-8")],
                            what=f"user creation for {username!r}",
                            stdin=f"{username}\n{password}\n{'1' if superuser else '0'}")

    def admin(self, home: Path, venv: Path, url: str) -> dict[str, Any]:
        creds = self.read_json(home / "credentials.json")
        if creds is None or len(creds.get("password", "")) >= 30:  # older homes had 32 characters: renewed
            creds = {"url": url, "username": ADMIN_USER, "password": secrets.token_urlsafe(PASSWORD_BYTES)}
        creds["url"] = url
        self.init_db(home, venv)
        self.create_user(home, creds["username"], creds["password"], superuser=True, venv=venv)
        return creds

    def serve(self, home: Path, venv: Path, host: str, port: int, url: str, *, workers: int = 2
              ) -> tuple[list[str], dict[str, str], Path]:
        cmd = [
            str(venv / "bin" / "gunicorn"),
            "--bind", f"{host}:{port}",
            "--workers", str(workers),
            "--timeout", "600",  # eager upload/export tasks run inside the request
            "--chdir", str(self.site_packages(venv) / "backend"),
            "--access-logfile", "-",
            "--capture-output",
            "config.wsgi",
        ]  # fmt: skip
        return cmd, self.env(home, venv), home


SERVER = DoccanoServer()
VENV_ENV = SERVER.venv_env
up, down, status, install, is_installed = SERVER.up, SERVER.down, SERVER.status, SERVER.install, SERVER.is_installed
venv_path, probe = SERVER.venv_path, SERVER.probe
__all__ = ["LOOPBACK", "DoccanoServerError", "down", "install", "is_installed", "probe", "status", "up", "venv_path"]
