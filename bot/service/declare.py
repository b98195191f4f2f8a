"""Use case: a person declares an incident by hand (slash command or form)."""

from __future__ import annotations

from bot.core.errors import BadInput
from bot.core.incident import Severity
from bot.service import escalation
from bot.service.context import Context
from bot.service.incidents import lane, open_incident, say
from bot.service.permissions import require_declare_quota
from bot.service.responders import Answer
from bot.store import outbox
from bot.store.db import transaction


def declare(
    ctx: Context,
    user: str,
    title: str,
    severity: Severity,
    description: str = "",
    rotation: str | None = None,
) -> Answer:
    if rotation and (ctx.rotations is None or rotation not in ctx.rotations.rotations):
        raise BadInput(f"There is no rotation named {rotation!r}.")
    with transaction(ctx.engine) as session:
        now = ctx.clock()
        require_declare_quota(ctx, session, user, now)
        incident = open_incident(
            ctx,
            session,
            source="manual",
            title=title,
            severity=severity,
            slug_source=title,
            now=now,
            actor=f"slack:{user}",
            common_annotations={"description": description} if description else {},
        )
        incident.rotation = rotation  # None: routed like an alert with no labels (the default route)
        # Whoever declares leads until they name someone else (and counts against DECLARE_RATE).
        incident.declared_by, incident.lead = user, f"slack:{user}"
        escalation.start(ctx, session, incident, {}, now)
        outbox.enqueue(session, lane(incident), "invite", now, {"users": [user]}, incident_id=incident.id)
        say(session, incident, now, f"Declared by <@{user}>.", trusted=True)
        # The description is on the pinned card (under the title), where responders look first.
        incident_id = incident.id
    ctx.wake()
    return Answer(
        f"Incident #{incident_id} declared ({severity.value}); its channel is being created.", changed=True
    )
