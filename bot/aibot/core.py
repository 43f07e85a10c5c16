"""What both AI-bot modes share: read a callback once, store its images, run the dispatcher,
and shape the answer (a note for an unbound group, a card rebuilt for a click, a push when the
answer is too late for the reply).
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from bot.aibot import cards
from bot.aibot.channel import enqueue_markdown
from bot.aibot.inbound import BadBody, Inbound, parse_body
from bot.aibot.media import MediaFetcher
from bot.clock import Clock
from bot.db import Database
from bot.dispatcher import Dispatcher, Turn
from bot.messages import Incoming
from bot.render import Renderer
from models import dedupe, group

log = logging.getLogger(__name__)


class AibotCore:
    def __init__(self, *, db: Database, dispatcher: Dispatcher, renderer: Renderer,
                 clock: Clock, media: MediaFetcher, media_key: bytes | None,
                 wake: Any = lambda: None) -> None:
        self.db, self.dispatcher, self.renderer, self.clock = db, dispatcher, renderer, clock
        self.media, self.media_key, self.wake = media, media_key, wake
        self._background: set[asyncio.Task] = set()

    def render(self, name: str, **data: Any) -> str:
        return self.renderer.render(name, **data)

    def parse(self, body: dict[str, Any]) -> Inbound | None:
        try:
            return parse_body(body, now=self.clock.now())
        except BadBody as exc:
            log.warning("AI bot: callback body skipped: %s", exc)
            return None

    async def first_time(self, inbound: Inbound) -> bool:
        return await self.db.run(dedupe.first_time, key="aibot:" + inbound.msg.dedupe_key,
                                 now=self.clock.now())

    async def with_photos(self, inbound: Inbound) -> tuple[Incoming, int]:
        """The message with its images stored (now: their URLs live five minutes)."""
        if not inbound.images:
            return inbound.msg, 0
        ids, failed = await self.media.store_all(inbound.images, key=self.media_key,
                                                 userid=inbound.msg.user_id,
                                                 msg_key=inbound.msg.dedupe_key)
        return dataclasses.replace(inbound.msg, photo_ids=tuple(ids)), failed

    def start(self, msg: Incoming, failed_images: int = 0) -> asyncio.Task[Turn]:
        task = asyncio.create_task(self._turn(msg, failed_images))
        self._keep(task)
        return task

    async def _turn(self, msg: Incoming, failed_images: int) -> Turn:
        try:
            turn = await self.dispatcher.handle(msg)
        except Exception:
            log.exception("AI bot: handler failed for a %s message", msg.kind)
            return Turn(self.render("common/error.txt.j2"))
        notes = []
        if failed_images:
            notes.append(self.render("aibot/image_failed.txt.j2", count=failed_images))
        if msg.chat_type == "group" and msg.chat_id and msg.kind in ("text", "image") \
                and await self.db.run(group.note_unbound, chatid=msg.chat_id,
                                      now=self.clock.now()):
            notes.append(self.render("group/unbound.txt.j2"))
        if not notes:
            return turn
        return Turn("\n\n".join(notes + ([turn.text] if turn.text else [])), turn.button)

    @staticmethod
    async def within(task: asyncio.Task[Turn], seconds: float) -> Turn | None:
        """The turn if it is done within ``seconds``, else None (it keeps running)."""
        try:
            return await asyncio.wait_for(asyncio.shield(task), seconds)
        except asyncio.TimeoutError:
            return None

    async def push(self, msg: Incoming, text: str, *, key: str = "") -> None:
        """An answer that cannot go out as a reply goes to the chat (or the 1:1) as a push."""
        await self.db.run(enqueue_markdown, key=key or f"aibot-late:{msg.dedupe_key}",
                          to=msg.chat_id or msg.user_id, text=text, now=self.clock.now())
        self.wake()

    def push_when_done(self, task: asyncio.Task[Turn], msg: Incoming) -> None:
        async def later() -> None:
            turn = await task
            if turn.text:
                await self.push(msg, turn.text)
        self._keep(asyncio.create_task(later()))

    async def card(self, msg: Incoming, replace_text: str) -> dict[str, Any]:
        """The clicked card again, its buttons greyed out with ``replace_text``."""
        task_id = msg.card.task_id if msg.card else ""
        original = await self.db.run(cards.original_card, recipient=msg.chat_id or msg.user_id,
                                     task_id=task_id)
        return cards.replaced(original, task_id=task_id, replace_text=replace_text)

    def _keep(self, task: asyncio.Task) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def spawn(self, coro: Any) -> None:
        self._keep(asyncio.create_task(coro))

    async def drain(self) -> None:
        """Wait for work still running (graceful shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
