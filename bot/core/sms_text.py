"""The page as an SMS: short enough for one segment whenever the title allows.

One SMS segment holds 160 characters of the GSM 03.38 alphabet (the characters of its extension
table, such as `[`, `]`, `{`, `}` and `€`, take two) or 70 UTF-16 code units when any character is
outside it. A page reads `SEV1 incident #41: <title>` and then what to reply; the title is cut to
fit. A title that needs UCS-2 (an emoji, Cyrillic, CJK) would leave too little room in one such
segment, so it may use two (134 units): better a whole sentence in two parts than a page that
says nothing.

Codes: when the person has more than one open page, the reply names the incident number
(`Reply 1 41 to acknowledge, 2 41 to escalate`): the code is the incident's id, which people
already see everywhere (the channel name, the card).

Pure.
"""

from __future__ import annotations

import re

_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = set("^{}\\[~]|€\f")
GSM_SEGMENT = 160
UCS2_SEGMENT = 70
UCS2_TWO_SEGMENTS = 134  # 67 units each once the message is split (the UDH takes the rest)
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]")


def is_gsm(text: str) -> bool:
    return all(c in _GSM_BASIC or c in _GSM_EXTENSION for c in text)


def units(text: str) -> int:
    """How much of a segment `text` takes: GSM septets, or UTF-16 code units when not GSM."""
    if is_gsm(text):
        return sum(2 if c in _GSM_EXTENSION else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2


def one_line(text: str) -> str:
    """Alert text on one line: no control characters, runs of whitespace as one space."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def reply_hint(code: int | None) -> str:
    if code is None:
        return "Reply 1 to acknowledge, 2 to escalate"
    return f"Reply 1 {code} to acknowledge, 2 {code} to escalate"


def page_sms(incident_id: int, severity: str, title: str, *, code: int | None, replies: bool) -> str:
    """The SMS for one page. `code`: the incident id, given when the person has several open
    pages; `replies`: the bot can receive replies (PUBLIC_URL is set), else Slack is the way."""
    tail = reply_hint(code) if replies else "Acknowledge in Slack."
    head = f"{one_line(severity)[:12]} incident #{incident_id}: "
    title = one_line(title) or "(no title)"
    whole = f"{head}{title}\n{tail}"
    budget = GSM_SEGMENT if is_gsm(whole) else UCS2_SEGMENT
    if units(whole) <= budget:
        return whole
    if budget == UCS2_SEGMENT and units(head + "x" * 20 + "\n" + tail) > UCS2_SEGMENT:
        budget = UCS2_TWO_SEGMENTS
    room = budget - units(f"{head}\n{tail}")
    return f"{head}{cut(title, room)}\n{tail}"


def cut(text: str, room: int) -> str:
    """`text` within `room` units, ending in "..." (GSM) when cut."""
    if units(text) <= room:
        return text
    out = ""
    for char in text:
        if units(out + char + "...") > room:
            break
        out += char
    return out.rstrip() + "..."


def sms_for_test_page(person: str, method: str, link: str | None) -> str:
    text = f"TEST page from incidentbot for {one_line(person)[:40]} by {method}."
    return text + (f" Confirm it works: {link}" if link else " No reply needed.")
