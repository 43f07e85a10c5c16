"""Callback mode's stream replies, kept in the database (``models.aibot_stream``).

WeCom polls a stream until it is finished, for at most six minutes from the user's message,
and a poll may reach any instance: so each answer is written to its stream row, and a poll
reads it there. An answer ready only after WeCom stopped polling goes once to the message's
``response_url`` (usable once, for an hour), as markdown.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import aiohttp

from bot.aibot import frames
from bot.aibot.core import AibotCore
from bot.aibot.inbound import Inbound
from bot.dispatcher import Turn
from models import aibot_stream
from models.base import as_utc

log = logging.getLogger(__name__)
POLL_WINDOW = timedelta(seconds=330)  # WeCom polls for 6 min; keep a margin
GIVE_UP = timedelta(seconds=300)       # an unfinished stream this old: its worker is gone
PRUNE_EVERY = timedelta(hours=1)
POST_TIMEOUT = aiohttp.ClientTimeout(total=15)


class StreamState:
    def __init__(self, *, core: AibotCore, http: aiohttp.ClientSession) -> None:
        self.core, self.http = core, http
        self._pruned_at = None

    @staticmethod
    def _key(inbound: Inbound) -> str:
        return inbound.msgid or inbound.msg.dedupe_key

    async def start(self, inbound: Inbound, task: asyncio.Task[Turn],
                    turn: Turn | None) -> dict | None:
        """The first reply to a message: the answer, or "已收到" while it is being worked on."""
        core, msg = self.core, inbound.msg
        await self._prune()
        if turn is not None and not turn.text:
            return None
        finished = turn is not None
        content = turn.text if turn is not None else core.render("aibot/received.txt.j2")
        row = await core.db.run(aibot_stream.open_stream, stream_id=frames.new_stream_id(),
                                msgid=self._key(inbound), user_id=msg.user_id,
                                chat_id=msg.chat_id, content=content, finished=finished,
                                response_url=inbound.response_url, now=core.clock.now())
        if not finished:
            core.spawn(self._finish(row.id, task))
        return frames.stream(row.id, row.content, finish=row.finished)

    async def _finish(self, stream_id: str, task: asyncio.Task[Turn]) -> None:
        turn = await task
        core = self.core
        text = turn.text or core.render("aibot/received.txt.j2")
        now = core.clock.now()
        await core.db.run(aibot_stream.finish, stream_id=stream_id, content=text, now=now)
        row = await core.db.run(aibot_stream.get, stream_id=stream_id)
        if row is not None and now - as_utc(row.created_at) > POLL_WINDOW and turn.text:
            url = await core.db.run(aibot_stream.claim_late, stream_id=stream_id)
            if url:
                await self.post_once(url, turn.text)

    async def poll(self, stream_id: str) -> dict:
        """WeCom asks how a stream is going."""
        row = await self.core.db.run(aibot_stream.get, stream_id=stream_id)
        lost = row is None or (not row.finished
                               and self.core.clock.now() - as_utc(row.created_at) > GIVE_UP)
        if lost:
            return frames.stream(stream_id, self.core.render("aibot/stream_lost.txt.j2"),
                                 finish=True)
        return frames.stream(row.id, row.content, finish=row.finished)

    async def again(self, inbound: Inbound) -> dict | None:
        """A message delivered again (our reply was lost): the same stream, as it is now."""
        row = await self.core.db.run(aibot_stream.by_msgid, msgid=self._key(inbound))
        return frames.stream(row.id, row.content, finish=row.finished) if row else None

    async def late_card(self, task: asyncio.Task[Turn], url: str) -> None:
        turn = await task
        if turn.text:
            await self.post_once(url, turn.text)

    async def post_once(self, url: str, text: str) -> None:
        """POST markdown to a response_url (each may be used once)."""
        if not url.startswith(("https://", "http://")):
            log.warning("AI bot: no response_url for a late answer; it is dropped")
            return
        try:
            async with self.http.post(url, json={"msgtype": "markdown",
                                                 "markdown": {"content": text}},
                                      timeout=POST_TIMEOUT) as resp:
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            log.warning("AI bot: response_url POST failed: %s", exc or type(exc).__name__)
            return
        if not isinstance(data, dict) or data.get("errcode", 0) != 0:
            log.warning("AI bot: response_url refused the answer: %s", data)

    async def _prune(self) -> None:
        now = self.core.clock.now()
        if self._pruned_at is None or now - self._pruned_at > PRUNE_EVERY:
            self._pruned_at = now
            await self.core.db.run(aibot_stream.prune, now=now)
