"""Controlling a fake that runs in another process: an admin-API client and a subprocess launcher.

Uses only the standard library (urllib) so it works from any test without the slack_sdk retry logic
getting in the way of admin calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from .model import DEFAULT_TOKEN

PROJECT_ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "FAKESLACK READY "


class RemoteFakeSlack:
    """The ``/_fake/`` admin API of a fake at ``base_url`` (``http://127.0.0.1:PORT/``)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """One admin request; returns the decoded JSON answer (raises on HTTP errors)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.base_url}_fake/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if resp.headers.get_content_type() == "application/json" else raw

    def calls(self, method: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Recorded calls (JSON form of :class:`~tests.fakeslack.model.Call`)."""
        query = f"?since={since}" + (f"&method={method}" if method else "")
        return self.request("GET", f"calls{query}")["calls"]

    def next_call(self) -> int:
        """The index of the next call to be recorded: poll `calls(since=...)` from it, so a poll
        serialises only the calls made since (the whole log takes the fake's loop for a while)."""
        return int(self.request("GET", "health")["next_call"])

    def state(self) -> dict[str, Any]:
        """Channels (with messages), files, views, users and faults."""
        return self.request("GET", "state")

    def reset(self) -> None:
        """Back to an empty workspace."""
        self.request("POST", "reset")

    def add_fault(self, spec: dict[str, Any] | None = None, /, **kwargs: Any) -> dict[str, Any]:
        """Install a fault rule; returns it with its id."""
        return self.request("POST", "faults", {**(spec or {}), **kwargs})["faults"][-1]

    def clear_faults(self) -> None:
        """Uninstall all fault rules."""
        self.request("DELETE", "faults")

    def set_users(self, directory: dict[str, Any]) -> None:
        """Replace the email directory."""
        self.request("POST", "users", {"directory": directory})

    def update_user(self, user_id: str, **fields: Any) -> dict[str, Any] | None:
        """Change one account: ``deleted=True``, ``is_bot=True``, ``exists=False`` (see FakeSlack)."""
        return self.request("POST", f"users/{user_id}", fields).get("user")

    def create_channel(self, name: str, **options: Any) -> dict[str, Any]:
        """Pre-create a channel (options: members, bot_member, is_private, archived)."""
        return self.request("POST", "channels", {"name": name, **options})["channel"]

    def add_message(self, channel: str, text: str, **options: Any) -> dict[str, Any]:
        """Inject a human message (options: user, thread_ts)."""
        return self.request("POST", "messages", {"channel": channel, "text": text, **options})["message"]

    def file_content(self, file_id: str) -> bytes:
        """Uploaded bytes of a file."""
        return self.request("GET", f"files/{file_id}")

    def wait_for_call(self, method: str, *, timeout: float = 5.0, count: int = 1) -> list[dict[str, Any]]:
        """Poll until ``count`` calls to ``method`` were recorded."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls(method)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"expected {count} call(s) to {method}, saw {len(found)}")
            time.sleep(0.05)


class FakeSlackProcess:
    """``python -m tests.fakeslack`` as a subprocess; waits for its READY line to learn the URL."""

    def __init__(
        self, *, port: int = 0, tokens: tuple[str, ...] = (DEFAULT_TOKEN,), extra_args: tuple[str, ...] = ()
    ) -> None:
        self.port = port
        self.tokens = tokens
        self.extra_args = extra_args
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.base_url = ""

    def start(self, timeout: float = 20.0) -> FakeSlackProcess:
        """Spawn and block until the server is listening."""
        cmd = [sys.executable, "-m", "tests.fakeslack", "--port", str(self.port), *self.extra_args]
        for token in self.tokens:
            cmd += ["--token", token]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(READY_PREFIX):
                self.url = line[len(READY_PREFIX) :].strip()
                self.base_url = self.url.removesuffix("api/")
                return self
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("fake Slack subprocess did not become ready")

    @property
    def admin(self) -> RemoteFakeSlack:
        """Admin client for this process."""
        return RemoteFakeSlack(self.base_url)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Terminate (SIGTERM, then SIGKILL) and return the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self) -> FakeSlackProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
