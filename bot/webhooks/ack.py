"""`GET /ack/<token>` (a page with the incident and an Acknowledge button) and `POST /ack/<token>`
(acknowledge). HTML from an autoescaping Jinja2 template: titles come from alerts."""

from __future__ import annotations

import logging

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from jinja2 import Environment, select_autoescape

from bot.service import ack_links
from bot.service.context import Context

log = logging.getLogger(__name__)

_PAGE = Environment(autoescape=select_autoescape(default=True, default_for_string=True)).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{ page.heading }}</title>
<style>body{font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em}
button{font-size:1.3em;padding:.6em 1.4em}</style></head>
<body>
<h1>{{ page.heading }}</h1>
{% if page.incident_title %}<h2>{% if page.severity %}[{{ page.severity }}] {% endif %}
{{ page.incident_title }}</h2>{% endif %}
<p>{{ page.text }}</p>
{% if page.can_acknowledge %}<form method="post"><button type="submit">Acknowledge</button></form>{% endif %}
</body></html>
"""
)
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


def _html(page: ack_links.AckPage) -> HTMLResponse:
    return HTMLResponse(_PAGE.render(page=page), status_code=page.status, headers=_HEADERS)


def router(ctx: Context) -> APIRouter:
    api = APIRouter()
    failed = ack_links.AckPage(503, "Try again", "The bot could not look this page up just now; try again.")

    @api.get("/ack/{token}", include_in_schema=False)
    async def show(token: str) -> HTMLResponse:
        try:
            return _html(await to_thread.run_sync(ack_links.look, ctx, token))
        except Exception:
            log.exception("ack link page failed")
            return _html(failed)

    @api.post("/ack/{token}", include_in_schema=False)
    async def acknowledge(token: str) -> HTMLResponse:
        try:
            return _html(await to_thread.run_sync(ack_links.use, ctx, token))
        except Exception:
            log.exception("ack link failed")
            return _html(failed)

    return api
