"""One active-learning cycle: fetch, ``dvc repro``, send, commit, push.

The DVC graph is pure (see dvc.yaml); the two effects on the outside world live here:

1. **fetch**: finished annotations the ledger does not have yet -> ``data/annotations/inbox.json``.
   Written only when something new came back or what still waits changed, so a cycle with nothing new
   changes nothing. Then the **gate** (``held_back.gate``), before any training: too many held-back
   sentences stop the cycle here, naming them and the way out (disagreements in review never count).
2. **repro**: ``dvc repro`` of the whole graph: import, train, evaluate, score, select, export,
   and the final dataset and card (cheap, and so always current).
3. **send**: the outbox (``export``'s output) to the backend, recorded in the export manifest.
   Idempotent; and a batch is sent once per cycle: if a changed param re-selects a batch for a
   cycle whose batch annotators already have, the new one is not sent (it applies next cycle).
4. **commit** of everything the cycle produced (dvc.lock pins data, model and metrics) and
   ``dvc push``.

A journal (``.nerloop/cycle.json``, git-ignored) records the step reached. If a cycle is
interrupted (Ctrl-C, a kill, a failure), the next ``nerloop cycle`` first finishes and commits it,
then runs the next: every cycle that ran gets its own commit, none is skipped. A cycle stopped by the
gate trained nothing: the next ``nerloop cycle`` fetches again (a fresh cycle left no journal; a resumed
one keeps its step ``repro``).
"""

from __future__ import annotations

import time
from typing import Any

from nerloop import paths
from nerloop.data.files import read_json, read_records, write_json
from nerloop.data.ledger import Ledger
from nerloop.loop import held_back, inbox, preflight, repo
from nerloop.params import Params, load_params

# What a cycle commits to git (DVC-cached outputs are pinned by dvc.lock and ignored by git).
COMMITTED = ["dvc.lock", "dvc.yaml", "params.yaml", "metrics", "data", "models", ".gitignore"]


def counted(n: int, noun: str) -> str:
    """'1 sentence', '3 sentences': the cycle's messages are read by people."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def committed_paths(params: Params) -> list[str]:
    """COMMITTED plus the simulated backend's state (its "server"), which is git-tracked."""
    p = params.annotation
    return COMMITTED + ([p.simulated.state_dir] if p.backend == "simulated" and p.simulated else [])


# ---------------------------------------------------------------- journal


def journal() -> dict[str, Any] | None:
    """The unfinished cycle's record ({"step", "started", ...}), or None when the last one finished."""
    return read_json(paths.JOURNAL)


def _mark(step: str, **extra: Any) -> None:
    state = (journal() or {"started": time.time()}) | {"step": step, "updated": time.time()} | extra
    write_json(paths.JOURNAL, state)


# ---------------------------------------------------------------- the two effects


def load_manifest() -> dict[str, Any]:
    """What was sent: {"backend", "project", "examples": {sentence id: {"example", "cycle"}}}."""
    return read_json(paths.EXPORT_MANIFEST, {"backend": None, "examples": {}})


def fetch(params: Params) -> int:
    """Ask the backend for finished annotations; write the inbox if any are new. Returns how many."""
    from nerloop.annotation import get_backend
    from nerloop.data.labelled import entity_types

    manifest = load_manifest()["examples"]
    if not manifest:
        return 0  # nothing sent yet: no need to reach the backend
    ledger = Ledger(paths.LEDGER)
    result = get_backend(params, entity_types()).fetch(ledger, {s: e["example"] for s, e in manifest.items()})
    for what, messages in (("held back", result.problems), ("in review", result.in_review)):
        for message in messages[:5]:
            print(f"{what}: {message}")
        if len(messages) > 5:
            print(f"{what}: ... and {len(messages) - 5} more (`nerloop held-back list`)")
    waiting = sum(sid not in ledger.ids for sid in manifest) - len(result.done)
    if result.done or not inbox.same_waiting(result):
        inbox.write(result, {sid: e["cycle"] for sid, e in manifest.items()})
    if not result.done:
        print(f"nothing new from the annotators ({counted(waiting, 'sentence')} still waiting)")
        return 0
    print(f"fetched {counted(len(result.done), 'new annotation')} ({counted(waiting, 'sentence')} still waiting)")
    return len(result.done)


