"""Who is in a channel, as Slack tells us: member events, and whole lists from conversations.members.

Kept as rows so that the permission check (`service/permissions.py`) reads it in the use case's
transaction, without calling Slack: acknowledging must work while Slack's Web API is down.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import col, delete

from bot.service.context import Context
from bot.store.db import transaction
from bot.store.receipts import insert_new
from bot.store.tables import ChannelMember

_KEYS = ["channel_id", "user_id"]


def joined(ctx: Context, channel_id: str, user_id: str) -> None:
    with transaction(ctx.engine) as session:
        insert_new(session, ChannelMember, [_row(ctx, channel_id, user_id)], _KEYS)


def left(ctx: Context, channel_id: str, user_id: str) -> None:
    with transaction(ctx.engine) as session:
        session.exec(  # type: ignore[call-overload]
            delete(ChannelMember).where(
                col(ChannelMember.channel_id) == channel_id, col(ChannelMember.user_id) == user_id
            )
        )


def replace(ctx: Context, channel_id: str, user_ids: Iterable[str]) -> None:
    """The channel's whole member list, as conversations.members gave it."""
    users = sorted(set(user_ids))
    with transaction(ctx.engine) as session:
        session.exec(  # type: ignore[call-overload]
            delete(ChannelMember).where(
                col(ChannelMember.channel_id) == channel_id, col(ChannelMember.user_id).not_in(users)
            )
        )
        insert_new(session, ChannelMember, [_row(ctx, channel_id, u) for u in users], _KEYS)


def _row(ctx: Context, channel_id: str, user_id: str) -> dict[str, object]:
    return {"channel_id": channel_id, "user_id": user_id, "since": ctx.clock()}
