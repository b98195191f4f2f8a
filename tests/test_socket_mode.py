"""Socket Mode: with SLACK_APP_TOKEN the bot also takes slash commands over a WebSocket, and the
HTTP endpoints keep working. A small Socket Mode server stands in for Slack's."""

import asyncio
import json
import threading
from pathlib import Path

import pytest
from aiohttp import WSMsgType, web

from tests.fakeslack import registry
from tests.harness import free_port, post_alertmanager, wait_until

FIXTURE = json.loads(
    (Path(__file__).parent / "fixtures/alertmanager-0.25/firing-single-alert.json").read_text()
)


class SocketModeServer:
    """Sends `hello`, then whatever envelopes the test queues; records the bot's acks."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/link"
        self.acks: list[dict] = []
        self.connected = threading.Event()
        self._outbox: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"type": "hello", "num_connections": 1, "debug_info": {}})
        self.connected.set()

        async def pump() -> None:
            assert self._outbox is not None
            while True:
                await ws.send_json(await self._outbox.get())

        sender = asyncio.ensure_future(pump())
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                self.acks.append(json.loads(msg.data))
        sender.cancel()
        return ws

    def send(self, envelope: dict) -> None:
        assert self._loop is not None and self._outbox is not None
        self._loop.call_soon_threadsafe(self._outbox.put_nowait, envelope)

    def start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._outbox = asyncio.Queue()
            app = web.Application()
            app.router.add_get("/link", self._handler)
            runner = web.AppRunner(app)
            self._loop.run_until_complete(runner.setup())
            self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_slash_command_over_socket_mode_and_webhooks_over_http(start_bot, fake_slack, monkeypatch):
    server = SocketModeServer()
    server.start()
    monkeypatch.setitem(registry.HANDLERS, "apps.connections.open", lambda ws, args: {"url": server.url})
    fake_slack.fake.add_token("xapp-1-test")
    bot = start_bot(slack_app_token="xapp-1-test")
    assert server.connected.wait(15), "the bot did not connect over Socket Mode"
    server.send(
        {
            "envelope_id": "env-1",
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": {
                "command": "/incident",
                "text": "help",
                "user_id": "U01ALEX",
                "channel_id": "C0GENERAL",
                "team_id": "T0TEAM",
                "api_app_id": "A0APP",
                "trigger_id": "1.2.3",
                "response_url": "http://127.0.0.1:9/x",
            },
        }
    )
    ack = wait_until(lambda: next((a for a in server.acks if a.get("envelope_id") == "env-1"), None), 15)
    assert "/incident declare <title>" in json.dumps(ack.get("payload", {}))
    # Webhooks keep working over HTTP.
    assert post_alertmanager(bot.url, FIXTURE).status_code == 200
