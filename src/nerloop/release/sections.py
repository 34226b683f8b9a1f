"""The dataset card's sections, worded from the release's figures: tables, sentences and lists that the
template places. Each says only what a file recorded; what was not recorded is said to be unknown.
"""

from __future__ import annotations

from typing import Any

from nerloop.data.annotations import EFFORT_KEYS, manual_effort
from nerloop.data.formats import input_format
from nerloop.params import DataParams, Params


def fmt(x: Any) -> str:
    """Figures for tables: 3 decimals for scores, an en dash for "not recorded"."""
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.3f}"
    return str(x)


def percent(x: float | None) -> str | None:
    return None if x is None else f"{x:.0%}"


def table(header: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"header": header, "rows": [[fmt(c) for c in row] for row in rows]}


def _agreement_of(row: dict[str, Any]) -> Any:
    """Per-cycle agreement (Cohen's kappa), when that cycle's import had double-annotated examples."""
    agr = row.get("agreement")
    return agr.get("kappa") if isinstance(agr, dict) else agr if agr is not None else row.get("kappa")


def cycles_table(stats: dict[str, Any], history: list[dict[str, Any]], types: list[str]) -> dict[str, Any]:
    """One row per cycle: annotation counts and effort (ledger), labelled total and gold F1 (history)."""
    annotated = {c["cycle"]: c for c in stats["provenance"]["cycles"]}
    scored = {h["cycle"]: h for h in history}
    with_agreement = any(_agreement_of(h) is not None for h in history)
    header = ["cycle", "sentences annotated", "tokens", "kept", "added", "deleted", "relabelled", "manual effort",
              "labelled in total", "gold F1", *(f"F1 {t}" for t in types)]
    if with_agreement:
        header.append("agreement (kappa)")
    rows = []
    for c in sorted(set(annotated) | set(scored) | {0}):
        a, h = annotated.get(c, {}), scored.get(c, {})
        seed = stats["provenance"]["seed_sentences"] if c == 0 else None
        row = [c, seed if c == 0 else a.get("sentences"), a.get("tokens"),
               *(a.get(k) for k in EFFORT_KEYS), percent(manual_effort(a)) if a else None,
               h.get("labelled_sentences"), h.get("f1"), *(h.get(f"f1_{t}") for t in types)]
        if with_agreement:
            row.append(_agreement_of(h))
        rows.append(row)
    return table(header, rows)


def accepted_text(params: Params, stats: dict[str, Any]) -> str:
    """How many annotated sentences were accepted in one key (sent as "accept or edit" and returned as
    pre-annotated), per cycle and in total; empty when the mode was never on and nothing was accepted."""
    per_cycle = {int(c): n for c, n in (stats["provenance"].get("accepted_in_one_key") or {}).items()}
    total = sum(per_cycle.values())
    if not total and params.annotation.accept_threshold is None:
        return ""
    cycles = "; ".join(f"cycle {c}: {n}" for c, n in sorted(per_cycle.items()))
    return (f"**Accepted in one key**: {total} of {stats['provenance']['annotated_sentences']} annotated sentences "
            "were sent as \"accept or edit\" (the model sure of their whole pre-annotation) and submitted exactly as "
            f"pre-annotated{f' ({cycles})' if cycles else ''}; they are marked `accepted` in the annotation ledger. "
            "Their labels are the model's, checked by a person rather than corrected.")


def partial_text(stats: dict[str, Any]) -> str:
    """How many annotated sentences were labelled only in part (``select.unit: window``) and so kept out of the
    splits; empty when there were none."""
    partial = stats["provenance"].get("partly_labelled_kept_out") or []
    if not partial:
        return ""
    return (f"**Partly labelled, kept out**: {len(partial)} of {stats['provenance']['annotated_sentences']} annotated "
            "sentences were asked about only a window of their words (subsequence selection, `select.unit: window`); "
            "the rest of each is the model's unchecked pre-annotation. They are marked with a `window` in the "
            "annotation ledger and are **not** in any split (listed in `stats.json` under "
            "`partly_labelled_kept_out`); a sentence annotated whole later is released like any other.")


