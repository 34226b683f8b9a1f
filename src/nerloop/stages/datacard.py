"""Stage ``datacard``: the dataset card (data/final/README.md) in the Hugging Face format.

The YAML header is built with ``huggingface_hub.DatasetCardData`` and the card rendered
with ``DatasetCard.from_template`` from the Jinja template below, so the Hub reads the
metadata (licence, language, task, size, which file is which split). The prose says how
the data was made, including what an active-learning dataset is biased towards, whether
the gold set is still an independent yardstick, and everything the cleaning changed or
left for review: a card is only useful if it is true, so every figure here comes from a
file the earlier stages wrote, and what was not recorded is said to be unknown.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from nerloop import held_back, paths
from nerloop.errors import NerloopError
from nerloop.finalize import ORIGINS, SPLITS
from nerloop.formats import atomic_write, input_format
from nerloop.params import DataParams, Params, load_params
from nerloop.stages import run

CARD = paths.FINAL / "README.md"
FIGURE = "learning_curve.png"
SOURCE_FIGURE = paths.METRICS / FIGURE
INPUTS = {
    "stats": paths.FINAL / "stats.json",
    "inconsistencies": paths.FINAL / "inconsistencies.json",
    "history": paths.METRICS / "history.json",
    "final_eval": paths.METRICS / "final_eval.json",
    "annotation": paths.METRICS / "annotation.json",
    "forecast": paths.METRICS / "forecast.json",
}
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]

TEMPLATE = """---
{{ card_data }}
---
{%- macro table(t) %}
| {{ t.header | join(" | ") }} |
|{% for _ in t.header %} --- |{% endfor %}
{% for row in t.rows -%}
| {{ row | join(" | ") }} |
{% endfor -%}
{% endmacro %}

# Dataset Card for {{ pretty_name }}

## Dataset Summary

{{ pretty_name }} is a named-entity-recognition dataset of {{ n_sentences }} sentences ({{ n_tokens }} tokens,
language: {{ language | join(", ") }}) labelled with {{ types | length }} entity type(s): {{ types | join(", ") }}.
It was grown with active learning by nerloop: starting from a seed set of {{ seed_sentences }} labelled sentences,
a model chose which unlabelled sentences to annotate next, over {{ n_cycles }} cycle(s) that added
{{ annotated_sentences }} annotated sentences.
{% if include_gold -%}
The {{ gold_sentences }} sentences of the randomly drawn gold (evaluation) set are included in the splits
(see *Bias, Risks and Limitations*).
{%- else -%}
The gold (evaluation) set of {{ gold_sentences }} sentences is not included: it stays an independent test set.
{%- endif %}

## Dataset Structure

The same splits in three forms:

- `dataset/`: a `datasets.DatasetDict`, `datasets.load_from_disk("dataset")` (works offline);
- `train.jsonl`, `validation.jsonl`, `test.jsonl`: one sentence per line, tags as strings
  (what `load_dataset` reads from this repository);
- `train.conll`, `validation.conll`, `test.conll`: `token<TAB>tag`, a blank line between sentences.

### Data Fields
{{ table(fields) }}
### Example

```json
{{ example }}
```

### Label Set

Tags follow IOB2 (`B-` opens an entity, `I-` continues it). `ner_tags` holds these ids:
{{ table(labels_table) }}
### Data Splits

Split {{ ratios }} (train, validation, test) under seed {{ split_seed }}.
{%- if documents %} Sentences of one source document stay in one split.
{%- else %} The input had no document ids, so sentences were split one by one.{% endif %}
{{ table(splits_table) }}
The splits are stratified by entity type: each split holds about its share of every type's mentions.
{{ table(share_table) }}
## Dataset Creation

### How It Was Made

1. **Seed**: {{ seed_sentences }} labelled sentences from `{{ data.seed }}`.
2. **Pool**: unlabelled sentences from `{{ data.pool }}`, from which each cycle selected a batch.
3. **Each cycle**: a model (`{{ model_base }}`, always fine-tuned afresh from the base model) was trained on
   everything labelled so far, scored the pool, a batch was selected and annotated ({{ annotation_how }}), and the
   model was evaluated on the fixed gold set (`{{ data.gold }}`, {{ gold_sentences }} sentences drawn at random,
   never selected and never trained on during the loop).
4. **Finalisation**: seed, annotations{% if include_gold %} and gold set{% endif %} combined, cleaned, deduplicated,
   checked for inconsistent labels and split (see *Cleaning and Consistency*).

### Cycles

Cycle 0 is the seed set alone. "Kept / added / deleted / relabelled" count the model's pre-annotated entities
the annotators kept, and the entities they added, deleted or relabelled: the manual effort per cycle. F1 is
entity-level (strict IOB2) on the gold set, of the model trained on everything labelled up to that cycle.
A dash means not recorded: the annotations of the last cycle usually arrive after the last evaluation.
{{ table(cycles_table) }}
### Selection Strategy and Parameters

