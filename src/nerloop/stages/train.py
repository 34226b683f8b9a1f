"""Stage ``train``: fine-tune the base model on everything labelled so far.

Always from the base model (never from the previous cycle's), on seed + ledger, with the
recipe of ``train.recipe`` (``model.fit``): by default a probe run with a held-out share picks
the epoch count, then the model is trained on every labelled sentence. The gold set is never
seen here.
"""

from __future__ import annotations

from nerloop import paths
from nerloop.formats import write_json
from nerloop.labelled import entity_types, labelled_records
from nerloop.model import fit
from nerloop.params import load_params
from nerloop.stages import run
from nerloop.tags import label_list


def main() -> None:
    params = load_params()
    summary = fit(labelled_records(), label_list(entity_types()), params.model, params.train, paths.MODEL)
    write_json(paths.METRICS / "train.json", summary)
    print(f"trained on {summary['train_sentences']} sentences for {summary['epochs_run']} epochs "
          f"({summary['recipe']}; best validation F1 {summary['best_validation_f1']:.3f}), "
          f"{summary['train_sentences_per_second']} sentences/s")


if __name__ == "__main__":
    run(main)
