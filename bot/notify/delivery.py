"""The outbox operation `notify` {notification_id, retry_until}: one notification by one provider.

The worker runs it like a Slack operation: 429, 5xx and network trouble are retried with backoff
while the rule's window lasts (`retry_until`: when the person's next rule is due); after it, or on
a final refusal, the failure is settled with `notifications.failed` in the transaction that marks
the row done (said in the channel, next rule at once). Success is recorded with the provider's
answer. A notification cancelled meanwhile (acknowledged) is not sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from anyio import to_thread
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from bot.core.ack_tokens import VALID_FOR, AckTarget, ack_url, make_token
from bot.integrations.errors import DeliveryError
from bot.notify.port import Notifier, Outgoing, ReceiptFollower
from bot.observability import NOTIFICATIONS
from bot.service import notifications, notify_receipts, notify_tests
from bot.service.context import Context
from bot.slack.delivery import Completion, Handler
from bot.store.db import reading
from bot.store.tables import Incident, Instance, Notification, Outbox, Page


@dataclass(frozen=True)
class _Facts:
    notification: Notification
    incident: Incident | None
    page: Page | None
    instance: str
    other_open_pages: int = 0


class NotifyDelivery:
    def __init__(
        self,
        ctx: Context,
        notifiers: dict[str, Notifier],
        needs: dict[str, str],
        clock: Callable[[], datetime],
    ) -> None:
        self.ctx = ctx
        self.engine: Engine = ctx.engine
        self.notifiers = notifiers
        self.needs = needs  # method -> missing settings, for a clear failure
        self.clock = clock

    def handlers(self) -> dict[str, Handler]:
        return {
            "notify": self.notify,
            notify_receipts.CHECK: self.check_receipt,
            notify_receipts.CANCEL: self.cancel_receipt,
        }

    def _follower(self, method: str) -> ReceiptFollower | None:
        notifier = self.notifiers.get(method)
        return notifier if isinstance(notifier, ReceiptFollower) else None

    async def check_receipt(self, row: Outbox) -> Completion | None:
        """Ask the provider whether the person acknowledged; acknowledge the incident if so."""
        payload = dict(row.payload)
        follower = self._follower(str(payload.get("method")))
        if follower is None:
            return None  # the provider is no longer configured: nothing to ask
        state = await follower.check(str(payload["receipt"]))  # NotifyError: retried, or final
        if state.acknowledged:
            await to_thread.run_sync(notify_receipts.acknowledge, self.ctx, payload, state.detail)

        def complete(session: Session) -> None:
            notify_receipts.checked(
                session, payload, state.acknowledged, state.over, state.detail, self.clock()
            )

        return complete

    async def cancel_receipt(self, row: Outbox) -> Completion | None:
        """The incident no longer waits: the provider stops repeating the page."""
        payload = dict(row.payload)
        follower = self._follower(str(payload.get("method")))
        if follower is None:
            return None
        await follower.cancel(str(payload["receipt"]))

        def complete(session: Session) -> None:
            notify_receipts.cancelled(session, payload, row.incident_id, self.clock())

        return complete

    def _facts(self, notification_id: int) -> _Facts | None:
        with reading(self.engine) as session:
            n = session.get(Notification, notification_id)
            if n is None:
                return None
            incident = session.get(Incident, n.incident_id) if n.incident_id else None
            page = session.get(Page, n.page_id) if n.page_id else None
            instance = session.exec(select(Instance.id).order_by(col(Instance.created_at))).first() or "x"
            others = open_elsewhere(session, n.person, n.incident_id) if n.method == "sms" else 0
            return _Facts(n, incident, page, instance, others)

    async def notify(self, row: Outbox) -> Completion | None:
        facts = await to_thread.run_sync(self._facts, int(row.payload["notification_id"]))
        if facts is None or facts.notification.status != "pending":
            return None  # cancelled (acknowledged meanwhile) or already settled
        n = facts.notification
        assert n.id is not None
        notifier = self.notifiers.get(n.method)
        if notifier is None:
            needs = self.needs.get(n.method, "a provider")
            return self._failed(n, f"no {n.method} provider is configured (it needs {needs})")
        until = _when(row.payload.get("retry_until"))
        now = self.clock()
        if row.last_error and until is not None and now >= until:
            # Failed before and the rule's window is over. (A row whose call was cut short by a
            # crash has no error recorded: it is sent again, at least once, whatever the window.)
            return self._failed(n, f"gave up after {row.attempts - 1} attempts: {row.last_error}")
        try:
            sent = await notifier.send(self.outgoing(facts))
        except DeliveryError as exc:
            retry = exc.recoverable and (until is None or self.clock() < until)
            NOTIFICATIONS.labels(n.method, "retry" if retry else "failed").inc()
            if retry:
                raise
            return self._failed(n, exc.error)
        NOTIFICATIONS.labels(n.method, "sent").inc()
        done = self.clock()

        def complete(session: Session) -> None:
            if n.test_by:
                notify_tests.answered(session, n.id or 0, sent.answer, ok=True, now=done)
            else:
                follow = (sent.follow.every, sent.follow.for_, sent.follow.at_most) if sent.follow else None
                notifications.sent(session, n.id or 0, sent.answer, done, receipt=sent.receipt, follow=follow)

        return complete

    def _failed(self, n: Notification, error: str) -> Completion:
        now = self.clock()

        def complete(session: Session) -> None:
            if n.test_by:
                notify_tests.answered(session, n.id or 0, error, ok=False, now=now)
            else:
                notifications.failed(self.ctx, session, n.id or 0, error, now)

        return complete

    def outgoing(self, facts: _Facts) -> Outgoing:
        return outgoing(
            self.ctx, facts.notification, facts.incident, facts.page, facts.instance, facts.other_open_pages
        )


def open_elsewhere(session: Session, person: str, incident_id: int | None) -> int:
    """How many other incidents still wait for `person`'s acknowledgement (they were paged)."""
    found = session.exec(
        select(func.count(func.distinct(Page.incident_id)))
        .join(Incident, col(Incident.id) == col(Page.incident_id))
        .where(
            col(Page.person) == person,
            col(Incident.status) == "triggered",
            col(Incident.id) != incident_id,
        )
    ).one()
    return int(found or 0)


