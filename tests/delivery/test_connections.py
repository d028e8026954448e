"""The callback sender's kept connections, against a raw TCP receiver on 127.0.0.1 that counts connections and
can misbehave: connections are reused, and a receiver that closes one, answers too much or says ``close`` costs
no attempt."""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from host_runner.delivery.http import MAX_RESPONSE_BYTES, Sender, attempt
from host_runner.store.outbox import Delivery

#: What the receiver does with one request: the raw answer, and whether to close the connection after it.
Answer = Callable[[int], tuple[bytes, bool]]

NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


class RawReceiver:
    """Accepts connections; per request, records its head and answers with ``answer(request_number)``."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/callback"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        buffered = b""
        with connection:
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(buffered) < length:
                    buffered += connection.recv(65536)
                buffered = buffered[length:]
                with self.lock:
                    self.requests.append(head)
                    number = len(self.requests)
                raw, close = self.answer(number)
                connection.sendall(raw)
                if close:
                    return

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def raw_receiver() -> Iterator[Callable[[Answer], RawReceiver]]:
    made: list[RawReceiver] = []

    def make(answer: Answer) -> RawReceiver:
        made.append(RawReceiver(answer))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def send(sender: Sender, url: str, event_id: str = "e1") -> bool:
    return attempt(sender, Delivery(event_id, url, None, '{"status":"running"}', 1), None, 5).delivered


def test_attempts_to_one_receiver_share_one_connection(raw_receiver):
    receiver = raw_receiver(lambda number: (NO_CONTENT, False))
    sender = Sender()
    assert all(send(sender, receiver.url, f"e{index}") for index in range(5))
    assert receiver.connections == 1 and len(receiver.requests) == 5


def test_a_connection_the_receiver_closed_while_kept_costs_no_attempt(raw_receiver):
    """The receiver closes after each answer without saying so (as a server's idle timeout does)."""
    receiver = raw_receiver(lambda number: (NO_CONTENT, True))
    sender = Sender()
    assert all(send(sender, receiver.url, f"e{index}") for index in range(3))
    assert receiver.connections == 3 and len(receiver.requests) == 3


def test_an_answer_saying_close_or_too_large_is_not_reused(raw_receiver):
    huge = b"x" * (MAX_RESPONSE_BYTES + 1)
    answers = {1: b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
               2: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(huge), huge)}
    receiver = raw_receiver(lambda number: (answers.get(number, NO_CONTENT), number == 1))
    sender = Sender()
    assert send(sender, receiver.url, "e1") and send(sender, receiver.url, "e2") and send(sender, receiver.url, "e3")
    assert receiver.connections == 3  # after `close`, and after an answer that was not read to its end


def test_a_chunked_answer_is_read_and_the_connection_kept(raw_receiver):
    chunked = b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    receiver = raw_receiver(lambda number: (chunked, False))
    sender = Sender()
    assert send(sender, receiver.url, "e1") and send(sender, receiver.url, "e2")
    assert receiver.connections == 1


def test_a_receiver_that_is_not_http_is_a_retryable_connection_failure(raw_receiver):
    receiver = raw_receiver(lambda number: (b"SSH-2.0-OpenSSH\r\n", True))
    outcome = attempt(Sender(), Delivery("e1", receiver.url, None, "{}", 1), None, 5)
    assert not outcome.delivered and outcome.retryable and outcome.error == "connection failed"


def test_request_head_host_path_query_and_credentials_as_before(raw_receiver):
    """What requests sent stays: the Host with its port, the path and query as given, credentials in the URL as
    Basic auth, the signed headers, no body encoding surprises."""
    receiver = raw_receiver(lambda number: (NO_CONTENT, False))
    port = receiver.url.split(":")[2].split("/")[0]
    url = f"http://us%40er:p%3Ass@127.0.0.1:{port}/hook/a%20b?x=1&y=%2F"
    assert attempt(Sender(), Delivery("e1", url, "tok", '{"a":1}', 2), "secret", 5).delivered
    head = receiver.requests[0].decode("latin-1")
    lines = head.split("\r\n")
    assert lines[0] == "POST /hook/a%20b?x=1&y=%2F HTTP/1.1"
    fields = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in lines[1:]}
    assert fields["host"] == f"127.0.0.1:{port}"
    assert fields["authorization"] == "Basic " + base64.b64encode(b"us@er:p:ss").decode()
    assert fields["x-runner-token"] == "tok" and fields["x-runner-attempt"] == "2"
    assert fields["x-runner-signature"].startswith("sha256=") and fields["content-length"] == "7"
    assert fields["content-type"] == "application/json"


def test_a_scheme_that_is_not_http_is_refused_without_retry():
    outcome = attempt(Sender(), Delivery("e1", "ftp://127.0.0.1/x", None, "{}", 1), None, 5)
    assert not outcome.delivered and not outcome.retryable and outcome.error == "request failed (InvalidSchema)"


def test_a_receiver_that_does_not_answer_in_time_is_a_timeout(raw_receiver):
    hang = threading.Event()
    receiver = raw_receiver(lambda number: (hang.wait(3) and b"", True))
    try:
        outcome = attempt(Sender(), Delivery("e1", receiver.url, None, "{}", 1), None, 0.3)
    finally:
        hang.set()
    assert not outcome.delivered and outcome.retryable and outcome.error == "timed out after 0.3 s"
