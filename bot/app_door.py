"""The self-built app's callback door at ``/wecom/app/callback`` (thin: translate, never decide).

POST order: the gate (bot/callback_gate.py: body limit → replay window → ``<Encrypt>`` cut out
without an XML parse → constant-time signature → decrypt) → parse the inner XML → record the
dedupe key (in the transaction that loads the sender: bot/dispatcher.py) → reply. Anything
after the signature answers 200.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from aiohttp import web

from bot.app_xml import BadXml, parse_callback, text_reply, update_button_reply
from bot.clock import Clock
from bot.callback_gate import CallbackGate
from bot.crypto import CallbackCrypto, extract_encrypt
from bot.db import Database
from bot.dispatcher import Dispatcher, Turn
from bot.messages import Incoming
from bot.ops.metrics import note_outcome
from bot.render import Renderer

log = logging.getLogger(__name__)
REPLY_BUDGET_S = 3.0  # WeCom waits 5 s; answer well before, push the rest later
LateReply = Callable[[Incoming, str], Awaitable[None]]


class AppDoor:
    def __init__(self, *, crypto: CallbackCrypto, replay_window_s: int, clock: Clock,
                 db: Database, dispatcher: Dispatcher, renderer: Renderer,
                 late_reply: LateReply) -> None:
        self.crypto, self.clock = crypto, clock
        self.gate = CallbackGate(crypto=crypto, replay_window_s=replay_window_s, clock=clock,
                                 name="app")
        self.db, self.dispatcher, self.renderer = db, dispatcher, renderer
        self.late_reply = late_reply
        self._background: set[asyncio.Task] = set()

    async def verify_url(self, request: web.Request) -> web.Response:
        return await self.gate.verify_url(request)

    async def receive(self, request: web.Request) -> web.Response:
        opened = await self.gate.open(request, extract_encrypt)
        if isinstance(opened, web.Response):
            return opened
        try:
            msg = parse_callback(opened.plaintext)
        except BadXml as exc:
            log.error("authenticated callback could not be read: %s", exc)
            return web.Response()
        turn = await self._answer(msg)
        if turn.duplicate:
            note_outcome(request, "duplicate")
            return web.Response()  # WeCom's retry of something already handled
        if turn.button:
            plain = update_button_reply(to_user=msg.user_id, from_user=self.crypto.receive_id,
                                        replace_name=turn.button)
        elif turn.text:
            plain = text_reply(to_user=msg.user_id, from_user=self.crypto.receive_id,
                               content=turn.text)
        else:
            return web.Response()
        return web.Response(text=self.crypto.encrypted_reply(plain, opened.nonce),
                            content_type="application/xml")

    async def _answer(self, msg: Incoming) -> Turn:
        """The reply, or a "working on it" note if the handler outlives the budget (it goes on
        in the background and its answer is pushed)."""
        task = asyncio.create_task(self.dispatcher.handle(msg,
                                                          dedupe_key="app:" + msg.dedupe_key))
        try:
            done, _ = await asyncio.wait((task,), timeout=REPLY_BUDGET_S)
        except asyncio.CancelledError:  # the request was cancelled: the turn still finishes
            self._keep_going(task, msg)
            raise
        if not done:
            self._keep_going(task, msg)
            return Turn(self.renderer.render("common/working.txt.j2"))
        try:
            return task.result()
        except Exception:
            log.exception("handler failed for a %s message", msg.kind)
            return Turn(self.renderer.render("common/error.txt.j2"))

    def _keep_going(self, task: asyncio.Task, msg: Incoming) -> None:
        self._background.add(task)
        task.add_done_callback(self._finish_late(msg))

    def _finish_late(self, msg: Incoming) -> Callable[[asyncio.Task], None]:
        def done(task: asyncio.Task) -> None:
            self._background.discard(task)
            if task.cancelled():
                return
            if task.exception() is not None:
                log.error("late handler failed: %r", task.exception())
                return
            if task.result().text:
                late = asyncio.create_task(self.late_reply(msg, task.result().text))
                self._background.add(late)
                late.add_done_callback(self._background.discard)
        return done

    async def drain(self) -> None:
        """Wait for handlers still running after their reply (graceful shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

