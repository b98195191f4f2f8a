"""``python -m tests.fakeslack --port 8099 --token xoxb-test``: run the fake Slack standalone.

Prints ``FAKESLACK READY http://HOST:PORT/api/`` once listening (``--port 0`` picks a free port), so a
spawner can read the URL from stdout. SIGTERM/SIGINT shut it down cleanly.
"""

from __future__ import annotations

import argparse
import json

from .model import DEFAULT_TOKEN
from .remote import READY_PREFIX
from .server import bind_socket, make_server
from .state import FakeSlack


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakeslack", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099, help="0 = any free port")
    parser.add_argument(
        "--token",
        action="append",
        dest="tokens",
        help=f"accepted bot token (repeatable; default {DEFAULT_TOKEN})",
    )
    parser.add_argument("--users", help='JSON email directory, e.g. \'{"a@x.io": "U0A"}\'')
    parser.add_argument("--wall-clock-ts", action="store_true", help="message ts follow the real clock")
    parser.add_argument(
        "--no-membership-check", action="store_true", help="let the bot post in channels it has not joined"
    )
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Serve until terminated."""
    opts = parse_args(argv)
    fake = FakeSlack(
        opts.tokens or [DEFAULT_TOKEN],
        users=json.loads(opts.users) if opts.users else None,
        ts_start=None if opts.wall_clock_ts else 1732400000.0,
        require_membership=not opts.no_membership_check,
    )
    sock = bind_socket(opts.host, opts.port)
    port = sock.getsockname()[1]
    print(f"{READY_PREFIX}http://{opts.host}:{port}/api/", flush=True)
    make_server(fake, log_level=opts.log_level).run(sockets=[sock])


if __name__ == "__main__":
    main()
