"""A local Label Studio 1.23 server for ``nerloop label-studio up|down|status``.

Why it is built this way (as the Doccano server, ``doccano_server``, where the reasons are the same):

* The server lives in its own virtual environment (``<home>/venv``): Label Studio pins Django 5,
  pydantic 2 and its own SDK, none of which fit beside doccano-client (pydantic 1) and the training
  stack in the project environment. The version is pinned (``SERVER_REQUIREMENTS``).
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
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from nerloop import paths
from nerloop.annotation.core.local_server import (
    PINS_DIR,
    PRIVATE_UMASK,
    STOP_GRACE_S,
    free_port,
    log_tail,
    make_private,
    open_log,
    pid_alive,
    pins_recorded,
    pip_install,
    port_in_use,
    record_pins,
    server_pins,
    stop_pid,
    venv_python,
    write_private,
)
from nerloop.errors import NerloopError

__all__ = ["LabelStudioServerError", "down", "free_port", "install", "is_installed", "status", "up"]

DEFAULT_HOME = Path(".label-studio")
LABEL_STUDIO_VERSION = "1.23.2"
SERVER_REQUIREMENTS = [f"label-studio=={LABEL_STUDIO_VERSION}"]
SERVER_CONSTRAINTS = PINS_DIR / "label-studio.txt"  # the whole tree of a known-good install
VENV_ENV = "NERLOOP_LABEL_STUDIO_VENV"  # where an already-installed server venv is (CI caches, tests)
ADMIN_EMAIL = "admin@nerloop.local"
LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8080
EMPTY_DB = "nerloop-empty.sqlite3"  # a migrated, empty database made at install: new homes copy it
DB_NAME = "label_studio.sqlite3"
USER_SCRIPT = paths.TEMPLATES / "label_studio_user.py.txt"
PASSWORD_BYTES = 18  # token_urlsafe(18): 24 characters


class LabelStudioServerError(NerloopError):
    """The local Label Studio server could not be installed, started, stopped or reached."""


# ---------------------------------------------------------------- paths and small helpers


def venv_path(home: Path = DEFAULT_HOME) -> Path:
    """The server's virtual environment, absolute: ``$NERLOOP_LABEL_STUDIO_VENV`` if set, else ``<home>/venv``."""
    env = os.environ.get(VENV_ENV)
    return (Path(env) if env else Path(home) / "venv").resolve()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise LabelStudioServerError(
            f"{path} is corrupt ({exc}); delete it and run `nerloop label-studio up` again"
        ) from None


def probe(url: str, timeout_s: float = 2.0) -> bool:
    """True when Label Studio answers ``GET /health`` at ``url``."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout_s) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


# ---------------------------------------------------------------- install


def installed_version(venv: Path) -> str | None:
    """The label-studio version installed in ``venv``, or None if there is no usable install."""
    if not (venv_python(venv).exists() and (venv / "bin" / "label-studio").exists()):
        return None
    found = sorted((venv / "lib").glob("python3*/site-packages/label_studio-*.dist-info"))
    return found[0].name.removeprefix("label_studio-").removesuffix(".dist-info") if found else None


def is_installed(venv: Path) -> bool:
    """True when ``venv`` holds the pinned Label Studio and the migrated empty database made by :func:`install`."""
    return (installed_version(venv) == LABEL_STUDIO_VERSION and (venv / EMPTY_DB).exists()
            and pins_recorded(venv, server_pins(SERVER_REQUIREMENTS, SERVER_CONSTRAINTS)))


def _server_env(data_dir: Path, venv: Path, url: str | None = None) -> dict[str, str]:
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


def _run_script(data_dir: Path, venv: Path, log: Path, stdin: str, what: str) -> None:
    """Run the account script with the server's Python; secrets go on stdin, output to ``log``."""
    with open_log(log) as fh:
        proc = subprocess.run(
            [str(venv_python(venv)), "-c", USER_SCRIPT.read_text(encoding="utf-8")],
            input=stdin, text=True, stdout=fh, stderr=subprocess.STDOUT, env=_server_env(data_dir, venv),
            cwd=str(data_dir), check=False, umask=PRIVATE_UMASK,
        )
    if proc.returncode != 0:
        raise LabelStudioServerError(
            f"Label Studio {what} failed (exit {proc.returncode}); see {log}:\n{log_tail(log)}")


def install(home: Path = DEFAULT_HOME, *, venv: Path | None = None, quiet: bool = True) -> Path:
    """Create the server venv, install the pinned Label Studio and migrate an empty database (once; a few minutes).

    Returns the venv path. Does nothing when it is already installed.
    """
    venv = Path(venv).resolve() if venv else venv_path(home)
    if is_installed(venv):
        return venv
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "install.log"
    failed = pip_install(venv, SERVER_REQUIREMENTS, log, constraints=SERVER_CONSTRAINTS, quiet=quiet)
    if failed:
        raise LabelStudioServerError(f"installing the Label Studio server into {venv} failed ({failed}); "
                                     f"see {log}:\n{log_tail(log)}")
    if installed_version(venv) != LABEL_STUDIO_VERSION:
        raise LabelStudioServerError(f"label-studio {LABEL_STUDIO_VERSION} is not in {venv} after install; see {log}")
    with tempfile.TemporaryDirectory(prefix="nerloop-ls-migrate-") as tmp:
        # Migrate once, without any account (an empty stdin line only makes the database current).
        _migrate_only(Path(tmp), venv, log)
        shutil.copyfile(Path(tmp) / DB_NAME, venv / (EMPTY_DB + ".tmp"))
        os.replace(venv / (EMPTY_DB + ".tmp"), venv / EMPTY_DB)
    record_pins(venv, server_pins(SERVER_REQUIREMENTS, SERVER_CONSTRAINTS))
    return venv


