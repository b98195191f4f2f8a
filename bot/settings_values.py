"""What each setting takes, and one line per problem when it gets something else (issue 17).

The typed settings validate here (durations, one-of choices, URLs, files); `describe` turns pydantic's
`ValidationError` into lines like `HEARTBEAT_TIMEOUT=10: a duration needs a unit, e.g. 10m`, naming
the environment variable and what it takes, with the value shown only for settings that are not
secrets (and the password masked in URLs).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

import annotated_types
from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo

from bot.core.durations import parse_duration

# The password in `scheme://user:password@host/db`.
URL_PASSWORD = re.compile(r"(?<=://)([^:/@]*:)([^@]*)(?=@)")
DURATION_EXAMPLES = "a duration like 30s, 10m, 1h30m or 1w"
ACCEPTED_DATABASE_URLS = (
    "postgresql://user:password@host:5432/dbname (or postgres://...) or sqlite:///path/to/file.db"
)
_SHOWN_CHARS = 80  # of a rejected value, so that one line stays one readable line


def duration(
    minimum: timedelta = timedelta(0), *, positive: bool = False, example: str = "10m"
) -> Callable[[str], str]:
    """A duration setting, kept as its (stripped) text: at least `minimum`, above 0 if `positive`
    (`0` is otherwise a duration: ARCHIVE_AFTER=0 never archives)."""

    def check(text: str) -> str:
        s = text.strip()
        if s.isdigit() and s != "0":
            raise ValueError(f"a duration needs a unit, e.g. {s if len(s) < 6 else '10'}{example[-1]}")
        try:
            value = parse_duration(s)
        except ValueError as exc:
            too_long = "too long" in str(exc)
            raise ValueError("a duration of at most 100y" if too_long else DURATION_EXAMPLES) from None
        if positive and value <= timedelta(0):
            raise ValueError(f"a duration greater than 0, e.g. {example}")
        if value < minimum:
            raise ValueError(f"a duration of at least {_short(minimum)}, e.g. {example}")
        return s

    return check


def _short(td: timedelta) -> str:
    seconds = int(td.total_seconds())
    return f"{seconds}s" if seconds else f"{td // timedelta(milliseconds=1)}ms"


def one_of(*choices: str, upper: bool = False, sentence: str | None = None) -> Callable[[Any], str]:
    """Case-insensitive choice, normalised to upper or lower case."""

    def check(value: Any) -> str:
        if isinstance(value, str):
            s = value.strip().upper() if upper else value.strip().lower()
            if s in choices:
                return s
        raise ValueError(sentence or f"one of {', '.join(choices)}")

    return check


def database_url(value: Any) -> str:
    """PostgreSQL (`postgres://` as Heroku and others write it, `postgresql://`, both through psycopg,
    see `make_engine`) or SQLite; anything else names the accepted forms instead of SQLAlchemy's
    plugin error."""
    if not isinstance(value, str):
        raise ValueError(f"use {ACCEPTED_DATABASE_URLS}")
    url = value.strip()
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if sep and scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        try:
            urlsplit(url).port  # noqa: B018  (raises ValueError for a port that is not a number)
        except ValueError:
            raise ValueError(f"the port is not a number; use {ACCEPTED_DATABASE_URLS}") from None
        return f"{'postgresql' if scheme == 'postgres' else scheme}://{rest}"
    if sep and scheme in ("sqlite", "sqlite+pysqlite") and (rest == "" or rest.startswith("/")):
        return url
    raise ValueError(f"use {ACCEPTED_DATABASE_URLS}")


def http_url(example: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        s = value.strip() if isinstance(value, str) else ""
        try:
            parts = urlsplit(s)
            parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
        except ValueError:
            parts = urlsplit("")
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(f"an http:// or https:// URL, e.g. {example}")
        return s

    return check


def existing_file(value: Path | None) -> Path | None:
    try:
        found = value is None or value.is_file()
    except OSError:  # a name too long for the file system, say
        found = False
    if not found:
        raise ValueError("no such file")
    return value


def describe(exc: ValidationError) -> list[str]:
    """One line per problem: `NAME=value: what it takes` (`NAME: ...` for secrets)."""
    from bot.settings import Settings  # the fields say what each setting takes

    fields = Settings.model_fields
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = error.get("loc") or ()
        name = str(loc[0]) if loc else ""
        field = fields.get(name)
        cause = (error.get("ctx") or {}).get("error")
        said = str(cause) if isinstance(cause, ValueError) and str(cause) else None
        if field is None:  # a check across settings (the placeholder refusal): its own lines
            lines += (said or error["msg"]).splitlines()
            continue
        sentence = _one_line(said, 160) if said else _expectation(field)
        lines.append(f"{_shown(name, field, error.get('input'))}: {sentence}")
    return lines


def _shown(name: str, field: FieldInfo, value: Any) -> str:
    env = name.upper()
    if _is_secret(field) or value is None:
        return env
    text = value if isinstance(value, str) else repr(value)
    text = URL_PASSWORD.sub(r"\1***", text)
    return f"{env}={_one_line(text, _SHOWN_CHARS)}"


def _one_line(text: str, limit: int) -> str:
    """A line break stays on the line (escaped); a long text is cut."""
    text = text.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_secret(field: FieldInfo) -> bool:
    return SecretStr in (field.annotation, *get_args(field.annotation))


def _expectation(field: FieldInfo) -> str:
    """What a setting takes, from its type and bounds: 'a whole number of at least 1'."""
    kind = field.annotation
    args = [a for a in get_args(kind) if a is not type(None)]
    if get_origin(kind) is not Literal and len(args) == 1:  # X | None
        kind = args[0]
    if kind is bool:
        return "true or false"
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(kind))
    if kind is int:
        return "a whole number" + _bounds(field)
    if kind is float:
        return "a number" + _bounds(field)
    if kind is Path:
        return "a path"
    return "a text value"


def _bounds(field: FieldInfo) -> str:
    low = high = None
    strict_low = False
    for m in field.metadata:
        if isinstance(m, annotated_types.Ge):
            low = m.ge
        elif isinstance(m, annotated_types.Gt):
            low, strict_low = m.gt, True
        elif isinstance(m, annotated_types.Le):
            high = m.le
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" greater than {low:g}" if strict_low else f" of at least {low:g}"
    if high is not None:
        return f" of at most {high:g}"
    return ""
