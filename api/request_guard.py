"""Who may send requests at all: the first check every request meets, before the token and before any route.

A runner bound to loopback without a token is reachable by every web page the user visits, not only by local
programs: a page can send "simple" cross-origin requests (a ``no-cors`` fetch, ``sendBeacon``, a form POST) without
a CORS preflight, and DNS rebinding gives a page a name of its own that resolves to 127.0.0.1, so that even the
same-origin policy lets it read the answers. Browsers cannot hide three things, and this middleware checks them:

- ``Host``: a rebinding page's requests carry the attacker's name. The Host must be ``localhost``, ``127.0.0.1``,
  ``[::1]`` (any port), the address the runner is bound to, or a name the operator listed in
  ``HOST_RUNNER_ALLOWED_HOSTS`` (e.g. ``host.docker.internal`` for an orchestrator in a container). Otherwise 403,
  on every route but ``/health`` (health checks from containers and load balancers use whatever name they have).
  On a unix socket, which no browser reaches, the name is not checked.
- ``Origin`` and ``Sec-Fetch-Site``: browsers send ``Origin`` with every POST, and ``Sec-Fetch-Site`` with every
  request. Only the runner's own origin (its dashboard) may use the API from a browser: a foreign ``Origin``, an
  opaque one (``null``) or a ``Sec-Fetch-Site`` other than ``same-origin`` or ``none`` (typed into the address
  bar) is 403. ``same-site`` is refused too: a page on another port of localhost is the same *site* but another
  origin.
- ``Content-Type``: a body must be declared ``application/json`` (415 otherwise, or without one). A browser can
  send that type cross-origin only after a CORS preflight, which fails because the runner sends no CORS headers.

Programs (curl, the CLI, the original control plane) send no ``Origin`` and no ``Sec-Fetch-*`` and name
127.0.0.1 or localhost: nothing changes for them.
"""

from __future__ import annotations

import ipaddress
import re

import falcon

from api.http_errors import ApiError

#: Names that always mean this machine's loopback; a rebinding page cannot make a browser send them as Host.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: Addresses a server binds to in order to listen everywhere: not names a client uses, so never an allowed Host.
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", ""})
#: ``Sec-Fetch-Site`` values a request of the runner's own page (or a typed URL) carries.
OWN_FETCH_SITES = frozenset({"same-origin", "none"})
#: The one route that answers whatever name it is called by.
ANY_HOST_PATHS = frozenset({"/health"})
JSON_MEDIA_TYPE = "application/json"


#: A Host header: a name or IPv4 address, or an IPv6 address in brackets, and an optional numeric port.
HOST_HEADER = re.compile(r"(?P<name>[a-z0-9._-]+|\[(?P<v6>[0-9a-f:.]+)\])(:[0-9]{1,5})?")


def host_name(host_header: str) -> str | None:
    """The name part of a ``Host`` header, lowercased (``127.0.0.1:8765`` -> ``127.0.0.1``, ``[::1]:80`` ->
    ``::1``), or None when the header is not a well-formed host and port (no browser sends such a thing)."""
    match = HOST_HEADER.fullmatch(host_header.strip().lower())
    if match is None:
        return None
    return match.group("v6") or match.group("name")


def bind_host(bind: str) -> str | None:
    """The host of a gunicorn bind address (``HOST:PORT``, ``[V6]:PORT``), or None for a unix socket."""
    if bind.startswith("unix:"):
        return None
    if bind.startswith("["):
        return bind[1:].split("]", 1)[0].lower()
    return bind.rsplit(":", 1)[0].lower() if ":" in bind else bind.lower()


def allowed_host_names(bind: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """Every name this runner answers to: loopback, the bind address (unless it is a wildcard), ``extra``."""
    names = set(LOOPBACK_HOSTS)
    bound = bind_host(bind)
    if bound is not None and bound not in WILDCARD_ADDRESSES:
        names.add(bound)
    names.update(name.strip().lower().strip("[]") for name in extra)
    return frozenset(_canonical(name) for name in names)


def _canonical(name: str) -> str:
    """IP addresses in one spelling (``0:0:0:0:0:0:0:1`` is ``::1``); names as given."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def has_body(req: falcon.Request) -> bool:
    return bool(req.content_length) or req.get_header("Transfer-Encoding") is not None


def is_json(content_type: str | None) -> bool:
    """``application/json``, with or without parameters such as ``charset``."""
    return content_type is not None and content_type.split(";", 1)[0].strip().lower() == JSON_MEDIA_TYPE


class RequestGuard:
    """Falcon middleware refusing requests that do not come from a client of this runner (see the module's text)."""

    def __init__(self, bind: str, allowed_hosts: tuple[str, ...] = ()) -> None:
        self.hosts = allowed_host_names(bind, allowed_hosts)
        # No browser reaches a unix socket (so no page can rebind a name to it), and its clients send whatever
        # Host they like (requests-unixsocket: the socket's path): only the owner's modes decide there.
        self.check_hosts = bind_host(bind) is not None

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        host = req.get_header("Host")
        if self.check_hosts and req.path not in ANY_HOST_PATHS:
            self._check_host(host)
        self._check_browser(req, host)
        if has_body(req) and not is_json(req.content_type):
            raise ApiError(falcon.HTTP_415, "a request body must be JSON, declared as 'Content-Type: "
                                            "application/json'")

    def _check_host(self, host: str | None) -> None:
        # No Host at all: an HTTP/1.0 program. Every browser sends one, so its absence is no browser's request.
        if host is None:
            return
        name = host_name(host)
        if name is None:
            raise ApiError(falcon.HTTP_403, "the Host header is not a host name and port")
        if _canonical(name) not in self.hosts:
            raise ApiError(falcon.HTTP_403, f"this runner does not answer to the name {name!r}; "
                                            "add it to HOST_RUNNER_ALLOWED_HOSTS if it is yours")

    @staticmethod
    def _check_browser(req: falcon.Request, host: str | None) -> None:
        origin = req.get_header("Origin")
        if origin is not None:
            own = {f"http://{host.strip().lower()}", f"https://{host.strip().lower()}"} if host else set()
            if origin.strip().lower() not in own:
                raise ApiError(falcon.HTTP_403, "requests from web pages of other origins are refused")
        site = req.get_header("Sec-Fetch-Site")
        if site is not None and site.strip().lower() not in OWN_FETCH_SITES:
            raise ApiError(falcon.HTTP_403, f"requests from other sites are refused (Sec-Fetch-Site: {site})")


__all__ = ["RequestGuard", "allowed_host_names", "host_name", "is_json"]
