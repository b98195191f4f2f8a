"""`GET /calendar/<rotation>.ics` and `GET /calendar/people/<person>.ics`: the on-call schedule for
calendar apps, which can only authenticate with the URL, so the token is `?token=<CALENDAR_TOKEN>`.

Without CALENDAR_TOKEN both answer 404, as if they did not exist; a missing or wrong token gets 403
before any name is looked at (so the names of rotations and people cannot be probed). The token is
compared in constant time. The feed is built in a worker thread (`service.oncall_calendar`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from bot.service import oncall_calendar
from bot.service.context import Context


def router(ctx: Context, token: str | None) -> APIRouter:
    api = APIRouter()
    expected = token.encode() if token else None

    async def feed(request: Request, build: Callable[[Context, str], bytes | None], name: str) -> Response:
        if expected is None:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        given = request.query_params.get("token", "").encode()
        if not hmac.compare_digest(given, expected):
            return JSONResponse({"detail": "a valid ?token= is required"}, status_code=403)
        body = await to_thread.run_sync(build, ctx, name)
        if body is None:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={"Cache-Control": "private, max-age=300", "Referrer-Policy": "no-referrer"},
        )

    @api.get("/calendar/people/{person}.ics", include_in_schema=False)
    async def person_calendar(request: Request, person: str) -> Response:
        return await feed(request, oncall_calendar.person_feed, person)

    @api.get("/calendar/{rotation}.ics", include_in_schema=False)
    async def rotation_calendar(request: Request, rotation: str) -> Response:
        return await feed(request, oncall_calendar.rotation_feed, rotation)

    return api
