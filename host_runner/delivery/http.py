"""Status callbacks over HTTP: one blocking attempt at sending an event, and where it may connect.

The CallbackActor (actors/callback_sender.py) decides *when* to send; :func:`attempt` is one blocking HTTP
attempt that the actor runs in a worker thread. The event's body and signed headers come from
host_runner/store/outbox.py, what its answer means from host_runner/delivery/retry.py.

Allowed hosts (when ``HOST_RUNNER_CALLBACK_ALLOWED_HOSTS`` is set): every attempt first checks where it would
go (:func:`destination`, rules in host_runner/domain/callback_hosts.py); a name that needs its addresses checked
is resolved here, once, and the connection goes to exactly those addresses (:class:`PinnedAdapter`), so a DNS
answer that changes between the check and the connection (rebinding) cannot send it elsewhere.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.util.connection

from host_runner.delivery.retry import Outcome, classify
from host_runner.domain.callback_hosts import NOT_ALLOWED, HostAllowlist, ip_literal
from host_runner.store.outbox import Delivery, headers_for

#: At most this much of a receiver's answer is read (and thrown away), so a huge answer cannot cost memory.
MAX_RESPONSE_BYTES = 64 * 1024


def receiver_of(url: str) -> str:
    """The lane an URL belongs to: scheme, host and port (never the user info or path, which may hold secrets)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a bad port: the attempt will fail on its own; the lane only needs a name
        return f"{parts.scheme}://{(parts.hostname or '').lower()}:?"
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def new_session() -> requests.Session:
    """A session for :func:`attempt`. It does not read the environment on every request (``trust_env``: proxy
    variables, CA bundle variables and ``~/.netrc``, a third of a request's CPU); :func:`attempt` applies the
    proxy and CA settings, read once per receiver. ``~/.netrc`` credentials are never sent to a receiver."""
    session = requests.Session()
    session.trust_env = False
    return session


@functools.lru_cache(maxsize=1024)
def environment_settings(receiver: str) -> tuple[dict[str, str], bool | str]:
    """(proxies, verify) from the environment for a receiver (``HTTP(S)_PROXY``/``NO_PROXY``,
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``), as requests would read them on every request."""
    proxies = requests.utils.get_environ_proxies(receiver + "/")
    verify: bool | str = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return proxies, verify


def resolve(host: str, port: int) -> list[str]:
    """The addresses a TCP connection to ``host`` may use, in the resolver's order, without repeats (blocking:
    worker threads only). The one place callbacks resolve names, so that tests can stand in for DNS."""
    found: list[str] = []
    for _family, _type, _proto, _name, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = str(sockaddr[0])
        if address not in found:
            found.append(address)
    return found


class NotAllowed(Exception):
    """The attempt would go somewhere ``HOST_RUNNER_CALLBACK_ALLOWED_HOSTS`` does not allow."""


def sender_host(url: str) -> str:
    """The host requests (urllib3) will connect to for ``url``, spelt as ``urlsplit`` spells it. They parse some
    URLs differently (urllib3 ends the host at a backslash, urlsplit does not): a check made on one parser's
    host must be made on the other's too."""
    try:
        host = urllib3.util.parse_url(url).host or ""
    except urllib3.exceptions.LocationParseError:
        return ""
    return host[1:-1].lower() if host.startswith("[") else host.lower()


