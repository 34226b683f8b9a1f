"""Exported sentences the annotation backend cannot deliver: listed, counted, released or fixed.

A sentence is *held back* when it was exported but its annotation cannot be taken into the
ledger (no answer, an answer that does not map onto its tokens, a text edited in Doccano,
annotators who disagree...). Such a sentence is excluded from selection while it waits,
so losing track of it would bias the dataset in silence. Each import therefore rewrites
``data/annotations/held_back.jsonl``: one line per held-back sentence with its text,
source, export cycle and the backend's reason. From there a user can:

- **fix** it where the reason says (the answers file, Doccano): the next import retries
  every held-back sentence, and a fixed one goes into the ledger and off this list;
- **release** it: ``nerloop held-back release ID... | --all`` takes it off the
  export manifest and the inbox, so it is no longer waiting and returns to the pool for
  selection at the next cycle.

``check_share`` is the guard a cycle calls before committing: when more than
``annotation.max_held_back_share`` of one cycle's exported sentences are held back, the
loop is losing data and stops with the list, instead of committing as if all was well.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nerloop import inbox, paths
from nerloop.errors import DataError, NerloopError
from nerloop.formats import _lines, atomic_write, read_records, write_json

log = logging.getLogger(__name__)

HELD_BACK = paths.ANNOTATIONS / "held_back.jsonl"
_SENTENCE = re.compile(r"\bsentence ([0-9a-f]{16})\b")
_SHOWN = 3  # examples shown in a one-line summary


class HeldBackError(NerloopError):
    """Too many exported sentences are held back: the cycle must not be committed."""


@dataclass
class HeldBack:
    """One held-back sentence (``id`` None: a backend problem not tied to one of our sentences)."""

    id: str | None
    reason: str
    cycle: int | None = None  # the cycle that exported it
    text: str | None = None
    source: str | None = None  # where it came from in the pool file (file:line)


def from_problems(problems: list[str], exported: dict[str, int], pool_path: Path = paths.POOL) -> list[HeldBack]:
    """Held-back entries from a backend's problem messages, one per sentence (its messages joined).

    Backends name the sentence as ``sentence <id>`` in each message; its text and source
    are looked up in the prepared pool, its cycle in ``exported`` (sentence id -> cycle).
    """
    by_id: dict[str | None, list[str]] = {}
    for p in problems:
        m = _SENTENCE.search(p)
        by_id.setdefault(m.group(1) if m else None, []).append(p)
    pool = {r.id: r for r in read_records(pool_path)} if by_id.keys() - {None} and pool_path.exists() else {}
    out = []
    for sid, msgs in by_id.items():
        if sid is None:
            out += [HeldBack(None, m) for m in msgs]
            continue
        rec = pool.get(sid)
        out.append(HeldBack(sid, " | ".join(msgs), exported.get(sid), rec.text if rec else None,
                            rec.source if rec else None))
    return out


def write(held: list[HeldBack], path: Path = HELD_BACK) -> None:
    """Replace the list (atomically): it is the state after the latest import, not a log."""
    with atomic_write(path) as fh:
        for h in held:
            fh.write(json.dumps(asdict(h), ensure_ascii=False) + "\n")


def load(path: Path = HELD_BACK) -> list[HeldBack]:
    """The held-back list written by the latest import (empty if none was written)."""
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


def _short(text: str | None, width: int = 60) -> str:
    """A text cut for a one-line summary (the file has it whole)."""
    if text is None:
        return "(text unknown)"
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def summary(held: list[HeldBack], path: Path = HELD_BACK) -> str:
    """One line for logs, ``status`` and the cycle's output: the count, per cycle, a few examples."""
    if not held:
        return "no sentence is held back"
    per_cycle = Counter(h.cycle for h in held if h.id)
    cycles = ", ".join(f"cycle {c}: {k}" for c, k in sorted(per_cycle.items(), key=lambda kv: kv[0] or 0))
    shown = "; ".join(f"{h.id or '-'} {_short(h.text)}: {_short(h.reason, 200)}" for h in held[:_SHOWN])
    return (f"{len(held)} held back ({cycles or 'backend problems'}), listed with text and reason in {path} "
            f"(fix the cause, or release them to the pool: nerloop held-back release --all); "
            f"e.g. {shown}")


