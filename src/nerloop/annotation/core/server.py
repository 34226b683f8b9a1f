"""The life of a local annotation server, written once: install, up, down, status, its pid and port files.

A tool's server module subclasses :class:`LocalServer` with its recipe: what to install and how to tell
it is installed, how to make the admin account, the command that serves, and how to ask whether it
answers. Everything else (the venv under ``<home>/venv`` or ``$NERLOOP_<TOOL>_VENV``, the pinned
install, the owner-only ``server.json`` and ``credentials.json``, the wait for the first answer, the
stop by process id, the stale state after a crash) is the same for every tool and lives here.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from nerloop.annotation.core.local_server import (
    PINS_DIR,
    PRIVATE_UMASK,
    STOP_GRACE_S,
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
    write_private,
)
from nerloop.errors import NerloopError

LOOPBACK = "127.0.0.1"


class LocalServer:
    """One tool's local server. Subclasses set the class attributes and the four recipe methods."""

    name: str  # the tool, in messages: "Doccano"; also its command, package, home and pins file (below)
    version: str  # the pinned version
    requirements: tuple[str, ...]
    default_port: int
    wait_s: float  # how long `up` waits for the first answer
    server_log: str  # the server's log, under the home
    error: type[NerloopError]

    # ------------------------------------------------------------ names that follow from the tool's name

    @property
    def command(self) -> str:
        """Its verb group, `nerloop <command> up`, and its package on PyPI: "doccano", "label-studio"."""
        return self.name.lower().replace(" ", "-")

    @property
    def package(self) -> str:
        return self.command

    @property
    def default_home(self) -> Path:
        """``.doccano``, ``.label-studio``: git-ignored, in the project root."""
        return Path(f".{self.command}")

    @property
    def venv_env(self) -> str:
        """``NERLOOP_DOCCANO_VENV``: where an already-installed server venv is (CI caches, tests)."""
        return f"NERLOOP_{self.command.upper().replace('-', '_')}_VENV"

    @property
    def constraints(self) -> Path:
        """The whole tree of a known-good install: ``pins/<command>.txt``."""
        return PINS_DIR / f"{self.command}.txt"

    # ------------------------------------------------------------ the recipe: what differs per tool

    def installed_version(self, venv: Path) -> str | None:
        """The tool's version installed in ``venv``, or None if there is no usable install."""
        raise NotImplementedError

    def probe(self, url: str, timeout_s: float = 2.0) -> bool:
        """True when the tool answers at ``url``."""
        raise NotImplementedError

    def admin(self, home: Path, venv: Path, url: str) -> dict[str, Any]:
        """Make (or renew) the admin account; return the credentials to keep in ``credentials.json``."""
        raise NotImplementedError

    def serve(self, home: Path, venv: Path, host: str, port: int, url: str, **options: Any
              ) -> tuple[list[str], dict[str, str], Path]:
        """The command that serves, its environment and its working directory."""
        raise NotImplementedError

    def finish_install(self, home: Path, venv: Path, log: Path) -> None:
        """What an install does after pip (nothing unless a tool needs it)."""

    def install_complete(self, venv: Path) -> bool:
        """True when what :meth:`finish_install` makes is there."""
        return True

    def started(self, home: Path) -> None:
        """What is done once the server first answers (nothing unless a tool needs it)."""

    # ------------------------------------------------------------ the life, the same for every tool

    def venv_path(self, home: Path | None = None) -> Path:
        """The server's virtual environment, absolute: ``$<venv_env>`` if set, else ``<home>/venv``.

        Absolute because server commands run with another working directory: a relative
        ``.doccano/venv`` would not be found there.
        """
        env = os.environ.get(self.venv_env)
        return (Path(env) if env else Path(home or self.default_home) / "venv").resolve()

    def read_json(self, path: Path) -> dict[str, Any] | None:
        """A state file, None if there is none; a corrupt one is an error that says how to start over."""
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as exc:
            raise self.error(f"{path} is corrupt ({exc}); delete it and run `nerloop {self.command} up` again"
                             ) from None

    def is_installed(self, venv: Path) -> bool:
        """True when ``venv`` holds the pinned tool installed by :meth:`install` with today's pins."""
        return (self.installed_version(venv) == self.version and self.install_complete(venv)
                and pins_recorded(venv, server_pins(list(self.requirements), self.constraints)))

    def install(self, home: Path | None = None, *, venv: Path | None = None, quiet: bool = True) -> Path:
        """Create the server venv with the project's Python and install the pinned tool (once; minutes).

        Returns the venv path. Does nothing when the pinned requirements are already installed.
        """
        venv = Path(venv).resolve() if venv else self.venv_path(home)
        if self.is_installed(venv):
            return venv
        home = Path(home or self.default_home).resolve()
        home.mkdir(parents=True, exist_ok=True)
        log = home / "install.log"
        failed = pip_install(venv, list(self.requirements), log, constraints=self.constraints, quiet=quiet)
        if failed:
            raise self.error(f"installing the {self.name} server into {venv} failed ({failed}); "
                             f"see {log}:\n{log_tail(log)}")
        if self.installed_version(venv) != self.version:
            raise self.error(f"{self.package} {self.version} is not in {venv} after install; see {log}")
        self.finish_install(home, venv, log)
        record_pins(venv, server_pins(list(self.requirements), self.constraints))
        return venv

    def run_script(self, argv: list[str], *, env: dict[str, str], cwd: Path, log: Path, stdin: str, what: str
                   ) -> None:
        """Run a command of the server venv (secrets on stdin, never on the command line), output to ``log``."""
        with open_log(log) as fh:
            proc = subprocess.run(argv, input=stdin, text=True, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                  cwd=str(cwd), check=False, umask=PRIVATE_UMASK)
        if proc.returncode != 0:
            raise self.error(f"{self.name} {what} failed (exit {proc.returncode}); see {log}:\n{log_tail(log)}")

    def up(self, home: Path | None = None, port: int | None = None, *, host: str = LOOPBACK,
           venv: Path | None = None, wait_s: float | None = None, install_if_missing: bool = True,
           **options: Any) -> dict[str, Any]:
        """Start the server on ``host``:``port`` (loopback unless asked) and wait until it answers; return the state.

        Installs the server venv if missing and makes the admin account (password generated once, kept
        in ``credentials.json``). A server already running from this ``home`` is left alone and its state
        returned. ``home`` may be relative: it is made absolute first, since the server runs elsewhere.
        """
        home = Path(home or self.default_home).resolve()
        port = self.default_port if port is None else port
        wait_s = self.wait_s if wait_s is None else wait_s
        home.mkdir(parents=True, exist_ok=True)
        current = self.status(home)
        if current["running"]:
            return current
        venv = Path(venv).resolve() if venv else self.venv_path(home)
        if not self.is_installed(venv):
            if not install_if_missing:
                raise self.error(f"no {self.name} {self.version} in {venv}; run `nerloop {self.command} up` to "
                                 "install it")
            self.install(home, venv=venv)
        if port_in_use(port):
            raise self.error(f"port {port} is already in use; choose another port (--port)")

        url = f"http://127.0.0.1:{port}"
        write_private(home / "credentials.json", self.admin(home, venv, url))
        make_private(home)

        log = home / self.server_log
        cmd, env, cwd = self.serve(home, venv, host, port, url, **options)
        with open_log(log) as fh:
            proc = subprocess.Popen(
                cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=str(cwd),
                start_new_session=True, umask=PRIVATE_UMASK,  # own process group: down() stops the workers too
            )
        state = {"pid": proc.pid, "port": port, "host": host, "url": url, "started_at": time.time(), "log": str(log)}
        write_private(home / "server.json", state)

        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                (home / "server.json").unlink(missing_ok=True)
                raise self.error(f"{self.name} exited at start (code {proc.returncode}); see {log}:\n{log_tail(log)}")
            if self.probe(url, timeout_s=1.0):
                self.started(home)
                return {**state, "running": True}
            time.sleep(0.25)
        stop_pid(proc.pid)
        (home / "server.json").unlink(missing_ok=True)
        raise self.error(f"{self.name} did not answer at {url} within {wait_s:.0f} s; see {log}:\n{log_tail(log)}")

    def down(self, home: Path | None = None, *, grace_s: float = STOP_GRACE_S) -> bool:
        """Stop the server started from ``home`` by its process id (and its process group); remove the state
        file. Returns True if a server was running. The database and credentials are kept."""
        home = Path(home or self.default_home).resolve()
        state = self.read_json(home / "server.json")
        if state is None:
            return False
        was_running = stop_pid(int(state["pid"]), grace_s)
        (home / "server.json").unlink(missing_ok=True)
        return was_running

    def status(self, home: Path | None = None) -> dict[str, Any]:
        """State of the server started from ``home``: running, pid, port, url, responding, installed version.

        ``running`` means the recorded process is alive; ``responding`` that the tool answers.
        """
        home = Path(home or self.default_home).resolve()
        state = self.read_json(home / "server.json") or {}
        pid = state.get("pid")
        alive = bool(pid) and pid_alive(int(pid))
        out: dict[str, Any] = {
            "running": alive,
            "pid": pid if alive else None,
            "port": state.get("port"),
            "host": state.get("host"),
            "url": state.get("url"),
            "responding": bool(alive and state.get("url") and self.probe(state["url"])),
            "installed": self.installed_version(self.venv_path(home)),
            "home": str(home),
        }
        if state and not alive:
            out["stale_state"] = True  # recorded server is gone (crash, reboot): `up` starts a new one
            (home / "server.json").unlink(missing_ok=True)
        return out
