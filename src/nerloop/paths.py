"""Where each stage reads and writes, relative to the project root (mirrors dvc.yaml)."""

from pathlib import Path

PREPARED = Path("data/prepared")
SEED = PREPARED / "seed.jsonl"
POOL = PREPARED / "pool.jsonl"
GOLD = PREPARED / "gold.jsonl"
LABELS = PREPARED / "labels.json"

ANNOTATIONS = Path("data/annotations")
LEDGER = ANNOTATIONS / "ledger.jsonl"
PENDING = ANNOTATIONS / "pending.json"

MODEL = Path("models/current")
SCORES = Path("data/scores")
SELECTION = Path("data/selection")
BATCH = SELECTION / "batch.jsonl"
EXPORT_MANIFEST = Path("data/export/manifest.json")

METRICS = Path("metrics")
FINAL = Path("data/final")
