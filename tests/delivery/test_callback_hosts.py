"""HOST_RUNNER_CALLBACK_ALLOWED_HOSTS: callbacks cannot be used to probe hosts the operator did not list.

Checked at submit (a host not allowed is a 422, nothing stored) and again before every attempt, on the addresses
the runner connects to (an event stored under another setting, or a name resolving elsewhere, is refused with no
connection made, and the refusal is final and says nothing about the target). DNS cannot be controlled here, so
the tests that need a name to resolve somewhere replace only :func:`host_runner.delivery.http.resolve`, the one place
callbacks resolve names; every connection goes to a real server on 127.0.0.1 (or ::1).
"""

from __future__ import annotations

import dataclasses
import http.server
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import host_runner.delivery.http as callbacks
from host_runner.delivery.http import Sender, attempt, environment_settings
from host_runner.domain.callback_hosts import NOT_ALLOWED, parse_allowed_hosts
from host_runner.ops.config import ConfigError, load_config
from host_runner.store.outbox import Delivery
from support.receivers import CallbackReceiver
from support.runner import Runner, callbacks_settled
from support.service import free_port
from support.waiting import wait_for

SETTING = "HOST_RUNNER_CALLBACK_ALLOWED_HOSTS"


# --- the setting -----------------------------------------------------------------------------------------------
def test_the_setting_lists_names_addresses_and_cidrs_of_both_families():
    config = load_config({SETTING: " 127.0.0.1, 10.0.0.0/8 ,ORCH.local,host.docker.internal,fd00::/8,::1,"})
    allowed = config.callback_allowed_hosts
    assert allowed is not None
    assert allowed.names == frozenset({"orch.local", "host.docker.internal"})
    assert [str(network) for network in allowed.networks] == ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8", "::1/128"]
    assert load_config({}).callback_allowed_hosts is None  # unset: callbacks may go anywhere, as before


@pytest.mark.parametrize("value", [
    "10.0.0.0/33", "10.0.0.1/8", "fd00::/129", "fd00::1/8", "http://orch.local", "orch.local:8080", "10.0.0",
    "999.1.1.1", "orch..local", "fe80::1%eth0", ",", "127.0.0.1, not a host",
])
def test_a_bad_list_stops_the_service_naming_the_setting(value: str):
    with pytest.raises(ConfigError, match=SETTING):
        load_config({SETTING: value})


# --- at submit -------------------------------------------------------------------------------------------------
LISTED = "127.0.0.1,10.0.0.0/8,fd00::/8,::1,orch.local"


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata
    "http://192.168.1.1:8080/",
    "http://127.0.0.2:22/",  # loopback, but only 127.0.0.1 is listed
    "http://11.0.0.1/",  # just outside 10.0.0.0/8
    "http://internal.example/",  # a name not listed (never resolved at submit)
    "http://orch.local.evil.example/",  # a listed name as a prefix
    "http://orch.local./",  # a trailing dot: not the listed name
    "https://xorch.local/",
    "http://127.1:22/",  # what the C resolver reads as 127.0.0.1: a name here, and not listed
    "http://2130706433/",  # 127.0.0.1 as one number, likewise
    "http://[fc00::1]/",  # outside fd00::/8
    "http://[::2]/",
    "http://[::ffff:169.254.169.254]/",  # IPv4-mapped: checked as the IPv4 address it reaches
    "http://[fe80::1%25lo]/",  # a zone
    "http://127.0.0.1@192.168.1.1/",  # user info dressed as the host
])
def test_submit_refuses_a_callback_host_not_allowed(make_runner, url: str):
    runner = make_runner(callback_allowed_hosts=parse_allowed_hosts(LISTED))
    result = runner.submit(task_id="probe", status_callback_url=url)
    assert result.status_code == 422, result.text
    assert result.json["field"] == "status_callback_url"
    assert SETTING in result.json["detail"]
    assert runner.client.simulate_get("/tasks").json["count"] == 0  # nothing stored, nothing run
    assert runner.client.simulate_get("/tasks/probe").status_code == 404


def ipv6_receiver() -> CallbackReceiver:
    """A CallbackReceiver listening on [::1] instead of 127.0.0.1 (same handler, same recording)."""
    receiver = CallbackReceiver()
    handler = receiver.server.RequestHandlerClass
    receiver.server.shutdown()
    receiver.server.server_close()

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6

    receiver.server = Server(("::1", 0), handler)
    receiver.thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    receiver.thread.start()
    return receiver


