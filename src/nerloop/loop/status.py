"""``nerloop status``: where the loop stands and the one command to run next.

Read-only: it reads the project's files (and the raw inputs when the prepared data is not there,
as on a fresh clone) and never contacts the annotation backend.
"""

from __future__ import annotations

from typing import Any

from nerloop import paths
from nerloop.data.files import read_json, read_records
from nerloop.data.formats import read_any
from nerloop.data.labelled import labelled_type_counts
from nerloop.data.ledger import Ledger
from nerloop.loop import cycle, held_back, repo
from nerloop.loop.lock import describe, orphans
from nerloop.loop.lock import holder as project_lock_holder
from nerloop.params import load_params


def _inputs() -> tuple[list, list, set[str]]:
    """Seed records, pool records and gold ids: prepared if present, else read from the raw files."""
    if paths.SEED.exists() and paths.POOL.exists() and paths.GOLD.exists():
        return read_records(paths.SEED), read_records(paths.POOL), {r.id for r in read_records(paths.GOLD)}
    d = load_params().data
    seed = read_any(d.seed, d.format, d.scheme, d.labels, d.text_mode, d.tokenizer)
    gold = {r.id for r in read_any(d.gold, d.format, d.scheme, d.labels, d.text_mode, d.tokenizer)}
    seed_ids = {r.id for r in seed}
    pool = [r for r in read_any(d.pool, d.format, d.scheme, d.labels, d.text_mode, d.tokenizer)
            if r.id not in gold and r.id not in seed_ids]
    return seed, list({r.id: r for r in pool}.values()), gold


def status() -> dict[str, Any]:
    """The loop's state as a dict (``nerloop status --json``); ``next`` is the command to run."""
    repo.require_project()
    params = load_params()
    ledger = Ledger(paths.LEDGER)
    seed, pool, _gold = _inputs()
    exported = cycle.load_manifest()["examples"]
    labelled = ledger.ids
    history = read_json(paths.METRICS / "history.json", [])
    running = project_lock_holder()
    unfinished = cycle.journal()
    if running is not None:
        running["step"] = (unfinished or {}).get("step")
    lock = None if running else repo.lock_problem()
    waiting = sorted(sid for sid in exported if sid not in labelled)
    entries = held_back.load()
    held, review = held_back.split(entries)
    out: dict[str, Any] = {
        "backend": params.annotation.backend,
        "cycle": ledger.cycle,
        "labelled_sentences": len(seed) + len(ledger.entries),
        "seed_sentences": len(seed),
        "seed_sentences_in_gold": read_json(paths.METRICS / "prepare.json", {}).get("seed_sentences_in_gold", 0),
        "waiting_for_annotation": len(waiting),
        "pool_left": sum(r.id not in labelled and r.id not in exported for r in pool),
        "last_f1": history[-1]["f1"] if history else None,
        "f1_change": round(history[-1]["f1"] - history[-2]["f1"], 4) if len(history) > 1 else None,
        "held_back": [f"{h.id or '-'} {h.text!r}: {h.reason}" for h in held],
        "in_review": [f"{h.id} {h.text!r}: {h.reason}" for h in review],  # waiting on the lead, not held back
        # too many held back: the next cycle stops at its gate (after the fetch); what to fix, or release
        "blocked": held_back.blocked(entries, exported, labelled, params.annotation.max_held_back_share),
        "entities_per_type": labelled_type_counts(),  # a type at 0 cannot be learnt
        "manual_effort": ledger.manual_effort(),
        "running": running,  # a nerloop command holds the project now: its step is a live one, not a stop
        "interrupted": None if running else unfinished,
        "orphans": orphans() if unfinished and not running else [],  # left running by a killed nerloop
        "dvc_lock_problem": lock,
        "uncommitted": repo.uncommitted(cycle.committed_paths(params)),
        "forecast": read_json(paths.METRICS / "forecast.json", None),  # written by evaluate: stop or continue
    }
    partial = ledger.partial_counts()  # select.unit: window; the key only when there are some
    if partial:
        out["partly_labelled"] = partial
    out["next"] = next_step(out)
    return out


def next_step(s: dict[str, Any]) -> str:
    """The one command to run next, and why."""
    if s["running"]:
        return (f"wait: {describe(s['running'])} is running (`nerloop status` again to follow it); a second "
                "command now would be refused")
    if s["orphans"]:
        pids = " ".join(map(str, s["orphans"]))
        return (f"wait for pid {pids} (DVC and its stage, left running by a killed nerloop) to end, or `kill {pids}`;"
                " then: nerloop cycle   # finishes and commits the interrupted cycle")
    if s["blocked"] and (s["interrupted"] or {}).get("step") in (None, "repro"):  # later steps trained already
        return (f"the loop is stopped by too many held-back sentences ({', '.join(s['blocked']['sentences'])}; "
                f"each reason under held back names where and what to fix). {s['blocked']['way_out']}")
    if s["interrupted"]:
        return f"nerloop cycle   # finishes and commits the cycle interrupted at step {s['interrupted']['step']!r}"
    if s["dvc_lock_problem"]:
        return "nerloop cycle   # clears the stale DVC lock (no DVC process runs here), then runs a cycle"
    if s["last_f1"] is None:
        return "nerloop cycle   # trains on the seed set, evaluates on gold and sends the first batch"
    if (s["forecast"] or {}).get("decision") == "stop":
        return (f"nerloop cycle --no-send, then nerloop finalize   # stop: {s['forecast']['why']}")
    if s["waiting_for_annotation"] and s["backend"] != "simulated":
        review = (f" ({len(s['in_review'])} of them disagreements for the lead to resolve in the review project, "
                  "as listed under in review)" if s["in_review"] else "")
        return (f"annotate the {s['waiting_for_annotation']} waiting sentences in {s['backend']}{review}, then: "
                "nerloop cycle   # imports what was confirmed, retrains and sends the next batch")
    if not s["pool_left"] and not s["waiting_for_annotation"]:
        return "nerloop finalize   # the pool is used up: build the final dataset and its card"
    return "nerloop cycle   # imports the answers, retrains, sends the next batch"


