"""dnd.info: a user's Do Not Disturb, shaped as Slack answers it.

Asked about another user (a bot always is), Slack answers the schedule only: `dnd_enabled`,
`next_dnd_start_ts`, `next_dnd_end_ts` (the current or next window; 1 and 1 when none). The
`snooze_*` fields come only for the calling user, `snooze_endtime`/`snooze_remaining` only while
snoozed. Tests set a user's state with ``FakeSlack.set_dnd``.
"""

from __future__ import annotations

import time
from typing import Any

from .args import Args
from .model import BOT_USER_ID
from .registry import api_method
from .workspace import Workspace


@api_method("dnd.info")
def dnd_info(ws: Workspace, args: Args) -> dict[str, Any]:
    user = args.text("user") or BOT_USER_ID
    ws.user(user)  # user_not_found for an unknown ID
    state = ws.dnd.get(user, {})
    body: dict[str, Any] = {
        "dnd_enabled": bool(state.get("enabled", False)),
        "next_dnd_start_ts": int(state.get("start", 1)),
        "next_dnd_end_ts": int(state.get("end", 1)),
    }
    if user == BOT_USER_ID:
        until = int(state.get("snooze_until", 0))
        snoozed = until > time.time()
        body["snooze_enabled"] = snoozed
        if snoozed:
            body.update(snooze_endtime=until, snooze_remaining=int(until - time.time()))
    return body
