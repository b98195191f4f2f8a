"""incidentbot serve | db upgrade"""

from __future__ import annotations

import argparse
import sys

from bot.core.errors import ConfigError
from bot.settings import Settings


def _secrets(settings: Settings) -> list[str]:
    values = [settings.slack_bot_token, settings.slack_signing_secret, settings.alertmanager_token]
    return [v.get_secret_value() for v in values if v is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="incidentbot", description="Incident-response ChatOps bot for Slack"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server, the outbox worker and the scheduler")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    sub.add_parser("check", help="validate rotations/ and runbooks/; non-zero exit on any problem")
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    args = parser.parse_args(argv)

    settings = Settings()
    if args.command == "check":
        return _check(settings)
    from bot.observability import setup_logging

    setup_logging(settings.log_level, settings.log_format, _secrets(settings))
    if args.command == "serve":
        import uvicorn

        from bot.app import create_app

        try:
            app = create_app(settings)
        except ConfigError as exc:
            print("incidentbot: configuration errors, not starting:", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            return 2
        uvicorn.run(
            app,
            host=args.host or settings.host,
            port=args.port or settings.port,
            log_config=None,
            timeout_graceful_shutdown=8,
            access_log=False,
        )
        return 0
    if args.command == "db":
        from bot.store.db import make_engine, upgrade

        upgrade(make_engine(settings.database_url))
        print("database is at the latest schema")
        return 0
    return 2


def _check(settings: Settings) -> int:
    from bot.catalog.check import check

    result = check(settings.rotations_dir, settings.runbooks_dir)
    for problem in result.problems:
        print(problem, file=sys.stderr)
    if result.problems:
        print(f"{len(result.problems)} problem(s) found", file=sys.stderr)
        return 1
    rotations = result.rotations
    assert rotations is not None
    print(
        f"ok: {len(rotations.rotations)} rotations, {len(rotations.people)} people, "
        f"{len(rotations.routes)} routes, {len(result.runbooks)} runbooks"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