def render(s: dict[str, Any]) -> str:
    """The status for a person: a few lines, the held-back examples, and the next command."""
    f1 = "not yet trained" if s["last_f1"] is None else f"{s['last_f1']:.3f}"
    if s["f1_change"] is not None:
        f1 += f" ({s['f1_change']:+.3f} since the cycle before)"
    lines = [
        f"backend:             {s['backend']}",
        f"cycle:               {s['cycle']}",
        f"labelled sentences:  {s['labelled_sentences']} ({s['seed_sentences']} seed"
        + (f"; {s['seed_sentences_in_gold']} more seed sentences are in the gold set and left out"
           if s["seed_sentences_in_gold"] else "") + ")",
        f"waiting:             {s['waiting_for_annotation']} sent to annotators, not yet imported",
        f"pool left:           {s['pool_left']} sentences never selected",
        f"gold F1:             {f1}",
        f"held back:           {len(s['held_back'])}",
    ]
    if s.get("partly_labelled"):
        lines.insert(3, f"partly labelled:     {s['partly_labelled']['sentences']} of them asked about a window only "
                        f"({s['partly_labelled']['window_tokens']} tokens; kept out of the final splits)")
    lines += [f"  - {p}" for p in s["held_back"][:5]]
    if len(s["held_back"]) > 5:
        lines.append(f"  ... and {len(s['held_back']) - 5} more ({held_back.HELD_BACK})")
    if s["held_back"]:
        lines.append("  fix the cause (the next cycle fetches again) or release them to the pool: "
                     "nerloop held-back release ID...")
    lines.append(f"in review:           {len(s['in_review'])}" + (
        " (disagreements waiting on the lead; they never stop the loop)" if s["in_review"] else ""))
    lines += [f"  - {p}" for p in s["in_review"][:5]]
    if s["blocked"]:
        over = ", ".join(f"cycle {c}: {k} of {n}" for c, (k, n) in s["blocked"]["cycles"].items())
        lines.append(f"stopped:             too many held back ({over}; over annotation.max_held_back_share)")
    per_type = ", ".join(f"{t} {k}" for t, k in s["entities_per_type"].items())
    lines.append(f"entities per type:   {per_type or 'not prepared yet'}")
    lines.append(f"manual effort:       {effort_line(s['manual_effort'])}")
    lines += forecast_lines(s["forecast"])
    if s["running"]:
        step = f", at step {s['running']['step']!r}" if s["running"].get("step") else ""
        lines.append(f"running:             {describe(s['running'])}{step}")
    if s["interrupted"]:
        lines.append(f"interrupted:         a cycle stopped at step {s['interrupted']['step']!r}")
    if s["dvc_lock_problem"]:
        lines.append(f"DVC lock:            {s['dvc_lock_problem']}")
    if s["uncommitted"]:
        lines.append(f"uncommitted:         {', '.join(s['uncommitted'][:5])}" +
                     (" ..." if len(s["uncommitted"]) > 5 else "") + " (the next cycle commits them)")
    lines.append(f"next:                {s['next']}")
    return "\n".join(lines)


def effort_line(e: dict[str, Any]) -> str:
    """Edits made from the pre-annotation as a share of typing every entity from scratch."""
    if e["cycle"] is None:
        return "not measured yet (nothing imported from annotators)"
    last, total = ("-" if v is None else f"{v:.0%}" for v in (e["last_cycle"], e["cumulative"]))
    return f"{last} of the edits labelling from scratch takes (cycle {e['cycle']}'s import), {total} over all imports"


def forecast_lines(f: dict[str, Any] | None) -> list[str]:
    """Stop or continue, the forecast to the target F1 with its band, and the stopping rule's figures."""
    if f is None:
        return []
    lines = [f"stop or continue:    {f['decision']}: {f['why']} (cycle {f['cycle']})"]
    b = f["sentences"]
    if b is not None:
        if b["reachable"] is not True:
            need = f"- {b['why']}"
        else:
            low, high = ("never" if v is None else "beyond the pool" if v > b["capacity"] else f"{v:,}"
                         for v in (b["needed_low"], b["needed_high"]))
            need = f"at {b['needed']:,} labelled sentences (90% band {low}-{high})"
        hours = f", ~{f['hours_more']} h more at {f['seconds_per_sentence']:.3g} s/sentence" \
            if f["hours_more"] is not None else ""
        lines.append(f"forecast:            F1 {f['target_f1']:.3f} {need}{hours}; "
                     f"ceiling {b['ceiling']:.3f} ({b['ceiling_low']:.3f}-{b['ceiling_high']:.3f})")
    kappa = "not yet (needs two cycles)" if f["kappa"] is None else f"{f['kappa']:.3f}"
    gain = "" if f["gain_per_100_sentences"] is None else \
        f"; gold F1 {f['gain_per_100_sentences']:+.2f} points per 100 sentences over the last {f['window']} cycles"
    cycles = "1 cycle" if f["window"] == 1 else f"{f['window']} cycles"
    lines.append(f"stop-set kappa:      {kappa} (stop at >= {f['kappa_threshold']} for {cycles}: "
                 f"{f['stable_cycles']} so far){gain}")
    return lines
