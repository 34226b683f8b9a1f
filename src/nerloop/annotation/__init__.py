"""Annotation backends behind one interface: the simulated annotator, Doccano and Label Studio."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from nerloop.annotation.core.base import AnnotationBackend, FetchResult
from nerloop.data.annotations import Annotation
from nerloop.params import Params

if TYPE_CHECKING:
    from nerloop.annotation.core.cli import ToolCli

__all__ = ["TOOLS", "Annotation", "AnnotationBackend", "FetchResult", "get_backend", "tool_cli"]

# The tools with a local server and their own `nerloop <verb> ...` commands: the verb -> their package here
# (the package's name is also ``annotation.backend`` and the params section). A new tool is one more folder
# beside these (client, tasks, backend, server recipe, cli) and one more entry.
TOOLS = {"doccano": "doccano", "label-studio": "label_studio"}


def tool_cli(verb: str) -> ToolCli:
    """The ``nerloop <verb> ...`` commands of one tool, imported when asked for (each pulls in its client)."""
    return importlib.import_module(f"nerloop.annotation.{TOOLS[verb]}.cli").CLI


def get_backend(params: Params, entity_types: list[str]) -> AnnotationBackend:
    """The backend chosen by ``annotation.backend`` in params.yaml."""
    p = params.annotation
    if p.backend == "simulated":
        from nerloop.annotation.simulated import SimulatedBackend

        return SimulatedBackend(p.simulated.answers, p.simulated.state_dir, params.data.tokenizer)
    tool = tool_cli(next(verb for verb, package in TOOLS.items() if package == p.backend))
    return tool.backend_class.from_params(getattr(p, tool.params_key), entity_types)
