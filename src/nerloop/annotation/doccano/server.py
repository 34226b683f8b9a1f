"""A local Doccano 1.8.4 server for ``nerloop doccano up|down|status``.

Why it is built this way:

* The server lives in its own virtual environment (``<home>/venv``): it pins Django 4.2, pandas<2,
  SQLAlchemy<2 and pydantic>=2, none of which fit beside doccano-client (pydantic<2) and the
  training stack in the project environment. Versions are pinned (``SERVER_REQUIREMENTS``);
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
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from nerloop import paths
from nerloop.annotation.core.local_server import (  # shared with Label Studio; old names kept for callers, tests
    PINS_DIR,
    PRIVATE_UMASK,
    STOP_GRACE_S,
    free_port,  # noqa: F401  (re-exported: tests and benchmarks call ds.free_port)
    make_private,
    pins_recorded,
    pip_install,
    record_pins,
    server_pins,
    venv_python,
)
from nerloop.annotation.core.local_server import log_tail as _log_tail
from nerloop.annotation.core.local_server import open_log as _open_log
from nerloop.annotation.core.local_server import pid_alive as _pid_alive
from nerloop.annotation.core.local_server import port_in_use as _port_in_use
from nerloop.annotation.core.local_server import stop_pid as _stop_pid
from nerloop.annotation.core.local_server import write_private as _write_private
from nerloop.errors import NerloopError

DEFAULT_HOME = Path(".doccano")
DOCCANO_VERSION = "1.8.4"
SERVER_REQUIREMENTS = [f"doccano=={DOCCANO_VERSION}", "numpy<2", "setuptools<81", "marshmallow<4"]
SERVER_CONSTRAINTS = PINS_DIR / "doccano.txt"  # the whole tree of a known-good install
VENV_ENV = "NERLOOP_DOCCANO_VENV"  # where an already-installed server venv is (CI caches, tests)
PAGE_SIZE = 1000  # DOCCANO_PAGE_SIZE: the server default of 5 makes every list call page
SETTINGS_MODULE = "nerloop_doccano_settings"
ADMIN_USER = "admin"
LOOPBACK = "127.0.0.1"

TEMPLATES = paths.TEMPLATES
SETTINGS_TEMPLATE = TEMPLATES / "doccano_settings.py.txt"  # Doccano settings: Celery tasks run inline (eager)
# Python modules written into the home, on the server's path: settings, nerloop's app (uploaded files deleted
# once imported) and URLs (media/ not served, export zips deleted once downloaded, bulk span confidences)
SERVER_MODULES = {
    SETTINGS_MODULE: SETTINGS_TEMPLATE,
    "nerloop_doccano_hooks": TEMPLATES / "doccano_hooks.py.txt",
    "nerloop_doccano_urls": TEMPLATES / "doccano_urls.py.txt",
}
USER_SCRIPT = TEMPLATES / "doccano_user.py.txt"  # run by the server's Python: create or reset one user
PASSWORD_BYTES = 18  # token_urlsafe(18): 24 characters; Doccano's login form refuses passwords of 30 or more


class DoccanoServerError(NerloopError):
    """The local Doccano server could not be installed, started, stopped or reached."""


# ---------------------------------------------------------------- paths and small helpers


def venv_path(home: Path = DEFAULT_HOME) -> Path:
    """The server's virtual environment, absolute: ``$NERLOOP_DOCCANO_VENV`` if set, else ``<home>/venv``.

    Absolute because server commands run with another working directory (Doccano's backend
    folder): a relative ``.doccano/venv`` would not be found there.
    """
    env = os.environ.get(VENV_ENV)
    return (Path(env) if env else Path(home) / "venv").resolve()


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python3*/site-packages"))
    if not found:
        raise DoccanoServerError(f"{venv} has no site-packages; run `nerloop doccano up` to install the server")
    return found[0]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise DoccanoServerError(f"{path} is corrupt ({exc}); delete it and run `nerloop doccano up` again") from None


def probe(url: str, timeout_s: float = 2.0) -> bool:
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


# ---------------------------------------------------------------- install


def installed_version(venv: Path) -> str | None:
    """The doccano version installed in ``venv``, or None if there is no usable install."""
    if not (venv_python(venv).exists() and (venv / "bin" / "gunicorn").exists()):
        return None
    try:
        dist = next((_site_packages(venv)).glob("doccano-*.dist-info"), None)
    except DoccanoServerError:
        return None
    return dist.name.removeprefix("doccano-").removesuffix(".dist-info") if dist else None


def is_installed(venv: Path) -> bool:
    """True when ``venv`` holds Doccano installed by :func:`install` with today's pins."""
    return (installed_version(venv) == DOCCANO_VERSION
            and pins_recorded(venv, server_pins(SERVER_REQUIREMENTS, SERVER_CONSTRAINTS)))


