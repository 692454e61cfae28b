"""The built-in web UI on the HTTP API port: the files ``ui/`` builds into the package
(``threadline/ui_dist``, package data, never committed). ``/assets/*`` are served as they are
(their names carry a content hash, so they are cached for good); the UI's pages (``/``,
``/search``, ``/trace/<id>`` ...) all answer ``index.html`` and route in the browser."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from threadline.http_server import tenantless

UI_DIR = Path(__file__).resolve().parent.parent / "ui_dist"
PAGES = (
    "/logs",
    "/",
    "/search",
    "/trace/{id}",
    "/compare",
    "/compare/{ids:.*}",
    "/services{rest:.*}",
    "/differences",
)
NOT_BUILT = (
    "threadline's web UI is not built: `make run` builds it (npm ci and vite build in ui/), "
    "or run `npm ci && npm run build` in ui/\n"
)


class WebUIRoutes:
    def __init__(self, directory: Path = UI_DIR) -> None:
        self.directory = directory

    def routes(self) -> list[web.RouteDef]:
        return [
            *(web.get(page, self.page) for page in PAGES),
            web.get("/assets/{name}", self.asset),
        ]

    @tenantless
    async def page(self, request: web.Request) -> web.StreamResponse:
        index = self.directory / "index.html"
        if not index.is_file():
            return web.Response(status=503, text=NOT_BUILT)
        # the page names its assets by content hash: it is fetched afresh, they are not
        return web.FileResponse(index, headers={"Cache-Control": "no-cache"})

    @tenantless
    async def asset(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = self.directory / "assets" / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise web.HTTPNotFound(text=f"no such asset: {name}")
        return web.FileResponse(
            path, headers={"Cache-Control": "public, max-age=31536000, immutable"}
        )
