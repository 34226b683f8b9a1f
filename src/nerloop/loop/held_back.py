"""Exported sentences that did not come back: held back (something to fix) or in review (the lead decides).

A sentence is *held back* when it was exported but its annotation cannot be taken into the ledger (no
answer, an answer that does not map onto its tokens, a text edited in the tool, a span whose label type was
deleted, annotators who disagree under ``disagreement_policy: hold``...). A double-annotated sentence whose
annotators disagreed and which went to the lead's review project is *in review*: nothing is wrong with it, it
waits on the lead as other sentences wait on their annotator, and it is never counted as held back. Both are
excluded from selection while they wait, so losing track of them would bias the dataset in silence.
``data/annotations/held_back.jsonl`` lists both, one line per sentence with its state, text, source, export
cycle, reason and the annotators' finished work on it; the gate rewrites it right after each fetch, stage
``import`` from the inbox. From there a user can:

- **fix** a held-back sentence where its reason says: the next ``nerloop cycle`` fetches again, and a fixed
  one goes into the ledger and off this list;
- **release** it: ``nerloop held-back release ID... | --all`` takes it off the export manifest and the inbox,
  so it is no longer waiting and returns to the pool for selection. Finished work of an annotator on it would
  then not be imported: release lists that work and asks first (``--yes`` for scripts).

``gate`` is what ``nerloop cycle`` runs right after its fetch, before any training: when more than
``annotation.max_held_back_share`` of one cycle's exported sentences are held back (in review or already
imported: not counted), the loop is losing data, and the cycle stops with the sentences and the way out,
having changed nothing but the inbox and this list; the next ``nerloop cycle`` fetches again.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nerloop import paths
from nerloop.annotation.core.base import FetchResult
from nerloop.data.files import _lines, atomic_write, read_json, read_records, write_json
from nerloop.errors import DataError, NerloopError
from nerloop.loop import inbox

log = logging.getLogger(__name__)

HELD_BACK = paths.ANNOTATIONS / "held_back.jsonl"
HELD, IN_REVIEW = "held back", "in review"
_SENTENCE = re.compile(r"\bsentence ([0-9a-f]{16})\b")
_SHOWN = 3  # examples shown in a one-line summary
_LISTED = 10  # sentences listed in the gate's error


class HeldBackError(NerloopError):
    """Too many exported sentences are held back: the cycle must not train, send or commit."""


@dataclass
class HeldBack:
    """One sentence not in the ledger for a reason (``id`` None: a backend problem not tied to one of ours).

    ``state`` is ``held back`` (something to fix) or ``in review`` (a disagreement waiting on the lead);
    ``work`` describes each annotator's finished version that is not imported (what releasing would drop).
    """

    id: str | None
    reason: str
    cycle: int | None = None  # the cycle that exported it
    text: str | None = None
    source: str | None = None  # where it came from in the pool file (file:line)
    state: str = HELD
    work: list[str] = field(default_factory=list)


def _by_sentence(messages: list[str]) -> dict[str | None, list[str]]:
    """Messages grouped by the sentence they name (``sentence <id>``); None: tied to no sentence."""
    by_id: dict[str | None, list[str]] = {}
    for msg in messages:
        m = _SENTENCE.search(msg)
        by_id.setdefault(m.group(1) if m else None, []).append(msg)
    return by_id


def collect(result: FetchResult, exported: dict[str, int], pool_path: Path = paths.POOL) -> list[HeldBack]:
    """Held-back and in-review entries from a fetch result, one per sentence (its messages joined).

    Backends name the sentence as ``sentence <id>`` in each message; its text and source are looked
    up in the prepared pool, its cycle in ``exported`` (sentence id -> cycle). A sentence with a
    problem is held back even when it is also in review: the problem needs fixing first.
    """
    held = _by_sentence(result.problems)
    review = {sid: msgs for sid, msgs in _by_sentence(result.in_review).items() if sid not in held}
    ids = (held.keys() | review.keys()) - {None}
    pool = {r.id: r for r in read_records(pool_path)} if ids and pool_path.exists() else {}
    out = [HeldBack(None, m) for m in held.pop(None, [])]
    for state, groups in ((HELD, held), (IN_REVIEW, review)):
        for sid, msgs in groups.items():
            if sid is None:
                continue
            rec = pool.get(sid)
            out.append(HeldBack(sid, " | ".join(msgs), exported.get(sid), rec.text if rec else None,
                                rec.source if rec else None, state, list(result.work.get(sid, []))))
    return out


def write(held: list[HeldBack], path: Path = HELD_BACK) -> None:
    """Replace the list (atomically): it is the state after the latest fetch, not a log."""
    with atomic_write(path) as fh:
        for h in held:
            fh.write(json.dumps(asdict(h), ensure_ascii=False) + "\n")


def load(path: Path = HELD_BACK) -> list[HeldBack]:
    """The list written after the latest fetch or import (empty if none was written)."""
    if not path.exists():
        return []
    out = []
    for n, line in _lines(path):
        if line.strip():
            try:
                out.append(HeldBack(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise DataError(path, n, f"not a held-back entry: {exc}") from None
    return out


def split(entries: list[HeldBack]) -> tuple[list[HeldBack], list[HeldBack]]:
    """(held back, in review): they are counted and shown apart everywhere."""
    return [h for h in entries if h.state != IN_REVIEW], [h for h in entries if h.state == IN_REVIEW]


def _short(text: str | None, width: int = 60) -> str:
    """A text cut for a one-line summary (the file has it whole)."""
    if text is None:
        return "(text unknown)"
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def summary(entries: list[HeldBack], path: Path = HELD_BACK) -> str:
    """One line for logs, ``status`` and the cycle's output: the counts, per cycle, a few examples."""
    held, review = split(entries)
    waiting = (f"; {len(review)} in review (a disagreement waiting on the lead in the review project; not held "
               "back)" if review else "")
    if not held:
        return "no sentence is held back" + waiting
    per_cycle = Counter(h.cycle for h in held if h.id)
    cycles = ", ".join(f"cycle {c}: {k}" for c, k in sorted(per_cycle.items(), key=lambda kv: kv[0] or 0))
    shown = "; ".join(f"{h.id or '-'} {_short(h.text)}: {_short(h.reason, 200)}" for h in held[:_SHOWN])
    return (f"{len(held)} held back ({cycles or 'backend problems'}){waiting}, listed with text and reason in "
            f"{path} (fix the cause and run `nerloop cycle`, or release them to the pool: nerloop held-back release "
            f"ID...); e.g. {shown}")


