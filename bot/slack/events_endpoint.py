"""POST /slack/events, in front of Bolt: Slack's signature is verified before anything parses the
body, requests from another workspace or app are refused, replays and Slack's retries are dropped,
and what Bolt cannot dispatch is the request's fault (400), not the bot's.

Slack's 3 seconds count from here: the ack clock starts before anything else (bot/slack/answering.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine

from bot.slack import admission, answering
from bot.slack.installation import Installation

log = logging.getLogger(__name__)

_SLACK_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds, ASCII digits only
FOREIGN_REQUEST = "This incidentbot serves another Slack workspace or app; nothing was done."


def router(
    signing_secret: str,
    installed: Installation,
    engine: Engine,
    clock: Callable[[], datetime],
    bolt: AsyncSlackRequestHandler,
) -> APIRouter:
    """Without a signing secret every request is refused (401)."""
    api = APIRouter()
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    @api.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        answering.start_ack_clock()
        # Verify before Bolt parses anything: Bolt parses first, and a malformed body (or a
        # timestamp that is not a number) would otherwise cost a 500 to anyone, signed or not.
        timestamp = request.headers.get("x-slack-request-timestamp", "")
        signature = request.headers.get("x-slack-signature", "")
        body = await request.body()
        # slack_sdk's verifier raises on what Slack never sends: a timestamp that int() refuses
        # (non-ASCII digits, thousands of them), a non-ASCII signature, a body that is not UTF-8.
        well_formed = _SLACK_TIMESTAMP.fullmatch(timestamp) is not None and signature.isascii()
        try:
            valid = verifier is not None and well_formed and verifier.is_valid(body, timestamp, signature)
        except (UnicodeDecodeError, ValueError, TypeError):
            valid = False
        if not valid:
            return JSONResponse({"detail": "invalid or expired Slack signature"}, status_code=401)
        seen = admission.envelope(body, request.headers.get("content-type", ""), signature)
        if installed.foreign(seen.team_id, seen.app_id):
            log.warning("refused a Slack request from team %s, app %s", seen.team_id, seen.app_id)
            if seen.command:  # the person sees why; a click or an event is dropped without a word
                return JSONResponse({"response_type": "ephemeral", "text": FOREIGN_REQUEST})
            return Response(status_code=200)
        if seen.key is not None and not await admission.first_time(engine, seen.key, clock()):
            return Response(status_code=200)  # a replay or Slack's retry: it was handled once
        try:
            response = await bolt.handle(request)
        except Exception as exc:
            log.warning("malformed Slack request: %s", type(exc).__name__)
            return JSONResponse({"detail": "malformed Slack request"}, status_code=400)
        if response.status_code >= 500:
            # Listeners run after the ack, so a 5xx from Bolt means it could not make sense of the
            # payload itself (its matching raised): the request's fault, not the bot's.
            log.warning("Slack request Bolt could not dispatch (it answered %d)", response.status_code)
            return JSONResponse({"detail": "malformed Slack request"}, status_code=400)
        return response

    return api