def agreement_text(params: Params, annotation: dict[str, Any], stats: dict[str, Any]) -> str:
    """What is known about annotation quality, and what is not."""
    a = params.annotation
    n_accounts = len(stats["provenance"]["annotators"])
    if a.backend == "simulated":
        return ("The annotations of this loop came from nerloop's **simulated annotator**, which answers every "
                f"selected sentence with the reference labels held apart in `{a.simulated.answers}`: the labels "
                "are those of the source corpus, not new human work, and there is no inter-annotator agreement "
                "to report.")
    tool, team = ("Label Studio", a.label_studio) if a.backend == "label_studio" else ("Doccano", a.doccano)
    text = (f"Sentences were annotated in {tool} by {n_accounts} annotator account(s), correcting the model's "
            "pre-annotations. ")
    agr = annotation.get("agreement") or {}
    if agr.get("qc_examples"):
        text += (f"Agreement was measured on a quality-control share ({team.qc_share:.0%}) annotated by two "
                 f"people: token-level Cohen's kappa {fmt(agr.get('kappa'))} (target {fmt(agr.get('kappa_target'))}),"
                 f" entity-level F1 {fmt(agr.get('entity_f1'))}, over {agr['qc_examples']} sentences with "
                 f"{agr.get('disagreements', 0)} disagreement(s) (disagreement policy: "
                 f"`{team.disagreement_policy}`). These figures cover the last import (cycle "
                 f"{annotation.get('cycle')}); the Cycles table above has the figure of every cycle that had one.")
        cum = agr.get("cumulative") or {}
        if cum.get("pairs"):
            text += (f" Over all cycles, each double-annotated sentence counted once: {cum['pairs']} sentences, "
                     f"kappa {fmt(cum.get('kappa'))}, entity F1 {fmt(cum.get('entity_f1'))}, "
                     f"{cum.get('disagreements', 0)} disagreement(s).")
    else:
        text += ("No agreement figures were recorded (no sentence was annotated twice in the last import), so the "
                 "consistency between annotators is unknown.")
    return text


def speed_table(annotation: dict[str, Any]) -> dict[str, Any]:
    """Seconds per sentence and per token, and effort, per annotator and cycle (Doccano imports only)."""
    per = (annotation.get("agreement") or {}).get("annotators") or {}
    rows = [[who, int(c), r.get("sentences"), r.get("timed_sentences"), r.get("seconds_per_sentence"),
             r.get("seconds_per_token"), *(r.get(k) for k in EFFORT_KEYS)]
            for who, cycles in sorted(per.items()) for c, r in sorted(cycles.items(), key=lambda kv: int(kv[0]))]
    return table(["annotator", "cycle", "sentences", "timed", "s / sentence", "s / token", "kept", "added",
                   "deleted", "relabelled"], rows)


def evaluation_section(final_eval: dict[str, Any], types: list[str], n_active_test: int) -> tuple[str, dict[str, Any]]:
    """The final model's figures beside the first and last cycle's."""
    if final_eval.get("skipped") or not final_eval:
        return ("No final model was trained (`final.train_final_model: false`), so there are no figures on the final "
                "splits. The learning curve above gives the loop's gold-set figures."), table([], [])
    cyc = final_eval.get("cycles", {})
    first, last = cyc.get("first", {}), cyc.get("last", {})
    cols: list[tuple[str, Any, Any]] = [
        (f"cycle {first.get('cycle', '?')}, gold", first.get("f1"), first.get("per_type_f1", {})),
        (f"cycle {last.get('cycle', '?')}, gold", last.get("f1"), last.get("per_type_f1", {})),
    ]
    for key, label in (("test", "final model, test split"), ("gold", "final model, gold set"),
                       ("gold_in_test", "final model, gold sentences in test")):
        s = final_eval.get(key)
        if s:
            cols.append((f"{label} ({s['sentences']})", s["f1"], {t: v["f1"] for t, v in s["per_type"].items()}))
    rows = [["micro F1", *(c[1] for c in cols)]] + [[t, *(c[2].get(t) for c in cols)] for t in types]
    gold = final_eval.get("gold", {})
    tr = final_eval.get("training", {})
    text = (f"A model was trained once on the final train split ({tr.get('train_sentences')} sentences, the "
            f"validation split for early stopping; best validation F1 {fmt(tr.get('best_validation_f1'))}) and "
            "scored on the final test split and on the gold set, entity-level F1 (strict IOB2), next to the "
            "first and the last cycle's gold-set F1.")
    if not gold.get("independent", True):
        text += (f" **The gold-set column is inflated**: {gold.get('seen_in_training')} gold sentences are in the "
                 "train or validation split; the last column, on the gold sentences of the test split only, is the "
                 "fair one.")
    if n_active_test:
        text += (f" {n_active_test} of the test split's {final_eval['test']['sentences']} sentences were actively "
                 "selected, harder than random text, so its F1 is not comparable with the gold-set columns.")
    return text, table(["", *(c[0] for c in cols)], rows)


