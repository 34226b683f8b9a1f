"""Where each stage reads and writes, relative to the project root (mirrors dvc.yaml), and where the
package's own files are (templates, server pins), wherever a module that reads them sits."""

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
TEMPLATES = PACKAGE / "templates"  # annotation-tool configs, server scripts, the dataset card
PINS = PACKAGE / "pins"  # one pip constraints file per annotation server's venv

PREPARED = Path("data/prepared")
SEED = PREPARED / "seed.jsonl"
POOL = PREPARED / "pool.jsonl"
GOLD = PREPARED / "gold.jsonl"
LABELS = PREPARED / "labels.json"

ANNOTATIONS = Path("data/annotations")
INBOX = ANNOTATIONS / "inbox.json"  # written by `nerloop cycle` (fetch), read by stage import; git-tracked
LEDGER = ANNOTATIONS / "ledger.jsonl"
PENDING = ANNOTATIONS / "pending.json"

MODEL = Path("models/current")
SCORES = Path("data/scores")
SCORES_FILE = SCORES / "scores.parquet"  # one row per pool sentence: measures, pre-annotation
EMBEDDINGS_FILE = SCORES / "embeddings.npy"  # sentence embeddings, row-aligned with SCORES_FILE
SCORE_SETTINGS = SCORES / "settings.json"  # how much of the pool was scored, and how: recorded with each batch
SELECTION = Path("data/selection")
BATCH = SELECTION / "batch.jsonl"
OUTBOX = Path("data/export/outbox.jsonl")  # written by stage export, sent by `nerloop cycle`
EXPORT_MANIFEST = Path("data/export/manifest.json")  # what was sent: written by `nerloop cycle`; git-tracked

METRICS = Path("metrics")
FINAL = Path("data/final")

JOURNAL = Path(".nerloop/cycle.json")  # git-ignored: the step a running or interrupted `nerloop cycle` reached
