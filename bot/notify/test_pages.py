"""`incidentbot notify-test <person> [--via X]`: a marked test page by each way the person can be
reached, sent now, with what each provider answered.

The tests are sent directly, not through the outbox (the command reports the answers), and their
rows stay, so acknowledging a test's link (PUBLIC_URL/ack/...) confirms the method end to end.
"""

from __future__ import annotations

import asyncio

from sqlmodel import select

from bot.core.errors import BadInput
from bot.notify import registry
from bot.notify.delivery import outgoing
from bot.notify.port import Notifier
from bot.notify.slack_dm import SlackDMNotifier
from bot.service import notify_tests
from bot.service.context import Context
from bot.settings import Settings
from bot.slack.api import SlackWebAPI
from bot.store.db import reading, transaction
from bot.store.tables import Instance, Notification


def send_tests(settings: Settings, ctx: Context, name: str, via: str | None) -> int:
    """0 when every provider accepted its test, 1 otherwise (each answer is printed)."""
    person = ctx.rotations.people.get(name) if ctx.rotations else None
    if person is None:
        raise BadInput(f"{name!r} is not in {settings.rotations_dir}/people.yaml.")
    rows = notify_tests.create(ctx, person, notify_tests.methods_of(person, via), "cli", queue=False)
    with reading(ctx.engine) as session:
        instance = session.exec(select(Instance.id)).first() or "x"
    ok = asyncio.run(_send_all(settings, ctx, rows, instance))
    if ctx.public_url and ctx.secret_key:
        print("Acknowledge each test where it reached you (its link) to confirm the method end to end.")
    else:
        print("PUBLIC_URL and SECRET_KEY are not set: the tests carry no acknowledge link.")
    return 0 if ok else 1


async def _send_all(settings: Settings, ctx: Context, rows: list[Notification], instance: str) -> bool:
    from bot.wiring import web_client

    slack = SlackWebAPI(web_client(settings))
    notifiers: dict[str, Notifier] = {**registry.build(settings), "slack": SlackDMNotifier(slack)}
    missing = registry.missing(settings)
    ok = True
    try:
        for row in rows:
            notifier = notifiers.get(row.method)
            if notifier is None:
                answer, sent = f"not configured (it needs {missing.get(row.method, 'a provider')})", False
            else:
                try:
                    answer, sent = (
                        (await notifier.send(outgoing(ctx, row, None, None, instance))).answer,
                        True,
                    )
                except Exception as exc:  # every provider's answer is reported, whatever it is
                    answer, sent = str(getattr(exc, "error", None) or type(exc).__name__), False
            ok = ok and sent
            with transaction(ctx.engine) as session:
                notify_tests.answered(session, row.id or 0, answer, ok=sent, now=ctx.clock())
            print(f"{row.method:9} {'ok' if sent else 'FAILED':6} {answer}")
    finally:
        for notifier in notifiers.values():
            await notifier.aclose()
        await slack.aclose()
    return ok