def cleaning_lines(stats: dict[str, Any], incons: dict[str, Any]) -> list[str]:
    s = stats["cleaning"]
    policy = incons["conflict_policy"]
    lines = [
        f"Unicode (NFKC) and whitespace normalised per token: {s['records_cleaned']} sentence(s) changed"
        + (f", {s['records_emptied']} left empty and dropped" if s["records_emptied"] else "") + ".",
        f"{s['duplicates_removed']} duplicate(s) removed: sentences with the same text once normalised, case and "
        "spacing ignored, are one sentence.",
        f"{s['same_text_conflicts']} sentence(s) had copies labelled differently; conflict policy `{policy}`: "
        f"{s['same_text_resolved']} resolved, {s['held_for_review']} copies held back for review and **not** in "
        "this dataset (listed in `inconsistencies.json`).",
        f"{s['surface_type_conflicts']} entity string(s) were labelled as more than one type across the corpus; "
        + (f"{s['relabelled_mentions']} mention(s) relabelled to the string's dominant type (policy `majority`, "
           f"threshold {incons['type_majority']:.0%}), the rest left as annotated."
           if policy == "majority" else "reported only, left as annotated (an ambiguous string may be right)."),
    ]
    if s.get("near_gold_removed"):
        lines.append(f"{s['near_gold_removed']} sentence(s) removed as near-copies of gold-set sentences.")
    partial = stats["provenance"].get("partly_labelled_kept_out") or []
    if partial:
        lines.append(f"{len(partial)} partly labelled sentence(s) (asked about a window only) kept out of the splits.")
    return lines


def limitations(params: Params, stats: dict[str, Any], history: list[dict[str, Any]]) -> list[str]:
    """Known limitations, each stated only when it applies."""
    s, prov = stats["cleaning"], stats["provenance"]
    out = ["Active-learning selection bias (above): not a random sample of the source."]
    if prov["include_gold"]:
        out.append("The gold set is inside the splits: there is no untouched test set left beyond the gold sentences "
                   "of the test split.")
    if params.annotation.backend == "simulated":
        out.append("Labels come from the source corpus via the simulated annotator; annotation effort figures "
                   "describe a simulated loop, not human work.")
    if not any(h.get("selection") for h in history):
        out.append("The selection settings of each cycle were not recorded; the card shows those at finalisation.")
    if not any(_agreement_of(h) is not None for h in history):
        out.append("No cycle had double-annotated examples: there is no inter-annotator agreement figure.")
    if s["held_for_review"]:
        out.append(f"{s['held_for_review']} sentence copies with conflicting labels are held back, not included.")
    if s["surface_type_conflicts"]:
        out.append("Some entity strings carry different types in different sentences; some may be annotation errors.")
    if not any(v["documents"] for v in stats["splits"].values()):
        out.append("No document ids: sentences of one source document may sit in different splits, so the splits "
                   "can share context (same abstract, same entities).")
    if stats.get("types_never_seen"):
        out.append(f"Entity type(s) {stats['types_never_seen']} are in the label set but never occur.")
    out.append("Entities are contiguous, non-overlapping and non-nested token spans (IOB2). "
               + tokenisation_text(params.data)
               + " The CoNLL files carry no document boundaries (the JSONL and dataset have doc_id).")
    return out


def _tokenised_as(path: str, fmt: str, tokenizer: str) -> str:
    """How one input file's sentences got their tokens."""
    kind = input_format(path, fmt)
    if kind == "text":
        return f"by nerloop's `{tokenizer}` tokeniser (plain text)"
    if kind == "jsonl":
        return f"as given in its `tokens` (JSONL), or by nerloop's `{tokenizer}` tokeniser where a line gives `text`"
    return "as given in the file (CoNLL)"


