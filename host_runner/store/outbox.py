"""Status callback events, the stored part: what an event's body is, and how an attempt's headers sign it.

Everything here is pure: the store writes :func:`encode_body`'s text into the outbox with the transition it
reports, and every attempt (host_runner/delivery/http.py) sends those same bytes with :func:`headers_for`.

Signature (when ``HOST_RUNNER_CALLBACK_SECRET`` is set)::

    X-Runner-Timestamp: <unix seconds of this attempt>
    X-Runner-Signature: sha256=<hex HMAC-SHA256(key=secret, msg=timestamp + "." + raw body bytes)>
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from host_runner.domain.record import TaskRecord

#: Fields of the record a receiver gets, as the contract names them; identity and ordering are added to them.
CALLBACK_FIELDS = (
    "status", "message", "started_at", "finished_at", "exit_code", "stdout", "stderr", "container_id",
    "worktree_cleanup_attempted", "worktree_cleanup_succeeded", "worktree_cleanup_message",
)
#: Fields a body carries only when the record has them, so that the bodies of other runs stay as they were: the
#: lock check of a shared-workspace run (README: Lock check). ``failure_reason`` stays on the record only: the
#: original control plane validates the whole body, and bodies keep the fields the original runner sends.
OPTIONAL_CALLBACK_FIELDS = ("lock_violations", "lock_violations_count", "lock_check_error")
#: Delivery states of an outbox event.
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def record_fields(record: TaskRecord) -> dict[str, Any]:
    """The contract's callback fields of ``record`` (the outbox adds task_id, run_id, event_id and sequence)."""
    public = record.to_public()
    fields = {name: public.get(name) for name in CALLBACK_FIELDS}
    if "handoff" in public:  # the terminal event of an agent task: what the agent answered (or null)
        fields["handoff"] = public["handoff"]
    fields.update((name, record.extra[name]) for name in OPTIONAL_CALLBACK_FIELDS if name in record.extra)
    return fields


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


@dataclass(frozen=True)
class Delivery:
    """What one attempt needs: loaded from the outbox just before it is sent."""

    event_id: str
    url: str
    token: str | None
    body: str
    attempt: int  # 1 for the first attempt


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
