"""The killer loop: SIGKILL the bot at random moments and start it again on the same port and database.

    with Chaos(env, tmp_path, kills=10, seed=3) as chaos:   # starts the bot, then the killer
        ... drive traffic at chaos.url (it keeps answering between restarts) ...
        chaos.finish()       # wait for the 10th kill and restart; the bot is left running
    chaos.intervals()        # [(ready at, killed at), ...] wall-clock seconds, for the page timing

Each life lasts a random time (from a few milliseconds after /readyz to a few seconds), so kills
land while webhooks commit, while the worker is between a Slack call and recording it, while the
scheduler fires a timer, and during the catch-up right after a restart.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from types import TracebackType

from tests.harness import BotProcess


class Chaos:
    def __init__(
        self,
        env: dict[str, str],
        log_dir: Path,
        *,
        kills: int = 10,
        seed: int = 1,
        min_life: float = 0.3,
        max_life: float = 3.0,
    ) -> None:
        self.env = env
        self.log_path = log_dir / "chaos-bot.log"
        self.rng = random.Random(seed)
        self.min_life = min_life
        self.max_life = max_life
        self.bot = BotProcess(env, self.log_path)
        self.url = self.bot.url
        self.target = kills
        self.kills = 0
        self.up: list[tuple[float, float]] = []
        self._ready_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-killer", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> Chaos:
        self._start()
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(60)
        self.bot.stop()

    def _start(self) -> None:
        self.bot = BotProcess(self.env, self.log_path, port=self.bot.port).start(ready_timeout=60)
        self._ready_at = time.time()

    def _kill(self) -> None:
        self.bot.kill()
        self.up.append((self._ready_at, time.time()))
        self.kills += 1

    def _loop(self) -> None:
        try:
            while self.kills < self.target:
                if self._stop.wait(self.rng.uniform(self.min_life, self.max_life)):
                    return
                self._kill()
                time.sleep(self.rng.uniform(0.0, 0.5))  # down for a moment, then started again
                self._start()
        except BaseException as exc:  # surfaced by finish()
            self.error = exc

    def finish(self, timeout: float = 300) -> None:
        """Wait until the last kill and restart happened; the bot is left running."""
        self._thread.join(timeout)
        if self.error is not None:
            raise AssertionError(f"the killer loop failed: {self.error!r}") from self.error
        assert not self._thread.is_alive(), "the killer loop did not stop"
        assert self.bot.proc is not None and self.bot.proc.poll() is None, "the bot is not running"

    def intervals(self) -> list[tuple[float, float]]:
        """Uptime intervals so far, the current life open-ended."""
        return [*self.up, (self._ready_at, float("inf"))]
