"""Outbox operations that deliver a post-mortem draft: write the file, upload it, link it.

`postmortem` writes the draft (idempotent: same name, atomic replace) and uploads it to the
incident channel with `files_upload_v2` (files.getUploadURLExternal, the bytes, then
files.completeUploadExternal, which shares the file: the one non-idempotent step). Its completion
records a `postmortem` timeline entry (path, Slack file id) and, when the incident was announced,
enqueues `postmortem_link`: one reply in the announcement's thread pointing at the file.

Exactly once across crashes. An upload cannot carry message metadata, so `post_once`'s trick does
not apply; instead, when `row.in_flight` says an earlier attempt may have succeeded, we look for a
file with our file name that the bot shared in the incident channel and that no `postmortem`
timeline entry records yet. Calls of one incident run one at a time in lane order and a row's
completion is committed with the row marked sent, so such a file can only come from this row's
interrupted attempt: we adopt it instead of uploading again (like `create_channel` adopts a
channel it created before a crash). An attempt that died before files.completeUploadExternal
leaves a file that was never shared: invisible, harmless, and we upload again. The one window
left is Slack accepting the completion but not yet showing the share when we look; that would
upload a second copy, which we accept over never uploading at all.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from anyio import to_thread
from slack_sdk.errors import SlackRequestError
from sqlmodel import Session, col, select

from bot.core.errors import ConfigError
from bot.core.text import escape, link
from bot.service import postmortem
from bot.service.context import Context
from bot.service.timeline import record
from bot.slack.api import SlackCallError
from bot.slack.delivery import Completion, Handler, SlackDelivery, in_thread, require_channel
from bot.slack.marks import messages_where_posted
from bot.store import outbox
from bot.store.db import reading
from bot.store.tables import Outbox, TimelineEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Uploaded:
    file_id: str
    permalink: str | None


class PostmortemDelivery:
    def __init__(self, base: SlackDelivery, ctx: Context) -> None:
        self.base = base
        self.ctx = ctx

    def handlers(self) -> dict[str, Handler]:
        return {"postmortem": self.deliver, "postmortem_link": self.link}

    # -- the draft -------------------------------------------------------------------------------
    def _render(self, incident_id: int) -> tuple[postmortem.Draft, str | None]:
        """A broken custom template falls back to the default one (and says so), because retrying
        cannot fix a template and a draft from the default beats none."""
        ctx = self.ctx
        try:
            return postmortem.render_draft(ctx, incident_id, ctx.postmortem_template), None
        except ConfigError as exc:
            if ctx.postmortem_template is None:
                raise
            log.error("post-mortem template problem, using the default template: %s", exc)
            return postmortem.render_draft(ctx, incident_id, None), str(exc)

    def _write(self, incident_id: int) -> tuple[postmortem.Draft, str | None, str | None]:
        """The draft, its template problem, and why it could not be written to POSTMORTEMS_DIR.

        A directory the bot cannot write (permission denied, read-only file system, full disk)
        needs a person, not a retry: the draft is uploaded from memory and the channel is told."""
        draft, template_problem = self._render(incident_id)
        directory = self.ctx.postmortems_dir
        try:
            return postmortem.save_draft(draft, directory), template_problem, None
        except OSError as exc:
            reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
            log.error("could not write the post-mortem draft to %s: %s", directory, reason)
            return draft, template_problem, f"{directory}: {reason}"

    def _recorded_file_ids(self, incident_id: int) -> set[str]:
        with reading(self.base.engine) as session:
            rows = session.exec(
                select(TimelineEntry.data).where(
                    col(TimelineEntry.incident_id) == incident_id, col(TimelineEntry.kind) == "postmortem"
                )
            )
            return {str(data.get("file_id")) for data in rows if data.get("file_id")}

    # -- operations ------------------------------------------------------------------------------
    async def deliver(self, row: Outbox) -> Completion | None:
        if row.incident_id is None:
            return None
        draft, template_problem, write_problem = await to_thread.run_sync(self._write, row.incident_id)
        incident = draft.incident
        channel = require_channel(incident)
        uploaded = None
        if row.in_flight:
            recorded = await to_thread.run_sync(self._recorded_file_ids, row.incident_id)
            uploaded = await self._find_uploaded(channel, incident.thread_ts, draft.file_name, recorded)
            if uploaded:
                log.info("outbox %s: post-mortem already uploaded before a crash, not again", row.id)
        if uploaded is None:
            uploaded = await self._upload(channel, draft, template_problem, write_problem)

        path, name, now = draft.path and str(draft.path), draft.file_name, self.base.clock()
        announced = bool(incident.announce_ts and self.base.announce_channel)

        def complete(session: Session) -> None:
            assert incident.id is not None
            record(
                session,
                incident.id,
                now,
                "bot",
                "postmortem",
                f"Post-mortem draft {name} " + ("written and uploaded" if path else "uploaded (not written)"),
                {
                    "path": path,
                    "file_id": uploaded.file_id,
                    "permalink": uploaded.permalink,
                    "template_problem": template_problem,
                    "write_problem": write_problem,
                },
            )
            if announced:
                outbox.enqueue(
                    session,
                    row.lane,
                    "postmortem_link",
                    now,
                    {"file_id": uploaded.file_id, "permalink": uploaded.permalink, "file_name": name},
                    incident_id=incident.id,
                    priority=row.priority,
                )

        return complete

    async def _upload(
        self, channel: str, draft: postmortem.Draft, template_problem: str | None, write_problem: str | None
    ) -> Uploaded:
        comment = (
            ":memo: Post-mortem draft, written from this incident's timeline. "
            "Fill in the sections left as prompts (impact, root cause, lessons)."
        )
        if template_problem:
            comment += (
                f"\n:warning: The custom template failed ({escape(template_problem)}), "
                "so this draft uses the default one."
            )
        if write_problem:
            comment += (
                f"\n:warning: Could not write the post-mortem draft to {escape(write_problem)}; "
                "set POSTMORTEMS_DIR/DATA_DIR to a directory the bot can write. This upload is the only copy."
            )
        try:
            response = await self.base.slack.call(
                "files_upload_v2",
                channel=channel,
                content=draft.text,
                filename=draft.file_name,
                title=f"Post-mortem: {escape(draft.incident.title)}"[:250],
                snippet_type="markdown",
                initial_comment=comment,
                **in_thread(draft.incident),  # an incident living in a thread gets it there
            )
        except SlackRequestError as exc:
            # slack_sdk raises this when the bytes upload (step 2) fails: nothing was shared yet.
            raise SlackCallError("files_upload_v2", f"upload: {exc}", recoverable=True) from exc
        file = response.get("file") or (response.get("files") or [{}])[0]
        file_id = str(file.get("id") or "")
        if not file_id:
            raise SlackCallError("files_upload_v2", "no file id in the answer", recoverable=False)
        return Uploaded(file_id, file.get("permalink") or await self._permalink(file_id))

    async def _permalink(self, file_id: str) -> str | None:
        """files.completeUploadExternal answers id and title only; files.info has the link."""
        try:
            info = await self.base.slack.call("files.info", file=file_id)
        except SlackCallError as exc:
            log.warning("files.info %s failed (%s); linking the channel instead", file_id, exc.error)
            return None
        permalink = (info.get("file") or {}).get("permalink")
        return str(permalink) if permalink else None

    async def _find_uploaded(
        self, channel: str, thread: str | None, name: str, recorded: set[str]
    ) -> Uploaded | None:
        me = await self.base.bot_user()
        for message in await messages_where_posted(self.base.slack, channel, thread, metadata=False):
            if message.get("user") != me:
                continue
            for file in message.get("files") or []:
                file_id = str(file.get("id") or "")
                if file.get("name") == name and file_id and file_id not in recorded:
                    permalink = file.get("permalink")
                    return Uploaded(file_id, str(permalink) if permalink else None)
        return None

    async def link(self, row: Outbox) -> Completion | None:
        """One reply in the announcement's thread pointing at the uploaded draft."""
        announce = self.base.announce_channel
        incident = (await self.base.snapshot(row)).incident
        if not announce or not incident.announce_ts or incident.thread_ts:
            return None  # (an incident living in a thread has the draft there already)
        permalink = row.payload.get("permalink")
        name = str(row.payload.get("file_name") or "post-mortem")
        where = link(str(permalink), name) if permalink else f"{escape(name)} in <#{incident.channel_id}>"
        text = f":memo: Post-mortem draft for incident #{incident.id} ({escape(incident.title)}): {where}"
        ts = await self.base.post_once(row, announce, thread_ts=incident.announce_ts, text=text)

        def complete(session: Session) -> None:
            assert incident.id is not None
            record(
                session,
                incident.id,
                self.base.clock(),
                "bot",
                "posted",
                "Post-mortem linked in the announcement thread",
                {"channel": announce, "ts": ts},
            )

        return complete