{{ strategy_text }}
{% if per_cycle_table %}{{ table(per_cycle_table) }}{% endif %}
{{ table(select_table) }}
### Annotation and Agreement

{{ agreement_text }}
{% if speed_table.rows %}
Annotation speed and effort per annotator and cycle, from the annotation tool's confirmation (Doccano) or
submission (Label Studio) times: a sentence's time is
the gap since the same annotator's previous confirmation; gaps over {{ break_s }} s count as breaks and are left
out with their sentence (as is the first sentence of each sitting), so the figures are "while working".
Kept / added / deleted / relabelled compare each annotator's spans with the pre-annotation they were shown.
{{ table(speed_table) }}
{%- endif %}

### Learning Curve

{% if figure -%}
![Learning curve: gold-set F1 against labelled sentences and tokens]({{ figure }})
{%- else -%}
No learning-curve figure was found (metrics/learning_curve.png).
{%- endif %}

### Stopping Decision

{{ stopping_text }}
{% if kappa_table.rows %}{{ table(kappa_table) }}{% endif %}
### Cleaning and Consistency
{% for line in cleaning_lines %}
- {{ line }}
{%- endfor %}
{% if surface_table.rows %}
Entity strings labelled as more than one type (most frequent first; all of them, with examples, are in
`inconsistencies.json`):
{{ table(surface_table) }}
{%- endif %}

## Evaluation

{{ evaluation_text }}
{% if evaluation_table.rows -%}
{{ table(evaluation_table) }}
{%- endif %}

## Bias, Risks and Limitations

### Selection bias from active learning

The actively selected sentences ({{ n_active }} of {{ n_sentences }}) were chosen *because* a model found them
informative: uncertain, unusual or far from what it had seen. They over-represent hard, rare and ambiguous
cases and under-represent plain, typical sentences, so the dataset is not a random sample of its source: the
frequency of entity types, sentence lengths and contexts differ from the source corpus. Scores measured on a
split of this dataset are therefore not those one would get on random text of the same source (they are
usually lower), and the selection was tuned to the model used in the loop, not to every model.

### How the gold set guards the evaluation

During the loop, every figure above was measured on the gold set: {{ gold_sentences }} sentences drawn at random,
never offered for selection and never trained on, so the learning curve is an unbiased estimate on the source
distribution.
{% if include_gold -%}
**In this release the gold set is part of the splits** (`final.include_gold: true`), spread over
{{ gold_spread }}. The final test split is therefore no longer independent of the evaluation yardstick: models
trained on this train split have seen most of the gold set, so gold-set scores of such models are inflated and
are not comparable with the loop's learning curve. The {{ gold_in_test }} gold sentences in the test split
(`origin == "gold"`) were never trained on and remain a fair, if small, random sample to measure on.
{%- else -%}
The gold set is **not** part of this release (`final.include_gold: false`){% if near_gold %}, and
{{ near_gold }} sentence(s) that were near-copies of gold sentences were removed{% endif %}: it remains an
independent, randomly drawn test set for models trained on these splits.
{%- endif %}

### Known Limitations
{% for line in limitations %}
- {{ line }}
{%- endfor %}

## Source Data and Attribution

{{ attribution }}

Input files: seed `{{ data.seed }}`, pool `{{ data.pool }}`, gold `{{ data.gold }}`.
Built with nerloop (active learning with DVC); the pipeline definition (`dvc.yaml`), `params.yaml` and the
annotation ledger in the project repository record how each sentence got here.
"""


# --------------------------------------------------------------------------- helpers


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` examples."""
    return next((name for limit, name in _SIZES if n < limit), "n>1B")


def fmt(x: Any) -> str:
    """Figures for tables: 3 decimals for scores, an en dash for "not recorded"."""
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.3f}"
    return str(x)


def _table(header: list[str], rows: list[list[Any]]) -> dict[str, Any]:
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
    header = ["cycle", "sentences annotated", "tokens", "kept", "added", "deleted", "relabelled",
              "labelled in total", "gold F1", *(f"F1 {t}" for t in types)]
    if with_agreement:
        header.append("agreement (kappa)")
    rows = []
    for c in sorted(set(annotated) | set(scored) | {0}):
        a, h = annotated.get(c, {}), scored.get(c, {})
        seed = stats["provenance"]["seed_sentences"] if c == 0 else None
        row = [c, seed if c == 0 else a.get("sentences"), a.get("tokens"),
               *(a.get(k) for k in ("kept", "added", "deleted", "relabelled")),
               h.get("labelled_sentences"), h.get("f1"), *(h.get(f"f1_{t}") for t in types)]
        if with_agreement:
            row.append(_agreement_of(h))
        rows.append(row)
    return _table(header, rows)


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
             r.get("seconds_per_token"), *(r.get(k) for k in ("kept", "added", "deleted", "relabelled"))]
            for who, cycles in sorted(per.items()) for c, r in sorted(cycles.items(), key=lambda kv: int(kv[0]))]
    return _table(["annotator", "cycle", "sentences", "timed", "s / sentence", "s / token", "kept", "added",
                   "deleted", "relabelled"], rows)


