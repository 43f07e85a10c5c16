"""The self-built app's callback door at ``/wecom/app/callback`` (thin: translate, never decide).

POST order, cheapest check first so nothing unauthenticated costs much: body limit → timestamp
inside the replay window → ``<Encrypt>`` cut out without an XML parse → constant-time signature
check → decrypt + receive id → parse the inner XML → record the dedupe key → dispatch → reply.
Anything after the signature check answers 200 even when it fails: a non-200 makes WeCom
deliver the same message three more times.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from aiohttp import web

from bot.app_xml import BadXml, parse_callback, text_reply, update_button_reply
from bot.clock import Clock
from bot.crypto import CallbackCrypto, CryptoError, extract_encrypt
from bot.db import Database
from bot.dispatcher import Dispatcher, Turn
from bot.messages import Incoming
from bot.ops.metrics import note_outcome
from bot.render import Renderer
from models import dedupe

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
REPLY_BUDGET_S = 3.0  # WeCom waits 5 s; answer well before, push the rest later
LateReply = Callable[[Incoming, str], Awaitable[None]]


class AppDoor:
    def __init__(self, *, crypto: CallbackCrypto, replay_window_s: int, clock: Clock,
                 db: Database, dispatcher: Dispatcher, renderer: Renderer,
                 late_reply: LateReply) -> None:
        self.crypto, self.window, self.clock = crypto, replay_window_s, clock
        self.db, self.dispatcher, self.renderer = db, dispatcher, renderer
        self.late_reply = late_reply
        self._background: set[asyncio.Task] = set()

    def _fresh(self, timestamp: str) -> bool:
        # isascii: "²" and "፩" pass isdigit() but not int() (a 500 before the signature)
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            return False
        return self.window == 0 or abs(self.clock.now().timestamp() - int(timestamp)) <= self.window

    async def verify_url(self, request: web.Request) -> web.Response:
        q = request.query
        sig, ts, nonce, echostr = (q.get("msg_signature", ""), q.get("timestamp", ""),
                                   q.get("nonce", ""), q.get("echostr", ""))
        if not (sig and echostr and self._fresh(ts)
                and self.crypto.check_signature(sig, ts, nonce, echostr)):
            log.warning("URL verification refused from %s", request.remote)
            return web.Response(status=403)
        try:
            plain = self.crypto.decrypt(echostr)
        except CryptoError as exc:
            log.warning("URL verification echostr undecryptable: %s", exc)
            return web.Response(status=403)
        return web.Response(body=plain.encode(), content_type="text/plain")  # bare, no newline

    async def receive(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413)
        body = await _read_limited(request, MAX_BODY)
        if body is None:
            return web.Response(status=413)
        q = request.query
        sig, ts, nonce = q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
        if not sig or not self._fresh(ts):
            log.warning("callback refused from %s: missing signature or stale timestamp",
                        request.remote)
            return web.Response(status=403)
        encrypt = extract_encrypt(body)
        if encrypt is None:
            return web.Response(status=400)
        if not self.crypto.check_signature(sig, ts, nonce, encrypt):
            log.warning("callback refused from %s: bad signature", request.remote)
            return web.Response(status=403)
        try:
            msg = parse_callback(self.crypto.decrypt(encrypt))
        except (CryptoError, BadXml) as exc:
            log.error("authenticated callback could not be read: %s", exc)
            return web.Response()
        if not await self.db.run(dedupe.first_time, key="app:" + msg.dedupe_key,
                                 now=self.clock.now()):
            note_outcome(request, "duplicate")
            return web.Response()  # WeCom's retry of something already handled
        turn = await self._answer(msg)
        if turn.button:
            plain = update_button_reply(to_user=msg.user_id, from_user=self.crypto.receive_id,
                                        replace_name=turn.button)
        elif turn.text:
            plain = text_reply(to_user=msg.user_id, from_user=self.crypto.receive_id,
                               content=turn.text)
        else:
            return web.Response()
        return web.Response(text=self.crypto.encrypted_reply(plain, nonce),
                            content_type="application/xml")

    async def _answer(self, msg: Incoming) -> Turn:
        """The reply, or a "working on it" note if the handler outlives the budget."""
        task = asyncio.create_task(self.dispatcher.handle(msg))
        try:
            turn = await asyncio.wait_for(asyncio.shield(task), REPLY_BUDGET_S)
        except asyncio.TimeoutError:
            self._background.add(task)
            task.add_done_callback(self._finish_late(msg))
            return Turn(self.renderer.render("common/working.txt.j2"))
        except Exception:
            log.exception("handler failed for a %s message", msg.kind)
            return Turn(self.renderer.render("common/error.txt.j2"))
        return turn

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


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(16384):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