def outgoing(
    ctx: Context,
    n: Notification,
    incident: Incident | None,
    page: Page | None,
    instance: str,
    other_open_pages: int = 0,
) -> Outgoing:
    """What every provider is given for one notification (plain text: each escapes for itself)."""
    assert n.id is not None
    link = token = None
    if ctx.public_url and ctx.secret_key:
        if page is not None and incident is not None and page.id is not None:
            target = AckTarget("page", page.id, incident.paging_cycle, page.paged_at + VALID_FOR)
        else:
            target = AckTarget("test", n.id, 0, n.created_at + VALID_FOR)
        link = ack_url(ctx.public_url, ctx.secret_key, target)
        token = make_token(ctx.secret_key, target)
    key = f"incidentbot-{instance[:12]}-n{n.id}"
    if incident is None:
        subject = f"Test page for {n.person} by {n.method}"
        text = f"This is a TEST page from incidentbot, sent to {n.person} by {n.method}.\n" + (
            f"Acknowledge it to confirm this method works end to end: {link}\n" if link else ""
        )
        return Outgoing(
            n.id,
            n.method,
            n.address,
            n.person,
            subject,
            "SEV3",
            text,
            None,
            "Test page",
            "",
            link,
            None,
            key,
            test=True,
            ack_token=token,
        )
    assert incident.id is not None
    summary = (
        incident.common_annotations.get("summary") or incident.common_annotations.get("description") or ""
    )
    open_url = (
        (f"https://slack.com/app_redirect?channel={incident.channel_id}" if incident.channel_id else None)
        or incident.external_url
        or None
    )
    subject = f"[{incident.severity}] Incident #{incident.id}: {incident.title}"
    lines = [subject, ""]
    lines += [summary, ""] if summary else []
    lines.append(f"Severity: {incident.severity} · Status: {incident.status} · Paged: {n.person}")
    lines.append(
        f"Acknowledge: {link}" if link else "Acknowledge in Slack (the page DM or the incident card)."
    )
    if open_url:
        lines.append(f"Open: {open_url}")
    return Outgoing(
        n.id,
        n.method,
        n.address,
        n.person,
        subject,
        incident.severity,
        "\n".join(lines) + "\n",
        incident.id,
        incident.title,
        summary,
        link,
        open_url,
        key,
        ack_token=token,
        other_open_pages=other_open_pages,
    )


def _when(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