@pytest.mark.parametrize("setting,host", [
    ("localhost", "LOCALHOST"),  # by name, case-insensitive
    ("10.0.0.0/8,orch.local,127.0.0.1", "127.0.0.1"),  # by address
    ("10.0.0.0/8,127.0.0.0/8", "127.0.0.1"),  # inside a CIDR
    ("fd00::/8,::1", "[::1]"),  # an IPv6 literal, by address
    ("fd00::/8,::/127", "[::1]"),  # an IPv6 literal inside a CIDR
    ("127.0.0.0/8,::ffff:0:0/96", "[::ffff:127.0.0.1]"),  # IPv4-mapped, inside the IPv4 CIDR
])
def test_submit_accepts_an_allowed_host_and_the_callbacks_arrive(make_runner, setting: str, host: str):
    receiver = ipv6_receiver() if host == "[::1]" else CallbackReceiver()
    try:
        runner = make_runner(mock_seconds=0, callback_allowed_hosts=parse_allowed_hosts(setting))
        result = runner.submit(task_id="ok", status_callback_url=f"http://{host}:{receiver.port}/callback")
        assert result.status_code == 202, result.text
        record = wait_for(lambda: callbacks_settled(runner, "ok", 2), what="both events settled")
        assert [event["state"] for event in record["callbacks"]] == ["delivered", "delivered"], record
        assert [item.body["status"] for item in receiver.delivered("ok")] == ["running", "success"]
    finally:
        receiver.close()


# --- before each attempt ---------------------------------------------------------------------------------------
def test_an_event_stored_under_another_setting_is_refused_without_any_connection(make_runner):
    """Submitted while ``localhost`` was listed by name; the runner restarts allowing only 127.0.0.2/32. At send
    time ``localhost`` resolves to 127.0.0.1 (and ::1), where a real receiver now listens: both events are
    given up after one attempt with the refusal as their error, and the receiver never hears of them."""
    port = free_port()  # nothing listens yet, so the first runner keeps the events pending
    runner = make_runner(mock_seconds=0, callback_max_attempts=100, callback_backoff_max_seconds=0.3,
                         callback_allowed_hosts=parse_allowed_hosts("localhost"))
    result = runner.submit(task_id="stale", status_callback_url=f"http://localhost:{port}/callback")
    assert result.status_code == 202, result.text
    runner.wait_status("stale", "success")
    wait_for(lambda: runner.get("stale")["callbacks"][0]["attempts"] >= 1, what="a first failed attempt")
    runner.system.stop()  # the events stay pending in the outbox
    receiver = CallbackReceiver(port)
    try:
        later = Runner(dataclasses.replace(runner.config, callback_allowed_hosts=parse_allowed_hosts("127.0.0.2/32")),
                       runner.env, runner.started)
        record = wait_for(lambda: callbacks_settled(later, "stale", 2), what="both events given up")
        first, second = record["callbacks"]
        assert (first["state"], first["last_error"]) == ("failed", NOT_ALLOWED)
        assert (second["state"], second["attempts"], second["last_error"]) == ("failed", 1, NOT_ALLOWED)
        assert receiver.received == []
    finally:
        receiver.close()


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """Stands in for DNS: ``resolved[name] = [addresses]``; records each lookup in ``resolved["lookups"]``."""
    answers: dict[str, list[str]] = {"lookups": []}

    def resolve(host: str, port: int) -> list[str]:
        answers["lookups"].append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(answers[host])

    monkeypatch.setattr(callbacks, "resolve", resolve)
    environment_settings.cache_clear()
    yield answers
    environment_settings.cache_clear()


def send(url: str, allowed: str) -> callbacks.Outcome:
    return attempt(Sender(), Delivery("e1", url, None, '{"task_id": "t"}', 1), None, 5,
                   parse_allowed_hosts(allowed))


def test_a_name_goes_to_the_address_that_was_checked_not_to_a_second_lookup(resolved, receiver: CallbackReceiver):
    """``.invalid`` never resolves (RFC 6761): the delivery arriving proves the connection went to the checked
    address; the receiver still sees the name in the Host header."""
    resolved["callback-receiver.invalid"] = ["127.0.0.1"]
    outcome = send(f"http://callback-receiver.invalid:{receiver.port}/callback", "127.0.0.0/8")
    assert outcome.delivered, outcome
    assert resolved["lookups"] == ["callback-receiver.invalid"]
    assert [(item.path, item.headers["Host"]) for item in receiver.received] == [
        ("/callback", f"callback-receiver.invalid:{receiver.port}")]