def record(problems: list[str], exported: dict[str, int], path: Path = HELD_BACK) -> list[HeldBack]:
    """What stage ``import`` calls: list the held-back sentences, write the file, log the summary.

    ``exported`` maps each sentence sent for annotation to its cycle (the inbox's ``exported``).
    """
    held = from_problems(problems, exported)
    write(held, path)
    if held:
        log.warning("%s", summary(held, path))
    return held


def shares(held: list[HeldBack], manifest: dict[str, dict[str, Any]]) -> dict[int, float]:
    """Per export cycle: the share of that cycle's exported sentences now held back."""
    exported = Counter(e["cycle"] for e in manifest.values())
    counts = Counter(h.cycle for h in held if h.id in manifest and h.cycle is not None)
    return {c: counts[c] / exported[c] for c in sorted(counts)}


def check_share(max_share: float, manifest_path: Path = paths.EXPORT_MANIFEST, path: Path = HELD_BACK) -> None:
    """Raise HeldBackError when, in some cycle, more than ``max_share`` of the exported sentences are held back.

    For ``nerloop cycle`` to call after the repro and before committing.
    """
    if not manifest_path.exists():
        return
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))["examples"]
    held = load(path)
    over = {c: s for c, s in shares(held, manifest).items() if s > max_share}
    if over:
        worst = ", ".join(f"cycle {c}: {s:.0%}" for c, s in over.items())
        raise HeldBackError(
            f"too many exported sentences are held back ({worst}; annotation.max_held_back_share is "
            f"{max_share:.0%}), so this cycle is not committed. {summary(held, path)}"
        )


def release(
    ids: list[str] | None,
    manifest_path: Path = paths.EXPORT_MANIFEST,
    inbox_path: Path = paths.INBOX,
    path: Path = HELD_BACK,
) -> list[str]:
    """Take held-back sentences (``ids``, or all when None) off the export manifest, the inbox and the list.

    They stop waiting and go back to the pool: the changed inbox makes the next cycle's import
    drop them from what was exported, so score and select see them again (and may send them again).
    """
    held = load(path)
    held_ids = {h.id for h in held if h.id}
    chosen = held_ids if ids is None else set(ids)
    unknown = sorted(chosen - held_ids)
    if unknown:
        raise NerloopError(f"not held back (see {path}): {', '.join(unknown)}")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    for sid in chosen:
        manifest["examples"].pop(sid, None)
    write_json(manifest_path, manifest)
    if inbox_path.exists():
        result, exported = inbox.read(inbox_path)
        result.pending = [sid for sid in result.pending if sid not in chosen]
        result.problems = [p for p in result.problems if (m := _SENTENCE.search(p)) is None or m.group(1) not in chosen]
        inbox.write(result, {sid: c for sid, c in exported.items() if sid not in chosen}, inbox_path)
    write([h for h in held if h.id not in chosen], path)
    return sorted(chosen)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="nerloop held-back", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every held-back sentence with its text and reason")
    rel = sub.add_parser("release", help="return held-back sentences to the pool")
    rel.add_argument("ids", nargs="*", help="sentence ids (see list)")
    rel.add_argument("--all", action="store_true", help="release every held-back sentence")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            held = load()
            for h in held:
                print(f"{h.id or '-'}\tcycle {h.cycle}\t{h.source or ''}\t{h.text!r}\n\t{h.reason}")
            print(summary(held))
        else:
            if not args.ids and not args.all:
                raise NerloopError("name the sentence ids to release, or --all")
            done = release(None if args.all else args.ids)
            print(f"released {len(done)} sentence(s) to the pool: they are no longer waiting for annotation")
    except NerloopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
