"""Stage ``export``: send the selected batch, with pre-annotations, to the annotation backend.

Idempotent: the backend skips sentences it already holds, and the manifest (sentence id
-> backend example id, with the cycle) only grows, so re-running never sends twice.
"""

from __future__ import annotations

import json

from nerloop import paths
from nerloop.annotation import get_backend
from nerloop.formats import read_records, write_json
from nerloop.labelled import entity_types
from nerloop.params import load_params
from nerloop.stages import run


def load_manifest() -> dict:
    if paths.EXPORT_MANIFEST.exists():
        return json.loads(paths.EXPORT_MANIFEST.read_text(encoding="utf-8"))
    return {"backend": None, "examples": {}}


def main() -> None:
    params = load_params()
    batch = read_records(paths.BATCH)
    manifest = load_manifest()
    if not batch:
        print("nothing to export: the batch is empty")
        write_json(paths.EXPORT_MANIFEST, manifest)
        return
    cycle = batch[0].meta["cycle"]
    backend = get_backend(params, entity_types())
    sent = backend.export(batch, cycle)
    manifest["backend"] = backend.name
    manifest["project"] = backend.project_id()
    new = 0
    for sid, example_id in sent.items():
        if sid not in manifest["examples"]:
            manifest["examples"][sid] = {"example": str(example_id), "cycle": cycle}
            new += 1
    write_json(paths.EXPORT_MANIFEST, manifest)
    print(f"cycle {cycle}: {new} sentences exported to {backend.name} ({len(batch) - new} were already there)")


if __name__ == "__main__":
    run(main)
