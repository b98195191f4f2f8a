"""Use cases: swap requests. `/oncall swap` posts "Alex needs cover ..." in the rotation's
`channel:` with a Take button; the first allowed person to click it gets the override.

* `request`: only a person on call in that layer during the span may ask (admins use
  `/oncall override`). The post goes through the outbox (`swap_post`), and a durable timer
  (`swap_expiry`) updates the message when the span is over.
* `take`: the database settles a race: `open -> taken` is one conditional UPDATE, so of two
  people clicking at once exactly one wins; the other is told who did. The taker needs a person
  in people.yaml and may not be the requester; the override starts now if the span has begun
  and replaces the requester's own overrides in the span (the requester asked for this change),
  any other overlap refuses it (the request stays open). Both are told by DM, the message updated.
* `expire_due`: the timer fired: an open request is marked expired, its message says so, and
  the requester is told nobody took it. A Take click after that says it expired.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import Session, col

from bot.core.errors import BadInput
from bot.core.oncall_changes import Actor
from bot.core.schedule import covered_people
from bot.core.text import escape
from bot.core.when import Span, local_text, slack_date
from bot.service.context import Context
from bot.service.oncall_overrides import add, person_text, pick_layer, span_of
from bot.service.oncall_schedule import effective_rotation, file_rotation
from bot.service.responders import Answer
from bot.store import oncall as store
from bot.store import outbox
from bot.store.db import reading, transaction
from bot.store.tables import SwapRequest, Timer

EXPIRY_KIND = "swap_expiry"
POST_OP, UPDATE_OP, DM_OP = "swap_post", "swap_update", "oncall_dm"


def lane(swap_id: int | None) -> str:
    return f"swap:{swap_id}"


def request(
    ctx: Context, actor: Actor, rotation_name: str, layer_name: str | None, words: list[str]
) -> Answer:
    rotation = file_rotation(ctx, rotation_name)
    layer = pick_layer(rotation, layer_name)
    if rotation.channel is None:
        raise BadInput(
            f"Rotation {rotation.name} has no `channel:` to post swap requests in; ask an admin to add one, "
            "or use `/oncall override`."
        )
    if actor.person is None:
        raise BadInput("You are not in people.yaml, so you have no shifts to swap.")
    now = ctx.clock()
    span, reason = span_of(rotation, words, now)
    with transaction(ctx.engine) as session:
        current = effective_rotation(ctx, session, rotation.name, now)
        if actor.person not in covered_people(current, layer, span.start, span.end):
            raise BadInput(
                f"You are not on call in {rotation.name} {layer} then; only the person on call can ask for "
                "cover (`/oncall me` shows your shifts)."
            )
        swap = SwapRequest(
            rotation=rotation.name,
            layer=layer,
            requester=actor.person,
            requested_by=actor.slack_user,
            starts_at=span.start,
            ends_at=span.end,
            reason=reason,
            channel=rotation.channel,
            expires_at=span.end,
            created_at=now,
        )
        session.add(swap)
        session.flush()
        store.audit(
            session,
            now,
            f"slack:{actor.slack_user}",
            "swap_requested",
            rotation.name,
            layer,
            f"{actor.person} asked for cover: {describe_span(rotation.timezone, span)}",
            {"swap": swap.id, "reason": reason},
        )
        outbox.enqueue(session, lane(swap.id), POST_OP, now, {"swap_id": swap.id})
        session.add(
            Timer(kind=EXPIRY_KIND, key=f"swap:{swap.id}", due_at=span.end, payload={"swap_id": swap.id})
        )
    ctx.wake()
    zone = ZoneInfo(rotation.timezone)
    return Answer(
        f"Asked for cover in <#{rotation.channel}>: {rotation.name} {layer} from "
        f"{slack_date(span.start, zone)} to {slack_date(span.end, zone)}. The first person to click Take "
        "gets the shift.",
        changed=True,
    )


def take(ctx: Context, actor: Actor, swap_id: int) -> Answer:
    now = ctx.clock()
    with reading(ctx.engine) as session:
        swap = session.get(SwapRequest, swap_id)
    if swap is None:
        raise BadInput("This swap request no longer exists.")
    if swap.status != "open" or now >= swap.expires_at:
        return Answer(_closed(ctx, swap, now))
    if actor.person is None:
        raise BadInput("You are not in people.yaml, so the bot cannot put you on call.")
    if actor.person == swap.requester:
        raise BadInput("You cannot take your own request; it stays open for someone else.")
    rotation = file_rotation(ctx, swap.rotation)
    pick_layer(rotation, swap.layer)
    with transaction(ctx.engine) as session:
        store.lock_layer(session, swap.rotation, swap.layer)
        won = session.execute(
            update(SwapRequest)
            .where(col(SwapRequest.id) == swap_id, col(SwapRequest.status) == "open")
            .values(status="taken", taken_by=actor.person, taken_by_user=actor.slack_user, taken_at=now)
        )
        if won.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            won_by = session.get(SwapRequest, swap_id)
            assert won_by is not None
            return Answer(_closed(ctx, won_by, now))
        span = Span(max(swap.starts_at, now), swap.ends_at)
        row, _ = add(
            ctx,
            session,
            actor,
            rotation,
            swap.layer,
            actor.person,
            span,
            now,
            reason=swap.reason or f"swap #{swap_id}",
            asked_by=swap.requested_by,
            swap_id=swap_id,
        )
        store.audit(
            session,
            now,
            f"slack:{actor.slack_user}",
            "swap_taken",
            swap.rotation,
            swap.layer,
            f"{actor.person} took {swap.requester}'s request #{swap_id}",
            {"swap": swap_id, "override": row.id},
        )
        what = f"{swap.rotation} {swap.layer} {describe_span(rotation.timezone, span, slack=True)}"
        outbox.enqueue(session, lane(swap_id), UPDATE_OP, now, {"swap_id": swap_id})
        _dm(
            session,
            swap_id,
            swap.requester,
            f":white_check_mark: {person_text(ctx, actor.person)} covers your shift: {what}.",
            now,
        )
        _dm(
            session,
            swap_id,
            actor.person,
            f":white_check_mark: You cover {person_text(ctx, swap.requester)}: "
            f"{what}. `/oncall me` lists your shifts.",
            now,
        )
    ctx.wake()
    return Answer(f"You took it: you cover {person_text(ctx, swap.requester)} on {what}.", changed=True)


def expire_due(ctx: Context, session: Session, timer: Timer, now: datetime) -> None:
    """The request's span is over (or it began and nobody took it in time): say it expired."""
    timer.status, timer.fired_at = "fired", now
    session.add(timer)
    swap = session.get(SwapRequest, int(timer.payload.get("swap_id", 0)), with_for_update=True)
    if swap is None or swap.status != "open":
        return
    swap.status = "expired"
    session.add(swap)
    store.audit(
        session,
        now,
        "bot",
        "swap_expired",
        swap.rotation,
        swap.layer,
        f"{swap.requester}'s request #{swap.id} expired untaken",
        {"swap": swap.id},
    )
    outbox.enqueue(session, lane(swap.id), UPDATE_OP, now, {"swap_id": swap.id})
    _dm(
        session,
        swap.id,
        swap.requester,
        f":hourglass: Nobody took your request for cover on {swap.rotation} {swap.layer}; it has expired.",
        now,
    )


