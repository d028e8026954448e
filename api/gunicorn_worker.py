"""gunicorn's threaded worker, hardened in two ways.

**Errors as JSON.** The errors gunicorn answers itself (a malformed request line, a URI or header block over its
limits, a bad chunked body) are sent as JSON like every other error of the API. gunicorn writes those answers as
HTML before the application sees the request. :meth:`JsonErrorThreadWorker.handle_error` lets gunicorn decide the
status and log as usual, but hands it a stand-in socket that captures the HTML answer; the status line is kept
and the body rewritten as the API's ``{"error", "detail"}`` JSON.

**Slow clients wait in the poller, not in a request thread.** Stock gthread hands a connection to one of its
(16) threads as soon as it is readable, and the thread's parser then blocks until the request line and headers
are complete: 16 connections that send half a request line and stop freeze the whole API, ``/health``
included, before any authentication. Here the worker's poller thread reads the head itself (non-blocking reads
in its selector loop) and hands the connection to a thread only once the head is complete, or once the parser
can decide on the bytes already there (a bare LF, a head over :data:`MAX_HEAD_BYTES`). The thread's parser is
given those bytes first (:class:`HeadFirstUnreader`), so it does not wait for a head (were it to need more
anyway, it would read only until the same deadline). A connection whose head is
not complete ``HOST_RUNNER_HEADER_TIMEOUT_SECONDS`` after it was accepted (or, on a kept-alive connection, after
the next request began to arrive) is answered a JSON 408 and closed; one that sent nothing at all is just
closed, as an idle kept-alive connection is (there is no request to answer). The body is not covered: it is
read by the application's thread as before, at the client's pace.

**Closing a connection does not wait either.** After a response that ends its connection (``Connection: close``,
an error, HTTP/1.0), gthread closes it with ``util.close_graceful``: it shuts the server's side, then waits on
the poller thread, blocking, up to 2 s for the client to close, so that bytes the client still sends do not make
the kernel reset the connection before the response is read. Clients that neither read nor close thus froze the
poller, and here every request head with it, for 2 s each. :meth:`JsonErrorThreadWorker.finish_request` shuts
the side too but leaves the connection in the poller, which drains what arrives without blocking and closes it
when the client closes, after 64 KiB or after 2 s; the 408s the poller sends itself end the same way.

The number of connections the worker holds (waiting for a head, being served, kept alive or closing) stays
bounded by gunicorn's ``worker_connections`` (1000): past it the worker stops accepting until some close.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import selectors
import socket
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.http.errors import LimitRequestHeaders
from gunicorn.http.message import Request
from gunicorn.http.parser import RequestParser
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker

from api.gunicorn_errors import CapturingSocket, header_timeout_response, json_error_response
from host_runner.ops.config import read_header_timeout

logger = logging.getLogger(__name__)

#: The largest request head (request line and headers) a connection may send. gunicorn's own limits allow some
#: 800 KiB (100 fields of 8 KiB); the API needs a few hundred bytes, and every connection waiting for its head
#: holds its bytes in the worker, so 1000 connections (``worker_connections``) hold at most 64 MiB. A longer
#: head is answered 431, as gunicorn answers one over its own limits.
MAX_HEAD_BYTES = 64 * 1024

#: How long, and for how many bytes, a connection being closed is drained after its response: gunicorn's
#: ``util.close_graceful`` defaults, which the worker applies without blocking (see :meth:`finish_request`).
LINGER_SECONDS = 2.0
LINGER_MAX_BYTES = 64 * 1024

_HEAD_END = b"\r\n\r\n"
#: gunicorn's parser refuses a line ending in a bare LF at once, without waiting for the rest of the head.
_BARE_LF = re.compile(rb"(?<!\r)\n")


class HeaderTimeout(Exception):
    """The parser needed more of a head than had arrived by the connection's header deadline."""