def destination(url: str, allowed: HostAllowlist, proxies: Mapping[str, str]) -> tuple[str, ...] | None:
    """Where an attempt to ``url`` may connect under ``allowed``: None to connect as requests would (a listed
    name, trusted as a name; an allowed IP literal, which needs no lookup), or the checked addresses to connect
    to instead of resolving the name again. Raises :class:`NotAllowed`, or OSError when the name does not
    resolve (a retryable connection failure, as it would be without the setting)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if sender_host(url) != host:
        raise NotAllowed()  # the check and the connection would not be about the same host (see sender_host)
    literal = ip_literal(host)
    if literal is not None:
        if not allowed.allows_address(literal):
            raise NotAllowed()
        return None
    if allowed.trusts_name(host):
        return None
    # A name not listed (the event was stored under another setting): its addresses decide.
    if requests.utils.select_proxy(url, dict(proxies)):
        raise NotAllowed()  # a proxy would resolve the name itself: its addresses cannot be held to the check
    addresses = resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    checked = [ip_literal(address) for address in addresses]  # a zone (fe80::1%eth0) is kept, and not allowed
    if not checked or not all(address is not None and allowed.allows_address(address) for address in checked):
        raise NotAllowed()
    return tuple(addresses)


def _connect_pinned(connection: urllib3.connection.HTTPConnection, addresses: tuple[str, ...]) -> socket.socket:
    """urllib3's ``_new_conn``, but to ``addresses`` (checked) instead of a fresh lookup of the URL's host."""
    error: OSError | None = None
    for address in addresses:
        try:
            return urllib3.util.connection.create_connection(
                (address, connection.port), connection.timeout, source_address=connection.source_address,
                socket_options=connection.socket_options)
        except OSError as exc:  # the next address, as urllib3 does with the resolver's list
            error = exc
    if isinstance(error, TimeoutError):
        raise urllib3.exceptions.ConnectTimeoutError(connection, f"connect timeout={connection.timeout}")
    raise urllib3.exceptions.NewConnectionError(connection, f"Failed to establish a new connection: {error}")


class _PinnedHTTPConnection(urllib3.connection.HTTPConnection):
    def __init__(self, *args: Any, addresses: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.addresses = addresses

    def _new_conn(self) -> socket.socket:
        return _connect_pinned(self, self.addresses)


class _PinnedHTTPSConnection(urllib3.connection.HTTPSConnection):
    """Only the TCP connection is pinned: TLS still sends the URL's host as SNI and checks the certificate
    against it (``connect`` takes them from ``self.host``, which stays the name)."""

    def __init__(self, *args: Any, addresses: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.addresses = addresses

    def _new_conn(self) -> socket.socket:
        return _connect_pinned(self, self.addresses)


class PinnedAdapter(requests.adapters.HTTPAdapter):
    """A transport adapter whose connections go to ``addresses`` whatever the URL's host resolves to by then;
    the host stays the URL's for the Host header, SNI and certificate checks. One per attempt (its pools hold
    connections to those addresses only)."""

    def __init__(self, addresses: tuple[str, ...]) -> None:
        self.addresses = addresses
        super().__init__()

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: bool | str | None,
                                        proxies: Mapping[str, str] | None = None,
                                        cert: Any = None) -> urllib3.connectionpool.HTTPConnectionPool:
        pool = super().get_connection_with_tls_context(request, verify, proxies, cert)  # type: ignore[arg-type]
        kind = (_PinnedHTTPSConnection if isinstance(pool, urllib3.connectionpool.HTTPSConnectionPool)
                else _PinnedHTTPConnection)
        pool.ConnectionCls = functools.partial(kind, addresses=self.addresses)  # type: ignore[assignment]
        return pool


def attempt(session: requests.Session, delivery: Delivery, secret: str | None, timeout: float,
            allowed: HostAllowlist | None = None) -> Outcome:
    """POST one event once. Blocking: runs in a worker thread, never in an actor.

    With ``allowed`` (``HOST_RUNNER_CALLBACK_ALLOWED_HOSTS``), a destination it does not allow is refused
    before any connection, finally, with an error that says nothing about the target."""
    proxies, verify = environment_settings(receiver_of(delivery.url))
    if allowed is None:
        return _post(session, delivery, secret, timeout, proxies, verify)
    try:
        addresses = destination(delivery.url, allowed, proxies)
    except (NotAllowed, ValueError):  # ValueError: not even a name the resolver takes (a label over 63 bytes)
        return Outcome(False, False, NOT_ALLOWED)
    except OSError:  # the name did not resolve: what requests reports as a connection error
        return Outcome(False, True, "connection failed")
    if addresses is None:
        return _post(session, delivery, secret, timeout, proxies, verify)
    # A session of its own: the thread's pools hold connections made by name, which must not be reused here.
    with new_session() as pinned:
        pinned.mount("http://", PinnedAdapter(addresses))
        pinned.mount("https://", PinnedAdapter(addresses))
        return _post(pinned, delivery, secret, timeout, proxies, verify)


def _post(session: requests.Session, delivery: Delivery, secret: str | None, timeout: float,
          proxies: dict[str, str], verify: bool | str) -> Outcome:
    try:
        # No redirects: following one would hand the token to whatever host the Location names.
        response = session.post(delivery.url, data=delivery.body.encode("ascii"),
                                headers=headers_for(delivery, secret), timeout=timeout, allow_redirects=False,
                                stream=True, proxies=proxies, verify=verify)
    except requests.Timeout:
        return Outcome(False, True, f"timed out after {timeout:g} s")
    except requests.ConnectionError:
        return Outcome(False, True, "connection failed")
    except requests.RequestException as exc:  # an invalid URL and the like: retrying cannot help
        return Outcome(False, False, f"request failed ({type(exc).__name__})")
    try:
        read, deadline = 0, time.monotonic() + timeout
        for chunk in response.iter_content(8192):  # read a small answer fully, so the connection is reused
            read += len(chunk)
            if read > MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                break
    except requests.RequestException:
        pass  # the status line arrived, which is what counts
    finally:
        response.close()
    return classify(response.status_code)
