"""The command line's arguments and what each takes; a wrong one is one line and exit status 2."""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

from bot.core.durations import parse_duration
from bot.settings_values import duration, existing_file


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line (argparse prints its usage block first); still exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


# Argument types: argparse names the argument, these say what it takes (`argument --since: abc: ...`).
def _since(text: str) -> timedelta:
    try:
        return parse_duration(duration(example="30d")(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text}: {exc}") from None


def _moment(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text}: a time like 2026-11-03T14:00 or 2026-11-03T14:00+01:00 (UTC unless it has an offset)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _whole(what: str, low: int, high: int = sys.maxsize) -> Callable[[str], int]:
    def check(text: str) -> int:
        if text.strip().isdigit() and low <= int(text) <= high:
            return int(text)
        raise argparse.ArgumentTypeError(f"{text}: {what}")

    return check


def _existing_file(text: str) -> Path:
    path = Path(text)
    try:
        existing_file(path)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text}: {exc}") from None
    return path


def _version() -> str:
    try:
        return importlib.metadata.version("incidentbot")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="incidentbot", description="Incident-response ChatOps bot for Slack")
    top.add_argument("--version", action="version", version=f"incidentbot {_version()}")
    sub = top.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server, the outbox worker and the scheduler")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=_whole("a port number from 0 to 65535", 0, 65535), default=None)
    work = sub.add_parser(
        "work", help="run only the outbox worker and the scheduler (`serve` runs this as its child)"
    )
    work.add_argument("--wake-fd", type=int, default=None, help=argparse.SUPPRESS)
    sub.add_parser(
        "check", help="validate the settings, rotations/ and runbooks/; non-zero exit on any problem"
    )
    test = sub.add_parser(
        "notify-test", help="send a marked test page to a person by each way they can be reached"
    )
    test.add_argument("person", help="a key of rotations/people.yaml")
    test.add_argument("--via", help="only this method (slack, email, ntfy, webhook, ...)")
    oncall = sub.add_parser("oncall", help="who is on call, per layer, and until when")
    oncall.add_argument("rotation", nargs="?")
    oncall.add_argument(
        "--at", type=_moment, help="a time (ISO 8601; UTC unless it has an offset); default now"
    )
    oncall.add_argument(
        "--weeks",
        type=_whole("a number of weeks from 1 to 52", 1, 52),
        help="every shift from --at for this many weeks (what the calendars export)",
    )
    oncall.add_argument("--history", action="store_true", help="on-call changes: overrides, swaps, handoffs")
    oncall.add_argument(
        "--since", type=_since, default="30d", help="with --history: how far back (default 30d)"
    )
    pm = sub.add_parser("postmortem", help="render an incident's post-mortem draft again")
    pm.add_argument("incident_id", type=_whole("an incident number, e.g. 42", 1))
    pm.add_argument("--out", type=Path, help="directory (default POSTMORTEMS_DIR)")
    pm.add_argument(
        "--template",
        type=_existing_file,
        help="template file (default POSTMORTEM_TEMPLATE or the built-in)",
    )
    report = sub.add_parser(
        "report", help="incidents by severity, MTTA/MTTR, pages per person, noisiest alerts"
    )
    report.add_argument("--since", type=_since, default="30d", help="how far back (a duration: 7d, 30d, 12w)")
    report.add_argument("--format", choices=["table", "json"], default="table")
    box = sub.add_parser("inbox", help="webhooks not processed: list them, retry a parked one")
    box.add_argument("action", choices=["list", "retry"])
    box.add_argument("id", nargs="?", type=_whole("an inbox id, e.g. 42", 1), help="with retry: the row")
    box.add_argument(
        "--status",
        choices=["parked", "pending", "done", "unprocessed"],
        default="unprocessed",
        help="with list: which rows (default: parked and pending)",
    )
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    return top