def record(result: FetchResult, exported: dict[str, int], path: Path = HELD_BACK) -> list[HeldBack]:
    """List the held-back and in-review sentences of a fetch result, write the file, log the summary.

    ``exported`` maps each sentence sent for annotation to its cycle. Called by the gate after each
    fetch and by stage ``import`` (from the same inbox, so both write the same list).
    """
    entries = collect(result, exported)
    write(entries, path)
    if entries:
        log.warning("%s", summary(entries, path))
    return entries


def over_share(entries: list[HeldBack], manifest: dict[str, dict[str, Any]], imported: set[str],
               max_share: float) -> dict[int, tuple[int, int]]:
    """Per export cycle over ``max_share``: (held back, exported).

    Counted: held-back sentences of that cycle's export that are not in the ledger. Not counted: those
    in review (waiting on the lead, nothing wrong) and those already imported (a message about a later
    change does not take them out of the dataset).
    """
    exported = Counter(e["cycle"] for e in manifest.values())
    held = Counter(manifest[h.id]["cycle"] for h in split(entries)[0] if h.id in manifest and h.id not in imported)
    return {c: (k, exported[c]) for c, k in sorted(held.items()) if k / exported[c] > max_share}


def way_out(ids: list[str]) -> str:
    """The exact ways out of a stopped loop, for the gate's error and ``nerloop status``."""
    listed = " ".join(ids)
    return (f"Fix each where its reason says, then run `nerloop cycle` (it fetches again before any training and "
            f"imports what was fixed); or return some to the pool with `nerloop held-back release {listed}` (it "
            "lists any annotator's work that would not be imported and asks first); or raise "
            "annotation.max_held_back_share in params.yaml")


def blocked(entries: list[HeldBack], manifest: dict[str, dict[str, Any]], imported: set[str],
            max_share: float) -> dict[str, Any] | None:
    """What stops the loop ({"cycles", "sentences", "way_out"}), or None when nothing does."""
    over = over_share(entries, manifest, imported, max_share)
    if not over:
        return None
    ids = [h.id for h in split(entries)[0]
           if h.id in manifest and h.id not in imported and manifest[h.id]["cycle"] in over]
    return {"cycles": {str(c): list(v) for c, v in over.items()}, "sentences": ids, "way_out": way_out(ids)}


def _gate_message(stop: dict[str, Any], entries: list[HeldBack], max_share: float, path: Path) -> str:
    """The gate's error: the shares, every sentence with its reason, what is not counted, the way out."""
    shares = ", ".join(f"cycle {c}: {k} of {n} exported sentences ({k / n:.0%})"
                       for c, (k, n) in stop["cycles"].items())
    by_id = {h.id: h for h in entries}
    lines = [f"too many exported sentences are held back ({shares}; annotation.max_held_back_share is "
             f"{max_share:.0%}): this cycle stopped before training, sending or committing anything. Held back:"]
    lines += [f"  - {_short(by_id[sid].text)}: {by_id[sid].reason}" for sid in stop["sentences"][:_LISTED]]
    if len(stop["sentences"]) > _LISTED:
        lines.append(f"  ... and {len(stop['sentences']) - _LISTED} more (all in {path}: `nerloop held-back list`)")
    review = split(entries)[1]
    if review:
        lines.append(f"Not counted: {len(review)} in review (disagreements waiting on the lead in the review project).")
    lines.append(f"Way out: {stop['way_out']}.")
    return "\n".join(lines)


