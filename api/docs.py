"""/docs: Swagger UI from pinned, vendored files served by the app itself.

FastAPI's own page loads an unpinned Swagger UI from a public CDN and starts it with an inline
script, which the Content-Security-Policy (api/shield.py) forbids. This page loads
swagger-ui-dist 5.35.0 from `api/docs_assets/` (see its README for the hashes) and starts it from a
static file. Nothing is fetched from elsewhere, at run time or build time.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).resolve().parent / "docs_assets"
SWAGGER_UI_VERSION = "5.35.0"

# Relative URLs: /docs resolves them under the same root path as itself (behind a path-prefixing proxy too).
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Citizen Vault API</title>
<link rel="stylesheet" href="docs/assets/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui/swagger-ui-bundle.js"></script>
<script src="docs/assets/docs-init.js"></script>
</body>
</html>
"""


async def _page(_: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


def install(app: FastAPI) -> None:
    """Serve /docs and its assets (create the app with docs_url=None so FastAPI's page is not added)."""
    app.add_route("/docs", _page, methods=["GET"], include_in_schema=False)
    app.mount("/docs/assets", StaticFiles(directory=ASSETS), name="docs-assets")
