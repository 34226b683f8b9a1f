#!/usr/bin/env bash
# Create .venv and install nerloop with everything it needs (idempotent; safe to re-run).
# torch is pinned to 2.13.0: on a machine without a GPU set TORCH_INDEX_URL to PyTorch's CPU
# index if your PyPI mirror would otherwise pull the CUDA build (several GB). Every other package is held at
# the versions of a known-good install (constraints.txt), so a new release upstream cannot break a fresh setup.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), f"nerloop needs Python 3.11, found {sys.version}"'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
.venv/bin/python -c 'import torch; print(f"nerloop installed: torch {torch.__version__}, GPU: {torch.cuda.is_available()}")'