def install(home: Path = DEFAULT_HOME, *, venv: Path | None = None, quiet: bool = True) -> Path:
    """Create the server venv with the project's Python and install the pinned Doccano (once; ~1-2 min).

    Returns the venv path. Does nothing when the pinned requirements are already installed.
    """
    venv = Path(venv).resolve() if venv else venv_path(home)
    if is_installed(venv):
        return venv
    log = Path(home) / "install.log"
    failed = pip_install(venv, SERVER_REQUIREMENTS, log, constraints=SERVER_CONSTRAINTS, quiet=quiet)
    if failed:
        raise DoccanoServerError(f"installing the Doccano server into {venv} failed ({failed}); "
                                 f"see {log}:\n{_log_tail(log)}")
    if installed_version(venv) != DOCCANO_VERSION:
        raise DoccanoServerError(f"doccano {DOCCANO_VERSION} is not importable from {venv} after install; see {log}")
    record_pins(venv, server_pins(SERVER_REQUIREMENTS, SERVER_CONSTRAINTS))
    return venv


# ---------------------------------------------------------------- server environment


def _server_env(home: Path, venv: Path) -> dict[str, str]:
    """Environment for every server-side process: all state under ``home``, our settings module."""
    home = Path(home).resolve()
    secret = _read_json(home / "secret.json")
    if secret is None:
        secret = {"secret_key": secrets.token_urlsafe(50)}  # not Doccano's public default key
        _write_private(home / "secret.json", secret)
    (home / "media").mkdir(parents=True, exist_ok=True)
    (home / "upload-tmp").mkdir(parents=True, exist_ok=True)
    for module, template in SERVER_MODULES.items():
        (home / f"{module}.py").write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    backend = _site_packages(venv) / "backend"
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


def _run_server_cmd(home: Path, venv: Path, argv: list[str], *, what: str, stdin: str = "", log_name: str) -> None:
    """Run a command of the server venv with the server environment; its output goes to a log."""
    log = Path(home) / log_name
    with _open_log(log) as fh:
        proc = subprocess.run(
            argv,
            input=stdin,
            text=True,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=_server_env(home, venv),
            cwd=str(_site_packages(venv) / "backend"),
            check=False,
            umask=PRIVATE_UMASK,
        )
    if proc.returncode != 0:
        raise DoccanoServerError(f"Doccano {what} failed (exit {proc.returncode}); see {log}:\n{_log_tail(log)}")


def _init_db(home: Path, venv: Path) -> None:
    """``doccano init`` (migrate + roles) once per home; a marker makes a half-done init run again."""
    marker = Path(home) / "initialised"
    if marker.exists():
        return
    _run_server_cmd(home, venv, [str(venv / "bin" / "doccano"), "init"], what="`init`", log_name="init.log")
    marker.write_text(DOCCANO_VERSION, encoding="utf-8")


def create_user(home: Path, username: str, password: str, *, superuser: bool = False, venv: Path | None = None) -> None:
    """Create (or reset the password of) a Doccano user through Django, the password passed on stdin.

    Used by ``up`` for the admin and by tests for a second annotator. The user still has to be
    added to a project (``DoccanoClient.add_member``) to see it.
    """
    if "\n" in username or "\n" in password:
        raise DoccanoServerError("a Doccano username or password must not contain a newline")
    home = Path(home).resolve()
    venv = Path(venv).resolve() if venv else venv_path(home)
    _init_db(home, venv)
    _run_server_cmd(
        home,
        venv,
        [str(venv_python(venv)), "-c", USER_SCRIPT.read_text(encoding="utf-8")],
        what=f"user creation for {username!r}",
        stdin=f"{username}\n{password}\n{'1' if superuser else '0'}",
        log_name="init.log",
    )


# ---------------------------------------------------------------- up / down / status