def tokenisation_text(data: DataParams) -> str:
    """Which tokenisation each part of the data has: the input's, or nerloop's tokeniser for plain text."""
    parts = {name: _tokenised_as(getattr(data, name), data.format, data.tokenizer) for name in ("seed", "pool", "gold")}
    if len(set(parts.values())) == 1:
        return f"Tokenisation: every part of the data is tokenised {parts['seed']}."
    return ("Tokenisation differs between the parts of the data: seed sentences are tokenised "
            f"{parts['seed']}; actively selected (pool) sentences {parts['pool']}; gold sentences {parts['gold']}. "
            "A model trained on this data sees both conventions.")


def scored_text(score: dict[str, Any] | None) -> str:
    """How much of the pool a cycle's batch was chosen from (``score.subsample``), as recorded then."""
    if not score:
        return "not recorded"
    return f"{score['scored']:,} (all)" if not score["subsample"] else f"{score['scored']:,} (subsample)"


def held_back_text(held: list[dict[str, Any]], waiting: int, outbox: int) -> str:
    """The card's line on sentences sent (or about to be sent) for annotation that are not in the data.

    Two different things: sentences still with the annotators (normal: the last batch is always
    out; disagreements in review with the lead among them), and sentences held back at import because
    something was wrong with them.
    """
    review = sum(h.get("state") == "in review" for h in held)
    held = [h for h in held if h.get("state") != "in review"]
    out = (f"{waiting + outbox} sentence(s) sent or about to be sent for annotation are waiting for annotators and "
           f"are not in this dataset yet ({waiting} sent before this cycle, {outbox} in this cycle's batch"
           + (f"; {review} of them in review: the two annotators disagreed and the lead decides" if review else "")
           + "). " if waiting + outbox else "No sentence is waiting for annotators. ")
    if not held:
        return out + "No annotated sentence was held back at import."
    ids = [h for h in held if h.get("id")]
    return out + (f"{len(held)} annotated sentence(s) were held back at the last import and are **not** in this "
                  f"dataset ({len(ids)} tied to a sentence), each listed with its text and the reason in "
                  "`data/annotations/held_back.jsonl` of the project; held-back sentences can skew the selection "
                  "(e.g. if they share a feature such as hashtags or a tokenisation problem).")


def stopping_section(forecast: dict[str, Any], history: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """How the decision to stop (or to go on) was made, from metrics/forecast.json, and the kappa per cycle."""
    if not forecast:
        return ("No stopping figures were recorded (metrics/forecast.json is missing): how the loop's length was "
                "decided is unknown."), table([], [])
    f, s = forecast, forecast["stop_set"]
    fired = f["stable_cycles"] >= f["window"]
    text = (
        "The stopping rule was *stabilising predictions* (Bloodgood & Vijay-Shanker, 2009), which needs no labels: "
        f"after each cycle the model predicted a fixed random stop set of {s['sentences']} pool sentences "
        f"({s['labelled']} of them were later selected and labelled), and the token-level Cohen's kappa between "
        "the predictions of successive cycles' models was compared with the threshold "
        f"{f['kappa_threshold']}: the rule stops when kappa stays at or above it for {f['window']} cycle(s) in a row. "
        f"At the last evaluated cycle ({f['cycle']}) kappa was {fmt(f['kappa'])}, {f['stable_cycles']} cycle(s) in "
        f"a row at or above the threshold: the rule **{'had fired' if fired else 'had not fired'}**. "
        f"Decision recorded then: **{f['decision']}** ({f['why']})."
    )
    if f["gain_per_100_sentences"] is not None:
        text += (f" Over the last {f['window']} cycle(s) the gold-set F1 rose by {f['gain_per_100_sentences']:+.2f} "
                 "points per 100 labelled sentences.")
    b = f["sentences"]
    if b is not None:
        text += (f" A weighted inverse power law (Figueroa et al., 2012) fitted to the learning curve puts the F1 "
                 f"ceiling of this model and source at {b['ceiling']:.3f} (90% band {b['ceiling_low']:.3f}-"
                 f"{b['ceiling_high']:.3f}); the target F1 {f['target_f1']:.3f} "
                 + (f"needed about {b['needed']:,} labelled sentences." if b["reachable"] else
                    f"was {b['why']}."))
    rows = [[h["cycle"], h["labelled_sentences"], h["f1"], h.get("stop_kappa")] for h in history]
    with_kappa = any(r[3] is not None for r in rows)
    return text, table(["cycle", "labelled sentences", "gold F1", "stop-set kappa"], rows if with_kappa else [])
