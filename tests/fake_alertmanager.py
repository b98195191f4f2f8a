"""A fake Alertmanager API v2 (the parts the bot calls), behaving like prometheus-alertmanager 0.25.

* `POST /api/v2/silences` -> {"silenceID"}; `GET /api/v2/silences`; `DELETE /api/v2/silence/{id}`
  (an unknown id is a 500 "silence not found", as 0.25 answers; expiring an expired one is a 200).
* `GET /api/v2/alerts?filter=<matcher>&filter=...&silenced=&inhibited=&active=`: alerts whose end
  is in the future, matching every filter (`name="value"`, `!=`, `=~`, `!~`; a bad one is a 400),
  with `status.state` "suppressed" and `silencedBy` while an active silence matches their labels.
  Resolved alerts are not listed (Alertmanager drops alerts whose `endsAt` has passed).

Tests add alerts with `fire`, end them with `resolve`, and make the API fail with `failing`; time
is the bot's clock (`clock`), so a test that moves it moves Alertmanager's too.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.harness import free_port

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*$')


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), value)


def _matches(op: str, wanted: str, value: str) -> bool:
    if op == "=":
        return value == wanted
    if op == "!=":
        return value != wanted
    found = re.fullmatch(wanted, value) is not None
    return found if op == "=~" else not found


class FakeAlertmanager:
    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock  # the bot's clock, so silences end when the bot thinks they do
        self.alerts: dict[str, dict[str, Any]] = {}  # fingerprint -> {labels, startsAt, endsAt}
        self.silences: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path with query)
        self.failing: int | None = None  # answer every request with this status
        self.lock = threading.Lock()
        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what tests set up and look at --------------------------------------------------------------
    def fire(self, fingerprint: str, labels: dict[str, str]) -> None:
        now = self.clock()
        with self.lock:
            # Prometheus re-sends a firing alert, pushing its end out: it fires until `resolve`.
            ends = now + timedelta(days=365)
            self.alerts[fingerprint] = {"labels": labels, "startsAt": now, "endsAt": ends}

    def resolve(self, fingerprint: str) -> None:
        with self.lock:
            self.alerts[fingerprint]["endsAt"] = self.clock() - timedelta(seconds=1)

    def alert_queries(self) -> list[str]:
        return [p for method, p in self.requests if method == "GET" and p.startswith("/api/v2/alerts")]

    def active_silences(self) -> list[dict[str, Any]]:
        now = self.clock()
        return [s for s in self.silences.values() if s["endsAt"] > now]

    # -- the API ------------------------------------------------------------------------------------
    def _silenced_by(self, labels: dict[str, str]) -> list[str]:
        found = []
        for silence in self.active_silences():
            if all(
                _matches("=" if m.get("isEqual", True) else "!=", m["value"], labels.get(m["name"], ""))
                if not m.get("isRegex")
                else _matches("=~" if m.get("isEqual", True) else "!~", m["value"], labels.get(m["name"], ""))
                for m in silence["matchers"]
            ):
                found.append(silence["id"])
        return found

    def _list_alerts(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        matchers = []
        for text in query.get("filter", []):
            parsed = _MATCHER.match(text)
            if parsed is None:
                return 400, "bad matcher format: " + text
            matchers.append((parsed.group(1), parsed.group(2), _unquote(parsed.group(3))))
        flag = {k: query.get(k, ["true"])[0] == "true" for k in ("silenced", "inhibited", "active")}
        now = self.clock()
        out = []
        for fingerprint, alert in sorted(self.alerts.items()):
            if alert["endsAt"] < now:
                continue
            labels = alert["labels"]
            if not all(_matches(op, value, labels.get(name, "")) for name, op, value in matchers):
                continue
            silenced_by = self._silenced_by(labels)
            if (silenced_by and not flag["silenced"]) or (not silenced_by and not flag["active"]):
                continue
            out.append(
                {
                    "fingerprint": fingerprint,
                    "labels": labels,
                    "annotations": {},
                    "startsAt": alert["startsAt"].isoformat(),
                    "endsAt": alert["endsAt"].isoformat(),
                    "updatedAt": alert["startsAt"].isoformat(),
                    "receivers": [{"name": "bot"}],
                    "status": {
                        "state": "suppressed" if silenced_by else "active",
                        "silencedBy": silenced_by,
                        "inhibitedBy": [],
                    },
                }
            )
        return 200, out

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with owner.lock:
                    owner.requests.append((method, self.path))
                    if owner.failing is not None:
                        self._send(owner.failing, "unavailable")
                        return
                    code, body = owner._answer(method, self.path, raw)
                self._send(code, body)

            def do_GET(self) -> None:
                self._route("GET")

            def do_POST(self) -> None:
                self._route("POST")

            def do_DELETE(self) -> None:
                self._route("DELETE")

        return Handler

    def _answer(self, method: str, path: str, raw: bytes) -> tuple[int, Any]:
        url = urlsplit(path)
        if method == "GET" and url.path == "/api/v2/alerts":
            return self._list_alerts(parse_qs(url.query))
        if method == "POST" and url.path == "/api/v2/silences":
            body = json.loads(raw)
            silence_id = str(uuid.uuid4())
            self.silences[silence_id] = {
                "id": silence_id,
                "matchers": body["matchers"],
                "startsAt": datetime.fromisoformat(body["startsAt"]),
                "endsAt": datetime.fromisoformat(body["endsAt"]),
                "comment": body.get("comment", ""),
                "createdBy": body.get("createdBy", ""),
            }
            return 200, {"silenceID": silence_id}
        if method == "GET" and url.path == "/api/v2/silences":
            now = self.clock()
            return 200, [
                {**s, "startsAt": s["startsAt"].isoformat(), "endsAt": s["endsAt"].isoformat(),
                 "status": {"state": "active" if s["endsAt"] > now else "expired"}}
                for s in self.silences.values()
            ]  # fmt: skip
        if method == "DELETE" and url.path.startswith("/api/v2/silence/"):
            silence = self.silences.get(url.path.rsplit("/", 1)[-1])
            if silence is None:
                return 500, "silence not found"
            silence["endsAt"] = min(silence["endsAt"], self.clock())
            return 200, None
        return 404, "not found"
