"""Use case: `/incident page @user|<rotation>`: page someone outside the escalation plan."""

from __future__ import annotations

from bot.core.errors import BadInput
from bot.core.escalation import resolve_targets
from bot.core.notify_rules import SLACK_NOW, rules_for
from bot.core.permissions import Action
from bot.core.rotations import Person
from bot.core.text import escape
from bot.service.context import Context
from bot.service.incidents import send_page
from bot.service.oncall_schedule import effective_rotation
from bot.service.people import not_again, unanswered
from bot.service.permissions import in_people_file, require
from bot.service.responders import Answer, load, mention
from bot.service.timeline import record
from bot.store.db import transaction
from bot.store.tables import Page


def page(ctx: Context, incident_id: int, actor: str, user_id: str | None, rotation: str | None) -> Answer:
    with transaction(ctx.engine) as session:
        incident = load(session, incident_id)
        # Paging someone the rotations do not know is the lead's (or an admin's) call.
        outsider = user_id is not None and not in_people_file(ctx, session, user_id)
        require(ctx, session, incident, Action.PAGE_OUTSIDER if outsider else Action.PAGE, actor)
        now = ctx.clock()
        pages: list[tuple[Page, Person | None]] = []
        waiting = unanswered(ctx, session, incident)
        skipped: list[str] = []  # a person already paged for this incident who has not answered
        if user_id:
            earlier = waiting.of_slack_user(user_id)
            if earlier is not None:
                skipped.append(not_again(f"<@{user_id}>", earlier, now))
            else:
                page = Page(
                    incident_id=incident_id,
                    person=f"<@{user_id}>",
                    slack_user=user_id,
                    step_key="manual",
                    paged_at=now,
                )
                pages.append((page, None))
            who = f"<@{user_id}>"
        else:
            catalog = ctx.rotations
            if catalog is None or rotation not in catalog.rotations:
                known = ", ".join(sorted(catalog.rotations)) if catalog else "none"
                raise BadInput(f"Page whom? `/incident page @user` or a rotation ({known}).")
            policy = catalog.policies[rotation]
            if not policy.steps or catalog.rotations[rotation].source != "file":
                raise BadInput(f"Rotation {rotation} has no first step to page here.")
            current = effective_rotation(ctx, session, rotation, now)  # overrides included
            people = resolve_targets(policy.steps[0], current, catalog.people, now)
            paged: list[Person] = []
            for person in people:
                earlier = waiting.of_person(person)
                if earlier is not None:
                    skipped.append(not_again(escape(person.display_name or person.name), earlier, now))
                    continue
                paged.append(person)
                pages.append(
                    (
                        Page(
                            incident_id=incident_id,
                            person=person.name,
                            email=person.email,
                            slack_user=person.slack_id,
                            step_key="manual",
                            layer=rotation,
                            paged_at=now,
                        ),
                        person,
                    )
                )
            who = ", ".join(p.display_name or p.name for p in paged) + f" ({rotation})"
        if not pages:
            return Answer(" ".join(skipped))
        defaults = ctx.rotations.default_notify if ctx.rotations else None
        for item, person in pages:
            rules = rules_for(person, defaults, incident.severity) if person else SLACK_NOW
            send_page(session, incident, item, now, rules, person)
        record(
            session,
            incident_id,
            now,
            actor,
            "escalation",
            f"{mention(actor)} paged {who}",
            {
                "step": "manual",
                "people": [p.person for p, _ in pages],
                "mentions": [u for u in (user_id, actor.removeprefix("slack:")) if u],
            },
        )
    ctx.wake()
    return Answer(" ".join([f"Paging {escape(who) if not user_id else who}.", *skipped]), changed=True)
