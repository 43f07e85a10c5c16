"""The one dispatcher that drains the outbox into WeCom.

It claims due rows under a lease, sends them in small concurrent chunks, and marks each chunk
under the lease as soon as it is back, so the window "sent but not yet marked" is one round
trip; app messages carry ``enable_duplicate_check`` so a row re-sent after a crash in that
window reaches nobody twice. Transient errors back off exponentially up to ``MAX_BACKOFF``
(45009: a minute); a permanent one is recorded with its reason. With nothing due it sleeps
until the next row is due or something is enqueued: never a busy loop.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Awaitable, Callable

from sqlmodel import Session

from bot.clock import Clock
from bot.db import Database
from bot.render import Renderer
from bot.wecom_api import RATE_LIMITED, WeComAPI, WeComError, WeComUnavailable
from models import org, outbox, photo

log = logging.getLogger(__name__)
ChannelSend = Callable[[outbox.Claimed], Awaitable[dict[str, Any]]]
UNREACHABLE_CODES = {81013}            # every recipient invalid: nobody got it
GIVE_UP_AFTER = timedelta(hours=48)    # transient failures for this long become permanent
# Each row retries at least this often while WeCom is down, so the last push leaves about a
# minute after WeCom is back (bench/faults_wecom.py, a 10-minute outage: with 5 minutes, a
# quarter of the pushes still waited 150 s after it; with 1, the last left after 46 s).
# A retry to a WeCom that refuses costs little.
MAX_BACKOFF = timedelta(minutes=1)


@dataclass
class Outcome:
    row: outbox.Claimed
    status: str                                   # sent | retry | failed
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    delay: timedelta = timedelta(0)
    unreachable: str = ""                         # why the recipient cannot be reached


class OutboxSender:
    def __init__(self, *, db: Database, api: WeComAPI, clock: Clock, renderer: Renderer,
                 webhooks: dict[str, str], batch: int = 200, chunk: int = 25,
                 idle_s: float = 1.0, data_dir: Path = Path("data"), coalesce_s: float = 0.05,
                 on_outcome: Callable[[str, str], None] = lambda channel, status: None) -> None:
        self.data_dir, self.on_outcome = data_dir, on_outcome  # on_outcome: metrics
        self.coalesce_s = coalesce_s
        self.db, self.api, self.clock, self.renderer = db, api, clock, renderer
        self.webhooks, self.batch, self.chunk, self.idle_s = webhooks, batch, chunk, idle_s
        self.owner = f"sender-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._stopping, self._idle = False, asyncio.Event()
        self._idle.set()  # not inside drain_once: a cancel here cuts nothing in two
        # Other channels plug in a sender (the AI bot's long connection: "aibot"); it returns
        # the result to record, or raises WeComError / WeComUnavailable like the API does.
        self.channels: dict[str, ChannelSend] = {}

    def wake(self) -> None:
        """Something was enqueued: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._idle.clear()
            try:
                sent = await self.drain_once()
            except Exception:  # the database or WeCom is down: keep trying, slowly
                log.exception("outbox dispatch failed; retrying")
                sent = 0
            finally:
                self._idle.set()
            if not sent:
                try:
                    await self._sleep()
                except Exception:  # never let the one dispatcher die quietly
                    log.exception("outbox sender could not wait; polling again shortly")
                    await asyncio.sleep(self.idle_s)

    async def stop(self, timeout: float = 60.0) -> None:
        """Graceful shutdown: claim no new batch, and let the one being sent finish and be
        marked (a cancel could cut between a send and its mark); then ``run`` may be
        cancelled. Unclaimed rows wait for the next start."""
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("outbox sender still busy after %s s; stopping it anyway", timeout)

    async def _sleep(self) -> None:
        delay = self.idle_s
        try:
            due = await self.db.run(outbox.next_due)
        except Exception:
            due = None
        if due is not None:
            delay = min(max((due - self.clock.now()).total_seconds(), 0.2), self.idle_s)
        self._wake.clear()
        if self._stopping:
            return
        try:
            await asyncio.wait_for(self._wake.wait(), delay)
        except asyncio.TimeoutError:
            return
        # Woken: let the wakes of a busy moment gather, so a burst of messages costs one
        # claim, not one each (the single SQLite thread serves the callbacks too).
        await asyncio.sleep(self.coalesce_s)

    async def drain_once(self) -> int:
        """Claim one batch, send it, record the results; the number of rows claimed."""
        claimed = await self.db.run(outbox.claim, owner=self.owner, now=self.clock.now(),
                                    limit=self.batch)
        chunks = [claimed[i:i + self.chunk] for i in range(0, len(claimed), self.chunk)]
        await asyncio.gather(*(self._send_chunk(chunk) for chunk in chunks))
        return len(claimed)

    async def _send_chunk(self, chunk: list[outbox.Claimed]) -> None:
        """Send a few rows at once and mark them as soon as they are back."""
        outcomes = await asyncio.gather(*(self._send(row) for row in chunk))
        await self.db.run(self._record, outcomes=outcomes)
        for o in outcomes:
            self.on_outcome(o.row.channel, o.status)

    async def _send(self, row: outbox.Claimed) -> Outcome:
        try:
            if row.channel == "webhook":
                return await self._send_webhook(row)
            if row.channel != "app":
                return await self._send_channel(row)
            body = await self._media_body(row)
            sent = await self.api.send_message(
                {"touser": row.recipient, "msgtype": row.msgtype, row.msgtype: body})
        except WeComError as exc:
            return self._failure(row, exc)
        except WeComUnavailable as exc:
            return self._transient(row, str(exc))
        except OSError as exc:  # the file to send is gone: nothing a retry can fix
            return Outcome(row, "failed", error=f"file unreadable: {exc}")
        result = {"msgid": sent.msgid, "invaliduser": list(sent.invalid_users),
                  "unlicenseduser": list(sent.unlicensed_users),
                  "response_code": sent.response_code}
        reason = ("invaliduser" if row.recipient in sent.invalid_users else
                  "unlicenseduser" if row.recipient in sent.unlicensed_users else "")
        if reason:  # WeCom accepted the call but this person will not see it
            return Outcome(row, "failed", result, error=f"recipient unreachable: {reason}",
                           unreachable=reason)
        return Outcome(row, "sent", result)

    async def _media_body(self, row: outbox.Claimed) -> dict[str, Any]:
        """A file or image row holds a path under the data directory, or the id of a photo
        someone sent (it may still be on its way from WeCom: then the row waits); it is
        uploaded when it is sent, because a media_id lives only three days."""
        if row.msgtype not in ("file", "image"):
            return row.payload
        relative = row.payload.get("path")
        if "photo_id" in row.payload:
            found = await self.db.run(photo.get, photo_id=row.payload["photo_id"])
            if found is None or found.status == photo.FAILED:
                raise OSError(f"photo {row.payload['photo_id']} could not be fetched")
            if found.status != photo.STORED:
                raise WeComUnavailable(f"photo {found.id} not fetched yet")
            relative = found.path
        if relative is None:
            return row.payload
        path = self.data_dir / relative
        content = await asyncio.to_thread(path.read_bytes)
        media_id = await self.api.upload_media(row.msgtype, row.payload.get("filename", path.name),
                                               content)
        return {"media_id": media_id}

    async def _send_channel(self, row: outbox.Claimed) -> Outcome:
        send = self.channels.get(row.channel)
        if send is None:  # not plugged in (yet): keep the row
            return self._transient(row, f"no sender for channel {row.channel!r}")
        return Outcome(row, "sent", await send(row))

    async def _send_webhook(self, row: outbox.Claimed) -> Outcome:
        key = self.webhooks.get(row.recipient)
        if key is None:
            return Outcome(row, "failed", error=f"no webhook named {row.recipient!r} configured")
        await self.api.webhook_send(key, {"msgtype": row.msgtype, row.msgtype: row.payload})
        return Outcome(row, "sent")

    def _failure(self, row: outbox.Claimed, exc: WeComError) -> Outcome:
        if exc.errcode in UNREACHABLE_CODES:
            return Outcome(row, "failed", error=str(exc), unreachable=f"errcode {exc.errcode}")
        if exc.errcode == RATE_LIMITED:
            return Outcome(row, "retry", error=str(exc), delay=timedelta(minutes=1))
        if exc.transient:
            return self._transient(row, str(exc))
        return Outcome(row, "failed", error=str(exc))

    def _transient(self, row: outbox.Claimed, error: str) -> Outcome:
        if self.clock.now() - row.created_at > GIVE_UP_AFTER:
            return Outcome(row, "failed", error=f"gave up after {GIVE_UP_AFTER}: {error}")
        delay = min(timedelta(seconds=5 * 2 ** min(row.attempts - 1, 10)), MAX_BACKOFF)
        return Outcome(row, "retry", error=error, delay=delay)

    def _record(self, *, session: Session, outcomes: list[Outcome]) -> None:
        now = self.clock.now()
        for o in outcomes:
            if o.status == "sent":
                outbox.mark_sent(session=session, row_id=o.row.id, owner=self.owner, now=now,
                                 result=o.result)
            elif o.status == "retry":
                outbox.mark_retry(session=session, row_id=o.row.id, owner=self.owner, now=now,
                                  error=o.error, delay=o.delay)
            else:
                log.warning("push %s failed for good: %s", o.row.key, o.error)
                outbox.mark_failed(session=session, row_id=o.row.id, owner=self.owner, now=now,
                                   error=o.error, result=o.result)
            if o.unreachable:
                self._flag_unreachable(session, o.row.recipient, o.unreachable, now)

    def _flag_unreachable(self, session: Session, userid: str, reason: str, now) -> None:
        """Tell the person's admins at once, not when an escalation needs them."""
        person, admins = org.admins_for(session=session, userid=userid)
        if person is None:
            return
        content = self.renderer.render("outbox/unreachable.txt.j2", name=person.name,
                                       userid=userid, reason=reason)
        day = now.date().isoformat()
        for admin in admins:
            outbox.enqueue(session=session, key=f"unreachable:{userid}:{admin}:{day}",
                           recipient=admin, msgtype="text", payload={"content": content},
                           now=now, urgent=True)
