"""Logs that tell the truth (issue 17, 4).

Observed on every start: slack_bolt's warning that SLACK_BOT_TOKEN "will be ignored" (the bot uses it),
uvicorn's `color_message` with ANSI codes copied into the JSON lines, and on Ctrl+C an ERROR ("the
worker process exited with 0; starting a new one"), a new worker, and a KeyboardInterrupt traceback.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time

import pytest

from bot.observability import setup_logging
from tests.harness import BotProcess, bot_env, wait_until

ANSI = ("\x1b", "\\u001b")


def records(bot: BotProcess) -> list[dict]:
    return [json.loads(line) for line in bot.log_path.read_text().splitlines()]


@pytest.mark.e2e
@pytest.mark.parametrize("worker_process", ["true", "false"])
def test_start_is_truthful_and_ctrl_c_ends_quietly(fake_slack, tmp_path, worker_process):
    env = bot_env(fake_slack.url, f"sqlite:///{tmp_path / 'bot.db'}", WORKER_PROCESS=worker_process)
    assert env["SLACK_BOT_TOKEN"] and env["LOG_FORMAT"] == "json"
    bot = BotProcess(env, tmp_path / "bot.log", own_group=True).start()
    try:
        if worker_process == "true":
            wait_until(lambda: '"worker ready"' in bot.log_path.read_text(), 10, 0.1, "the worker")
        text = bot.log_path.read_text()
        assert "will be ignored" not in text and "will be unused" not in text, text
        assert "Uvicorn running on" in text  # uvicorn logged with its color_message
        for record in records(bot):  # every line is JSON
            assert "color_message" not in record, record
        assert not any(code in text for code in ANSI), text

        assert bot.proc is not None
        started = time.monotonic()
        os.killpg(bot.proc.pid, signal.SIGINT)  # what a terminal's Ctrl+C sends: parent and child
        code = bot.proc.wait(15)
        elapsed = time.monotonic() - started
    finally:
        bot.stop()
    text = bot.log_path.read_text()
    assert elapsed < 10, f"took {elapsed:.1f}s"
    # Ended by the signal it was sent, as uvicorn ends on SIGTERM (a shell shows 130).
    assert code == -signal.SIGINT, (code, text[-3000:])
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    levels = [(r["level"], r["msg"]) for r in records(bot)]
    assert not [entry for entry in levels if entry[0] in ("error", "critical")], levels
    assert "Application shutdown complete." in [msg for _, msg in levels]
    if worker_process == "true":  # one worker, never replaced
        assert text.count("outbox worker and scheduler run in process") == 1, text
        assert text.count('"worker ready"') == 1, text


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_no_ansi_codes_in_either_format(fmt, capsys):
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("INFO", fmt, [])
    try:
        logging.getLogger("tests.uvicorn_like").info(
            "Started server process [%d]",
            42,
            extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"},
        )
        logging.getLogger("somelib").warning(
            "\x1b[31mred\x1b[0m alert", extra={"detail": "\x1b[1mbold\x1b[0m"}
        )
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert "Started server process [42]" in err and "red alert" in err, err
    assert not any(code in err for code in ANSI), err
    assert "color_message" not in err
    if fmt == "json":
        lines = [json.loads(line) for line in err.splitlines()]
        assert lines[1]["detail"] == "bold"
