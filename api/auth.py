"""Bearer-token authentication for every route except ``/health`` and the dashboard's static files (which hold
no data: see api/ui)."""

from __future__ import annotations

import hmac

import falcon

from api.http_errors import ApiError
from api.ui import PUBLIC_PATHS as DASHBOARD_PATHS, PUBLIC_PREFIX as DASHBOARD_PREFIX

OPEN_PATHS = frozenset({"/health", *DASHBOARD_PATHS})


class TokenAuth:
    """Falcon middleware: ``Authorization: Bearer <token>`` compared in constant time."""

    def __init__(self, token: str) -> None:
        self.expected = token.encode("utf-8")

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path in OPEN_PATHS or req.path.startswith(DASHBOARD_PREFIX):
            return
        header = req.get_header("Authorization") or ""
        scheme, _, supplied = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(supplied.strip().encode("utf-8"), self.expected):
            raise ApiError(falcon.HTTP_401, "a valid 'Authorization: Bearer <token>' header is required")
