"""The composition root: builds the ASGI app and the real adapters; the lifespan runs the worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.authorization import AuthorizeResult

from bot.core.durations import parse_duration
from bot.core.pagerduty import parse_secrets
from bot.notify.twilio import TwilioInbound
from bot.observability import DATABASE, exposition
from bot.service import handoffs
from bot.service.context import utcnow
from bot.settings import Settings, admin_ids
from bot.slack import events_endpoint, installation
from bot.slack.api import CREDENTIAL_ERRORS
from bot.slack.bolt_app import bolt_app
from bot.slack.listeners import register
from bot.slack.oncall_people import say_unknown_user_groups
from bot.slack.socket_mode import SocketModeLink, bolt_connect
from bot.startup import Readiness, StartGate, upgrade_when_reachable
from bot.store.db import DatabaseUnreachable, ping, upgrade
from bot.webhooks import ack, alertmanager, calendar, pagerduty, phone
from bot.webhooks.common import BodyLimit
from bot.wiring import (
    UNCONFIGURED_TOKEN,
    bot_token,
    build_background,
    build_context,
    oncall_cache,
    pagerduty_client,
    web_client,
)
from bot.worker_process import WorkerProcess

log = logging.getLogger(__name__)


def _say_alertmanager_auth(settings: Settings) -> None:
    """Fail closed: without a token nothing gets in, unless ALERTMANAGER_AUTH=none says so on purpose."""
    if settings.alertmanager_token is not None:
        if settings.alertmanager_auth == "none":
            log.warning("ALERTMANAGER_AUTH=none is ignored: ALERTMANAGER_TOKEN is set, so it is required")
    elif settings.alertmanager_auth == "none":
        log.warning("ALERTMANAGER_AUTH=none: /webhooks/alertmanager accepts unauthenticated requests")
    else:
        log.error(
            "ALERTMANAGER_TOKEN is not set: /webhooks/alertmanager refuses every request (401, which "
            "Alertmanager drops). Set ALERTMANAGER_TOKEN to the bearer token Alertmanager sends, or "
            "ALERTMANAGER_AUTH=none to accept unauthenticated requests on purpose"
        )


def _pages_beyond_slack(ctx: Any) -> bool:
    """Some notification rule reaches people by more than Slack (then ack links matter)."""
    from bot.catalog.people import uses

    catalog = ctx.rotations
    return catalog is not None and bool(uses(catalog.people.values(), catalog.default_notify) - {"slack"})


def create_app(
    settings: Settings,
    clock: Callable[[], datetime] = utcnow,
    *,
    worker_process: WorkerProcess | None = None,
) -> FastAPI:
    """Build the app; ConfigError (listing every problem with file and line) if config is invalid.

    With `worker_process` the outbox worker and the scheduler run in that child process (`serve`
    forks it); otherwise in this one (tests drive them through `app.state.worker` / `.scheduler`)."""
    ctx = build_context(settings, clock)
    engine = ctx.engine
    installed = installation.Installation()  # which team and app may send /slack/events
    admins = installation.Admins(admin_ids(settings.incident_admins))
    ctx.admins = admins
    token = bot_token(settings)
    client = web_client(settings)
    background = None if worker_process else build_background(settings, ctx, client)
    if worker_process is not None:
        worker_process.attach(ctx)
    # `/oncall` reads PagerDuty-sourced rotations through its own cache (paging has the worker's).
    pd_web = pagerduty_client(settings) if settings.pagerduty_api_token else None
    pd_lookup = oncall_cache(pd_web, clock).get if pd_web else None
    pd_secrets = parse_secrets(
        settings.pagerduty_webhook_secret.get_secret_value() if settings.pagerduty_webhook_secret else None
    )

    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        # One workspace, one bot token: no auth.test per request, so buttons and commands keep
        # working while Slack's Web API is down (Bolt's default would refuse them).
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token)

    bolt = bolt_app(settings.slack_signing_secret.get_secret_value(), client, authorize)
    archive_after = parse_duration(settings.archive_after)
    register(
        bolt, ctx, archive_after if archive_after.total_seconds() > 0 else None, pd_lookup, client=client
    )
    slack_handler = AsyncSlackRequestHandler(bolt)

    readiness = Readiness()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if token == UNCONFIGURED_TOKEN:
            log.warning("SLACK_BOT_TOKEN is not set: Slack calls wait in the outbox until it is")
        if not settings.slack_signing_secret.get_secret_value():
            log.warning("SLACK_SIGNING_SECRET is not set: every request to /slack/events is refused")
        _say_alertmanager_auth(settings)
        if not pd_secrets:
            log.warning("PAGERDUTY_WEBHOOK_SECRET is not set: /webhooks/pagerduty rejects every delivery")
        elif not ctx.pagerduty_api:
            log.warning(
                "PAGERDUTY_API_TOKEN is not set: PagerDuty incidents acknowledged or resolved in Slack"
                " are not updated in PagerDuty (Slack says so when it happens)"
            )
        task: asyncio.Task[None] | None = None
        socket_mode: SocketModeLink | None = None
        watching: asyncio.Task[None] | None = None
        groups: asyncio.Task[None] | None = None

        if not (ctx.public_url and ctx.secret_key) and _pages_beyond_slack(ctx):
            log.warning(
                "PUBLIC_URL or SECRET_KEY is not set: pages by email, ntfy, Pushover and webhook carry"
                " no acknowledge link (and the webhook notifier needs SECRET_KEY); keys pressed during"
                " calls need both, SMS replies PUBLIC_URL"
            )

        async def begin() -> None:
            """The bot's work, once the schema is migrated."""
            nonlocal task, socket_mode, watching, groups
            if background is not None:
                task = asyncio.create_task(background.run(), name="inbox-and-outbox")
                background.scheduler.start()
            if worker_process is not None:
                await worker_process.start()
            # Socket Mode connects in the background: Slack being unreachable must not hold the start
            # (webhooks) or the stop (SIGTERM).
            if settings.slack_app_token is not None:
                socket_mode = SocketModeLink(bolt_connect(bolt, settings.slack_app_token.get_secret_value()))
                socket_mode.start()
            # Without a token there is no installation to learn (and nothing to refuse requests by).
            if token != UNCONFIGURED_TOKEN:
                watching = asyncio.create_task(installation.watch(installed, admins, client))
            # Said, never fatal: an admin user group Slack does not know grants nobody anything.
            if ctx.rotations:
                await to_thread.run_sync(handoffs.start, ctx)  # plan handoffs, repair user groups
                groups = asyncio.create_task(
                    say_unknown_user_groups(client, ctx.rotations, ctx.incident_admins)
                )
            readiness.ready = True
            log.info("incidentbot ready", extra={"database": engine.dialect.name})

        async def begin_when_reachable(first: DatabaseUnreachable) -> None:
            await upgrade_when_reachable(engine, first)
            await begin()

        # An unreachable database is waited for with the HTTP server up (see bot/startup.py); any
        # other failure to migrate stops the start, as before.
        waiting = None
        try:
            await to_thread.run_sync(upgrade, engine)
        except DatabaseUnreachable as unreachable:
            waiting = asyncio.create_task(begin_when_reachable(unreachable), name="start")
        else:
            await begin()
        try:
            yield
        finally:
            if waiting is not None:
                waiting.cancel()
                with suppress(asyncio.CancelledError):
                    await waiting
            if watching is not None:
                watching.cancel()
            # Closing Socket Mode (at most 2 s) runs alongside the worker's grace, not before it.
            closing = asyncio.create_task(socket_mode.stop()) if socket_mode is not None else None
            if background is not None and task is not None:
                await background.stop(grace_seconds=5)
                task.cancel()
            if worker_process is not None:
                # The child's own grace is 5 s; with uvicorn's 3 s the bot is gone within 10 s.
                await worker_process.stop(grace_seconds=6)
            if closing is not None:
                await closing
            if groups is not None:
                groups.cancel()
            if pd_web is not None:
                pd_web.close()
            engine.dispose()

    app = FastAPI(title="incidentbot", version="0.1.0", lifespan=lifespan)
    app.state.ctx = ctx
    app.state.installation = installed
    if background is not None:
        app.state.worker, app.state.scheduler = background.worker, background.scheduler
        app.state.inbox = background.inbox
    am_token = settings.alertmanager_token.get_secret_value() if settings.alertmanager_token else None
    am_open = am_token is None and settings.alertmanager_auth == "none"
    app.include_router(alertmanager.router(ctx, am_token, unauthenticated=am_open))
    app.include_router(pagerduty.router(ctx, pd_secrets))
    cal_token = settings.calendar_token.get_secret_value() if settings.calendar_token else None
    app.include_router(calendar.router(ctx, cal_token or None))
    app.include_router(ack.router(ctx))
    twilio_token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    app.include_router(phone.router(ctx, TwilioInbound(twilio_token)))

    app.include_router(
        events_endpoint.router(
            settings.slack_signing_secret.get_secret_value(), installed, engine, clock, slack_handler
        )
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        if not readiness.ready:  # waiting for the database (bot/startup.py)
            return JSONResponse({"status": "starting"}, status_code=503)
        try:
            await asyncio.wait_for(to_thread.run_sync(ping, engine), timeout=3)
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        try:
            if readiness.ready:  # before, the database is known not to answer (bot/startup.py)
                await to_thread.run_sync(
                    DATABASE.refresh, engine, token != UNCONFIGURED_TOKEN, CREDENTIAL_ERRORS
                )
        except Exception:  # metrics must answer even while the database is down
            log.warning("could not read the outbox depth")
        return PlainTextResponse(exposition(), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        """The webhooks' body schemas name their nested models under components (schemathesis and
        other tools resolve `#/components/schemas/...` from the document root)."""
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for operation in (op for path in schema["paths"].values() for op in path.values()):
                for media in operation.get("requestBody", {}).get("content", {}).values():
                    components.update(media.get("schema", {}).pop("$defs", {}))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(StartGate, readiness=readiness)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        routes={"/webhooks/alertmanager": settings.alertmanager_max_body_bytes},
    )
    return app
