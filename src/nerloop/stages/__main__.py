"""``python -m nerloop.stages NAME``: run one stage (what dvc.yaml's commands do, via scripts/stage.sh).

Importing a stage loads torch and transformers, which takes seconds; a Ctrl-C in that time would
print a long import traceback. Importing the stage here, under the same handling as its run,
makes any Ctrl-C one line and exit code 130.
"""

from __future__ import annotations

import importlib
import sys

from nerloop.stages import interrupted, run


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m nerloop.stages NAME (e.g. prepare, train, import_annotations)")
    try:
        module = importlib.import_module(f"nerloop.stages.{sys.argv[1]}")
    except KeyboardInterrupt:
        interrupted()
    run(module.main)


if __name__ == "__main__":
    main()
