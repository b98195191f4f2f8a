"""A fake PagerDuty (REST API v2 + Events API v2) for tests: checks auth, records calls, injects faults.

    with FakePagerDutyServer() as pd:
        pd.fake.add_incident("PINC001", "triggered")
        client = PagerDutyClient(DEFAULT_TOKEN, "oncall@example.com", pd.url, pd.events_url)
        client.acknowledge("PINC001")
        assert pd.fake.calls_to("PUT", "/incidents/")[0].header("From") == "oncall@example.com"

Faults: ``pd.fake.add_fault(method="PUT /incidents/*", mode="ratelimit", retry_after=3, count=1)``
(modes ratelimit, error500, slow, drop, timeout; ``count`` / ``probability`` / ``after`` / ``duration``
as in the fake Slack). ``sign_webhook`` signs a webhook body the way PagerDuty does.
"""

from __future__ import annotations

import hashlib
import hmac

from .model import DEFAULT_TOKEN, ROUTING_KEY, Call, Result, make_incident, make_oncall
from .server import FakePagerDutyServer, create_app
from .state import FakePagerDuty


def sign_webhook(body: bytes, secret: str | list[str]) -> str:
    """The `X-PagerDuty-Signature` value for `body`: `v1=<hex HMAC-SHA256>`, one per secret, comma-joined
    (PagerDuty signs with every secret of a subscription while one is being rotated)."""
    secrets = [secret] if isinstance(secret, str) else secret
    return ",".join(f"v1={hmac.new(s.encode(), body, hashlib.sha256).hexdigest()}" for s in secrets)


__all__ = [
    "DEFAULT_TOKEN",
    "ROUTING_KEY",
    "Call",
    "FakePagerDuty",
    "FakePagerDutyServer",
    "Result",
    "create_app",
    "make_incident",
    "make_oncall",
    "sign_webhook",
]
