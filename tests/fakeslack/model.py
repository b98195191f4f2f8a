"""Data types shared by the fake Slack server: identities, errors, recorded calls and stored objects.

Everything here is plain data so it can be deep-copied into snapshots (the server mutates state in its
own thread) and serialised for the ``/_fake/`` admin endpoints used by tests in other processes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0APP"
TEAM_ID = "T0TEAM"
TEAM_NAME = "Fake Team"
BOT_NAME = "incidentbot"
DEFAULT_TOKEN = "xoxb-test"
FAKE_WORKSPACE_URL = "https://fake.slack.com/"

# Pseudo method name under which raw uploads to an upload_url are recorded (and can be faulted).
UPLOAD_METHOD = "upload"


class SlackError(Exception):
    """An ``ok: false`` answer; raised by handlers so the dispatcher can answer like Slack (HTTP 200)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body Slack would send for this error."""
        return {"ok": False, "error": self.error, **self.extra}


@dataclass
class ApiResult:
    """What the HTTP layer should send back for one call."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One recorded request, faulted or not, so tests can assert on exactly what the bot sent."""

    index: int
    method: str
    args: dict[str, Any]
    token: str | None
    response: dict[str, Any] | None
    status: int | None
    headers: dict[str, str]
    fault: dict[str, Any] | None
    monotonic: float  # time.monotonic() when the request arrived (system-wide clock on Linux)
    wall: float  # time.time() when the request arrived
    duration: float  # seconds from arrival until the outcome was decided

    @property
    def ok(self) -> bool:
        """True when the fake answered ``ok: true``."""
        return bool(self.response and self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The Slack error code, if the call failed with one."""
        return self.response.get("error") if self.response else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``GET /_fake/calls`` (jsonable copies the containers: no deep copy first)."""
        return jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


@dataclass
class Channel:
    """A conversation (public/private channel, DM or group DM) and everything posted in it."""

    id: str
    name: str
    created: int
    creator: str
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    user: str | None = None  # the other party of a DM
    topic: str = ""
    topic_last_set: int = 0
    purpose: str = ""
    purpose_last_set: int = 0
    members: list[str] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)  # message ts, newest pin first
    archived: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)  # chronological, replies included
    ephemeral: list[dict[str, Any]] = field(default_factory=list)

    def to_api(self, *, viewer: str = BOT_USER_ID, num_members: bool = False) -> dict[str, Any]:
        """The conversation object as Slack's conversations.* methods return it."""
        obj: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "is_archived": self.archived,
            "is_im": self.is_im,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private or self.is_im or self.is_mpim,
            "context_team_id": TEAM_ID,
        }
        if self.is_im:
            obj.update({"user": self.user, "is_open": True, "is_user_deleted": False})
            return obj
        obj.update(
            {
                "name": self.name,
                "name_normalized": self.name,
                "is_channel": not self.is_private and not self.is_mpim,
                "is_group": self.is_private,
                "is_general": False,
                "is_shared": False,
                "is_ext_shared": False,
                "is_org_shared": False,
                "is_member": viewer in self.members,
                "creator": self.creator,
                "unlinked": 0,
                "topic": {
                    "value": self.topic,
                    "creator": self.creator if self.topic else "",
                    "last_set": self.topic_last_set,
                },
                "purpose": {
                    "value": self.purpose,
                    "creator": self.creator if self.purpose else "",
                    "last_set": self.purpose_last_set,
                },
                "previous_names": [],
            }
        )
        if num_members:
            obj["num_members"] = len(self.members)
        return obj

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``GET /_fake/state``."""
        return jsonable(dataclasses.asdict(self))


@dataclass
class FakeFile:
    """A file uploaded through the v2 flow (getUploadURLExternal -> upload_url -> completeUploadExternal)."""

    id: str
    filename: str
    length: int
    created: int
    title: str = ""
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None  # None until the upload_url received the bytes
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    thread_ts: str | None = None
    initial_comment: str | None = None

    @property
    def text(self) -> str:
        """The uploaded bytes decoded as UTF-8 (what tests usually want to assert on)."""
        return (self.content or b"").decode("utf-8", "replace")

    def to_api(self, base_url: str = "") -> dict[str, Any]:
        """The file object as files.info returns it (trimmed to fields a bot plausibly reads)."""
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.filename,
            "title": self.title or self.filename,
            "mimetype": "text/plain",
            "filetype": self.snippet_type or "text",
            "pretty_type": "Plain Text",
            "user": BOT_USER_ID,
            "size": len(self.content or b""),
            "mode": "snippet",
            "is_external": False,
            "is_public": bool(self.channels),
            "channels": list(self.channels),
            "groups": [],
            "ims": [],
            "url_private": f"{base_url}_fake/files/{self.id}",
            "permalink": f"{FAKE_WORKSPACE_URL}files/{BOT_USER_ID}/{self.id}/{self.filename}",
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``GET /_fake/state`` (content as text)."""
        data = dataclasses.asdict(self)
        data["content"] = self.text if self.content is not None else None
        return jsonable(data)


def jsonable(value: Any) -> Any:
    """Make ``value`` JSON-serialisable (bytes become text) without losing structure. Plain values
    are returned as they are: a poll of a few hundred recorded calls must not hold the fake's loop
    (trying json.dumps on every leaf took ~0.4 s for 700 posts with blocks)."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    try:
        json.dumps(value)
    except TypeError:
        return repr(value)
    return value


def ts_key(ts: str) -> Decimal:
    """Order/compare Slack timestamps exactly (floats lose the microsecond digits)."""
    try:
        return Decimal(str(ts))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def format_ts(micros: int) -> str:
    """Render microseconds since the epoch the way Slack renders ``ts`` ("1732400000.000100")."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
