"""DVC stages: one module each, with a ``main()`` that reads its params section and its inputs.

Run one with ``python -m nerloop.stages.<name>`` (that is what dvc.yaml does).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from nerloop.errors import NerloopError


def run(main: Callable[[], None]) -> None:
    """Run a stage: log to stderr, and turn a NerloopError into a one-line message and exit 1."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        main()
    except NerloopError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
