"""Stage ``train``: fine-tune the base model on everything labelled so far.

Always from the base model (never from the previous cycle's), on seed + ledger, with the
recipe of ``train.recipe`` (``model.fit``): by default one run on every labelled sentence for
the epoch count earlier cycles' probes agree on (``metrics/probes.json``, this stage's own
persisted output, versioned with the model); a probe is made only while that history is too
thin or the labelled set has outgrown it. With ``train.entity_swap`` each run also trains on
entity-swapped copies of its training sentences (``model.augment``). The gold set is never seen here.
"""

from __future__ import annotations

import json

from nerloop import paths
from nerloop.data.files import write_json
from nerloop.data.labelled import entity_types, labelled_records
from nerloop.data.tags import label_list
from nerloop.model.training import fit
from nerloop.params import load_params
from nerloop.stages import run

PROBES = paths.METRICS / "probes.json"


def main() -> None:
    params = load_params()
    probes = json.loads(PROBES.read_text(encoding="utf-8")) if PROBES.exists() else []
    summary, probes = fit(labelled_records(), label_list(entity_types()), params.model, params.train, paths.MODEL,
                          probes)
    write_json(PROBES, probes)
    write_json(paths.METRICS / "train.json", summary)
    val_f1 = summary.get("best_validation_f1")
    how = f"best validation F1 {val_f1:.3f}" if val_f1 is not None else f"epochs: {summary['epochs_from']}"
    swapped = f" (+{summary['augmented_sentences']} entity-swapped)" if "augmented_sentences" in summary else ""
    print(f"trained on {summary['train_sentences']} sentences{swapped} for {summary['epochs_run']} epochs "
          f"({summary['recipe']}; {how}), {summary['train_sentences_per_second']} sentences/s")


if __name__ == "__main__":
    run(main)
