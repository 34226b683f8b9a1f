"""The ``nerloop`` command: run cycles, report status, manage the Doccano server.

A cycle is ``dvc repro evaluate export`` followed by one git commit of everything the cycle
produced (dvc.lock pins data, model and metrics together) and a ``dvc push`` to the
configured remote. If the repro fails, nothing is committed: the next ``nerloop
cycle`` resumes where DVC left off, and the ledger makes re-imports harmless.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from nerloop import paths
from nerloop.errors import NerloopError

# What a cycle commits to git (DVC-cached outputs are pinned by dvc.lock and ignored by git).
COMMITTED = ["dvc.lock", "dvc.yaml", "params.yaml", "metrics", "data", "models", ".gitignore"]
LOOP_TARGETS = ["evaluate", "export"]  # the loop; the final stages run only on `nerloop finalize`
FINAL_TARGET = "datacard"
DVC = [sys.executable, "-m", "dvc"]  # the venv's dvc, even when the venv is not activated


def _run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, streaming its output; raise NerloopError naming it on failure."""
    print("$ " + " ".join(cmd), flush=True)
    # Stage commands call `python`: make it this venv's, even when the venv is not activated.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(cmd, text=True, env=env)
    if check and proc.returncode != 0:
        raise NerloopError(f"`{' '.join(cmd)}` failed with exit code {proc.returncode}")
    return proc


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], text=True, capture_output=True, check=True).stdout.strip()


def _read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def _commit(message: str, extra: list[str] | None = None) -> bool:
    """Stage the cycle's files and commit them in one commit; False if nothing changed."""
    files = [p for p in COMMITTED + (extra or []) if Path(p).exists()]
    subprocess.run(["git", "add", "-A", "--", *files], check=True)
    if subprocess.run(["git", "diff", "--cached", "--quiet"]).returncode == 0:
        return False
    # A fresh clone may have no git identity: commit as "nerloop" rather than fail the cycle.
    identity = [] if _git_ok("config", "user.email") else ["-c", "user.name=nerloop",
                                                            "-c", "user.email=nerloop@localhost"]
    subprocess.run(["git", *identity, "commit", "-q", "-m", message], check=True)
    return True


def _git_ok(*args: str) -> bool:
    return subprocess.run(["git", *args], capture_output=True).returncode == 0


def _push() -> None:
    remotes = subprocess.run([*DVC, "remote", "list"], text=True, capture_output=True).stdout.strip()
    if not remotes:
        print("no DVC remote configured: data stays in the local cache (dvc remote add -d ...)")
        return
    if _run([*DVC, "push", "-q"], check=False).returncode != 0:
        print("warning: dvc push failed; the commit is made, run `dvc push` again later", file=sys.stderr)


def annotation_state_dirs() -> list[str]:
    """Git-tracked state of the simulated backend, committed with each cycle."""
    from nerloop.params import load_params

    p = load_params().annotation
    return [p.simulated.state_dir] if p.backend == "simulated" and p.simulated else []


def cycle() -> dict[str, Any]:
    """Run one active-learning cycle: repro, commit, push. Returns the cycle summary."""
    if not Path("dvc.yaml").exists():
        raise NerloopError("no dvc.yaml here: run nerloop from the project root")
    _run([*DVC, "repro", *LOOP_TARGETS])
    ann = _read_json(paths.METRICS / "annotation.json", {})
    ev = _read_json(paths.METRICS / "eval.json", {})
    summary = {
        "cycle": ann.get("cycle", 0),
        "labelled": ev.get("labelled_sentences"),
        "f1": ev.get("f1"),
        "waiting": ann.get("waiting", 0),
    }
    message = (f"nerloop cycle {summary['cycle']}: {summary['labelled']} labelled sentences, "
               f"gold F1 {summary['f1']:.3f}")
    if _commit(message, annotation_state_dirs()):
        print(f"committed: {message}")
        _push()
    else:
        print("nothing changed since the last commit")
    return summary


def status() -> dict[str, Any]:
    """Where the loop stands: cycle, labelled, pool left, last F1, what is waiting."""
    from nerloop.formats import read_records
    from nerloop.ledger import Ledger

    ledger = Ledger(paths.LEDGER)
    seed = len(read_records(paths.SEED)) if paths.SEED.exists() else 0
    pool = read_records(paths.POOL) if paths.POOL.exists() else []
    exported = _read_json(paths.EXPORT_MANIFEST, {"examples": {}})["examples"]
    pending = _read_json(paths.PENDING, {"problems": []})
    history = _read_json(paths.METRICS / "history.json", [])
    return {
        "cycle": ledger.cycle,
        "labelled_sentences": seed + len(ledger.entries),
        "seed_sentences": seed,
        "pool_left": sum(r.id not in ledger.ids and r.id not in exported for r in pool),
        "last_f1": history[-1]["f1"] if history else None,
        "waiting_for_annotation": sum(sid not in ledger.ids for sid in exported),
        "held_back": pending.get("problems", []),
        "uncommitted_changes": bool(_git("status", "--porcelain", "--", *COMMITTED)) if Path(".git").exists() else None,
    }


def print_learning_curve() -> None:
    """The learning curve as a table, and where its plot is."""
    history = _read_json(paths.METRICS / "history.json", [])
    print("\ncycle  labelled sentences  labelled tokens  gold F1")
    for h in history:
        print(f"{h['cycle']:>5}  {h['labelled_sentences']:>18}  {h['labelled_tokens']:>15}  {h['f1']:>7.3f}")
    print(f"plot: {paths.METRICS / 'learning_curve.png'} (or `dvc plots show`)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nerloop", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("cycle", help="run one cycle: dvc repro, git commit, dvc push")
    sim = sub.add_parser("simulate", help="run N cycles unattended with the simulated annotator")
    sim.add_argument("--cycles", type=int, default=3)
    sub.add_parser("status", help="cycle, labelled count, pool left, last F1, what is waiting")
    sub.add_parser("finalize", help="build the final dataset and its card (dvc repro datacard) and commit")
    from nerloop import doccano_cli

    doccano_cli.add_arguments(sub.add_parser("doccano", help="the Doccano server, the annotation team, disagreements"))
    args = parser.parse_args(argv)

    try:
        if args.command == "cycle":
            cycle()
        elif args.command == "simulate":
            from nerloop.params import load_params

            if load_params().annotation.backend != "simulated":
                raise NerloopError("simulate needs annotation.backend: simulated in params.yaml")
            for i in range(args.cycles):
                print(f"=== simulated run {i + 1} of {args.cycles} ===", flush=True)
                cycle()
            print_learning_curve()
        elif args.command == "status":
            for k, v in status().items():
                print(f"{k:>24}: {v}")
        elif args.command == "finalize":
            _run([*DVC, "repro", FINAL_TARGET])
            if _commit("nerloop: final dataset and dataset card"):
                _push()
        elif args.command == "doccano":
            doccano_cli.run(args)
    except NerloopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
