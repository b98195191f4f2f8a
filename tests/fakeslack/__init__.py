"""A fake Slack Web API for tests: Slack-shaped answers, recorded calls, and fault injection.

In-process::

    with FakeSlackServer() as fs:
        client = AsyncWebClient(token="xoxb-test", base_url=fs.url)
        ...
        assert fs.fake.calls_to("chat.postMessage")

Other process: ``python -m tests.fakeslack --port 8099`` (or :class:`FakeSlackProcess`) and control it
through :class:`RemoteFakeSlack` / the ``/_fake/`` admin endpoints.
"""

from .blocks import validate_blocks, validate_view
from .faults import Fault
from .model import (
    BOT_ID,
    BOT_USER_ID,
    DEFAULT_TOKEN,
    TEAM_ID,
    UPLOAD_METHOD,
    Call,
    Channel,
    FakeFile,
    SlackError,
)
from .remote import FakeSlackProcess, RemoteFakeSlack
from .server import FakeSlackServer, create_app
from .state import FakeSlack

__all__ = [
    "BOT_ID",
    "BOT_USER_ID",
    "DEFAULT_TOKEN",
    "TEAM_ID",
    "UPLOAD_METHOD",
    "Call",
    "Channel",
    "FakeFile",
    "FakeSlack",
    "FakeSlackProcess",
    "FakeSlackServer",
    "Fault",
    "RemoteFakeSlack",
    "SlackError",
    "create_app",
    "validate_blocks",
    "validate_view",
]
