"""`POST /webhooks/<vendor>/sms` (an SMS reply) and `POST /webhooks/<vendor>/voice` (a key pressed
during a call), for any SMS/voice vendor (`bot.notify.phone.PhoneInbound`; Twilio today).

A request must carry the vendor's signature over the URL the vendor was given, `PUBLIC_URL` + path
+ query: anything else gets 401 and changes nothing, before the database is touched. The answer is
the vendor's markup (TwiML for Twilio): the SMS sent back, or what the call says next. Unlike the
alert webhooks these answer at once with the outcome (the person waits for it on the phone), so
they call the use case directly, as acknowledge links do.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, quote

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from bot.core.phone_replies import said
from bot.notify.phone import PhoneInbound
from bot.service import phone_replies
from bot.service.context import Context

log = logging.getLogger(__name__)

SORRY_SMS = "Sorry, the bot could not handle this reply just now. Try again, or use Slack."
SORRY_CALL = "Sorry, the bot could not handle this key just now. Use Slack. Goodbye."


def router(ctx: Context, inbound: PhoneInbound) -> APIRouter:
    api = APIRouter()
    base = f"/webhooks/{inbound.name}"

    async def signed_form(request: Request) -> list[tuple[str, str]] | Response:
        """The form fields of a request the vendor signed, or the 401 to answer."""
        if not inbound.configured() or not ctx.public_url:
            return JSONResponse(
                {"detail": f"{inbound.name} webhooks are not configured here (its token and PUBLIC_URL)"},
                status_code=401,
            )
        body = await request.body()
        try:
            form = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
        except (UnicodeDecodeError, ValueError):
            form = None
        query = request.url.query
        url = ctx.public_url.rstrip("/") + request.url.path + (f"?{query}" if query else "")
        if form is None or not inbound.authentic(url, form, request.headers):
            log.warning("refused a %s webhook without a valid signature (%s)", inbound.name, request.url.path)
            return JSONResponse({"detail": f"invalid or missing {inbound.name} signature"}, status_code=401)
        return form

    def answer(document: str) -> Response:
        return Response(document, media_type=inbound.media_type, headers={"Cache-Control": "no-store"})

    @api.post(f"{base}/sms", include_in_schema=False)
    async def sms(request: Request) -> Response:
        form = await signed_form(request)
        if isinstance(form, Response):
            return form
        message = inbound.sms(form)
        if message is None:
            return answer(inbound.message(None))  # signed, but no sender: nobody to answer
        try:
            text = await to_thread.run_sync(
                phone_replies.sms_reply, ctx, message.sender, message.body, message.key, inbound.name
            )
        except Exception:
            log.exception("%s SMS reply failed", inbound.name)
            text = SORRY_SMS
        return answer(inbound.message(text))

    @api.post(f"{base}/voice", include_in_schema=False)
    async def voice(request: Request) -> Response:
        form = await signed_form(request)
        if isinstance(form, Response):
            return form
        pressed = inbound.pressed(form)
        token = request.query_params.get("page", "")
        if pressed is None or not token:
            return answer(inbound.voice(said("This call has nothing to answer. Goodbye.")))
        gather_url = f"{ctx.public_url.rstrip('/')}{base}/voice?page={quote(token, safe='')}"
        try:
            script = await to_thread.run_sync(
                phone_replies.voice_key, ctx, token, pressed.digits, gather_url, pressed.key, inbound.name
            )
        except Exception:
            log.exception("%s voice key failed", inbound.name)
            script = said(SORRY_CALL)
        return answer(inbound.voice(script))

    return api
