"""Annotation backends behind one interface: the simulated annotator, Doccano and Label Studio."""

from __future__ import annotations

from nerloop.annotation.core.base import AnnotationBackend, FetchResult
from nerloop.data.annotations import Annotation
from nerloop.params import Params

__all__ = ["Annotation", "AnnotationBackend", "FetchResult", "get_backend"]


def get_backend(params: Params, entity_types: list[str]) -> AnnotationBackend:
    """The backend chosen by ``annotation.backend`` in params.yaml."""
    p = params.annotation
    if p.backend == "simulated":
        from nerloop.annotation.simulated import SimulatedBackend

        return SimulatedBackend(p.simulated.answers, p.simulated.state_dir, params.data.tokenizer)
    if p.backend == "label_studio":
        from nerloop.annotation.label_studio import LabelStudioBackend

        return LabelStudioBackend.from_params(p.label_studio, entity_types)
    from nerloop.annotation.doccano import DoccanoBackend

    return DoccanoBackend.from_params(p.doccano, entity_types)
