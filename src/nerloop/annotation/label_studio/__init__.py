"""The Label Studio backend, split by concern.

``client``: credentials, the authenticated session, errors. ``projects``: one project per annotator,
the labelling config, listing. ``backend``: export (tasks with predictions) and fetch (submitted
annotations, late corrections, review of disagreements). ``team``: accounts and
``.label-studio/team.json``. Who annotates what (``nerloop.annotation.core.plan``), the decisions
(``nerloop.annotation.core.decide``) and the figures (``nerloop.annotation.core.quality``) are shared with Doccano.
"""

from __future__ import annotations

from nerloop.annotation.label_studio.backend import LabelStudioBackend, LabelStudioFetchResult
from nerloop.annotation.label_studio.client import (
    DEFAULT_HOME,
    ENV_TOKEN,
    ENV_URL,
    LabelStudioAuthError,
    LabelStudioConfigError,
    LabelStudioDataError,
    LabelStudioError,
    LabelStudioHTTPError,
    LabelStudioTimeoutError,
    LabelStudioUnreachableError,
    credentials,
)

__all__ = [
    "DEFAULT_HOME",
    "ENV_TOKEN",
    "ENV_URL",
    "LabelStudioAuthError",
    "LabelStudioBackend",
    "LabelStudioConfigError",
    "LabelStudioDataError",
    "LabelStudioError",
    "LabelStudioFetchResult",
    "LabelStudioHTTPError",
    "LabelStudioTimeoutError",
    "LabelStudioUnreachableError",
    "credentials",
]