def gate(max_share: float, manifest_path: Path = paths.EXPORT_MANIFEST, inbox_path: Path = paths.INBOX,
         path: Path = HELD_BACK, ledger_path: Path = paths.LEDGER) -> list[HeldBack]:
    """What ``nerloop cycle`` runs right after its fetch, before any training: list, then stop if too many.

    Rewrites the list from the inbox the fetch just wrote (so ``held-back list`` / ``release`` and
    ``status`` see what the fetch saw, even when the cycle stops here) and raises HeldBackError, naming
    each sentence and the way out, when some cycle has more than ``max_share`` of its exported sentences
    held back. Returns the entries.
    """
    from nerloop.data.ledger import Ledger

    manifest = read_json(manifest_path, {"examples": {}})["examples"]
    if not manifest:
        return []
    result, _ = inbox.read(inbox_path)
    entries = collect(result, {sid: e["cycle"] for sid, e in manifest.items()})
    write(entries, path)  # the fetch printed them already
    stop = blocked(entries, manifest, Ledger(ledger_path).ids, max_share)
    if stop:
        raise HeldBackError(_gate_message(stop, entries, max_share, path))
    return entries


def at_stake(entries: list[HeldBack]) -> list[str]:
    """Lines naming each annotator's finished work on these sentences: what releasing them would drop."""
    lines = []
    for h in entries:
        if h.work:
            lines.append(f"sentence {h.id} {_short(h.text)} ({h.state}):")
            lines += [f"    {w}" for w in h.work]
    return lines


def release(
    ids: list[str] | None,
    *,
    yes: bool = False,
    ask: Callable[[str], bool] | None = None,
    manifest_path: Path = paths.EXPORT_MANIFEST,
    inbox_path: Path = paths.INBOX,
    path: Path = HELD_BACK,
) -> list[str]:
    """Take sentences (``ids``, or every held-back one when None) off the export manifest, the inbox and the list.

    They stop waiting and go back to the pool: the changed inbox makes the next cycle's import drop
    them from what was exported, so score and select see them again (and may send them again). In-review
    sentences are released only when named. Where an annotator finished work on one, that work would not
    be imported: unless ``yes``, ``ask`` is shown it and must agree; without ``ask`` (no terminal) nothing
    is released and the error names ``--yes``.
    """
    entries = load(path)
    listed = {h.id for h in entries if h.id}
    chosen = {h.id for h in split(entries)[0] if h.id} if ids is None else set(ids)
    unknown = sorted(chosen - listed)
    if unknown:
        raise NerloopError(f"not held back or in review (see {path}): {', '.join(unknown)}")
    lost = at_stake([h for h in entries if h.id in chosen])
    if lost and not yes:
        what = ("releasing returns these sentences to the pool, and this finished work of the annotators would not "
                "be imported (it stays in the annotation tool, but nerloop stops waiting for it):\n" + "\n".join(lost))
        if ask is None:
            raise NerloopError(f"{what}\nnothing was released: run again with --yes to release them anyway (no "
                               "terminal to ask in)")
        if not ask(f"{what}\nRelease them and drop this work? [y/N] "):
            raise NerloopError("nothing was released")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for sid in chosen:
        manifest["examples"].pop(sid, None)
    write_json(manifest_path, manifest)
    if inbox_path.exists():
        result, exported = inbox.read(inbox_path)
        result.problems = _not_about(result.problems, chosen)
        result.in_review = _not_about(result.in_review, chosen)
        result.pending = [sid for sid in result.pending if sid not in chosen]
        result.work = {sid: w for sid, w in result.work.items() if sid not in chosen}
        inbox.write(result, {sid: c for sid, c in exported.items() if sid not in chosen}, inbox_path)
    write([h for h in entries if h.id not in chosen], path)
    return sorted(chosen)


def _not_about(messages: list[str], ids: set[str]) -> list[str]:
    """The messages that name none of ``ids``."""
    return [p for p in messages if (m := _SENTENCE.search(p)) is None or m.group(1) not in ids]


def _ask_terminal(question: str) -> bool:
    """y/N on the terminal (anything but y or yes is no)."""
    print(question, end="", flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _print_list(entries: list[HeldBack]) -> None:
    for h in entries:
        state = "in review (waiting on the lead)" if h.state == IN_REVIEW else h.state
        print(f"{h.id or '-'}\t{state}\tcycle {h.cycle}\t{h.source or ''}\t{h.text!r}\n\t{h.reason}")
        for w in h.work:
            print(f"\t  finished work, not imported: {w}")
    print(summary(entries))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nerloop held-back", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every held-back or in-review sentence with its state, text, reason and work")
    rel = sub.add_parser("release", help="return held-back sentences to the pool")
    rel.add_argument("ids", nargs="*", help="sentence ids (see list); in-review ones only when named")
    rel.add_argument("--all", action="store_true", help="release every held-back sentence (not those in review)")
    rel.add_argument("--yes", action="store_true", help="do not ask before dropping annotators' finished work")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            _print_list(load())
        else:
            if not args.ids and not args.all:
                raise NerloopError("name the sentence ids to release, or --all")
            ask = _ask_terminal if sys.stdin.isatty() else None
            done = release(None if args.all else args.ids, yes=args.yes, ask=ask)
            print(f"released {len(done)} sentence(s) to the pool: they are no longer waiting for annotation")
    except NerloopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
