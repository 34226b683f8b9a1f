"""Stage ``select``: choose the next batch to annotate with the strategy set in params.

Never picks a sentence that is labelled (seed or ledger), already exported in an
earlier cycle, or in the gold set. Writes the batch with the model's pre-annotations
and a readable report of why each sentence was chosen.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from nerloop import paths
from nerloop.data.annotations import WINDOW_KEY, labelled_tokens
from nerloop.data.files import atomic_write, iter_records, read_records, write_records
from nerloop.data.labelled import entity_types, exported_before, labelled_records, type_counts
from nerloop.data.ledger import Ledger
from nerloop.data.patterns import PatternSpan, load_patterns, merge_pre_annotation
from nerloop.data.records import Record
from nerloop.data.tags import char_to_token_spans, spans_to_tags, token_to_char_spans
from nerloop.errors import ParamsError
from nerloop.params import MEASURE_NAMES, SelectParams, load_params
from nerloop.selection import windows
from nerloop.selection.diversity import RowSubset
from nerloop.selection.strategies import SelectConfig, select, validate_config
from nerloop.stages import run

log = logging.getLogger(__name__)

REPORT = paths.SELECTION / "report.md"
PRE_ANNOTATION = ["pred_tags", "pred_spans"]  # long JSON columns, read only for the chosen rows
WORD_CONF = "word_conf"  # another, there only when scored for select.unit: window


def rare_types(counts: dict[str, int], share: float) -> set[str]:
    """Entity types that make up less than ``share`` of the labelled entities so far (unseen ones included)."""
    total = sum(counts.values()) or 1
    return {t for t, k in counts.items() if k / total < share}


def rare_mass(table: pd.DataFrame, rare: set[str]) -> list[float]:
    """Per sentence, the largest probability one word gives to a rare type (score's ``type_mass``).

    Probability mass, not predicted spans: a type with few or no labelled examples is
    seldom the model's argmax, so a bonus on predicted spans alone would never let it in.
    """
    if "type_mass" not in table:  # an empty score table has no prediction columns
        return [0.0] * len(table)
    return [max((m.get(t, 0.0) for t in rare), default=0.0) for m in map(json.loads, table["type_mass"])]


def config_from(p: SelectParams, cycle: int = 1) -> SelectConfig:
    """The strategy's settings for ``cycle``, whose batch size may come from a schedule."""
    cfg = SelectConfig(p.strategy, p.measure, p.alpha, p.batch_size_for(cycle), p.token_budget, p.k, p.rare_bonus,
                       p.pattern_bonus, p.seed, p.balance_types)
    try:
        validate_config(cfg)
    except ValueError as exc:
        key = str(exc).split()[0] if str(exc).startswith("select.") else "select"
        raise ParamsError(key, str(exc)) from None
    return cfg


def with_patterns(rec: Record, pred_spans: list[list], matches: list[PatternSpan], learned: set[str],
                  confidence: float) -> dict[str, Any]:
    """The meta keys ``pre_tags``, ``pre_spans`` and ``pre_sources``: the model's pre-annotation (``pred_spans``
    from stage score) merged with the sentence's pattern matches by :func:`merge_pre_annotation`.

    ``pre_sources`` runs parallel to ``pre_spans`` ("model" or "pattern:<id or label>"), so a backend or the
    ledger can tell a pattern's span from the model's; ``pre_tags`` stays IOB2 over the tokens, so whatever
    reads only the tags sees one consistent pre-annotation.
    """
    tok = char_to_token_spans(rec.offsets, [(int(x[0]), int(x[1]), str(x[2])) for x in pred_spans])
    model = [(s, e, lab, x[3] if len(x) > 3 else None) for (s, e, lab), x in zip(tok, pred_spans, strict=True)]
    merged = merge_pre_annotation(model, matches, learned, confidence)
    spans = [(m.start, m.end, m.label) for m in merged]
    chars = token_to_char_spans(rec.offsets, spans)
    return {
        "pre_tags": spans_to_tags(len(rec.tokens), spans),
        "pre_spans": [[cs, ce, lab, m.confidence] for (cs, ce, lab), m in zip(chars, merged, strict=True)],
        "pre_sources": [m.source for m in merged],
    }


def choose(table: pd.DataFrame, embeddings: np.ndarray, excluded: set[str], cfg: SelectConfig) -> pd.DataFrame:
    """Drop excluded sentences, then run the strategy; an over-large batch takes what is left.

    ``embeddings`` may be the memory-mapped float16 file: the candidates' rows are never copied out of it
    at once (a :class:`~nerloop.selection.diversity.RowSubset`), and the strategy converts them to float32 a
    chunk at a time, so a million rows fit in a few GiB.
    """
    keep = ~table["id"].isin(excluded).to_numpy()
    cands = table[keep].reset_index(drop=True)
    emb = embeddings if keep.all() else RowSubset(embeddings, np.flatnonzero(keep))
    if cands.empty:
        log.warning("the pool is empty: every sentence is labelled, exported or in the gold set")
        return cands.assign(rank=[], score=[], cluster=[], reason=[])
    if cfg.batch_size > len(cands):
        log.warning("select.batch_size=%d but only %d sentences are left in the pool: selecting all of them",
                    cfg.batch_size, len(cands))
    if cfg.strategy == "hybrid" and cfg.k > len(cands):
        log.warning("select.k=%d but only %d sentences are left in the pool: using k=%d", cfg.k, len(cands), len(cands))
        cfg = replace(cfg, k=len(cands))
    return select(cands, emb, cfg)


def read_scores(path: str | Path) -> pd.DataFrame:
    """Stage score's table without the pre-annotation columns (``PRE_ANNOTATION``), plus ``row``: each row's
    position in the file, for :func:`pre_annotations` to fetch the chosen rows' ones."""
    scores = pq.ParquetFile(path)
    long = {*PRE_ANNOTATION, WORD_CONF}
    table = scores.read(columns=[c for c in scores.schema_arrow.names if c not in long]).to_pandas()
    return table.assign(row=np.arange(len(table)))


def pre_annotations(path: str | Path, rows: Sequence[int], columns: Sequence[str] = PRE_ANNOTATION
                    ) -> dict[int, dict[str, str]]:
    """The ``columns`` (``PRE_ANNOTATION`` and, for windows, ``WORD_CONF``) of the given rows of stage score's
    table, read batch by batch."""
    wanted, out, start = set(rows), {}, 0
    for batch in pq.ParquetFile(path).iter_batches(columns=list(columns), batch_size=65_536):
        for k in (r - start for r in wanted if start <= r < start + batch.num_rows):
            out[start + k] = {c: batch.column(c)[k].as_py() for c in columns}
        start += batch.num_rows
    return out


def window_columns(path: str | Path) -> list[str]:
    """The columns :func:`pre_annotations` reads for ``select.unit: window``: the pre-annotation and each word's
    confidence, which a table scored for whole sentences lacks (then re-run score, which ``dvc repro`` does)."""
    if WORD_CONF not in pq.ParquetFile(path).schema_arrow.names:
        raise ParamsError("select.unit", f"window needs each word's confidence, which {path} does not hold (scored "
                          "before select.unit was window): re-run the score stage (`dvc repro` does)")
    return [*PRE_ANNOTATION, WORD_CONF]


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def pattern_summary(path: str, matches: dict[str, list[PatternSpan]], batch: list[Record], learned: set[str],
                    bonus: float) -> list[str]:
    """The report's lines on ``data.patterns``: how many candidates and batch sentences match, and how many of
    the batch's pre-annotated spans came from a pattern, so a lead can see what the patterns did this cycle."""
    from_patterns = sum(1 for r in batch for src in r.meta["pre_sources"] if src != "model")
    unlearned = sorted({m.label for spans in matches.values() for m in spans} - learned)
    return [
        "## Patterns",
        "",
        f"`{path}` (pattern bonus {bonus}) matched in {sum(1 for spans in matches.values() if spans)} of "
        f"{len(matches)} candidate sentences "
        f"and {sum(1 for r in batch if matches[r.id])} of the {len(batch)} selected; {from_patterns} of the batch's "
        f"{sum(len(r.meta['pre_spans']) for r in batch)} pre-annotated spans come from a pattern"
        + (f" (types with no labelled example yet, always from patterns: {', '.join(unlearned)})." if unlearned
           else "."),
        "",
    ]


def write_report(
    chosen: pd.DataFrame,
    cfg: SelectConfig,
    cycle: int,
    n_candidates: int,
    counts: dict[str, int],
    rare: set[str],
    texts: dict[str, str],
    pattern_lines: Sequence[str] = (),
) -> None:
    """The batch with each sentence's text and why it was chosen, after the entity counts so far (and, with
    ``data.patterns``, ``pattern_lines``: what the patterns matched and pre-annotated)."""
    lines = [
        f"# Batch for cycle {cycle}",
        "",
        f"Strategy `{cfg.strategy}`, measure `{cfg.measure}`, alpha {cfg.alpha}, k {cfg.k}, "
        f"rare-type bonus {cfg.rare_bonus}{', balanced over predicted entity types' if cfg.balance_types else ''}: "
        f"{len(chosen)} of {n_candidates} candidate sentences, {int(chosen['n_tokens'].sum())} tokens.",
        "",
        *pattern_lines,
        "## Labelled entities so far (seed and annotations), per type",
        "",
        "| type | mentions | |",
        "| --- | ---: | --- |",
    ]
    for t, k in counts.items():
        note = "no example yet: the model cannot learn it" if k == 0 else "rare" if t in rare else ""
        lines.append(f"| {t} | {k} | {note} |")
    lines += [
        "",
        "## Selected sentences",
        "",
        "| rank | sentence id | tokens | score | cluster | why | text |",
        "| ---: | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in chosen.itertuples():
        lines.append(f"| {row.rank} | {row.id} | {row.n_tokens} | {row.score:.3f} | {row.cluster} | {row.reason} "
                     f"| {_cell(texts[row.id])} |")
    with atomic_write(REPORT) as fh:
        fh.write("\n".join(lines) + "\n")


def main() -> None:
    params = load_params()
    ledger = Ledger(paths.LEDGER)
    cycle = ledger.cycle + 1
    cfg = config_from(params.select, cycle)
    labelled = labelled_records(ledger)
    gold = {r.id for r in read_records(paths.GOLD)}
    excluded = {r.id for r in labelled} | exported_before(cycle) | gold

    table = read_scores(paths.SCORES_FILE)
    embeddings = np.load(paths.EMBEDDINGS_FILE, mmap_mode="r")
    counts = type_counts(labelled, entity_types())
    unseen = [t for t, k in counts.items() if k == 0]
    if unseen:
        log.warning("no labelled example yet of type(s) %s: the model cannot learn them; select.rare_bonus > 0 "
                    "favours sentences where the model gives them probability", unseen)
    rare = rare_types(counts, params.select.rare_share)
    table["rare"] = rare_mass(table, rare)
    matches: dict[str, list[PatternSpan]] = {}
    if params.data.patterns is not None:
        pattern_set = load_patterns(params.data.patterns, entity_types(), params.data.tokenizer,
                                    params.data.pattern_attr)
        scored = set(table["id"]) - excluded
        matches = {r.id: pattern_set.match(r.tokens)[1] for r in iter_records(paths.POOL) if r.id in scored}
        table["pattern"] = [len(matches.get(sid, [])) for sid in table["id"]]
    chosen = choose(table, embeddings, excluded, cfg)
    windowed = params.select.unit == "window"
    columns = window_columns(paths.SCORES_FILE) if windowed and len(chosen) else PRE_ANNOTATION
    pre = pre_annotations(paths.SCORES_FILE, chosen["row"].tolist() if len(chosen) else [], columns)
    wanted = set(chosen["id"])  # the pool is streamed, never held: it may have millions of sentences
    pool = {r.id: r for r in iter_records(paths.POOL) if r.id in wanted}

    learned = {t for t, k in counts.items() if k > 0}  # a type with no labelled span: the model cannot propose it
    batch = []
    measures = [c for c in chosen.columns if c in MEASURE_NAMES]
    selection = asdict(cfg)  # travels with each sentence into the ledger: how it was chosen
    if not cfg.balance_types:  # recorded only when on, so that ledgers made without it stay as they were
        del selection["balance_types"]
    if paths.SCORE_SETTINGS.exists():  # ... and from how much of the pool
        selection["score"] = json.loads(paths.SCORE_SETTINGS.read_text(encoding="utf-8"))
    for row in chosen.to_dict("records"):
        rec = pool[row["id"]]
        rec.meta = {
            "cycle": cycle,
            "rank": int(row["rank"]),
            "cluster": int(row["cluster"]),
            "reason": row["reason"],
            "selection": selection,
            "scores": {m: round(float(row[m]), 5) for m in measures},
            "pre_tags": json.loads(pre[row["row"]]["pred_tags"]),
            "pre_spans": json.loads(pre[row["row"]]["pred_spans"]),
        }
        if params.data.patterns is not None:
            rec.meta.update(with_patterns(rec, rec.meta["pre_spans"], matches[rec.id], learned,
                                          params.data.pattern_confidence))
        if windowed:  # after the patterns: the window must not cut any span that is shown
            win = windows.window(json.loads(pre[row["row"]][WORD_CONF]), rec.meta["pre_tags"],
                                 params.select.window_tokens)
            if win is not None:
                rec.meta[WINDOW_KEY] = list(win)
        batch.append(rec)
    write_records(paths.BATCH, batch)
    n_candidates = int((~table["id"].isin(excluded)).sum()) if len(table) else 0
    pattern_lines = ([] if params.data.patterns is None
                     else pattern_summary(params.data.patterns, matches, batch, learned, cfg.pattern_bonus))
    write_report(chosen, cfg, cycle, n_candidates, counts, rare, {r.id: r.text for r in batch}, pattern_lines)
    asked = (f", {sum(labelled_tokens(r.meta.get(WINDOW_KEY), len(r.tokens)) for r in batch)} of them "
             f"asked ({sum(WINDOW_KEY in r.meta for r in batch)} sentences windowed)" if windowed else "")
    print(f"cycle {cycle}: selected {len(batch)} sentences ({sum(len(r.tokens) for r in batch)} tokens{asked}) "
          f"with strategy {cfg.strategy}; report in {REPORT}")


if __name__ == "__main__":
    run(main)