class HeadFirstUnreader(SocketUnreader):
    """gunicorn's socket reader, serving first the head the poller thread already read (:meth:`feed`).

    While a request head is parsed (:attr:`in_head`) the parser should never need more than it was given; should
    it anyway, this reads the socket only until the connection's header deadline and then raises
    :class:`HeaderTimeout` (answered 408), so that no request thread waits on a head indefinitely. When the
    given head was already over :data:`MAX_HEAD_BYTES`, needing more raises ``LimitRequestHeaders`` (431).
    Outside heads (bodies) it reads the socket as gunicorn does.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.pending: deque[bytes] = deque()
        self.in_head = False
        self.deadline = 0.0
        self.too_large = False

    def feed(self, data: bytes, deadline: float, too_large: bool) -> None:
        if data:
            self.pending.append(data)
        self.deadline = deadline
        self.too_large = too_large

    def chunk(self, size_hint: int | None = None) -> bytes:
        if self.pending:
            return self.pending.popleft()
        if not self.in_head:
            return super().chunk(size_hint)
        if self.too_large:
            raise LimitRequestHeaders(f"the request line and headers are over {MAX_HEAD_BYTES} bytes")
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise HeaderTimeout()
        previous = self.sock.gettimeout()
        self.sock.settimeout(remaining)
        try:
            return super().chunk(size_hint)
        except TimeoutError:  # socket.timeout
            raise HeaderTimeout() from None
        finally:
            self.sock.settimeout(previous)

    def take_buffered(self) -> bytes:
        data = super().take_buffered() + b"".join(self.pending)
        self.pending.clear()
        return data


class HeadFirstRequest(Request):
    """A request whose head is parsed with the unreader in its head mode."""

    def parse(self, unreader: Any) -> bytes:
        head_first = isinstance(unreader, HeadFirstUnreader)
        if head_first:
            unreader.in_head = True
        try:
            return super().parse(unreader)
        finally:
            if head_first:
                unreader.in_head = False
                # The fed bytes can go on past this head (a body's start, pipelined requests). What followed the
                # head in the bytes the parser read, it returns, and gunicorn unreads that once this returns, in
                # front of anything unread here: so fed bytes it did not read at all go back now, where gunicorn
                # looks for a pipelined request (left in ``pending``, gthread would wait for the socket instead).
                leftover = b"".join(unreader.pending)
                unreader.pending.clear()
                if leftover:
                    unreader.unread(leftover)


class HeadFirstParser(RequestParser):
    """gunicorn's HTTP/1 request parser over a :class:`HeadFirstUnreader`."""

    mesg_class = HeadFirstRequest

    def __init__(self, cfg: Any, sock: socket.socket, source_addr: Any) -> None:
        super().__init__(cfg, sock, source_addr)
        self.unreader = HeadFirstUnreader(sock)


@dataclass
class _PendingHead:
    """A connection whose request head is still arriving, and what has arrived of it."""

    deadline: float
    data: bytearray = field(default_factory=bytearray)


@dataclass
class _Lingering:
    """A connection whose response went out and whose side is shut: drained until the client closes."""

    deadline: float
    drained: int = 0


