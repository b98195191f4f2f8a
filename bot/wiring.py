"""Builds the use-case context and the background half (outbox worker, scheduler) with real adapters.

The web process and the worker process (see `bot.worker_process`) build the same context from the
same settings; only the process that delivers builds the background half.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.web.async_client import AsyncWebClient

from bot.catalog.check import check
from bot.catalog.rotations import Catalog
from bot.core.durations import parse_duration
from bot.core.errors import ConfigError, ConfigProblem
from bot.core.permissions import parse_rate
from bot.core.runbook_links import RunbookCatalog
from bot.inbox_drain import InboxDrain
from bot.integrations.alertmanager import AlertmanagerAPI
from bot.integrations.oncall_cache import OnCallCache
from bot.integrations.pagerduty import PagerDutyClient
from bot.integrations.pagerduty_delivery import PagerDutyDelivery
from bot.notify import registry as notify_registry
from bot.notify.delivery import NotifyDelivery
from bot.notify.port import Notifier
from bot.notify.slack_dm import SlackDMNotifier
from bot.scheduler import Scheduler
from bot.service.context import Context, StormPolicy
from bot.settings import Settings, admin_ids
from bot.slack.api import SlackWebAPI
from bot.slack.channel_delivery import ChannelDelivery
from bot.slack.delivery import SlackDelivery
from bot.slack.handoff_delivery import HandoffDelivery
from bot.slack.inbox_notices import InboxNotices
from bot.slack.lifecycle_delivery import LifecycleDelivery
from bot.slack.oncall_delivery import OncallDelivery
from bot.slack.oncall_people import UserGroupMembers
from bot.slack.pacing import Pacer
from bot.slack.page_delivery import PageDelivery
from bot.slack.postmortem_delivery import PostmortemDelivery
from bot.slack.runbook_delivery import RunbookDelivery
from bot.store.db import make_engine
from bot.worker import FarSide, Worker

log = logging.getLogger(__name__)

UNCONFIGURED_TOKEN = "xoxb-not-configured"


def load_config(settings: Settings) -> tuple[Catalog, RunbookCatalog]:
    """Rotation problems stop the start (paging the wrong person is worse than not starting);
    runbook problems are logged, because a broken runbook must never stop a page. A notification
    rule whose provider is not configured is logged too: that method fails visibly and the
    person's next rule takes over (`incidentbot check` reports it as a problem)."""
    checked = check(settings.rotations_dir, settings.runbooks_dir, notify_registry.missing(settings))
    rotation_problems = [p for p in checked.problems if not p.file.startswith(settings.runbooks_dir.name)]
    if rotation_problems or checked.rotations is None:
        raise ConfigError(rotation_problems or checked.problems)
    for problem in checked.problems:
        log.warning("runbook problem: %s", problem)
    for warning in checked.warnings:
        log.warning("rotation warning: %s", warning)
    for problem in checked.provider_problems:
        log.warning("notification rule problem: %s", problem)
    return checked.rotations, checked.runbooks


def bot_token(settings: Settings) -> str:
    # Without credentials the bot still starts (e.g. `make run` on a fresh machine): webhooks are
    # stored and every Slack call waits in the outbox until a real token is configured.
    return settings.slack_bot_token.get_secret_value() or UNCONFIGURED_TOKEN


def web_client(settings: Settings) -> AsyncWebClient:
    client = AsyncWebClient(
        token=bot_token(settings),
        base_url=settings.slack_api_url,
        timeout=int(settings.slack_timeout_seconds),
    )
    client.retry_handlers = []  # the outbox retries, with backoff and Retry-After
    return client


def build_context(settings: Settings, clock: Callable[[], datetime]) -> Context:
    """ConfigError (listing every problem with file and line) if the configuration is invalid."""
    catalog, runbooks = load_config(settings)
    return Context(
        engine=make_engine(settings.database_url),
        clock=clock,
        channel_prefix=settings.channel_prefix,
        announce_channel=settings.incident_announce_channel,
        rotations=catalog,
        runbooks=runbooks,
        postmortems_dir=settings.postmortems_dir,
        storm=StormPolicy(settings.storm_threshold, parse_duration(settings.storm_window)),
        heartbeat_alertname=settings.heartbeat_alertname,
        heartbeat_timeout=parse_duration(settings.heartbeat_timeout),
        postmortem_template=settings.postmortem_template.read_text()
        if settings.postmortem_template
        else None,
        silence_check_interval=silence_check_interval(settings),
        pagerduty_api=pagerduty_api(settings),
        declare_rate=parse_rate(settings.declare_rate),
        incident_admins=tuple(admin_ids(settings.incident_admins)),
        in_user_group=UserGroupMembers(
            WebClient(
                token=bot_token(settings),
                base_url=settings.slack_api_url,
                timeout=int(settings.slack_timeout_seconds),
            )
        ),
        public_url=settings.public_url or "",
        handoff_notices=settings.handoff_notices,
        secret_key=settings.secret_key.get_secret_value() if settings.secret_key else "",
    )


