"""The real `prometheus-alertmanager` binary (Debian package), started for a test."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import free_port, wait_until

BINARY_NAMES = ("prometheus-alertmanager", "alertmanager")


def binary() -> str:
    for name in BINARY_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "prometheus-alertmanager is required for the end-to-end tests and is not installed "
        "(apt-get install prometheus-alertmanager; .ci/run does this)"
    )


CONFIG = """\
route:
  receiver: bot
  group_by: ['alertname', 'service']
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
- name: bot
  webhook_configs:
  - url: {url}
    send_resolved: true
    max_alerts: {max_alerts}
    http_config:
      authorization:
        type: Bearer
        credentials: {token}
"""


class Alertmanager:
    def __init__(self, workdir: Path, webhook_url: str, token: str, *, max_alerts: int = 0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(CONFIG.format(url=webhook_url, token=token, max_alerts=max_alerts))
        self.log = workdir / "alertmanager.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Alertmanager:
        self.proc = subprocess.Popen(
            [
                binary(),
                f"--config.file={self.config}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=debug",
            ],
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"alertmanager exited:\n{self.log.read_text()[-3000:]}")
            try:
                return httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 30, 0.1, "alertmanager ready")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        r = httpx.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5)
        assert r.status_code == 200, r.text

    def silences(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/api/v2/silences", timeout=5).json()


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