def evaluation_section(final_eval: dict[str, Any], types: list[str], n_active_test: int) -> tuple[str, dict[str, Any]]:
    """The final model's figures beside the first and last cycle's."""
    if final_eval.get("skipped") or not final_eval:
        return ("No final model was trained (`final.train_final_model: false`), so there are no figures on the final "
                "splits. The learning curve above gives the loop's gold-set figures."), _table([], [])
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
    return text, _table(["", *(c[0] for c in cols)], rows)


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


def example_row(final_dir: Path) -> str:
    """The first training sentence as it appears in train.jsonl (empty if there is none)."""
    path = final_dir / "train.jsonl"
    if not path.exists():
        return "{}"
    with path.open(encoding="utf-8") as fh:
        line = fh.readline().strip()
    return json.dumps(json.loads(line), ensure_ascii=False) if line else "{}"


def stopping_section(forecast: dict[str, Any], history: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """How the decision to stop (or to go on) was made, from metrics/forecast.json, and the kappa per cycle."""
    if not forecast:
        return ("No stopping figures were recorded (metrics/forecast.json is missing): how the loop's length was "
                "decided is unknown."), _table([], [])
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
    return text, _table(["cycle", "labelled sentences", "gold F1", "stop-set kappa"], rows if with_kappa else [])


# --------------------------------------------------------------------------- the card


def build_card(
    params: Params,
    stats: dict[str, Any],
    inconsistencies: dict[str, Any],
    history: list[dict[str, Any]],
    final_eval: dict[str, Any],
    annotation: dict[str, Any],
    forecast: dict[str, Any] | None = None,
    *,
    figure: str | None = FIGURE,
    example: str = "{}",
    held: list[dict[str, Any]] | None = None,
    outbox: int = 0,
) -> DatasetCard:
    """Render the card from the stages' outputs (already read from disk)."""
    p = params.final
    types = stats["entity_types"]
    splits = stats["splits"]
    prov = stats["provenance"]
    n = stats["all"]["sentences"]
    card_data = DatasetCardData(
        license=p.license,
        language=[p.language],
        task_categories=["token-classification"],
        task_ids=["named-entity-recognition"],
        size_categories=[size_category(n)],
        pretty_name=p.pretty_name,
        tags=["active-learning", "nerloop"],
        configs=[{"config_name": "default",
                  "data_files": [{"split": s, "path": f"{s}.jsonl"} for s in SPLITS]}],
    )
    fields = _table(["field", "type", "description"], [
        ["`id`", "string", "hash of the normalised sentence text: the id the annotation ledger uses"],
        ["`tokens`", "list of string", "the words"],
        ["`ner_tags`", "list of ClassLabel", "IOB2 tag per token (ids below; strings in the JSONL and CoNLL files)"],
        ["`origin`", "string", "`seed` (initial labelled set), `active` (selected by active learning, then "
                               "annotated), `gold` (the randomly drawn evaluation set)"],
        ["`cycle`", "int32", "active-learning cycle of the annotation (0 for the seed set, empty for gold)"],
        ["`doc_id`", "string", "source document, when the input had document ids"],
    ])
    splits_table = _table(
        ["split", "sentences", "share", "tokens", "documents", *ORIGINS, *(f"{t} entities" for t in types)],
        [[s, v["sentences"], f"{v['sentence_share']:.1%}", v["tokens"], v["documents"],
          *(v["origins"][o] for o in ORIGINS), *(v["entities"][t] for t in types)] for s, v in splits.items()]
        + [["all", n, "100%", stats["all"]["tokens"], sum(v["documents"] for v in splits.values()),
            *(sum(v["origins"][o] for v in splits.values()) for o in ORIGINS),
            *(stats["all"]["entities"][t] for t in types)]],
    )
    share_table = _table(["split", "target", *types], [
        [s, f"{r:.0%}", *(f"{v['entity_share'][t]:.1%}" for t in types)]
        for (s, v), r in zip(splits.items(), prov["ratios"], strict=True)
    ])
    sel = params.select.dict()
    select_table = _table(["parameter", "value"], [[f"`{k}`", f"`{v}`"] for k, v in sel.items()])
    per_cycle = [(h["cycle"], h["selection"]) for h in history if h.get("selection")]
    per_cycle_table = _table(
        ["cycle", "strategy", "measure", "alpha", "k", "batch size", "token budget", "pool sentences scored"],
        [[c, f"`{x['strategy']}`", f"`{x['measure']}`", x["alpha"], x["k"], x["batch_size"], x["token_budget"],
          scored_text(x.get("score"))] for c, x in per_cycle],
    ) if per_cycle else None
    strategy_text = (
        "How each cycle's batch was chosen (recorded with its annotations), then the `select` settings in "
        "params.yaml at finalisation:" if per_cycle else
        "No selection settings were recorded with the annotations. These are the `select` settings in params.yaml "
        f"when the dataset was finalised (strategy `{sel['strategy']}`, measure `{sel['measure']}`, "
        f"{sel['batch_size']} sentences per cycle); if they were changed during the loop, earlier cycles ran with "
        "other values."
    )
    a = params.annotation
    team_params = a.label_studio if a.backend == "label_studio" else a.doccano
    annotation_how = ("by the simulated annotator from held-apart reference labels" if a.backend == "simulated"
                      else f"by people in {'Label Studio' if a.backend == 'label_studio' else 'Doccano'}, correcting "
                      "the model's pre-annotations")
    surface_rows = [[f"`{c['surface']}`", c["mentions"], ", ".join(f"{t} {k}" for t, k in c["types"].items()),
                     c.get("resolution", "")] for c in inconsistencies.get("surface_type_conflicts", [])[:15]]
    gold_counts = {s: v["origins"]["gold"] for s, v in splits.items()}
    evaluation_text, evaluation_table = evaluation_section(final_eval, types, splits["test"]["origins"]["active"])
    stopping_text, kappa_table = stopping_section(forecast or {}, history)
    attribution = p.attribution or (
        "**Not stated**: the sources of the raw sentences and their licence were not given (set `final.attribution` "
        "in params.yaml). Check that the licence above is compatible with the sources before publishing."
    )
    return DatasetCard.from_template(
        card_data,
        template_str=TEMPLATE,
        n_sentences=n,
        n_tokens=stats["all"]["tokens"],
        types=types,
        seed_sentences=prov["seed_sentences"],
        annotated_sentences=prov["annotated_sentences"],
        gold_sentences=prov["gold_sentences"],
        include_gold=prov["include_gold"],
        n_cycles=len(prov["cycles"]),
        n_active=sum(v["origins"]["active"] for v in splits.values()),
        gold_spread=", ".join(f"{k} {s}" for s, k in gold_counts.items()),
        gold_in_test=gold_counts.get("test", 0),
        near_gold=stats["cleaning"].get("near_gold_removed", 0),
        fields=fields,
        example=example,
        labels_table=_table(["id", "tag"], list(enumerate(stats["labels"]))),
        ratios=" / ".join(f"{r:.0%}" for r in prov["ratios"]),
        split_seed=prov["seed"],
        documents=any(v["documents"] for v in splits.values()),
        splits_table=splits_table,
        share_table=share_table,
        data=params.data,
        model_base=params.model.base,
        annotation_how=annotation_how,
        cycles_table=cycles_table(stats, history, types),
        strategy_text=strategy_text,
        per_cycle_table=per_cycle_table,
        select_table=select_table,
        agreement_text=agreement_text(params, annotation, stats),
        speed_table=speed_table(annotation),
        break_s=f"{(annotation.get('agreement') or {}).get('break_s', team_params.break_s):g}",
        figure=figure,
        stopping_text=stopping_text,
        kappa_table=kappa_table,
        cleaning_lines=cleaning_lines(stats, inconsistencies),
        surface_table=_table(["string", "mentions", "types", "what was done"], surface_rows),
        evaluation_text=evaluation_text,
        evaluation_table=evaluation_table,
        limitations=[*limitations(params, stats, history),
                     held_back_text(held or [], int(annotation.get("waiting", 0)), outbox)],
        attribution=attribution,
    )


def _read(name: str) -> Any:
    """An input by name; the final-split outputs must exist, the loop's metrics may be missing."""
    path = INPUTS[name]
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    if name in ("stats", "inconsistencies"):
        raise NerloopError(f"{path} not found: run the final-split stage first (dvc repro final-split)")
    return [] if name == "history" else {}


def main() -> None:
    params = load_params()
    inputs = {name: _read(name) for name in INPUTS}
    figure = None
    if SOURCE_FIGURE.exists():
        shutil.copyfile(SOURCE_FIGURE, paths.FINAL / FIGURE)
        figure = FIGURE
    held = [asdict(h) for h in held_back.load()]
    outbox = len(paths.OUTBOX.read_text(encoding="utf-8").splitlines()) if paths.OUTBOX.exists() else 0
    card = build_card(params, **inputs, figure=figure, example=example_row(paths.FINAL), held=held, outbox=outbox)
    with atomic_write(CARD) as fh:
        fh.write(str(card))
    print(f"dataset card written to {CARD}")


if __name__ == "__main__":
    run(main)
