"""incidentbot serve | check | oncall | postmortem | report | db upgrade"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.core.errors import ConfigError, ConfigProblem, IncidentBotError
from bot.settings import Settings

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
        settings.secret_key,
        settings.ntfy_token,
    ]
    out = [settings.database_password] if settings.database_password else []
    out += [settings.smtp_password] if settings.smtp_password else []
    for value in values:
        if value is not None:
            out += [s.strip() for s in value.get_secret_value().split(",") if s.strip()]
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="incidentbot", description="Incident-response ChatOps bot for Slack"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server, the outbox worker and the scheduler")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    work = sub.add_parser(
        "work", help="run only the outbox worker and the scheduler (`serve` runs this as its child)"
    )
    work.add_argument("--wake-fd", type=int, default=None, help=argparse.SUPPRESS)
    sub.add_parser("check", help="validate rotations/ and runbooks/; non-zero exit on any problem")
    test = sub.add_parser(
        "notify-test", help="send a marked test page to a person by each way they can be reached"
    )
    test.add_argument("person", help="a key of rotations/people.yaml")
    test.add_argument("--via", help="only this method (slack, email, ntfy, webhook, ...)")
    oncall = sub.add_parser("oncall", help="who is on call, per layer, and until when")
    oncall.add_argument("rotation", nargs="?")
    oncall.add_argument("--at", help="a time (ISO 8601; UTC unless it has an offset); default now")
    pm = sub.add_parser("postmortem", help="render an incident's post-mortem draft again")
    pm.add_argument("incident_id", type=int)
    pm.add_argument("--out", type=Path, help="directory (default POSTMORTEMS_DIR)")
    pm.add_argument(
        "--template", type=Path, help="template file (default POSTMORTEM_TEMPLATE or the built-in)"
    )
    report = sub.add_parser(
        "report", help="incidents by severity, MTTA/MTTR, pages per person, noisiest alerts"
    )
    report.add_argument("--since", default="30d", help="how far back (a duration: 7d, 30d, 12w)")
    report.add_argument("--format", choices=["table", "json"], default="table")
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings()
    try:
        if args.command == "check":
            return _check(settings)
        if args.command == "notify-test":
            return _notify_test(settings, args.person, args.via)
        if args.command == "oncall":
            return _oncall(settings, args.rotation, args.at)
        if args.command == "serve":
            return _serve(settings, args.host, args.port)
        if args.command == "work":
            return _work(settings, args.wake_fd)
        if args.command == "postmortem":
            return _postmortem(settings, args.incident_id, args.out, args.template)
        if args.command == "report":
            return _report(settings, args.since, args.format)
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
        return 1
    return 2


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    import uvicorn

    from bot.app import create_app
    from bot.observability import setup_logging
    from bot.worker_process import WorkerProcess, fork_worker

    setup_logging(settings.log_level, settings.log_format, _secrets(settings))
    # Forked now, before the event loop, threads and connections exist (see bot/worker_process.py).
    child = WorkerProcess(fork_worker(settings)) if settings.worker_process else None
    app = create_app(settings, worker_process=child)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        timeout_graceful_shutdown=3,  # then the lifespan gives in-flight deliveries 5 s
        access_log=False,
    )
    return 0


def _work(settings: Settings, wake_fd: int | None) -> int:
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
    catalog, links = result.rotations, bool(settings.public_url and settings.secret_key)
    if (
        catalog is not None
        and not links
        and uses(catalog.people.values(), catalog.default_notify) - {"slack"}
    ):
        no_links = "not set: pages by email, ntfy or webhook carry no acknowledge link"
        result.warnings.append(ConfigProblem("PUBLIC_URL/SECRET_KEY", 0, no_links))
    for problem in result.problems:
        print(problem, file=sys.stderr)
    for warning in result.warnings:  # shown, but they never fail the check (nor stop `serve`)
        where = f"{warning.file}:{warning.line}" if warning.line else warning.file
        print(f"{where}: warning: {warning.message}", file=sys.stderr)
    if result.problems:
        print(f"{len(result.problems)} problem(s) found", file=sys.stderr)
        return 1
    rotations = result.rotations
    assert rotations is not None
    warned = f", {len(result.warnings)} warning(s)" if result.warnings else ""
    print(
        f"ok: {len(rotations.rotations)} rotations, {len(rotations.people)} people, "
        f"{len(rotations.routes)} routes, {len(result.runbooks)} runbooks{warned}"
    )
    return 0


def _oncall(settings: Settings, rotation: str | None, at: str | None) -> int:
    from bot.service.oncall import describe
    from bot.wiring import load_config, oncall_cache, pagerduty_client

    catalog, _ = load_config(settings)
    when = datetime.fromisoformat(at) if at else datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    client = pagerduty_client(settings) if settings.pagerduty_api_token else None
    try:
        lookup = oncall_cache(client, lambda: datetime.now(UTC)).get if client else None
        print(describe(catalog, rotation, when.astimezone(UTC), slack=False, pagerduty=lookup))
    finally:
        if client is not None:
            client.close()
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


def _report(settings: Settings, since_text: str, fmt: str) -> int:
    from bot.core.durations import parse_duration
    from bot.core.reports import format_table, report, to_json
    from bot.service.reports import incidents_since

    ctx = _context(settings)
    now = datetime.now(UTC)
    since = now - parse_duration(since_text)
    result = report(incidents_since(ctx, since), since, now)
    print(json.dumps(to_json(result), indent=2) if fmt == "json" else format_table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