def silence_check_interval(settings: Settings) -> timedelta:
    """SILENCE_CHECK_INTERVAL, at least a second (Alertmanager is asked once per silenced group)."""
    problem = "must be a duration of at least 1s, e.g. '1m'"
    try:
        interval = parse_duration(settings.silence_check_interval)
    except ValueError as exc:
        problem = str(exc)
        interval = timedelta(0)
    if interval < timedelta(seconds=1):
        raise ConfigError(ConfigProblem("SILENCE_CHECK_INTERVAL", 0, problem))
    return interval


def pagerduty_api(settings: Settings) -> bool:
    """A REST API token is configured: PagerDuty's incidents can be updated from here."""
    return bool(settings.pagerduty_api_token and settings.pagerduty_api_token.get_secret_value())


def pagerduty_client(settings: Settings) -> PagerDutyClient:
    return PagerDutyClient(
        settings.pagerduty_api_token.get_secret_value() if settings.pagerduty_api_token else "",
        settings.pagerduty_from_email,
        settings.pagerduty_api_url,
        settings.pagerduty_events_url,
        timeout=settings.slack_timeout_seconds,
    )


def oncall_cache(client: PagerDutyClient, clock: Callable[[], datetime]) -> OnCallCache:
    # On-call answers are cached for a minute of the app's clock (so tests can move past it).
    return OnCallCache(client, clock=lambda: clock().timestamp())


@dataclass
class Background:
    """The inbox drain, the outbox worker and the scheduler of one process; `ctx.wake` now wakes
    this worker and `ctx.wake_inbox` this drain."""

    worker: Worker
    scheduler: Scheduler
    pagerduty: PagerDutyClient
    slack: SlackWebAPI
    notifiers: dict[str, Notifier]
    inbox: InboxDrain

    async def run(self) -> None:
        """The drain and the worker, until stopped (the scheduler runs on its own)."""
        await asyncio.gather(self.inbox.run(), self.worker.run())

    async def stop(self, grace_seconds: float) -> None:
        self.scheduler.shutdown()
        self.inbox.stop()
        await self.worker.stop(grace_seconds=grace_seconds)
        await self.slack.aclose()
        for notifier in self.notifiers.values():
            await notifier.aclose()
        self.pagerduty.close()


def build_background(settings: Settings, ctx: Context, client: AsyncWebClient) -> Background:
    engine, clock = ctx.engine, ctx.clock
    slack = SlackWebAPI(client, Pacer(settings.slack_rate_scale), pooled=True)
    delivery = SlackDelivery(
        engine,
        slack,
        settings.incident_announce_channel,
        clock,
        silences=bool(settings.alertmanager_url),
        rotations=ctx.rotations,
    )
    am_api = AlertmanagerAPI(settings.alertmanager_url) if settings.alertmanager_url else None
    pd_client = pagerduty_client(settings)
    pd_oncall = oncall_cache(pd_client, clock)
    # Notifiers (email, ntfy, webhook, ...) are their own far sides: Slack being down holds none of
    # them, which is the point of having them. Slack DMs as a notifier serve test pages only.
    notifiers = {**notify_registry.build(settings), "slack": SlackDMNotifier(slack)}
    other_sides = {
        **LifecycleDelivery(delivery, am_api, ctx).handlers(),  # archive calls Slack; silences Alertmanager
        **PagerDutyDelivery(engine, pd_client, pd_oncall, clock).handlers(),
        **NotifyDelivery(ctx, notifiers, notify_registry.missing(settings), clock).handlers(),
    }
    oncall = OncallDelivery(delivery, ctx)
    handlers = {
        **delivery.handlers(),
        **ChannelDelivery(delivery).handlers(),
        **PageDelivery(delivery, ctx).handlers(),
        **RunbookDelivery(delivery, ctx).handlers(),
        **PostmortemDelivery(delivery, ctx).handlers(),
        **oncall.handlers(),
        **HandoffDelivery(delivery, ctx, oncall).handlers(),
        **InboxNotices(delivery).handlers(),
        **other_sides,
    }
    slack_ops = frozenset(handlers) - frozenset(other_sides) | {"archive"}

    async def slack_answers() -> None:
        await delivery.slack.call("auth.test")  # harmless; also tells whether the token is accepted

    side = FarSide("Slack", slack_ops, probe=slack_answers, credentials="SLACK_BOT_TOKEN")
    worker = Worker(engine, handlers, clock, poll_seconds=settings.outbox_poll_seconds, sides=(side,))
    drain = InboxDrain(ctx, poll_seconds=settings.outbox_poll_seconds)
    ctx.wake, ctx.wake_inbox = worker.wake, drain.wake
    scheduler = Scheduler(ctx, settings.scheduler_tick_seconds, parse_duration(settings.inbox_retention))
    return Background(worker, scheduler, pd_client, slack, notifiers, drain)