def send(params: Params) -> int:
    """Send the outbox to the backend (once per cycle; idempotent). Returns how many were new."""
    from nerloop.annotation import get_backend
    from nerloop.data.labelled import entity_types

    batch = read_records(paths.OUTBOX) if paths.OUTBOX.exists() else []
    if not batch:
        return 0
    cycle = int(batch[0].meta["cycle"])
    manifest = load_manifest()
    sent_this_cycle = {sid for sid, e in manifest["examples"].items() if e["cycle"] == cycle}
    outbox_ids = {r.id for r in batch}
    if sent_this_cycle and not sent_this_cycle <= outbox_ids:
        print(f"note: cycle {cycle}'s batch was already sent ({len(sent_this_cycle)} sentences); the batch selected "
              "now differs (changed params?) and is not sent: the change applies from the next cycle")
        return 0
    todo = [r for r in batch if r.id not in manifest["examples"]]
    if not todo:
        return 0
    backend = get_backend(params, entity_types())
    sent = backend.export(todo, cycle)
    manifest["backend"] = backend.name
    manifest["project"] = backend.project_id()
    for sid, example_id in sent.items():
        manifest["examples"].setdefault(sid, {"example": str(example_id), "cycle": cycle})
    write_json(paths.EXPORT_MANIFEST, manifest)
    print(f"sent {len(sent)} sentences for cycle {cycle} to {backend.name}")
    return len(sent)


# ---------------------------------------------------------------- a cycle


def summary() -> dict[str, Any]:
    ann = read_json(paths.METRICS / "annotation.json", {})
    ev = read_json(paths.METRICS / "eval.json", {})
    return {"cycle": ann.get("cycle", 0), "labelled": ev.get("labelled_sentences"), "f1": ev.get("f1"),
            "waiting": ann.get("waiting", 0), "held_back": len(held_back.split(held_back.load())[0])}


def _finish(params: Params, send_batch: bool, resumed_step: str | None = None) -> dict[str, Any]:
    """repro, send, commit, push: the part of a cycle that is safe to run again after an interruption."""
    _mark("repro")
    repro()
    _mark("send")
    if send_batch:
        send(params)
    s = summary()
    f1 = f"{s['f1']:.3f}" if isinstance(s["f1"], float) else "n/a"
    message = f"nerloop cycle {s['cycle']}: {s['labelled']} labelled sentences, gold F1 {f1}"
    _mark("commit", message=message)
    if repo.commit(message, committed_paths(params)):
        print(f"committed: {message}")
        _mark("push")
        repo.push()
        s["committed"] = message
    elif resumed_step == "push":  # committed, then interrupted before the push finished
        repo.push()
    else:
        print("nothing changed since the last commit: no training, no commit")
    paths.JOURNAL.unlink(missing_ok=True)
    return s


def repro() -> None:
    repo.clear_stale_lock()
    repo.dvc("repro")


def fetch_and_gate(params: Params) -> None:
    """Fetch, then stop (HeldBackError) before any training when too many sentences are held back."""
    fetch(params)
    held_back.gate(params.annotation.max_held_back_share)


def run_cycle(send_batch: bool = True) -> dict[str, Any]:
    """Run one cycle, or finish an interrupted one (and only that, saying so); returns its summary.

    A cycle interrupted before its batch was sent (step ``repro``) fetches again (and passes the gate
    again) when resumed, so whatever annotators or the lead fixed meanwhile is seen; one interrupted
    later only finishes sending, committing and pushing what it already trained.
    """
    repo.require_project()
    params = load_params()
    preflight.check_inputs(params)  # a missing file or model fails now, not after an hour of training
    unfinished = journal()
    if unfinished:
        print(f"resuming the cycle interrupted at step {unfinished['step']!r}: it is finished and committed; "
              "the next `nerloop cycle` runs a new one", flush=True)
        if unfinished["step"] == "repro":
            fetch_and_gate(params)
        return _finish(params, send_batch, unfinished["step"])
    fetch_and_gate(params)
    return _finish(params, send_batch)


def finalize() -> dict[str, Any]:
    """The final dataset and card are rebuilt by every cycle; finalize reproduces and commits them.

    With ``final.train_final_model: true`` the ``final-evaluate`` stage also trains and scores a
    model on the final train split. Nothing is fetched or sent.
    """
    repo.require_project()
    params = load_params()
    if not params.final.train_final_model:
        print("note: final.train_final_model is false: set it to true in params.yaml for the final model's test F1 "
              "(one more training)")
    repro()
    if repo.commit("nerloop: final dataset and dataset card", committed_paths(params)):
        print("committed: nerloop: final dataset and dataset card")
        repo.push()
    else:
        print("the final dataset and card are up to date: nothing to commit")
    return summary()

