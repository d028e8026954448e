"""The dashboard: a static page (HTML, CSS and one script, no build step, nothing from another host) served
by the app at ``GET /``, ``/ui`` and ``/ui/{asset}``.

The page and its two assets hold no data, so they are served without the token (like /health): a browser
cannot send a bearer header when it follows a link, and putting the token in the URL would leak it into
history and logs. The page asks for the token once, keeps it in ``sessionStorage`` and sends it as
``Authorization: Bearer`` on every API call; every piece of data it shows comes from token-protected routes.
"""

from __future__ import annotations

from importlib import resources

import falcon

from api.http_errors import ApiError

# name -> content type; only these files are served (no path from the request ever reaches the filesystem)
ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
PAGE_PATHS = ("/", "/ui")
PUBLIC_PATHS = frozenset(PAGE_PATHS)
PUBLIC_PREFIX = "/ui/"  # the assets (an unknown name answers 404, not 401: nothing under it is secret)

# The page runs only its own script and talks only to this origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _load(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()


class DashboardResource:
    """``GET /`` and ``GET /ui`` (the page) and ``GET /ui/{name}`` (its script and stylesheet)."""

    def __init__(self) -> None:
        self.files = {name: _load(name) for name in ASSETS}

    def _send(self, resp: falcon.Response, name: str) -> None:
        resp.content_type = ASSETS[name]
        resp.data = self.files[name]
        for header, value in SECURITY_HEADERS.items():
            resp.set_header(header, value)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._send(resp, "index.html")

    def on_get_asset(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name not in ASSETS or name == "index.html":
            raise ApiError(falcon.HTTP_404, f"no dashboard file {name}")
        self._send(resp, name)
