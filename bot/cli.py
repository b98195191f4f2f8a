"""incidentbot serve | check | oncall | postmortem | report | db upgrade"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from bot.cli_arguments import parser
from bot.core.errors import BadInput, ConfigError, ConfigProblem, IncidentBotError, UnknownIncident
from bot.settings import Settings
from bot.settings_values import describe

if TYPE_CHECKING:
    from bot.service.context import Context


def _secrets(settings: Settings) -> list[str]:
    values = [
        settings.slack_bot_token,
        settings.slack_signing_secret,
        settings.alertmanager_token,
        settings.pagerduty_api_token,
        settings.pagerduty_webhook_secret,
        settings.slack_app_token,
        settings.calendar_token,
        settings.secret_key,
        settings.ntfy_token,
        settings.twilio_auth_token,
        settings.pushover_app_token,
    ]
    out = [settings.database_password] if settings.database_password else []
    out += [settings.smtp_password] if settings.smtp_password else []
    for value in values:
        if value is not None:
            out += [s.strip() for s in value.get_secret_value().split(",") if s.strip()]
    return out


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return _interrupted()


def _interrupted() -> int:
    """Ctrl+C: what had to stop has stopped (uvicorn and the worker shut down gracefully first);
    end quietly, by SIGINT as Python itself would, so a shell sees 130 and a script stops too."""
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    return 130  # where a signal does not end the process at once


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for line in describe(exc):
            print(line, file=sys.stderr)
        return 2
    try:
        if args.command == "check":
            return _check(settings)
        if args.command == "notify-test":
            return _notify_test(settings, args.person, args.via)
        if args.command == "oncall":
            from bot.oncall_cli import oncall

            return oncall(settings, args.rotation, args.at, args.weeks, args.history, args.since)
        if args.command == "serve":
            return _serve(settings, args.host, args.port)
        if args.command == "work":
            return _work(settings, args.wake_fd)
        if args.command == "postmortem":
            return _postmortem(settings, args.incident_id, args.out, args.template)
        if args.command == "report":
            return _report(settings, args.since, args.format)
        if args.command == "inbox":
            from bot.inbox_cli import inbox

            return inbox(settings, args.action, args.id, args.status)
        if args.command == "db":
            from bot.store.db import make_engine, upgrade

            upgrade(make_engine(settings.database_url))
            print("database is at the latest schema")
            return 0
    except ConfigError as exc:
        print("incidentbot: configuration errors:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except IncidentBotError as exc:
        print(f"incidentbot: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (UnknownIncident, BadInput)) else 1
    return 2


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    from bot import metrics_processes

    # Before bot.app imports prometheus_client: the worker process's counters must reach /metrics.
    if settings.worker_process or os.environ.get(metrics_processes.ENV):
        metrics_processes.share_between_processes()
    from bot.app import create_app
    from bot.http_server import serve
    from bot.observability import setup_logging
    from bot.worker_process import WorkerProcess, fork_worker, limit_malloc_arenas

    limit_malloc_arenas()
    setup_logging(settings.log_level, settings.log_format, _secrets(settings))
    # Forked now, before the event loop, threads and connections exist (see bot/worker_process.py).
    child = WorkerProcess(fork_worker(settings)) if settings.worker_process else None
    app = create_app(settings, worker_process=child)
    return serve(app, settings, host or settings.host, port or settings.port)


def _work(settings: Settings, wake_fd: int | None) -> int:
    from bot import metrics_processes

    metrics_processes.join()
    from bot import worker_process
    from bot.observability import setup_logging

    setup_logging(settings.log_level, settings.log_format, _secrets(settings))
    # Started by `serve` (with a wake pipe) after it migrated; on its own it migrates first.
    return worker_process.run(settings, wake_fd, migrate=wake_fd is None)


def _check(settings: Settings) -> int:
    from bot.catalog.check import check
    from bot.catalog.people import uses
    from bot.notify import registry

    result = check(settings.rotations_dir, settings.runbooks_dir, registry.missing(settings))
    result.problems.extend(result.provider_problems + registry.setting_problems(settings))
    warnings = list(result.warnings)
    catalog, links = result.rotations, bool(settings.public_url and settings.secret_key)
    used = uses(catalog.people.values(), catalog.default_notify) if catalog is not None else set()
    if not links and used - {"slack"}:
        no_links = "not set: pages by email, ntfy or webhook carry no acknowledge link"
        if used & {"sms", "voice"}:
            no_links += "; SMS replies (PUBLIC_URL) and keys pressed during calls (both) cannot reach the bot"
        warnings.append(ConfigProblem("PUBLIC_URL/SECRET_KEY", 0, no_links))
    if result.rotations is not None and settings.slack_bot_token.get_secret_value():
        from bot.oncall_cli import user_group_warnings

        warnings += user_group_warnings(settings, result.rotations)  # asks Slack: needs the token
    for problem in result.problems:
        print(problem, file=sys.stderr)
    for warning in warnings:  # shown, but they never fail the check (nor stop `serve`)
        where = f"{warning.file}:{warning.line}" if warning.line else warning.file
        print(f"{where}: warning: {warning.message}", file=sys.stderr)
    if result.problems:
        print(f"{len(result.problems)} problem(s) found", file=sys.stderr)
        return 1
    rotations = result.rotations
    assert rotations is not None
    warned = f", {len(warnings)} warning(s)" if warnings else ""
    print(
        f"ok: {len(rotations.rotations)} rotations, {len(rotations.people)} people, "
        f"{len(rotations.routes)} routes, {len(result.runbooks)} runbooks{warned}"
    )
    return 0


def _notify_test(settings: Settings, name: str, via: str | None) -> int:
    from bot.notify.test_pages import send_tests

    return send_tests(settings, _context(settings), name, via)


def _context(settings: Settings) -> Context:
    """What the offline commands need; imported lazily so that `check` stays light."""
    from bot.service.context import Context
    from bot.store.db import make_engine, upgrade
    from bot.wiring import load_config

    catalog, runbooks = load_config(settings)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    return Context(
        engine=engine,
        rotations=catalog,
        runbooks=runbooks,
        postmortems_dir=settings.postmortems_dir,
        public_url=settings.public_url or "",
        secret_key=settings.secret_key.get_secret_value() if settings.secret_key else "",
    )


def _postmortem(settings: Settings, incident_id: int, out: Path | None, template: Path | None) -> int:
    from bot.service import postmortem

    ctx = _context(settings)
    template = template or settings.postmortem_template
    path = postmortem.write(
        ctx, incident_id, out or settings.postmortems_dir, template.read_text() if template else None
    )
    print(path)
    return 0


def _report(settings: Settings, since_ago: timedelta, fmt: str) -> int:
    from bot.core.reports import format_table, report, to_json
    from bot.service.reports import incidents_since

    ctx = _context(settings)
    now = datetime.now(UTC)
    since = now - since_ago
    result = report(incidents_since(ctx, since), since, now)
    print(json.dumps(to_json(result), indent=2) if fmt == "json" else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
