"""How an outbound call failed, so the outbox worker knows whether to retry.

Alertmanager's notifiers taught the rule: 429, 5xx and network trouble are recoverable (retry
with backoff, honouring Retry-After); anything else is the request's fault and is recorded.
"""

from __future__ import annotations


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
