"""The Doccano backend, split by concern.

``client``: credentials, the logged-in session, errors. ``plan``: who annotates what, in which
order. ``backend``: projects, export (upload + confidences), fetch (versions, late corrections,
review of disagreements). ``quality``: agreement, speed and effort figures. ``team``: accounts
and ``.doccano/team.json``.
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
