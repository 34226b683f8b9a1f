#!/usr/bin/env bash
# The test command: set up .venv (idempotent), check style, run the whole test suite.
# Tests marked `doccano` install Doccano's own venv under .doccano/ on first use (~2 min).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/python -m pytest -q "$@"
