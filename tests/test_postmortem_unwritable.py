"""A post-mortem directory the bot cannot write: the draft is uploaded from memory, the channel is
told why it is not on disk, and the outbox row settles instead of retrying for ever.

(Permission denied as a non-root user is in test_docker_like_run.py; here a file standing where
the directory should be gives the same OSError path on any user, root included.)"""

from datetime import UTC, datetime

from sqlmodel import Session, col, select

from bot.store.tables import Outbox, TimelineEntry
from tests.harness import Clock, wait_until
from tests.test_escaping import incident_channel, slash

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_close_with_an_unwritable_postmortems_dir_uploads_and_says_so(start_bot, fake_slack, tmp_path):
    fake = fake_slack.fake
    in_the_way = tmp_path / "postmortems"
    in_the_way.write_text("not a directory")
    bot = start_bot(clock=Clock(T0), postmortems_dir=in_the_way)
    slash(bot, "declare Disk <full> & slow sev3")
    chan = incident_channel(fake)
    slash(bot, "resolve", channel=chan.id)
    slash(bot, "close", channel=chan.id)

    upload = wait_until(
        lambda: next((f for f in fake.files.values() if f.completed and chan.id in f.channels), None),
        20,
        what="post-mortem upload",
    )
    # The draft itself is Markdown (title written as Markdown text), not Slack mrkdwn.
    assert "Disk \\<full> & slow" in upload.text
    comment = upload.initial_comment or ""
    assert f"Could not write the post-mortem draft to {in_the_way}: file exists" in comment
    assert "set POSTMORTEMS_DIR/DATA_DIR" in comment
    assert in_the_way.read_text() == "not a directory"

    engine = bot.ctx.engine

    def settled():
        with Session(engine) as s:
            row = s.exec(select(Outbox).where(col(Outbox.op) == "postmortem")).one()
            entry = s.exec(select(TimelineEntry).where(col(TimelineEntry.kind) == "postmortem")).first()
            return (row.status, row.attempts, entry) if entry else None

    status, attempts, entry = wait_until(settled, 10, what="timeline entry")
    assert (status, attempts) == ("sent", 1)
    assert entry.data["path"] is None and "file exists" in entry.data["write_problem"]
    assert entry.text.endswith("uploaded (not written)")
