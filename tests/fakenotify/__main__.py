"""`python -m tests.fakenotify` runs the provider fakes in their own process (the bench does:
measured arrival times must not wait behind the load generator's work).

Prints `FAKENOTIFY READY {"ntfy": url, "webhook": url, "smtp": url, "twilio": url, "pushover": url,
"admin": url}` and serves `GET <admin>/arrivals`: every accepted notification as {method, at (Unix
seconds), subject} (for an SMS its text, for a call what it says first).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakenotify import FakeNtfy, FakePushover, FakeSMTP, FakeTwilio, FakeWebhookReceiver
from tests.harness import ThreadServer

READY = "FAKENOTIFY READY "


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakenotify")
    parser.add_argument(
        "--secret", default="bench-secret-key", help="SECRET_KEY the webhooks are signed with"
    )
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fakenotify-"))
    with (
        FakeNtfy() as ntfy,
        FakeSMTP(tmp) as smtp,
        FakeWebhookReceiver(opts.secret) as hook,
        FakeTwilio() as twilio,
        FakePushover(users=None) as pushover,
    ):

        async def arrivals(_: Request) -> JSONResponse:
            out = []
            with ntfy.lock:
                out += [
                    {"method": "ntfy", "at": p.at, "subject": p.body.get("title", "")}
                    for p in ntfy.publishes
                    if p.status == 200
                ]
            with smtp.lock:
                out += [
                    {"method": "email", "at": m.at, "subject": str(m.message["Subject"])}
                    for m in smtp.messages
                ]
            with hook.lock:
                out += [
                    {
                        "method": "webhook",
                        "at": d.at,
                        "subject": (d.body.get("incident") or {}).get("title", ""),
                    }
                    for d in hook.deliveries
                    if d.status == 200
                ]
            with twilio.lock:
                out += [{"method": "sms", "at": m.at, "subject": m.body} for m in twilio.messages]
                out += [{"method": "voice", "at": c.at, "subject": " ".join(c.said)} for c in twilio.calls]
            with pushover.lock:
                out += [
                    {"method": "pushover", "at": p.at, "subject": p.form.get("title", "")}
                    for p in pushover.pushes
                ]
            return JSONResponse(out)

        with ThreadServer(Starlette(routes=[Route("/arrivals", arrivals)])) as admin:
            urls = {
                "ntfy": ntfy.url,
                "webhook": hook.url("").rstrip("/"),
                "smtp": smtp.url(),
                "twilio": twilio.url,
                "pushover": pushover.url,
                "admin": admin.url,
            }
            print(READY + json.dumps(urls), flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()  # until killed
    return 0


if __name__ == "__main__":
    sys.exit(main())
