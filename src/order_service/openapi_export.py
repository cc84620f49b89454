"""The committed OpenAPI document (`order-service openapi`, docs/openapi.json).

Builds the app to read its document; kept apart from openapi.py, whose
helpers the routers import, so that no module imports the app it is part of.
"""

from __future__ import annotations

import json
from typing import Any

from order_service.app import create_app
from order_service.config import load_settings


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, independent of any deployment's settings."""
    # The document does not depend on secrets; placeholders satisfy validation.
    settings = load_settings(
        internal_api_key="placeholder",
        jwt_algorithm="HS256",
        jwt_secret="placeholder",  # noqa: S106 - not a secret: only builds the document
        _env_file=None,
    )
    return create_app(settings).openapi()


def serialize(document: dict[str, Any]) -> str:
    """The document as docs/openapi.json holds it."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
