"""Status callbacks, the domain part: what an event's body is, how it is signed, one HTTP attempt, retry policy.

The CallbackActor (actors/callbacks.py) decides *when* to send; everything here is a pure function or one
blocking HTTP attempt that the actor runs in a worker thread.

Signature (when ``HOST_RUNNER_CALLBACK_SECRET`` is set)::

    X-Runner-Timestamp: <unix seconds of this attempt>
    X-Runner-Signature: sha256=<hex HMAC-SHA256(key=secret, msg=timestamp + "." + raw body bytes)>
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from host_runner.models import TaskRecord

#: Fields of the record a receiver gets, as the contract names them; identity and ordering are added to them.
CALLBACK_FIELDS = (
    "status", "message", "started_at", "finished_at", "exit_code", "stdout", "stderr", "container_id",
    "worktree_cleanup_attempted", "worktree_cleanup_succeeded", "worktree_cleanup_message",
)
#: HTTP statuses worth another attempt besides 5xx: the receiver asked us to come back later.
RETRYABLE_STATUS = frozenset({408, 429})
#: Delivery states of an outbox event.
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
#: At most this much of a receiver's answer is read (and thrown away), so a huge answer cannot cost memory.
MAX_RESPONSE_BYTES = 64 * 1024


def record_fields(record: TaskRecord) -> dict[str, Any]:
    """The contract's callback fields of ``record`` (the outbox adds task_id, run_id, event_id and sequence)."""
    public = record.to_public()
    return {name: public.get(name) for name in CALLBACK_FIELDS}


def output_fields(record: TaskRecord, output: Mapping[str, Any], index: int) -> dict[str, Any]:
    """An agent's result frame as an event: status ``output``, the frame as printed in ``output``, its number
    in the run in ``output_index`` (1 for the first), and the record's other contract fields."""
    fields = record_fields(record)
    fields.update(status="output", output=dict(output), output_index=index)
    return fields


def encode_body(fields: Mapping[str, Any], *, task_id: str, run_id: str, event_id: str, sequence: int) -> str:
    """The exact JSON text sent for an event (stored once, so every attempt sends the same bytes)."""
    body = dict(fields)
    body.update(task_id=task_id, run_id=run_id, event_id=event_id, sequence=sequence)
    # ASCII-only, compact: the signed bytes are unambiguous whatever the receiver's JSON library.
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Runner-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of ``timestamp + "." + body``."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def receiver_of(url: str) -> str:
    """The lane an URL belongs to: scheme, host and port (never the user info or path, which may hold secrets)."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a bad port: the attempt will fail on its own; the lane only needs a name
        return f"{parts.scheme}://{(parts.hostname or '').lower()}:?"
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: ``base`` doubling per failed attempt, ±20 % jitter, at most ``cap``."""
    rng = rng or random
    delay = base * 2 ** max(0, attempts - 1)
    return min(cap, delay * rng.uniform(0.8, 1.2))


@dataclass(frozen=True)
class Delivery:
    """What one attempt needs: loaded from the outbox just before it is sent."""

    event_id: str
    url: str
    token: str | None
    body: str
    attempt: int  # 1 for the first attempt


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt. ``error`` is short and never holds the URL, the token or the secret."""

    delivered: bool
    retryable: bool
    error: str | None


def headers_for(delivery: Delivery, secret: str | None, now: float | None = None) -> dict[str, str]:
    """The request headers of one attempt (signed afresh each time: the timestamp is the attempt's)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "host-runner",
        "X-Runner-Event-Id": delivery.event_id,
        "X-Runner-Attempt": str(delivery.attempt),
    }
    if delivery.token:
        headers["X-Runner-Token"] = delivery.token
    if secret:
        timestamp = str(int(time.time() if now is None else now))
        headers["X-Runner-Timestamp"] = timestamp
        headers["X-Runner-Signature"] = sign(secret, timestamp, delivery.body.encode("ascii"))
    return headers


def classify(code: int) -> Outcome:
    """2xx delivered; 408, 429 and 5xx worth a retry; anything else (other 4xx, 3xx) final."""
    if 200 <= code < 300:
        return Outcome(True, False, None)
    if 300 <= code < 400:
        return Outcome(False, False, f"HTTP {code} (redirects are not followed)")
    return Outcome(False, code >= 500 or code in RETRYABLE_STATUS, f"HTTP {code}")


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


def attempt(session: requests.Session, delivery: Delivery, secret: str | None, timeout: float) -> Outcome:
    """POST one event once. Blocking: runs in a worker thread, never in an actor."""
    try:
        proxies, verify = environment_settings(receiver_of(delivery.url))
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
