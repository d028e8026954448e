"""Status callbacks over HTTP: one blocking attempt at sending an event, and where it may connect.

The CallbackActor (actors/callback_sender.py) decides *when* to send; :func:`attempt` is one blocking HTTP
attempt that the actor runs in a worker thread, with that thread's :class:`Sender`. The event's body and signed
headers come from host_runner/store/outbox.py, what its answer means from host_runner/delivery/retry.py.

Connections: a callback is two small POSTs per task, so the per-request machinery of ``requests`` (preparing,
merging settings, hooks, adapters: about 0.3 ms of CPU per POST, four times ``http.client``'s) was most of what
a callback cost the worker. A :class:`Sender` keeps one persistent ``http.client`` connection per destination
instead. Only a receiver reached through a proxy (``HTTP(S)_PROXY``) is sent to with ``requests``, which
speaks to proxies; those are rare and were never pinned (see below).

Allowed hosts (when ``HOST_RUNNER_CALLBACK_ALLOWED_HOSTS`` is set): every attempt first checks where it would
go (:func:`destination`, rules in host_runner/domain/callback_hosts.py); a name that needs its addresses checked
is resolved here, once, and the connection goes to exactly those addresses (a connection kept for them, never
one made by name), so a DNS answer that changes between the check and the connection (rebinding) cannot send
it elsewhere. TLS still sends the name as SNI and checks the certificate against it.
"""

from __future__ import annotations

import base64
import functools
import http.client
import os
import select
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

import requests
import requests.certs
import urllib3.exceptions
import urllib3.util

from host_runner.delivery.retry import Outcome, classify
from host_runner.domain.callback_hosts import NOT_ALLOWED, HostAllowlist, ip_literal
from host_runner.store.outbox import Delivery, headers_for

#: At most this much of a receiver's answer is read (and thrown away), so a huge answer cannot cost memory.
MAX_RESPONSE_BYTES = 64 * 1024
#: Connections a sender keeps open (the least recently used one is closed past this).
MAX_KEPT_CONNECTIONS = 32
#: Errors of a kept connection that the receiver closed meanwhile: the request is sent once more on a new one.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def receiver_of(url: str) -> str:
    """The lane an URL belongs to: scheme, host and port (never the user info or path, which may hold secrets)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a bad port: the attempt will fail on its own; the lane only needs a name
        return f"{parts.scheme}://{(parts.hostname or '').lower()}:?"
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


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
    """Where an attempt to ``url`` may connect under ``allowed``: None to connect by the URL's host (a listed
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


class Sender:
    """One worker thread's means of sending: its kept connections (not thread-safe: one per thread)."""

    def __init__(self) -> None:
        self._connections: OrderedDict[tuple[Any, ...], http.client.HTTPConnection] = OrderedDict()
        self._session: requests.Session | None = None

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
        if self._session is not None:
            self._session.close()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float,
             addresses: tuple[str, ...] | None, proxies: dict[str, str], verify: bool | str) -> Outcome:
        """POST ``body`` to ``url`` once (to ``addresses`` when given) and classify the answer."""
        if requests.utils.select_proxy(url, proxies):
            return self._post_through_proxy(url, body, headers, timeout, proxies, verify)
        parts = urlsplit(url)
        try:
            key, target = _destination_key(parts, addresses, verify), _request_target(parts)
        except (ValueError, UnicodeError):
            return Outcome(False, False, "request failed (InvalidURL)")
        if key is None:
            return Outcome(False, False, "request failed (InvalidSchema)")
        headers = {**headers, **_basic_auth(parts)}
        connection, reused = self._connection(key, timeout)
        try:
            try:
                response = _exchange(connection, target, body, headers)
            except _STALE:
                if not reused:
                    raise
                connection.close()  # the receiver closed it while it was kept: once more, on a new connection
                response = _exchange(connection, target, body, headers)
        except TimeoutError:
            connection.close()
            return Outcome(False, True, f"timed out after {timeout:g} s")
        except (OSError, http.client.HTTPException):  # refused, reset, TLS refused, not HTTP
            connection.close()
            return Outcome(False, True, "connection failed")
        if not _drain(response, timeout):
            connection.close()  # the rest of the answer was not read: the connection cannot carry another request
        return classify(response.status)

    def _connection(self, key: tuple[Any, ...], timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        """The kept connection for ``key`` (made if there is none) and whether it was used before."""
        connection = self._connections.get(key)
        if connection is not None:
            self._connections.move_to_end(key)
            if connection.sock is not None and _dropped(connection.sock):
                connection.close()  # the receiver closed it: http.client opens a new one for the next request
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            return connection, connection.sock is not None
        scheme, host, port, addresses, verify = key
        if scheme == "https":
            connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=tls_context(verify))
        else:
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
        if addresses is not None:
            # http.client's own seam for making the TCP connection: to the checked addresses, not to a new lookup.
            connection._create_connection = functools.partial(_connect_pinned, addresses)  # type: ignore[attr-defined]
        self._connections[key] = connection
        if len(self._connections) > MAX_KEPT_CONNECTIONS:
            self._connections.popitem(last=False)[1].close()
        return connection, False

    def _post_through_proxy(self, url: str, body: bytes, headers: dict[str, str], timeout: float,
                            proxies: dict[str, str], verify: bool | str) -> Outcome:
        if self._session is None:
            # Not reading the environment on every request (``trust_env``): the proxy and CA settings are read
            # once per receiver (environment_settings), and ``~/.netrc`` credentials never reach a receiver.
            self._session = requests.Session()
            self._session.trust_env = False
        try:
            # No redirects: following one would hand the token to whatever host the Location names.
            response = self._session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False,
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