def unposted(session: Session, swap_id: int, error: str, now: datetime) -> None:
    """Slack refused the post for good (an archived or unknown channel): nobody can take it, so
    the requester is told why instead of waiting for a Take that cannot come."""
    swap = session.get(SwapRequest, swap_id, with_for_update=True)
    if swap is None or swap.status != "open":
        return
    swap.status = "unposted"
    session.add(swap)
    store.audit(
        session,
        now,
        "bot",
        "swap_unposted",
        swap.rotation,
        swap.layer,
        f"request #{swap_id} could not be posted: {error}",
        {"swap": swap_id, "error": error},
    )
    _dm(
        session,
        swap_id,
        swap.requester,
        f":warning: Your request for cover on {swap.rotation} {swap.layer} could not be posted in "
        f"<#{swap.channel}> (Slack answered {escape(error)}); use `/oncall override` instead.",
        now,
    )


def _dm(session: Session, swap_id: int | None, person: str, text: str, now: datetime) -> None:
    outbox.enqueue(session, lane(swap_id), DM_OP, now, {"person": person, "text": text})


def _closed(ctx: Context, swap: SwapRequest, now: datetime) -> str:
    if swap.status == "taken" and swap.taken_by:
        return f"Already taken by {person_text(ctx, swap.taken_by)}."
    zone = ZoneInfo(ctx.rotations.rotations[swap.rotation].timezone) if _known(ctx, swap) else ZoneInfo("UTC")
    return f"This request expired at {local_text(swap.expires_at, zone)}."


def _known(ctx: Context, swap: SwapRequest) -> bool:
    return ctx.rotations is not None and swap.rotation in ctx.rotations.rotations


def describe_span(timezone: str, span: Span, *, slack: bool = False) -> str:
    """`from <start> to <end>` in Slack's date format, or as plain local text for the audit."""
    zone = ZoneInfo(timezone)
    show = slack_date if slack else local_text
    return f"from {show(span.start, zone)} to {show(span.end, zone)}"
