"""The dataset card (data/final/README.md) in the Hugging Face format, worded from the release's figures.

The YAML header is built with ``huggingface_hub.DatasetCardData`` and the card rendered
with ``DatasetCard.from_template`` from ``templates/datacard.md.jinja``, so the Hub reads the
metadata (licence, language, task, size, which file is which split). The prose says how
the data was made, including what an active-learning dataset is biased towards, whether
the gold set is still an independent yardstick, and everything the cleaning changed or
left for review: a card is only useful if it is true, so every figure here comes from a
file the earlier stages wrote, and what was not recorded is said to be unknown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from nerloop import paths
from nerloop.params import Params
from nerloop.release.gather import ORIGINS, SPLITS
from nerloop.release.sections import (
    accepted_text,
    agreement_text,
    cleaning_lines,
    cycles_table,
    evaluation_section,
    held_back_text,
    limitations,
    partial_text,
    scored_text,
    speed_table,
    stopping_section,
    table,
)

TEMPLATE = paths.TEMPLATES / "datacard.md.jinja"
FIGURE = "learning_curve.png"  # the learning curve, next to the card
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket for ``n`` examples."""
    return next((name for limit, name in _SIZES if n < limit), "n>1B")


def example_row(final_dir: Path) -> str:
    """The first training sentence as it appears in train.jsonl (empty if there is none)."""
    path = final_dir / "train.jsonl"
    if not path.exists():
        return "{}"
    with path.open(encoding="utf-8") as fh:
        line = fh.readline().strip()
    return json.dumps(json.loads(line), ensure_ascii=False) if line else "{}"


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
    fields = table(["field", "type", "description"], [
        ["`id`", "string", "hash of the normalised sentence text: the id the annotation ledger uses"],
        ["`tokens`", "list of string", "the words"],
        ["`ner_tags`", "list of ClassLabel", "IOB2 tag per token (ids below; strings in the JSONL and CoNLL files)"],
        ["`origin`", "string", "`seed` (initial labelled set), `active` (selected by active learning, then "
                               "annotated), `gold` (the randomly drawn evaluation set)"],
        ["`cycle`", "int32", "active-learning cycle of the annotation (0 for the seed set, empty for gold)"],
        ["`doc_id`", "string", "source document, when the input had document ids"],
    ])
    splits_table = table(
        ["split", "sentences", "share", "tokens", "documents", *ORIGINS, *(f"{t} entities" for t in types)],
        [[s, v["sentences"], f"{v['sentence_share']:.1%}", v["tokens"], v["documents"],
          *(v["origins"][o] for o in ORIGINS), *(v["entities"][t] for t in types)] for s, v in splits.items()]
        + [["all", n, "100%", stats["all"]["tokens"], sum(v["documents"] for v in splits.values()),
            *(sum(v["origins"][o] for v in splits.values()) for o in ORIGINS),
            *(stats["all"]["entities"][t] for t in types)]],
    )
    share_table = table(["split", "target", *types], [
        [s, f"{r:.0%}", *(f"{v['entity_share'][t]:.1%}" for t in types)]
        for (s, v), r in zip(splits.items(), prov["ratios"], strict=True)
    ])
    sel = params.select.dict()
    select_table = table(["parameter", "value"], [[f"`{k}`", f"`{v}`"] for k, v in sel.items()])
    per_cycle = [(h["cycle"], h["selection"]) for h in history if h.get("selection")]
    per_cycle_table = table(
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
        template_str=TEMPLATE.read_text(encoding="utf-8"),
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
        labels_table=table(["id", "tag"], list(enumerate(stats["labels"]))),
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
        accepted_text=accepted_text(params, stats),
        partial_text=partial_text(stats),
        speed_table=speed_table(annotation),
        break_s=f"{(annotation.get('agreement') or {}).get('break_s', team_params.break_s):g}",
        figure=figure,
        stopping_text=stopping_text,
        kappa_table=kappa_table,
        cleaning_lines=cleaning_lines(stats, inconsistencies),
        surface_table=table(["string", "mentions", "types", "what was done"], surface_rows),
        evaluation_text=evaluation_text,
        evaluation_table=evaluation_table,
        limitations=[*limitations(params, stats, history),
                     held_back_text(held or [], int(annotation.get("waiting", 0)), outbox)],
        attribution=attribution,
    )
