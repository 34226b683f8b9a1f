"""The Doccano backend, split by concern.

``client``: credentials, the logged-in session, errors. ``backend``: projects, export (upload +
confidences), fetch (versions, late corrections, review of disagreements). ``team``: accounts and
``.doccano/team.json``. Who annotates what (``nerloop.annotation.core.plan``) and the agreement, speed
and effort figures (``nerloop.annotation.core.quality``) are shared with the Label Studio backend.
"""

from __future__ import annotations

from nerloop.annotation.doccano.backend import DoccanoBackend, DoccanoFetchResult
from nerloop.annotation.doccano.client import (
    DEFAULT_HOME,
    ENV_PASSWORD,
    ENV_URL,
    ENV_USERNAME,
    DoccanoAuthError,
    DoccanoConfigError,
    DoccanoDataError,
    DoccanoError,
    DoccanoHTTPError,
    DoccanoTimeoutError,
    DoccanoUnreachableError,
    credentials,
)

__all__ = [
    "DEFAULT_HOME",
    "ENV_PASSWORD",
    "ENV_URL",
    "ENV_USERNAME",
    "DoccanoAuthError",
    "DoccanoBackend",
    "DoccanoConfigError",
    "DoccanoDataError",
    "DoccanoError",
    "DoccanoFetchResult",
    "DoccanoHTTPError",
    "DoccanoTimeoutError",
    "DoccanoUnreachableError",
    "credentials",
]
