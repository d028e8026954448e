"""Status callbacks, the retry policy: what an HTTP status means for an event, and how long to wait before the
next attempt."""

from __future__ import annotations

import random
from dataclasses import dataclass

#: HTTP statuses worth another attempt besides 5xx: the receiver asked us to come back later.
RETRYABLE_STATUS = frozenset({408, 429})


@dataclass(frozen=True)
class Outcome:
    """The result of one attempt. ``error`` is short and never holds the URL, the token or the secret."""

    delivered: bool
    retryable: bool
    error: str | None


def classify(code: int) -> Outcome:
    """2xx delivered; 408, 429 and 5xx worth a retry; anything else (other 4xx, 3xx) final."""
    if 200 <= code < 300:
        return Outcome(True, False, None)
    if 300 <= code < 400:
        return Outcome(False, False, f"HTTP {code} (redirects are not followed)")
    return Outcome(False, code >= 500 or code in RETRYABLE_STATUS, f"HTTP {code}")


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before attempt ``attempts + 1``: ``base`` doubling per failed attempt, ±20 % jitter, at most ``cap``."""
    rng = rng or random
    delay = base * 2 ** max(0, attempts - 1)
    return min(cap, delay * rng.uniform(0.8, 1.2))
