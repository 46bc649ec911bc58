"""Serving the built web UI (web/dist) at /, with index.html for client-side routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

NOT_BUILT = """<!doctype html><title>trainlog</title>
<p>The web UI is not built. Run <code>make run</code> (or <code>cd web && npm ci && npm run
build</code>). The API is at <a href="/docs">/docs</a>.</p>"""


def mount_web(app: FastAPI, dist: Path) -> None:
    index = dist / "index.html"
    if (dist / "assets").is_dir():
        # Vite names assets by content hash, so they may be cached for good.
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="assets")

    @app.get("/{path:path}", include_in_schema=False)
    def client_route(path: str) -> Response:
        if path == "api" or path.startswith("api/"):
            return JSONResponse({"detail": "not found"}, status_code=404)
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503)
        root = dist.resolve()
        file = (root / path).resolve()
        if path and file.is_relative_to(root) and file.is_file():
            return FileResponse(file)
        return FileResponse(index, headers={"Cache-Control": "no-cache"})
