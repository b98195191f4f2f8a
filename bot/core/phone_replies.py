"""Replies by phone: what an SMS answer ("1", "2 41") or a key pressed during a call means, and what
the bot says back. Whatever the vendor (Twilio today), these rules are the same.

An SMS reply is `1` (acknowledge) or `2` (escalate), optionally followed by the incident number
(`1 41`, `1 #41`); `ack` and `esc` are understood too. A bare reply acts on the person's only open
page; with several it asks which, and changes nothing. A number that names none of their open
pages, or a reply the bot does not understand, gets an answer saying so, and changes nothing.

A call reads the incident and gathers one key: 1 acknowledges, 2 escalates; any other key hears
the choices again.

Pure: the service gathers the person's pages and acts on the decision.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from bot.core.sms_text import cut, one_line


class Intent(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ESCALATE = "escalate"


@dataclass(frozen=True)
class Reply:
    intent: Intent
    code: int | None  # the incident number, when the reply names one


_WORDS = {"1": Intent.ACKNOWLEDGE, "ack": Intent.ACKNOWLEDGE, "acknowledge": Intent.ACKNOWLEDGE}
_WORDS |= {"2": Intent.ESCALATE, "esc": Intent.ESCALATE, "escalate": Intent.ESCALATE}
_REPLY = re.compile(r"(1|2|ack|acknowledge|esc|escalate)(?:[\s,:;#-]+#?([0-9]{1,9}))?[.!]?")
REPLY_MAX = 60  # longer bodies are not replies to a page: no regular expression work on them


def parse_reply(body: str) -> Reply | None:
    """The reply an SMS body makes, or None when it is not one."""
    text = body.strip().lower()
    if len(text) > REPLY_MAX:
        return None
    found = _REPLY.fullmatch(text)
    if found is None:
        return None
    return Reply(_WORDS[found.group(1)], int(found.group(2)) if found.group(2) else None)


def parse_digit(digits: str) -> Intent | None:
    """The key pressed during a call (Twilio's `Digits`)."""
    return {"1": Intent.ACKNOWLEDGE, "2": Intent.ESCALATE}.get(digits.strip())


@dataclass(frozen=True)
class OpenPage:
    """A page of the person's that still waits for an acknowledgement."""

    page_id: int
    incident_id: int
    severity: str
    title: str


class ReplyOutcome(StrEnum):
    """What an SMS reply leads to, with the reason."""

    ACT = "the reply names one open page"
    ASK_WHICH = "several pages are open and the reply names none"
    UNKNOWN_CODE = "no open page of the person has this number"
    NOTHING_OPEN = "the person has no open page"
    NOT_UNDERSTOOD = "not a reply the bot understands"


@dataclass(frozen=True)
class ReplyDecision:
    outcome: ReplyOutcome
    text: str  # the answer when nothing is done (plain text); "" for ACT (the service says)
    page: OpenPage | None = None
    intent: Intent | None = None


HELP = (
    "Reply 1 to acknowledge or 2 to escalate (with the incident number if you have several pages, e.g. 1 41)"
)
UNCHANGED = "Nothing was changed."


def decide_reply(body: str, open_pages: Sequence[OpenPage], closed: Mapping[int, str]) -> ReplyDecision:
    """`open_pages`: the person's pages still waiting (one per incident); `closed`: incidents they
    were paged for that no longer wait, by number, with their status (acknowledged, resolved...),
    the most recent first."""
    reply = parse_reply(body)
    if reply is None:
        return ReplyDecision(ReplyOutcome.NOT_UNDERSTOOD, f"{HELP}. {UNCHANGED}")
    if reply.code is not None:
        page = next((p for p in open_pages if p.incident_id == reply.code), None)
        if page is not None:
            return ReplyDecision(ReplyOutcome.ACT, "", page, reply.intent)
        if reply.code in closed:
            text = f"Incident #{reply.code} is already {closed[reply.code]}. {UNCHANGED}"
        else:
            text = f"You have no open page for incident #{reply.code}{_listing(open_pages)}. {UNCHANGED}"
        return ReplyDecision(ReplyOutcome.UNKNOWN_CODE, text)
    if not open_pages:
        recent = ", ".join(f"#{number} is {status}" for number, status in list(closed.items())[:3])
        text = f"You have no open page{f' ({recent})' if recent else ''}. {UNCHANGED}"
        return ReplyDecision(ReplyOutcome.NOTHING_OPEN, text)
    if len(open_pages) > 1:
        first = open_pages[0].incident_id
        text = (
            f"You have {len(open_pages)} open pages{_listing(open_pages)}. Which one? Reply 1 {first} "
            f"to acknowledge #{first}, 2 {first} to escalate it. {UNCHANGED}"
        )
        return ReplyDecision(ReplyOutcome.ASK_WHICH, text)
    return ReplyDecision(ReplyOutcome.ACT, "", open_pages[0], reply.intent)


def _listing(pages: Sequence[OpenPage]) -> str:
    if not pages:
        return ""
    shown = ", ".join(
        f"#{p.incident_id} {one_line(p.severity)[:12]} {cut(one_line(p.title), 30)}" for p in pages[:4]
    )
    return f" ({shown}{', ...' if len(pages) > 4 else ''})"


# -- calls ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoiceScript:
    """What a call says. With `gather_url`, `prompt` is said while one key is gathered and sent
    there (twice, then `goodbye`); without, the call says `intro` and `goodbye` and hangs up."""

    intro: str
    prompt: str = ""
    gather_url: str | None = None
    goodbye: str = "Goodbye."


PRESS = "Press 1 to acknowledge, or 2 to escalate."
NO_KEY = "No key was pressed; the page stays open. Goodbye."


def spoken_severity(severity: str) -> str:
    found = re.fullmatch(r"sev\s*([0-9])", severity.strip(), re.IGNORECASE)
    return f"severity {found.group(1)}" if found else one_line(severity)[:20]


def call_script(incident_id: int, severity: str, title: str, gather_url: str | None) -> VoiceScript:
    intro = (
        f"This is incident bot with a page. Incident {incident_id}, {spoken_severity(severity)}: "
        f"{cut(one_line(title), 200)}."
    )
    if gather_url is None:
        return VoiceScript(intro, goodbye="Acknowledge it in Slack. Goodbye.")
    return VoiceScript(intro, PRESS, gather_url, NO_KEY)


def call_script_for_test_page(person: str, gather_url: str | None) -> VoiceScript:
    intro = f"This is a test page from incident bot for {cut(one_line(person), 40)}."
    if gather_url is None:
        return VoiceScript(intro, goodbye="No answer is needed. Goodbye.")
    return VoiceScript(intro, "Press 1 to confirm that calls reach you.", gather_url, NO_KEY)


def again(gather_url: str) -> VoiceScript:
    """Another key than 1 or 2: the choices again."""
    return VoiceScript("Sorry, that key does nothing here.", PRESS, gather_url, NO_KEY)


def said(text: str) -> VoiceScript:
    """An answer that ends the call (`text` says goodbye itself)."""
    return VoiceScript(text, goodbye="")
