#!/bin/sh
# Run one nerloop stage (`sh scripts/stage.sh prepare` = `python -m nerloop.stages prepare`) with the
# Python that has nerloop installed, so that `.venv/bin/dvc repro` works without activating the venv.
# The first of these that exists:
# $NERLOOP_PYTHON, the active virtual environment's python, the project's .venv, python3 on PATH.
set -e
stage=$1
for py in "${NERLOOP_PYTHON:-}" "${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}" .venv/bin/python; do
    if [ -n "$py" ] && [ -x "$py" ]; then exec "$py" -m nerloop.stages "$stage"; fi
done
exec python3 -m nerloop.stages "$stage"
