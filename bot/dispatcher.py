"""The dispatcher: who is this, take their lock, load their conversation, route, render.

Route order (DESIGN.md): 取消/下一页 > ongoing conversation > command > fallback. One turn per
conversation at a time: a per-user lock in this process, and on PostgreSQL one across instances
(bot/turn_locks.py). The conversation (state and unread pages) is written back once, after the
handler, only if it changed.

A message's first database step (its dedupe row, its sender and, on one instance, its
conversation) runs before it takes the lock, batched with every other message arriving
meanwhile (bot/turn_begins.py): so a user's messages queue for the lock with what they need
already read, and the lock is held for the handler alone. A conversation read before the lock
is current unless a turn that may have written it ended since (``Slot.writes``); then, and on
PostgreSQL where another instance may have written it, it is read again under the lock.
Conversation rows are written only by turns holding their lock.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.clock import Clock
from bot.context import ConversationHandle, Ctx
from bot.db import Database
from bot.locks import KeyedLocks, Slot
from bot.messages import Incoming, Reply
from bot.render import Renderer, split_pages
from bot.router import Handler, Routes
from bot.turn_begins import TurnBegins
from bot.turn_locks import TurnLocks
from models import conversation, dedupe, group, org, photo
from models.turn_begin import Begin, Began, Seen

log = logging.getLogger(__name__)
MAX_TEXT_CHARS = 2000


@dataclass(frozen=True)
class Turn:
    """What the sender sees for one message: the text of a passive reply, a card's new button
    text, or nothing."""

    text: str | None
    button: str | None = None
    duplicate: bool = False  # WeCom's retry of a message already handled: answer nothing


DUPLICATE = Turn(None, duplicate=True)


def _end_turn(*, session: Session, key: str, now: datetime,
              snapshot: conversation.Snapshot | None, done_key: str | None) -> None:
    """The conversation written back and/or the message marked handled, one transaction."""
    if snapshot is not None:
        conversation.save(session=session, key=key, snapshot=snapshot, now=now)
    if done_key is not None:
        dedupe.mark_done(session=session, key=done_key)


class _CountingDb:
    """The database as a turn's handler sees it: counts the transactions it runs, so the
    dispatcher knows whether the turn may have changed anything."""

    def __init__(self, db: Database) -> None:
        self._db, self.runs = db, 0

    async def run(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        self.runs += 1
        return await self._db.run(fn, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


class Dispatcher:
    def __init__(self, *, db: Database, renderer: Renderer, routes: Routes, clock: Clock,
                 tz: ZoneInfo, services: dict[str, Any] | None = None,
                 photos_registered: Callable[[], None] = lambda: None,
                 turn_done: Callable[[], None] = lambda: None,
                 turn_locks: TurnLocks | None = None) -> None:
        self.db, self.renderer, self.routes, self.clock, self.tz = db, renderer, routes, clock, tz
        self.services = services if services is not None else {}
        self.photos_registered = photos_registered
        self.turn_done = turn_done  # wakes the outbox: a handler may have enqueued pushes
        self.locks = KeyedLocks()  # one turn per conversation in this process
        self.turn_locks = turn_locks  # ... and across instances (PostgreSQL)
        self.begins = TurnBegins(db)  # each turn's first database step, in batches

    async def handle(self, msg: Incoming, *, dedupe_key: str | None = None) -> Turn:
        """Handle one message; with ``dedupe_key`` a retry already seen gets ``DUPLICATE``."""
        key = msg.conversation_key
        photo_ids: list[int] = list(msg.photo_ids)  # already stored (AI bot images)
        if msg.media_ids:  # fetched in the background; handlers get the rows' ids at once
            photo_ids += await self.db.run(photo.register, media_ids=msg.media_ids,
                                           userid=msg.user_id, now=self.clock.now())
            self.photos_registered()
        chat_unit = (await self.db.run(group.unit_for_chat, chatid=msg.chat_id)
                     if msg.chat_type == "group" and msg.chat_id else None)
        slot = self.locks.claim(key)
        try:
            # the dedupe row, the sender and (one instance) the conversation, read before the
            # lock in a batch with other messages; what a turn before this one wrote since is
            # read again under the lock (slot.writes)
            writes_before = slot.writes
            began = await self.begins.begin(Begin(
                userid=msg.user_id, key=key, now=self.clock.now(), dedupe_key=dedupe_key,
                conversation=self.turn_locks is None))
            if began.seen is Seen.DUPLICATE:
                return DUPLICATE
            async with slot.lock:
                if self.turn_locks is None:
                    turn = await self._locked(msg, began, slot, writes_before, dedupe_key,
                                              photo_ids=tuple(photo_ids), chat_unit=chat_unit)
                else:
                    async with self.turn_locks.hold(key):
                        turn = await self._locked(msg, began, slot, writes_before, dedupe_key,
                                                  photo_ids=tuple(photo_ids),
                                                  chat_unit=chat_unit)
        finally:
            self.locks.release(key, slot)
        if turn is not DUPLICATE:
            self.turn_done()
        return turn

    async def _locked(self, msg: Incoming, began: Began, slot: Slot, writes_before: int,
                      dedupe_key: str | None, *, photo_ids: tuple[int, ...],
                      chat_unit: int | None) -> Turn:
        """The turn, holding the conversation's lock(s)."""
        now = self.clock.now()
        if began.seen is Seen.UNFINISHED and not await self.db.run(
                dedupe.take_over, key=dedupe_key, now=now):
            return DUPLICATE
        snapshot = began.snapshot
        if snapshot is None or slot.writes != writes_before:
            snapshot = await self.db.run(conversation.load, key=msg.conversation_key, now=now)
        return await self._turn(msg, began.identity, snapshot, slot, now=now,
                                photo_ids=photo_ids, chat_unit=chat_unit, dedupe_key=dedupe_key)

    async def _turn(self, msg: Incoming, identity: org.Identity | None,
                    snapshot: conversation.Snapshot, slot: Slot, *, now: datetime,
                    photo_ids: tuple[int, ...], chat_unit: int | None,
                    dedupe_key: str | None) -> Turn:
        """Route, render and write back, holding the conversation's lock."""
        handle = ConversationHandle(snapshot)
        db = _CountingDb(self.db)
        ctx = Ctx(db=db, renderer=self.renderer, routes=self.routes, now=now, tz=self.tz,
                  identity=identity, conversation=handle, services=self.services,
                  photo_ids=photo_ids, chat_unit_id=chat_unit)
        try:
            reply = await self._route(msg, ctx)
            text = self._paginate(reply, handle) if reply.template else None
            # a turn that wrote (its handler's transactions, its conversation) is marked
            # handled; a read-only turn is not: answering it twice harms nobody
            done_key = dedupe_key if db.runs or handle.changed else None
            if handle.changed or done_key:
                await self.db.run(_end_turn, key=msg.conversation_key, now=now,
                                  done_key=done_key,
                                  snapshot=handle.snapshot if handle.changed else None)
        finally:
            if db.runs or handle.changed:  # may have written the conversation row
                slot.writes += 1
        return Turn(text, reply.button)

    async def _route(self, msg: Incoming, ctx: Ctx) -> Reply:
        if msg.kind == "event":
            return await self._route_event(msg, ctx)
        if msg.kind == "card":
            handler = self.routes.card_handler(msg.card.event_key if msg.card else "")
            return await handler(msg, ctx) if handler and ctx.identity else Reply.none()
        if msg.kind == "text":
            if not msg.text.strip():
                return Reply.of("common/empty.txt.j2")
            if len(msg.text) > MAX_TEXT_CHARS:
                return Reply.of("common/too_long.txt.j2", limit=MAX_TEXT_CHARS)
            return await self._route_text(msg, msg.text, ctx)
        if ctx.identity is None:
            return Reply.of("common/unbound.txt.j2")
        state_handler = self._state_handler(ctx)
        if state_handler:
            return await state_handler(msg, ctx)
        kind_handler = self.routes.events.get(f"message:{msg.kind}")  # a location: 签到
        if kind_handler:
            return await kind_handler(msg, ctx)
        return Reply.of("common/unsupported.txt.j2", kind=msg.kind)

    async def _route_text(self, msg: Incoming, text: str, ctx: Ctx) -> Reply:
        matched = self.routes.match(text)
        command, args = matched if matched else (None, "")
        if ctx.identity is None:
            if command and command.public:
                return await self._run(command.handler, msg, ctx, args)
            return Reply.of("common/unbound.txt.j2")
        if command and command.over_state:
            return await self._run(command.handler, msg, ctx, args)
        state_handler = self._state_handler(ctx)
        if state_handler:
            return await self._run(state_handler, msg, ctx, text.strip())
        if command is None:
            return Reply.of("common/unknown.txt.j2")
        if not command.allowed(ctx.identity.roles):
            return Reply.of("common/forbidden.txt.j2", command=command.word)
        return await self._run(command.handler, msg, ctx, args)

    async def _route_event(self, msg: Incoming, ctx: Ctx) -> Reply:
        if msg.event == "click" and msg.event_key:  # menu buttons carry a command word
            return await self._route_text(msg, msg.event_key, ctx)
        handler = self.routes.events.get(msg.event)
        return await self._run(handler, msg, ctx, "") if handler else Reply.none()

    def _state_handler(self, ctx: Ctx) -> Handler | None:
        state = ctx.conversation.state
        if state is None:
            return None
        handler = self.routes.states.get(state)
        if handler is None:  # a state whose handler is gone (an upgrade): forget it
            log.warning("dropping conversation in unknown state %s", state)
            ctx.conversation.clear()
        return handler

    @staticmethod
    async def _run(handler: Handler, msg: Incoming, ctx: Ctx, args: str) -> Reply:
        ctx.args = args
        return await handler(msg, ctx)

    def _paginate(self, reply: Reply, handle: ConversationHandle) -> str | None:
        """Render the reply; a text over WeCom's 2,048 bytes is split and the rest kept."""
        text = self.renderer.render(reply.template, **reply.data)
        if reply.keep_pages:
            return text
        first, *rest = split_pages(text)
        handle.set_pages(rest)
        if rest:
            first += "\n" + self.renderer.render("common/page_footer.txt.j2", left=len(rest))
        return first