@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["127.0.0.2", "127.0.0.1"], ["::1"], []])
def test_a_name_resolving_outside_the_list_is_refused_finally_without_connecting(resolved, receiver, addresses):
    """The name resolves (partly) to 127.0.0.1, where the receiver listens, but only 127.0.0.2/32 is allowed:
    refused before any connection, not to be retried, and the error tells nothing about the target."""
    resolved["rebound.invalid"] = addresses
    outcome = send(f"http://rebound.invalid:{receiver.port}/callback", "127.0.0.2/32")
    assert (outcome.delivered, outcome.retryable, outcome.error) == (False, False, NOT_ALLOWED)
    assert receiver.received == []


def test_a_url_whose_host_the_sender_reads_otherwise_is_refused(resolved, receiver: CallbackReceiver):
    """urllib3 ends the host at a backslash, urlsplit does not: for this URL the check would see the listed
    name and the connection would go to 127.0.0.1. (Submits refuse backslashes; this is an event stored before.)"""
    outcome = send(f"http://127.0.0.1:{receiver.port}\\@allowed.invalid/callback", "allowed.invalid")
    assert (outcome.delivered, outcome.retryable, outcome.error) == (False, False, NOT_ALLOWED)
    assert receiver.received == [] and resolved["lookups"] == []


def test_a_name_that_does_not_resolve_is_a_connection_failure_as_before(resolved, receiver: CallbackReceiver):
    outcome = send(f"http://nowhere.invalid:{receiver.port}/callback", "127.0.0.0/8")
    assert (outcome.delivered, outcome.retryable, outcome.error) == (False, True, "connection failed")


def test_a_name_the_resolver_cannot_even_take_is_refused(receiver: CallbackReceiver):
    """A label longer than 63 bytes makes the real resolver raise (UnicodeError), not fail: still a final refusal,
    not an internal error retried until the attempts run out."""
    outcome = send(f"http://{'a' * 64}.invalid:{receiver.port}/callback", "127.0.0.0/8")
    assert (outcome.delivered, outcome.retryable, outcome.error) == (False, False, NOT_ALLOWED)
    assert receiver.received == []


def test_listed_names_and_allowed_literals_are_not_resolved_by_the_check(resolved, receiver: CallbackReceiver):
    """A name listed by name is the operator's trust (it goes out as a name); an IP literal needs no lookup."""
    assert send(f"http://localhost:{receiver.port}/callback", "localhost").delivered
    assert send(f"http://127.0.0.1:{receiver.port}/callback", "127.0.0.1").delivered
    refused = send(f"http://127.0.0.1:{receiver.port}/callback", "127.0.0.2")
    assert (refused.retryable, refused.error) == (False, NOT_ALLOWED)
    assert resolved["lookups"] == []
    assert len(receiver.received) == 2


def test_a_name_to_check_is_never_sent_through_a_proxy(resolved, monkeypatch, receiver: CallbackReceiver):
    """A proxy would resolve the name itself, out of the check's reach: refused, and the proxy hears nothing."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{receiver.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    environment_settings.cache_clear()
    resolved["proxied.invalid"] = ["127.0.0.1"]
    outcome = send("http://proxied.invalid:8080/callback", "127.0.0.0/8")
    assert (outcome.retryable, outcome.error) == (False, NOT_ALLOWED)
    assert receiver.received == []


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[int, Path, list[str | None]]]:
    """An HTTPS server on 127.0.0.1 with a certificate for ``callback.test`` only; yields its port, the
    certificate (to trust) and the SNI names clients sent."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=callback.test", "-addext",
                    "subjectAltName=DNS:callback.test"], check=True, capture_output=True)
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def record_sni(sock: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = record_sni  # type: ignore[assignment]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], cert, names
    finally:
        server.shutdown()
        server.server_close()


def test_https_to_a_checked_address_still_verifies_the_certificate_for_the_name(resolved, monkeypatch,
                                                                                  tls_receiver):
    """Only the TCP connection is pinned: TLS sends the name as SNI and checks the certificate against it."""
    port, cert, names = tls_receiver
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    environment_settings.cache_clear()
    resolved["callback.test"] = ["127.0.0.1"]
    resolved["other.test"] = ["127.0.0.1"]
    assert send(f"https://callback.test:{port}/callback", "127.0.0.1").delivered
    wrong = send(f"https://other.test:{port}/callback", "127.0.0.1")  # same address, certificate not for it
    assert not wrong.delivered and wrong.error == "connection failed", wrong
    assert names == ["callback.test", "other.test"]