def up(
    home: Path = DEFAULT_HOME,
    port: int = 8000,
    *,
    host: str = LOOPBACK,
    venv: Path | None = None,
    workers: int = 2,
    wait_s: float = 90.0,
    install_if_missing: bool = True,
) -> dict[str, Any]:
    """Start Doccano on ``host``:``port`` (loopback unless asked) and wait until it answers; return the state.

    Installs the server venv if missing, initialises the database and the admin account (password
    generated once, 24 characters, kept in ``credentials.json``). A server already running from this
    ``home`` is left alone and its state returned. ``home`` may be relative (the default
    ``.doccano``): it is made absolute first, since the server runs with another working directory.
    """
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    current = status(home)
    if current["running"]:
        return current
    venv = Path(venv).resolve() if venv else venv_path(home)
    if not is_installed(venv):
        if not install_if_missing:
            raise DoccanoServerError(f"no Doccano {DOCCANO_VERSION} in {venv}; run `nerloop doccano up` to install it")
        install(home, venv=venv)
    if _port_in_use(port):
        raise DoccanoServerError(f"port {port} is already in use; choose another port (--port)")

    creds_path = home / "credentials.json"
    creds = _read_json(creds_path)
    url = f"http://127.0.0.1:{port}"
    if creds is None or len(creds.get("password", "")) >= 30:  # older homes had 32 characters: renewed
        creds = {"url": url, "username": ADMIN_USER, "password": secrets.token_urlsafe(PASSWORD_BYTES)}
    creds["url"] = url
    _init_db(home, venv)
    create_user(home, creds["username"], creds["password"], superuser=True, venv=venv)
    _write_private(creds_path, creds)
    make_private(home)

    log = home / "gunicorn.log"
    cmd = [
        str(venv / "bin" / "gunicorn"),
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--timeout", "600",  # eager upload/export tasks run inside the request
        "--chdir", str(_site_packages(venv) / "backend"),
        "--access-logfile", "-",
        "--capture-output",
        "config.wsgi",
    ]  # fmt: skip
    with _open_log(log) as fh:
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_server_env(home, venv),
            cwd=str(home),
            start_new_session=True,  # own process group: down() can reach the workers too
            umask=PRIVATE_UMASK,
        )
    state = {"pid": proc.pid, "port": port, "host": host, "url": url, "started_at": time.time(), "log": str(log)}
    _write_private(home / "server.json", state)

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (home / "server.json").unlink(missing_ok=True)
            raise DoccanoServerError(f"Doccano exited at start (code {proc.returncode}); see {log}:\n{_log_tail(log)}")
        if probe(url, timeout_s=1.0):
            return {**state, "running": True}
        time.sleep(0.25)
    _stop_pid(proc.pid)
    (home / "server.json").unlink(missing_ok=True)
    raise DoccanoServerError(f"Doccano did not answer at {url} within {wait_s:.0f} s; see {log}:\n{_log_tail(log)}")


def down(home: Path = DEFAULT_HOME, *, grace_s: float = STOP_GRACE_S) -> bool:
    """Stop the server started from ``home`` by its process id; remove the state file.

    Returns True if a server was running. The database and credentials are kept.
    """
    home = Path(home).resolve()
    state = _read_json(home / "server.json")
    if state is None:
        return False
    was_running = _stop_pid(int(state["pid"]), grace_s)
    (home / "server.json").unlink(missing_ok=True)
    return was_running


def status(home: Path = DEFAULT_HOME) -> dict[str, Any]:
    """State of the server started from ``home``: running, pid, port, url, responding, venv version.

    ``running`` means the recorded process is alive; ``responding`` that the API answers.
    """
    home = Path(home).resolve()
    state = _read_json(home / "server.json") or {}
    pid = state.get("pid")
    alive = bool(pid) and _pid_alive(int(pid))
    out: dict[str, Any] = {
        "running": alive,
        "pid": pid if alive else None,
        "port": state.get("port"),
        "host": state.get("host"),
        "url": state.get("url"),
        "responding": bool(alive and state.get("url") and probe(state["url"])),
        "installed": installed_version(venv_path(home)),  # doccano version in the server venv, or None
        "home": str(home),
    }
    if state and not alive:
        out["stale_state"] = True  # recorded server is gone (crash, reboot): `up` starts a new one
        (home / "server.json").unlink(missing_ok=True)
    return out
