"""DVC stages: one module each, with a ``main()`` that reads its params section and its inputs.

Run one with ``python -m nerloop.stages <name>`` (what dvc.yaml does, through scripts/stage.sh).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from nerloop.errors import NerloopError, scrub

INTERRUPTED = "interrupted: the stage's previous outputs are kept; run it again to resume"


def run(main: Callable[[], None]) -> None:
    """Run a stage: log to stderr; a NerloopError becomes a one-line message (exit 1), Ctrl-C one line (exit 130)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        main()
    except NerloopError as exc:
        print(f"error: {scrub(str(exc))}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        interrupted()


def interrupted() -> None:
    """Ctrl-C: one line and exit code 130; none under ``nerloop cycle``, whose own line says it all."""
    if not os.environ.get("NERLOOP_COMMAND"):
        print(INTERRUPTED, file=sys.stderr)
    sys.exit(130)
