"""nerloop: grow a named-entity-recognition dataset with active learning."""

import os

# The model hub is reached only for a model.base that names a hub id not yet in the cache (model.resolve_base).
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # keep stage logs to what matters

__version__ = "0.1.0"
