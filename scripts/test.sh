#!/usr/bin/env bash
# The test command: set up .venv (idempotent), check style, run the whole test suite.
# Tests marked `doccano` install Doccano's own venv under .doccano/ on first use (~2 min), tests marked
# `label_studio` Label Studio's under .label-studio/ (~4 min, then ~20 s a server start).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Doccano and Label Studio browser tests drive Debian's chromium through chromium-driver (apt, root
# only). Idempotent; where it cannot be installed the tests skip and say why.
if ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
      || echo "note: chromium / chromium-driver could not be installed; the browser test will skip" >&2
  else
    echo "note: no chromedriver and not root: the browser test will skip (apt-get install chromium chromium-driver)" >&2
  fi
fi
.venv/bin/ruff check src tests benchmarks scripts
.venv/bin/python -m pytest -q "$@"
