"""Interactive API docs (/docs, /redoc) served without the internet.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on an offline
network or a locked-down laptop they are blank. The scripts and stylesheet
come from the `fastapi-offline` wheel instead (Swagger UI 5, which renders
OpenAPI 3.1; the `swagger-ui-bundle` wheel still ships Swagger UI 4, which
refuses 3.1 documents), mounted under /docs/assets.
"""

from __future__ import annotations

import importlib.resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS_PATH = "/docs/assets"
# The folder of the installed package: files, not network.
_ASSETS_DIR = importlib.resources.files("fastapi_offline") / "static"


def install_docs(app: FastAPI, *, title: str) -> None:
    """Add /docs, /redoc and their assets; the app must be built with docs_url=redoc_url=None."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS_PATH, StaticFiles(directory=str(_ASSETS_DIR)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            # ReDoc's default page pulls fonts from Google: not offline.
            with_google_fonts=False,
        )
