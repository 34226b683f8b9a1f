"""The ``nerloop`` command: run cycles, report status, manage the Doccano or Label Studio server.

A cycle (``nerloop.loop.cycle``) fetches finished annotations, runs ``dvc repro``, sends the next
batch and commits everything in one git commit, then ``dvc push``es. ``dvc repro`` alone never
reaches annotators. If anything fails or is interrupted, the next ``nerloop cycle`` finishes and
commits that cycle first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys

from nerloop import paths
from nerloop.annotation import TOOLS, tool_cli
from nerloop.errors import NerloopError, scrub
from nerloop.loop import cycle, repo
from nerloop.loop.lock import project_lock


def print_learning_curve() -> None:
    """The learning curve as a table, and where its plot is."""
    history = json.loads((paths.METRICS / "history.json").read_text(encoding="utf-8"))
    print("\ncycle  labelled sentences  labelled tokens  gold F1")
    for h in history:
        print(f"{h['cycle']:>5}  {h['labelled_sentences']:>18}  {h['labelled_tokens']:>15}  {h['f1']:>7.3f}")
    print(f"plot: {paths.METRICS / 'learning_curve.png'} (or `dvc plots show`)")


def locking(args: argparse.Namespace) -> str | None:
    """The command line this command holds the project lock under, or None for a read-only one."""
    if args.command == "status" or (args.command == "held-back" and args.rest[:1] != ["release"]):
        return None
    sub = getattr(args, "tool_command", None)
    if sub == "status":
        return None
    return " ".join(part for part in (args.command, sub) if part)


def held(args: argparse.Namespace) -> contextlib.AbstractContextManager[None]:
    """The project lock for commands that change the project or talk to its server (``nerloop.loop.lock``)."""
    command = locking(args)
    if command is None or not repo.is_project():
        return contextlib.nullcontext()
    return project_lock(command)


def dispatch(args: argparse.Namespace) -> None:
    """Carry out the parsed command (under the project lock when ``held`` gives one)."""
    if args.command == "cycle":
        cycle.run_cycle(send_batch=not args.no_send)
    elif args.command == "simulate":
        from nerloop.params import load_params

        if load_params().annotation.backend != "simulated":
            raise NerloopError("simulate needs annotation.backend: simulated in params.yaml")
        if cycle.journal():
            cycle.run_cycle()  # finishes the interrupted cycle first, and says so; not one of the N
        for i in range(args.cycles):
            print(f"=== simulated cycle {i + 1} of {args.cycles} ===", flush=True)
            cycle.run_cycle()
        print_learning_curve()
    elif args.command == "status":
        from nerloop.loop.status import render, status

        s = status()
        print(json.dumps(s, indent=2) if args.json else render(s))
    elif args.command == "finalize":
        cycle.finalize()
    elif args.command == "held-back":
        from nerloop.loop import held_back

        held_back.main(args.rest)
    elif args.command in TOOLS:
        tool_cli(args.command).run(args)


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM handler: the same clean stop as Ctrl-C (children interrupted, one line, resumable)."""
    raise KeyboardInterrupt


def positive(text: str) -> int:
    """argparse type: a whole number of at least 1 (``--cycles 0`` is a usage error, not a traceback)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give 1 or more cycles")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nerloop", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cyc = sub.add_parser("cycle", help="fetch annotations, dvc repro, send the next batch, git commit, dvc push")
    cyc.add_argument("--no-send", action="store_true", help="import and retrain, send no new batch (the last cycle)")
    sim = sub.add_parser("simulate", help="run N cycles unattended with the simulated annotator")
    sim.add_argument("--cycles", type=positive, default=3, help="how many new cycles (default 3)")
    st = sub.add_parser("status", help="where the loop stands and what to run next")
    st.add_argument("--json", action="store_true", help="machine-readable")
    sub.add_parser("finalize", help="reproduce the final dataset and its card and commit them")
    hb = sub.add_parser("held-back", help="list held-back sentences, or release them to the pool", add_help=False)
    hb.add_argument("rest", nargs=argparse.REMAINDER)
    for verb in TOOLS:
        tool = tool_cli(verb)
        tool.add_arguments(sub.add_parser(verb, help=f"the {tool.server.name} server, the annotation team, "
                                                       "disagreements"))
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)  # `kill PID` stops a cycle as cleanly as Ctrl-C does

    try:
        with held(args):
            dispatch(args)
    except KeyboardInterrupt:
        print("\ninterrupted: nothing is lost; run the same command again to resume", file=sys.stderr)
        sys.exit(130)
    except cycle.repo.CycleInterruptedError as exc:
        print(f"{exc}: nothing is lost; run `nerloop {args.command}` again to finish and commit it", file=sys.stderr)
        sys.exit(130)
    except NerloopError as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
