"""How an outbound call failed, so the outbox worker knows whether to retry.

Alertmanager's notifiers taught the rule: 429, 5xx and network trouble are recoverable (retry
with backoff, honouring Retry-After); anything else is the request's fault and is recorded.
"""

from __future__ import annotations

import random

MAX_BACKOFF = 300.0


def backoff(attempts: int) -> float:
    """2 s, 4 s, 8 s ... capped at 5 minutes, with jitter so replicas do not retry in step."""
    return min(MAX_BACKOFF, 2.0 ** max(1, attempts)) * random.uniform(0.8, 1.2)


class DeliveryError(Exception):
    def __init__(
        self,
        method: str,
        error: str,
        *,
        recoverable: bool,
        retry_after: float | None = None,
        maybe_done: bool = False,
        unfinished: bool = False,
        credentials: bool = False,
    ) -> None:
        super().__init__(f"{method}: {error}")
        self.method = method
        self.error = error
        self.recoverable = recoverable
        self.retry_after = retry_after
        # True when the far side may have carried the call out before failing (timeout, 5xx):
        # the next attempt must check before repeating a non-idempotent call.
        self.maybe_done = maybe_done
        # True when the call may still be under way there (a timeout, a dropped connection): a
        # lookup made at once could miss what it is about to do, so the retry keeps its backoff.
        self.unfinished = unfinished
        # True when the far side refused our credentials (a bad or revoked token): not an outage.
        # The call did nothing; its rows wait for valid credentials (see `Worker`).
        self.credentials = credentials

    @property
    def looks_down(self) -> bool:
        """Server errors and network trouble, not a rate limit (that has its own Retry-After) nor
        refused credentials (Slack answered, just not to us)."""
        return self.recoverable and self.retry_after is None and not self.credentials
