"""Slow clients against the real gunicorn command: connections that deliver their request head slowly, or never,
wait in the worker's poller (api/gunicorn_worker.py), not in one of its request threads, and are closed after
``HOST_RUNNER_HEADER_TIMEOUT_SECONDS``.

Each test that checks something a slow client must still be able to do does it while stalled connections (more
than the worker has threads) are open: stock gthread gives each of them a thread that blocks in the parser."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from host_runner.ops.config import ConfigError, load_config
from support.service import start_service, stop_service
from support.waiting import wait_for

#: More than gunicorn.conf.py's 16 request threads.
STALLED = 20


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


@contextmanager
def stalled(port: int, count: int, sent: bytes = b"GET /hea") -> Iterator[list[socket.socket]]:
    """``count`` connections that send ``sent`` (by default half a request line) and then neither send nor read."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(sent)
            sockets.append(sock)
        time.sleep(0.5)  # let the worker accept them all (stock gthread: and give them its threads)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


class Connection:
    """One raw HTTP/1.1 connection, reading responses by their Content-Length (pipelined ones too)."""

    def __init__(self, port: int, timeout: float = 10) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buffer = b""

    def request(self, method: str, path: str, body: bytes = b"") -> bytes:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return head.encode() + b"\r\n" + body

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the server closed the connection; unread: {self.buffer!r}")
        self.buffer += chunk

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, value in
                   (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body

    def closed_by_server(self) -> bool:
        """True when the server has closed its side (what it sent before is left in the buffer)."""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return True
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def submission(task_id: str, prompt: str = "hello") -> dict[str, str]:
    return {"task_id": task_id, "run_id": "r1", "prompt": prompt}


def test_64_stalled_connections_leave_health_and_submit_answering(tmp_path: Path):
    process, base_url = start_service(tmp_path, HOST_RUNNER_HEADER_TIMEOUT_SECONDS="60")
    port = port_of(base_url)
    try:
        assert requests.post(f"{base_url}/tasks/submit", json=submission("warm"), timeout=10).status_code == 202
        with stalled(port, 64) as sockets:
            started = time.monotonic()
            health = requests.get(f"{base_url}/health", timeout=1)
            assert health.status_code == 200 and health.json() == {"status": "ok", "disk": "ok"}
            submitted = requests.post(f"{base_url}/tasks/submit", json=submission("during"), timeout=1)
            assert submitted.status_code == 202, submitted.text
            assert time.monotonic() - started < 2  # each of the two within its one second
            # the stalled connections are still open (nothing answered, nothing closed) ...
            for sock in sockets:
                sock.setblocking(False)
                try:
                    got = sock.recv(1)
                except BlockingIOError:
                    pass
                else:
                    raise AssertionError(f"a stalled connection was answered or closed: {got!r}")
                sock.setblocking(True)
            # ... and one that completes its request is served, from the bytes it sent first on
            sockets[0].sendall(f"lth HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            answer = b""
            while not answer.endswith(b"}"):  # the head and the body may come in separate reads
                chunk = sockets[0].recv(65536)
                assert chunk, f"closed after {answer!r}"
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 "), answer
            assert answer.endswith(b'{"status": "ok", "disk": "ok"}')
    finally:
        assert stop_service(process) == 0


def test_a_stalled_connection_is_answered_408_in_json_and_closed_after_the_timeout(tmp_path: Path):
    process, base_url = start_service(tmp_path, HOST_RUNNER_HEADER_TIMEOUT_SECONDS="1")
    port = port_of(base_url)
    partial = Connection(port)
    silent = Connection(port)
    try:
        started = time.monotonic()
        partial.send(b"POST /tasks/submit HTTP/1.1\r\nHost: 127.0.0.1:")
        status, headers, body = partial.response()
        waited = time.monotonic() - started
        assert status == 408
        assert headers["content-type"] == "application/json" and headers["connection"] == "close"
        error = json.loads(body)
        assert error["error"] == "Request Timeout" and "within 1 s" in error["detail"]
        assert 0.9 <= waited < 5
        assert partial.closed_by_server() and partial.buffer == b""
        # a connection that never sent a byte has no request to answer: it is just closed
        assert silent.closed_by_server() and silent.buffer == b""
        assert 0.9 <= time.monotonic() - started < 5
        assert requests.get(f"{base_url}/health", timeout=5).status_code == 200
    finally:
        partial.close()
        silent.close()
        assert stop_service(process) == 0
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()


def test_a_head_sent_slowly_within_the_timeout_is_served(tmp_path: Path):
    process, base_url = start_service(tmp_path, HOST_RUNNER_HEADER_TIMEOUT_SECONDS="3")
    port = port_of(base_url)
    try:
        with stalled(port, STALLED):
            slow = Connection(port)
            request = slow.request("GET", "/health")
            pieces = [request[i:i + 4] for i in range(0, len(request), 4)]
            for piece in pieces:  # about a second for the whole head
                slow.send(piece)
                time.sleep(1 / len(pieces))
            status, _, body = slow.response()
            assert (status, json.loads(body)) == (200, {"status": "ok", "disk": "ok"})
            slow.close()
    finally:
        assert stop_service(process) == 0


def test_keep_alive_and_pipelining_are_unchanged_and_a_stalled_next_request_times_out(tmp_path: Path):
    # keep-alive (gunicorn's own setting, 2 s by default) raised so that the idle time can exceed the header
    # timeout by a wide margin
    process, base_url = start_service(tmp_path, HOST_RUNNER_HEADER_TIMEOUT_SECONDS="1",
                                      GUNICORN_CMD_ARGS="--keep-alive 10")
    port = port_of(base_url)
    connection = Connection(port)
    try:
        with stalled(port, STALLED):
            connection.send(connection.request("GET", "/health"))
            assert connection.response()[0] == 200
            time.sleep(2.5)  # idle between requests: keep-alive governs, not the header timeout
            body = json.dumps(submission("kept")).encode()
            connection.send(connection.request("POST", "/tasks/submit", body))
            status, headers, _ = connection.response()
            assert status == 202 and headers.get("connection", "").lower() != "close"
            # pipelined: three requests in one write, three answers in order
            connection.send(connection.request("GET", "/health") + connection.request("GET", "/tasks/kept")
                            + connection.request("GET", "/nothing-here"))
            assert [connection.response()[0] for _ in range(3)] == [200, 200, 404]
            # the next request stalls half-way: 408 after about the timeout
            started = time.monotonic()
            connection.send(b"GET /health HTTP/1.1\r\n")
            status, _, body = connection.response()
            assert status == 408 and json.loads(body)["error"] == "Request Timeout"
            assert 0.9 <= time.monotonic() - started < 5
            assert connection.closed_by_server()
    finally:
        connection.close()
        assert stop_service(process) == 0


def test_a_large_body_sent_slowly_is_not_cut_by_the_header_timeout(tmp_path: Path):
    process, base_url = start_service(tmp_path, HOST_RUNNER_HEADER_TIMEOUT_SECONDS="1")
    port = port_of(base_url)
    try:
        with stalled(port, STALLED):
            upload = Connection(port)
            body = json.dumps(submission("large", prompt="x" * 120_000)).encode()
            request = upload.request("POST", "/tasks/submit", body)
            head_length = request.index(b"\r\n\r\n") + 4
            upload.send(request[:head_length])
            pieces = [body[i:i + 16_384] for i in range(0, len(body), 16_384)]
            for piece in pieces:  # about three seconds for the body, three times the header timeout
                time.sleep(3 / len(pieces))
                upload.send(piece)
            status, _, answer = upload.response()
            assert status == 202, answer
            upload.close()
        record = requests.get(f"{base_url}/tasks/large", timeout=5)
        assert record.status_code == 200 and record.json()["task_id"] == "large"
    finally:
        assert stop_service(process) == 0


def read_to_end(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or half-closes) its side."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def reset_by_server(sock: socket.socket) -> bool:
    """True once the server has closed its socket for good: a byte sent then draws a reset, which the next send
    reports. (A server that only half-closed, and still reads, takes the byte.)"""
    try:
        sock.send(b"x")
    except OSError:  # ECONNRESET or EPIPE
        return True
    return False


def test_clients_that_neither_read_nor_close_do_not_hold_up_the_poller(tmp_path: Path):
    """gthread closed a ``Connection: close`` connection with gunicorn's close_graceful on its poller thread: up to
    2 s per connection waiting for the client to close. 10 clients that did not froze the whole API for seconds."""
    process, base_url = start_service(tmp_path)
    port = port_of(base_url)
    request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    try:
        with stalled(port, STALLED, request) as sockets:  # all of them answered, and closing
            started = time.monotonic()
            health = requests.get(f"{base_url}/health", timeout=1)
            assert health.status_code == 200 and health.json() == {"status": "ok", "disk": "ok"}
            submitted = requests.post(f"{base_url}/tasks/submit", json=submission("during"), timeout=1)
            assert submitted.status_code == 202, submitted.text
            assert time.monotonic() - started < 2
            for sock in sockets:  # each got its whole answer, then the end of the server's side
                answer = read_to_end(sock)
                assert answer.startswith(b"HTTP/1.1 200 "), answer
                assert answer.endswith(b'{"status": "ok", "disk": "ok"}'), answer
            # the server lingers (draining what they might still send) for 2 s, then closes them all
            for sock in sockets:
                wait_for(lambda sock=sock: reset_by_server(sock), timeout=5, interval=0.1,
                         what="the server to close a connection whose client did not")
            assert time.monotonic() - started < 6
    finally:
        assert stop_service(process) == 0
    assert "Traceback" not in (tmp_path / "gunicorn.log").read_text()


def test_a_stopping_worker_does_not_wait_on_closing_connections_past_their_2_s(tmp_path: Path):
    process, base_url = start_service(tmp_path)
    port = port_of(base_url)
    request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(STALLED)]
    try:
        for sock in sockets:
            sock.sendall(request)
        time.sleep(0.3)
        started = time.monotonic()
        assert stop_service(process) == 0
        assert time.monotonic() - started < 5
        for sock in sockets:
            assert read_to_end(sock).endswith(b'{"status": "ok", "disk": "ok"}')
            assert wait_for(lambda sock=sock: reset_by_server(sock), timeout=2, interval=0.1)
    finally:
        for sock in sockets:
            sock.close()


def test_a_closing_connection_still_gets_all_of_a_large_response(tmp_path: Path):
    """Closed at once, a socket with unread bytes (here what the client sends after its request) resets the
    connection and can cut the response short: the worker drains them first, as close_graceful did."""
    process, base_url = start_service(tmp_path)
    port = port_of(base_url)
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the response waits on the server's side
        client.sendall(f"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
                       .encode())
        answer = client.recv(1024)
        client.sendall(b"more bytes the server never reads as a request" * 100)
        time.sleep(0.5)
        answer += read_to_end(client)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        assert length > 20_000 and len(body) == length
        assert json.loads(body)["openapi"].startswith("3.1")
    finally:
        client.close()
        assert stop_service(process) == 0


def test_the_header_timeout_setting():
    assert load_config({}).header_timeout_seconds == 10.0
    assert load_config({"HOST_RUNNER_HEADER_TIMEOUT_SECONDS": "2.5"}).header_timeout_seconds == 2.5
    with pytest.raises(ConfigError, match=r"HOST_RUNNER_HEADER_TIMEOUT_SECONDS='0.1' is not valid: expected seconds"):
        load_config({"HOST_RUNNER_HEADER_TIMEOUT_SECONDS": "0.1"})


def test_the_thread_parser_reads_the_head_it_was_given_and_never_waits_past_the_deadline_for_more():
    """What a request thread does with a connection the poller handed over (api/gunicorn_worker.py)."""
    from gunicorn.config import Config as GunicornConfig
    from gunicorn.http.errors import LimitRequestHeaders

    from api.gunicorn_worker import HeaderTimeout, HeadFirstParser

    cfg = GunicornConfig()
    server, client = socket.socketpair()
    try:
        # a complete head: parsed from what was fed, with a deadline already past (a socket read would raise)
        parser = HeadFirstParser(cfg, server, ("127.0.0.1", 1))
        parser.unreader.feed(b"POST /tasks HTTP/1.1\r\nHost: 127.0.0.1:1\r\nContent-Length: 6\r\n\r\n{\"a\"",
                             time.monotonic() - 1, False)
        request = next(parser)
        assert (request.method, request.path) == ("POST", "/tasks")
        # the body is not under the header deadline: its rest comes from the socket, however late
        client.sendall(b":1")
        assert request.body.read() == b'{"a":1'
        # a head that is not complete: more is read until the deadline, then HeaderTimeout (answered 408)
        parser = HeadFirstParser(cfg, server, ("127.0.0.1", 1))
        parser.unreader.feed(b"GET /health HTTP/1.1\r\nHo", time.monotonic() + 0.3, False)
        started = time.monotonic()
        with pytest.raises(HeaderTimeout):
            next(parser)
        assert 0.25 <= time.monotonic() - started < 5
        # a head already over the limit and still not complete: 431 without reading on
        parser = HeadFirstParser(cfg, server, ("127.0.0.1", 1))
        parser.unreader.feed(b"GET /health HTTP/1.1\r\nX-A: " + b"a" * 70_000, time.monotonic() + 60, True)
        with pytest.raises(LimitRequestHeaders):
            next(parser)
    finally:
        server.close()
        client.close()


def test_fed_bytes_past_the_head_stay_in_order_for_the_next_request():
    """The poller may feed more than a head: what follows it is the next request, in the order it came."""
    from gunicorn.config import Config as GunicornConfig

    from api.gunicorn_worker import HeadFirstParser

    server, client = socket.socketpair()
    try:
        parser = HeadFirstParser(GunicornConfig(), server, ("127.0.0.1", 1))
        parser.unreader.feed(b"GET /a HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\nGET /b", time.monotonic() + 60, False)
        parser.unreader.feed(b" HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n", time.monotonic() + 60, False)
        assert next(parser).path == "/a"
        assert parser.unreader.take_buffered() == b"GET /b HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n"
    finally:
        server.close()
        client.close()