def _destination_key(parts: SplitResult, addresses: tuple[str, ...] | None,
                     verify: bool | str) -> tuple[Any, ...] | None:
    """What a kept connection is for: scheme, host (IDNA), port, the pinned addresses and the CA setting. None
    for a scheme other than http(s). Raises ValueError (a bad port, no host) or UnicodeError (a bad name)."""
    if parts.scheme not in ("http", "https"):
        return None
    host = parts.hostname
    if not host:
        raise ValueError("no host")
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    return (parts.scheme, host, parts.port or (443 if parts.scheme == "https" else 80), addresses, verify)


def _request_target(parts: SplitResult) -> str:
    """The path and query as sent, quoted as requests would quote them."""
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return requests.utils.requote_uri(target)


def _basic_auth(parts: SplitResult) -> dict[str, str]:
    """Credentials in the URL (``http://user:password@host/``) as an Authorization header, as requests sends them."""
    if parts.username is None or parts.password is None:
        return {}
    pair = f"{unquote(parts.username)}:{unquote(parts.password)}"
    try:
        raw = pair.encode("latin-1")
    except UnicodeEncodeError:
        raw = pair.encode("utf-8")
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def _exchange(connection: http.client.HTTPConnection, target: str, body: bytes,
              headers: dict[str, str]) -> http.client.HTTPResponse:
    connection.request("POST", target, body=body, headers=headers)
    return connection.getresponse()


def _drain(response: http.client.HTTPResponse, timeout: float) -> bool:
    """Read (and throw away) a small answer fully, so that its connection can be kept; False when it was not
    read to its end (too large, too slow, broken)."""
    read, deadline = 0, time.monotonic() + timeout
    try:
        while chunk := response.read(8192):
            read += len(chunk)
            if read > MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                return False
    except (OSError, http.client.HTTPException):
        return False  # the status line arrived, which is what counts
    return not response.will_close


def _dropped(sock: socket.socket) -> bool:
    """A kept connection the receiver closed (or wrote to unasked) shows as readable before our request."""
    poller = select.poll()  # not select(): descriptors above 1024 are common with thousands of tasks
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


@functools.lru_cache(maxsize=16)
def tls_context(verify: bool | str) -> ssl.SSLContext:
    """The TLS settings for ``verify`` as requests reads it: True for requests' own CA bundle (certifi's),
    or the path of a CA bundle file or directory (``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``)."""
    if verify is True:
        return ssl.create_default_context(cafile=requests.certs.where())
    if isinstance(verify, str) and os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=str(verify))


def _connect_pinned(addresses: tuple[str, ...], address: tuple[str, int], timeout: Any = None,
                    source_address: Any = None) -> socket.socket:
    """``socket.create_connection`` for a kept connection, but to ``addresses`` (checked) instead of a fresh
    lookup of the URL's host; the next address on failure, as with the resolver's list."""
    error: OSError | None = None
    for candidate in addresses:
        try:
            return socket.create_connection((candidate, address[1]), timeout, source_address)
        except OSError as exc:
            error = exc
    raise error if error is not None else OSError("no address to connect to")


def attempt(sender: Sender, delivery: Delivery, secret: str | None, timeout: float,
            allowed: HostAllowlist | None = None) -> Outcome:
    """POST one event once. Blocking: runs in a worker thread, never in an actor.

    With ``allowed`` (``HOST_RUNNER_CALLBACK_ALLOWED_HOSTS``), a destination it does not allow is refused
    before any connection, finally, with an error that says nothing about the target."""
    proxies, verify = environment_settings(receiver_of(delivery.url))
    addresses: tuple[str, ...] | None = None
    if allowed is not None:
        try:
            addresses = destination(delivery.url, allowed, proxies)
        except (NotAllowed, ValueError):  # ValueError: not even a name the resolver takes (a label over 63 bytes)
            return Outcome(False, False, NOT_ALLOWED)
        except OSError:  # the name did not resolve: what requests reports as a connection error
            return Outcome(False, True, "connection failed")
    return sender.post(delivery.url, delivery.body.encode("ascii"), headers_for(delivery, secret), timeout,
                       addresses, proxies, verify)
