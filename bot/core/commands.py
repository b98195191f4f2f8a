"""The `/incident` command language: subcommands as words, parsed without any Slack client.

`parse("sev 2")` -> Command("sev", "2"); `mention("<@U123|alex>")` -> "U123". Everything that
needs an incident channel says so, so the adapter can answer "use it in an incident channel".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.errors import BadInput
from bot.core.incident import Severity
from bot.core.text import TITLE_MAX, escape

# name -> (usage, one-line help, needs an incident channel)
SUBCOMMANDS: dict[str, tuple[str, str, bool]] = {
    "declare": ("declare <title> [sev1|sev2|sev3]", "open an incident by hand (no text: a form)", False),
    "list": ("list", "open incidents with links", False),
    "ack": ("ack", "acknowledge: stop the escalation", True),
    "resolve": ("resolve [summary]", "resolve the incident", True),
    "reopen": ("reopen", "reopen a resolved or closed incident and page again", True),
    "close": ("close", "close a resolved incident and write the post-mortem draft", True),
    "status": ("status", "state, age, who is paged, next escalation", True),
    "sev": ("sev <1-3>", "change the severity", True),
    "lead": ("lead @user", "name the incident commander", True),
    "note": ("note <text>", "add a note to the timeline", True),
    "action": ("action <text>", "add a follow-up action item for the post-mortem", True),
    "escalate": ("escalate", "page the next escalation step now", True),
    "page": ("page @user|<rotation>", "page a person or a rotation's first step", True),
    "timeline": ("timeline", "the last 20 timeline entries", True),
    "runbook": ("runbook [slug]", "post the runbook again, or the runbook named <slug>", True),
    "postmortem": ("postmortem", "write the post-mortem draft again (after resolution)", True),
    "help": ("help", "this list", False),
}

_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_SEV = re.compile(r"^(?:sev)?([123])$", re.IGNORECASE)


@dataclass(frozen=True)
class Command:
    name: str  # "help" for unknown subcommands (with `unknown` set)
    text: str = ""
    unknown: str | None = None

    @property
    def needs_incident(self) -> bool:
        return SUBCOMMANDS[self.name][2]


def parse(text: str) -> Command:
    word, _, rest = text.strip().partition(" ")
    name = word.lower()
    if not name:
        return Command("help")
    if name not in SUBCOMMANDS:
        return Command("help", unknown=word)
    return Command(name, rest.strip())


def help_text(unknown: str | None = None) -> str:
    lines = [f"Unknown subcommand `{escape(unknown)}`." if unknown else "", "*/incident* subcommands:"]
    lines += [f"• `/incident {usage}`: {what}" for usage, what, _ in SUBCOMMANDS.values()]
    lines.append("• `/oncall [rotation]`: who is on call now")
    return "\n".join(line for line in lines if line)


def severity(text: str) -> Severity:
    match = _SEV.match(text.strip())
    if not match:
        raise BadInput("Severity must be 1, 2 or 3 (e.g. `/incident sev 2`).")
    return Severity(f"SEV{match.group(1)}")


def declare_args(text: str) -> tuple[str, Severity]:
    """`Checkout is down sev1` -> ("Checkout is down", SEV1); SEV2 when no severity is given."""
    words = text.split()
    sev = Severity.SEV2
    if words and _SEV.match(words[-1]) and words[-1].lower().startswith("sev"):
        sev = severity(words.pop())
    title = " ".join(words).strip()
    if not title:
        raise BadInput("Give the incident a title: `/incident declare <title> [sev1|sev2|sev3]`.")
    return title[:TITLE_MAX], sev


def mention(text: str) -> str | None:
    """The user ID in a Slack mention (`<@U123|alex>` or `<@U123>`), else None."""
    match = _MENTION.match(text.strip())
    return match.group(1) if match else None
