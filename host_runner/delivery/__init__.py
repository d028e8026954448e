"""Sending status callbacks over HTTP: one attempt, and where it may connect (http); what an answer means and
when to try again (retry). When to send is the CallbackActor's (actors/callback_sender.py).

May import: host_runner.domain, host_runner.store (the outbox's event and headers only).
"""

from __future__ import annotations

from host_runner.delivery.http import Sender, attempt, receiver_of
from host_runner.delivery.retry import Outcome, backoff_delay, classify

__all__ = [
    "Sender", "attempt", "receiver_of", "Outcome", "backoff_delay", "classify",
]
