"""Persistence: the SQLite store of task records and the callback outbox (sqlite), and what an outbox event is:
its body and signed headers (outbox, pure).

May import: host_runner.domain. Never host_runner.delivery, nor requests: the store writes events, it does not
send them.
"""

from __future__ import annotations

from host_runner.store.outbox import (
    DELIVERED, FAILED, PENDING, Delivery, encode_body, headers_for, output_fields, record_fields, sign,
)
from host_runner.store.sqlite import OutboxEvent, Store

__all__ = [
    "DELIVERED", "FAILED", "PENDING", "Delivery", "encode_body", "headers_for", "output_fields", "record_fields",
    "sign", "OutboxEvent", "Store",
]
