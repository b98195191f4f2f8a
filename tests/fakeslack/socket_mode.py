"""Slack's side of Socket Mode: `apps.connections.open` hands out a WebSocket URL with a one-time ticket;
the app connects there, gets `hello`, then envelopes it must acknowledge by `envelope_id`.

As Slack (docs.slack.dev, apps.connections.open and "Using Socket Mode"):

* `apps.connections.open` takes an app-level token (`xapp-...`) in the Authorization header only: no
  token or a token in the body is `not_authed`, a bot or user token `not_allowed_token_type`, an unknown
  app token `invalid_auth`. It answers `{"ok": true, "url": "wss://.../link/?ticket=...&app_id=..."}`
  (here `ws://` on the fake's own port);
* each ticket opens one connection; the first frame is `hello` (with `num_connections`);
* Slack sends `{"type": "disconnect", "reason": "refresh_requested" | "warning" | "link_disabled"}`
  before it closes a connection; the app is expected to open a new one.

Tests push envelopes with `send`, read what the app acknowledged in `acks`, and end connections with
`disconnect`. The WebSocket runs in the fake's server thread; everything here is thread-safe.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect

from .model import APP_ID, SlackError

APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


@dataclass
class _Link:
    loop: asyncio.AbstractEventLoop
    outbox: asyncio.Queue[dict[str, Any] | None]


class SocketModeHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.app_tokens: set[str] = set()
        self._tickets: set[str] = set()
        self._links: list[_Link] = []
        self._acks: list[dict[str, Any]] = []
        self.hellos = 0  # connections that got `hello`, ever

    # -- the Web API method ----------------------------------------------------------------------------

    def check_app_token(self, token: str | None) -> None:
        if not token:
            raise SlackError("not_authed")
        if not token.startswith("xapp-"):
            raise SlackError("not_allowed_token_type")
        if token not in self.app_tokens:
            raise SlackError("invalid_auth")

    def open(self, base_url: str) -> dict[str, Any]:
        """`apps.connections.open`'s answer: a URL for one connection."""
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        host = urlsplit(base_url).netloc
        return {"url": f"ws://{host}/link/?ticket={ticket}&app_id={APP_ID}"}

    # -- the WebSocket -------------------------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        ticket = websocket.query_params.get("ticket", "")
        with self._lock:
            known = ticket in self._tickets
            self._tickets.discard(ticket)
        if not known:
            await websocket.close(code=1008)  # Slack refuses an unknown or used ticket
            return
        await websocket.accept()
        link = _Link(asyncio.get_running_loop(), asyncio.Queue())
        with self._changed:
            self._links.append(link)
            self.hellos += 1
            count = len(self._links)
            self._changed.notify_all()
        await websocket.send_json(
            {
                "type": "hello",
                "num_connections": count,
                "debug_info": {"host": "applink-fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": APP_ID},
            }
        )
        sender = asyncio.ensure_future(self._pump(websocket, link))
        try:
            while True:
                text = await websocket.receive_text()
                try:
                    ack = json.loads(text)
                except ValueError:
                    continue
                with self._changed:
                    self._acks.append(ack)
                    self._changed.notify_all()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            sender.cancel()
            with self._changed:
                if link in self._links:
                    self._links.remove(link)
                self._changed.notify_all()

    @staticmethod
    async def _pump(websocket: WebSocket, link: _Link) -> None:
        while True:
            message = await link.outbox.get()
            if message is None:  # disconnect: Slack closes after saying why
                await websocket.close()
                return
            await websocket.send_json(message)

    # -- for tests -----------------------------------------------------------------------------------

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._links)

    @property
    def acks(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._acks)

    def send(self, envelope: dict[str, Any]) -> None:
        """Deliver an envelope on the newest connection (Slack picks one of the app's connections)."""
        with self._lock:
            if not self._links:
                raise RuntimeError("no Socket Mode connection is open")
            link = self._links[-1]
        link.loop.call_soon_threadsafe(link.outbox.put_nowait, envelope)

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Send `disconnect` on every connection and close it, as Slack does."""
        with self._lock:
            links = list(self._links)
        for link in links:
            frame = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
            link.loop.call_soon_threadsafe(link.outbox.put_nowait, frame)
            link.loop.call_soon_threadsafe(link.outbox.put_nowait, None)

    def wait_connected(self, timeout: float = 10.0, hellos: int = 1) -> bool:
        """True once a connection is open and `hellos` have been sent in all."""
        with self._changed:
            return self._changed.wait_for(lambda: self._links and self.hellos >= hellos, timeout=timeout)