class JsonErrorThreadWorker(ThreadWorker):
    """The ``gthread`` worker answering gunicorn's own errors in JSON and reading request heads in its poller."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Validated already by gunicorn.conf.py's load_config (a bad value stopped the service there); read alone
        # here, through the same parser, rather than every setting again (the token file included).
        self.header_timeout = read_header_timeout(os.environ)
        # Connections waiting for their head, in deadline order (every deadline is "now + the same timeout").
        self.pending_heads: dict[TConn, _PendingHead] = {}
        # Connections being closed, in deadline order too (every deadline is "now + LINGER_SECONDS").
        self.lingering: dict[TConn, _Lingering] = {}
        # Reading heads in the poller means handing the parser plain HTTP/1 bytes: not for TLS, where the
        # poller would see ciphertext, nor for the PROXY protocol or HTTP/2 prior knowledge, which read the
        # socket before the parser does. None of them is configured for host-runner; they keep gthread's way.
        self.reads_heads = (not self.cfg.is_ssl and getattr(self.cfg, "protocol", "http") == "http"
                            and getattr(self.cfg, "proxy_protocol", "off") == "off"
                            and getattr(self.cfg, "http2_cleartext", "off") not in ("prior-knowledge", "both"))

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        if isinstance(exc, HeaderTimeout):
            self.log.debug("Closing a connection whose request head did not arrive in time.")
            self._send_quietly(client, header_timeout_response(self.header_timeout))
            return
        capture = CapturingSocket()
        super().handle_error(req, capture, addr, exc)
        if not capture.data:
            return
        self._send_quietly(client, json_error_response(capture.data, exc))

    @staticmethod
    def _send_quietly(client: socket.socket, data: bytes) -> None:
        try:
            client.setblocking(True)
            client.sendall(data)
        except OSError:
            logger.debug("could not send an error response: the client is gone")

    # -- the poller thread. Everything below runs on it, as gthread's enqueue_req and finish_request do: it must
    # never wait on a client's socket, or every connection (and, here, every request head) waits with it.

    def run(self) -> None:
        try:
            super().run()
        finally:
            # gthread's loop ends once its connections are closed, or graceful_timeout has passed: then those
            # still waiting for a head or lingering are closed now, not left open through worker_exit.
            for conn in [*self.pending_heads, *self.lingering]:
                conn.close()
            self.pending_heads.clear()
            self.lingering.clear()

    def finish_request(self, conn: TConn, fs: Future[Any]) -> None:
        """gthread's, except for a connection to close after its response: gthread closes it with
        ``util.close_graceful``, which shuts its side and then waits, blocking, up to 2 s for the client to close
        (so that unread bytes from it do not reset the connection before it has read the response). Clients
        that neither read nor close thus froze the poller for 2 s each. Here the connection lingers in the
        poller instead (:meth:`_linger`)."""
        if fs.cancelled() or (fs.exception() is None and not fs.result()):
            self._linger(conn)
        else:  # kept alive, deferred, or the request's thread failed (gthread then closes at once)
            super().finish_request(conn, fs)

    def _linger(self, conn: TConn) -> None:
        """Close ``conn`` as ``util.close_graceful`` does, without waiting: shut its side now (FIN after the
        response), then drain, on the poller, what the client still sends, and close the socket when the client
        closes, after ``LINGER_MAX_BYTES`` or after ``LINGER_SECONDS`` (:meth:`murder_pending`). Until then it
        still counts against ``worker_connections``: it holds a file descriptor all the same."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:  # no longer connected, or closed already by the request's thread: nothing to wait for
            self._close(conn)
            return
        conn.sock.setblocking(False)
        self.lingering[conn] = _Lingering(deadline=time.monotonic() + LINGER_SECONDS)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_linger_readable, conn))

    def _on_linger_readable(self, conn: TConn, client: socket.socket) -> None:
        lingering = self.lingering[conn]
        try:
            data = client.recv(LINGER_MAX_BYTES - lingering.drained)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # reset: nothing more will come
            data = b""
        lingering.drained += len(data)
        if not data or lingering.drained >= LINGER_MAX_BYTES:
            self._end_lingering(conn)

    def _end_lingering(self, conn: TConn) -> None:
        del self.lingering[conn]
        self._unregister(conn)
        self._close(conn)

    def _close(self, conn: TConn) -> None:
        self.nr_conns -= 1
        conn.close()

    def _unregister(self, conn: TConn) -> None:
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    # -- reading heads

    def enqueue_req(self, conn: TConn) -> None:
        """Give ``conn`` to a request thread once its next request head is complete; until then, wait for it
        in the poller. gthread calls this for a new connection, a kept-alive one that turned readable, and one
        whose previous request left bytes of the next behind."""
        if not self.reads_heads:
            super().enqueue_req(conn)
            return
        pending = _PendingHead(deadline=time.monotonic() + self.header_timeout)
        if conn.parser is not None:  # what the previous request's parser read ahead
            pending.data += conn.parser.unreader.take_buffered()
        if self._head_decidable(pending.data, 0):
            self._hand_over(conn, pending)
            return
        conn.sock.setblocking(False)
        self.pending_heads[conn] = pending
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))

    @staticmethod
    def _head_decidable(data: bytearray, searched: int) -> bool:
        """True when gunicorn's parser can answer from ``data`` alone: the head is complete, or has a bare LF
        (refused at once), or is too long. Only the bytes from ``searched`` on are new."""
        return (data.find(_HEAD_END, max(searched - 3, 0)) >= 0
                or _BARE_LF.search(data, max(searched - 1, 0)) is not None
                or len(data) > MAX_HEAD_BYTES)

    def _on_head_readable(self, conn: TConn, client: socket.socket) -> None:
        pending = self.pending_heads[conn]
        try:
            # never more than one byte past the limit: what follows a head is left to the request thread
            chunk = client.recv(MAX_HEAD_BYTES + 1 - len(pending.data))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno not in (errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN, errno.ETIMEDOUT):
                self.log.warning("Socket error reading a request head: %s", exc)
            self._drop_pending(conn)
            return
        if not chunk:  # the client closed before completing a request: nothing to answer, as in gthread
            self._drop_pending(conn)
            return
        searched = len(pending.data)
        pending.data += chunk
        if self._head_decidable(pending.data, searched):
            self._forget_pending(conn)
            self._hand_over(conn, pending)

    def _hand_over(self, conn: TConn, pending: _PendingHead) -> None:
        if conn.parser is None:  # a new connection: the parser gthread's TConn.init would make, reading heads
            conn.parser = HeadFirstParser(self.cfg, conn.sock, conn.client)
            conn.initialized = True
        data = bytes(pending.data)
        end = data.find(_HEAD_END)
        too_large = (end + len(_HEAD_END) if end >= 0 else len(data)) > MAX_HEAD_BYTES
        if too_large:  # the parser gets the first 64 KiB, and a 431 when it needs more
            data = data[:MAX_HEAD_BYTES]
        conn.parser.unreader.feed(data, pending.deadline, too_large)
        super().enqueue_req(conn)

    def _forget_pending(self, conn: TConn) -> None:
        del self.pending_heads[conn]
        self._unregister(conn)

    def _drop_pending(self, conn: TConn) -> None:
        self._forget_pending(conn)
        self._close(conn)

    def murder_pending(self) -> None:
        """gthread's loop calls this about once a second (also while the worker stops): also close the
        connections whose head is late (after a 408 when part of a request came), once the worker is stopping
        those that sent nothing yet, and those that lingered their time."""
        super().murder_pending()
        now = time.monotonic()
        for conn, lingering in list(self.lingering.items()):
            if lingering.deadline > now:
                break  # deadline order
            self._end_lingering(conn)
        for conn, pending in list(self.pending_heads.items()):
            if pending.deadline > now:
                if self.alive:
                    break  # deadline order: the others are later still
                if pending.data:
                    continue  # stopping: a request under way keeps its time
            if pending.data:
                peer = conn.client[0] if isinstance(conn.client, tuple) else conn.client
                self.log.info("Request head from ip=%s not complete within %g s: answered 408, closing",
                              peer, self.header_timeout)
                try:  # best effort and never blocking: the poller thread serves every other connection
                    conn.sock.send(header_timeout_response(self.header_timeout))
                except OSError:
                    pass
                self._forget_pending(conn)
                self._linger(conn)  # what it may still send must not reset the connection before the 408 is read
            else:
                self._drop_pending(conn)