def _migrate_only(data_dir: Path, venv: Path, log: Path) -> None:
    code = ("from label_studio.server import _apply_database_migrations, _setup_env\n"
            "_setup_env()\n_apply_database_migrations()\n")
    with open_log(log) as fh:
        fh.write("$ migrating an empty Label Studio database (once per install)\n")
        fh.flush()
        proc = subprocess.run([str(venv_python(venv)), "-c", code], stdout=fh, stderr=subprocess.STDOUT,
                              env=_server_env(data_dir, venv), cwd=str(data_dir), check=False, umask=PRIVATE_UMASK)
    if proc.returncode != 0:
        raise LabelStudioServerError(f"migrating Label Studio's database failed; see {log}:\n{log_tail(log)}")


# ---------------------------------------------------------------- accounts


def create_account(home: Path, email: str, password: str, *, token: str = "", admin: bool = False,
                   venv: Path | None = None) -> None:
    """Create (or reset the password of) a Label Studio account through Django, secrets on stdin.

    Used by ``up`` for the admin (with its API token). Annotators are signed up through the
    organization's invite link instead (``annotation.label_studio.team``), which works on any server.
    """
    if any("\n" in x for x in (email, password, token)):
        raise LabelStudioServerError("a Label Studio e-mail, password or token must not contain a newline")
    home = Path(home).resolve()
    venv = Path(venv).resolve() if venv else venv_path(home)
    data_dir = _data_dir(home, venv)
    _run_script(data_dir, venv, home / "init.log", f"{email}\n{password}\n{token}\n{'1' if admin else '0'}",
                f"account setup for {email!r}")


def _data_dir(home: Path, venv: Path) -> Path:
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


# ---------------------------------------------------------------- up / down / status


def up(
    home: Path = DEFAULT_HOME,
    port: int = DEFAULT_PORT,
    *,
    host: str = LOOPBACK,
    venv: Path | None = None,
    wait_s: float = 120.0,
    install_if_missing: bool = True,
) -> dict[str, Any]:
    """Start Label Studio on ``host``:``port`` (loopback unless asked), wait until it answers; return the state.

    Installs the server venv if missing, makes the admin account and its API token (generated
    once, kept in ``credentials.json``). A server already running from this ``home`` is left alone.
    """
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    current = status(home)
    if current["running"]:
        return current
    venv = Path(venv).resolve() if venv else venv_path(home)
    if not is_installed(venv):
        if not install_if_missing:
            raise LabelStudioServerError(
                f"no Label Studio {LABEL_STUDIO_VERSION} in {venv}; run `nerloop label-studio up` to install it")
        install(home, venv=venv)
    if port_in_use(port):
        raise LabelStudioServerError(f"port {port} is already in use; choose another port (--port)")

    url = f"http://127.0.0.1:{port}"
    creds_path = home / "credentials.json"
    creds = _read_json(creds_path) or {
        "email": ADMIN_EMAIL,
        "password": secrets.token_urlsafe(PASSWORD_BYTES),
        "token": secrets.token_hex(20),  # 40 hex characters, the shape of Label Studio's own tokens
    }
    creds["url"] = url
    create_account(home, creds["email"], creds["password"], token=creds["token"], admin=True, venv=venv)
    write_private(creds_path, creds)
    make_private(home)

    log = home / "server.log"
    data_dir = _data_dir(home, venv)
    cmd = [str(venv / "bin" / "label-studio"), "start", "--no-browser", "--internal-host", host, "--port", str(port)]
    with open_log(log) as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_server_env(data_dir, venv, url),
            cwd=str(data_dir), start_new_session=True, umask=PRIVATE_UMASK,  # own group: down() stops it all
        )
    state = {"pid": proc.pid, "port": port, "host": host, "url": url, "started_at": time.time(), "log": str(log)}
    write_private(home / "server.json", state)

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            (home / "server.json").unlink(missing_ok=True)
            raise LabelStudioServerError(
                f"Label Studio exited at start (code {proc.returncode}); see {log}:\n{log_tail(log)}")
        if probe(url, timeout_s=1.0):
            make_private(home)  # what Label Studio created at start (media/, export/) is owner-only too
            return {**state, "running": True}
        time.sleep(0.25)
    stop_pid(proc.pid)
    (home / "server.json").unlink(missing_ok=True)
    raise LabelStudioServerError(
        f"Label Studio did not answer at {url} within {wait_s:.0f} s; see {log}:\n{log_tail(log)}")


def down(home: Path = DEFAULT_HOME, *, grace_s: float = STOP_GRACE_S) -> bool:
    """Stop the server started from ``home`` by its process id (and its process group); True if one ran."""
    home = Path(home).resolve()
    state = _read_json(home / "server.json")
    if state is None:
        return False
    was_running = stop_pid(int(state["pid"]), grace_s)
    (home / "server.json").unlink(missing_ok=True)
    return was_running


def status(home: Path = DEFAULT_HOME) -> dict[str, Any]:
    """State of the server started from ``home``: running, pid, port, url, responding, installed version."""
    home = Path(home).resolve()
    state = _read_json(home / "server.json") or {}
    pid = state.get("pid")
    alive = bool(pid) and pid_alive(int(pid))
    out: dict[str, Any] = {
        "running": alive,
        "pid": pid if alive else None,
        "port": state.get("port"),
        "host": state.get("host"),
        "url": state.get("url"),
        "responding": bool(alive and state.get("url") and probe(state["url"])),
        "installed": installed_version(venv_path(home)),
        "home": str(home),
    }
    if state and not alive:
        out["stale_state"] = True  # recorded server is gone (crash, reboot): `up` starts a new one
        (home / "server.json").unlink(missing_ok=True)
    return out
