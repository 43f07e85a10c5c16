"""The AI bot's JSON callback door at ``/wecom/aibot/callback`` (callback mode, doc 101033).

Same cheap-first order as the app door: body limit → timestamp window → the ``encrypt`` value
cut out without a JSON parse → constant-time signature → decrypt (receive id "") → parse →
dedupe → dispatch → an encrypted JSON passive reply. A message is answered with a stream: the
answer if it is ready within the budget, else "已收到"; WeCom then polls (``msgtype: stream``)
and gets the answer from the database (any instance, after a restart too). An answer later
than WeCom polls for goes once to ``response_url``. Past the signature everything answers 200.
"""
from __future__ import annotations

import json
import logging
import re

import aiohttp
from aiohttp import web

from bot.aibot import frames
from bot.aibot.core import AibotCore
from bot.aibot.inbound import Inbound
from bot.aibot.stream_state import StreamState
from bot.app_door import MAX_BODY, _read_limited
from bot.clock import Clock
from bot.crypto import CallbackCrypto, CryptoError, signature

log = logging.getLogger(__name__)
BUDGET_S = 3.0  # WeCom waits 5 s
_ENCRYPT_RE = re.compile(rb'"encrypt"\s*:\s*"([A-Za-z0-9+/=]{1,65536})"')


class CallbackDoor:
    def __init__(self, *, crypto: CallbackCrypto, replay_window_s: int, clock: Clock,
                 core: AibotCore, http: aiohttp.ClientSession, budget_s: float = BUDGET_S) -> None:
        self.crypto, self.window, self.clock, self.core = crypto, replay_window_s, clock, core
        self.budget_s = budget_s
        self.streams = StreamState(core=core, http=http)

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
            log.warning("AI bot URL verification refused from %s", request.remote)
            return web.Response(status=403)
        try:
            plain = self.crypto.decrypt(echostr)
        except CryptoError as exc:
            log.warning("AI bot URL verification echostr undecryptable: %s", exc)
            return web.Response(status=403)
        return web.Response(body=plain.encode(), content_type="text/plain")  # bare

    async def receive(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413)
        raw = await _read_limited(request, MAX_BODY)
        if raw is None:
            return web.Response(status=413)
        q = request.query
        sig, ts, nonce = q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
        if not sig or not self._fresh(ts):
            log.warning("AI bot callback refused from %s: no signature or stale timestamp",
                        request.remote)
            return web.Response(status=403)
        match = _ENCRYPT_RE.search(raw)
        if match is None:
            return web.Response(status=400)
        encrypt = match.group(1).decode("ascii")
        if not self.crypto.check_signature(sig, ts, nonce, encrypt):
            log.warning("AI bot callback refused from %s: bad signature", request.remote)
            return web.Response(status=403)
        try:
            body = json.loads(self.crypto.decrypt(encrypt))
        except (CryptoError, ValueError, RecursionError) as exc:  # RecursionError: [[[[…
            log.error("authenticated AI bot callback could not be read: %s", exc)
            return web.Response()
        inbound = self.core.parse(body) if isinstance(body, dict) else None
        if inbound is None:
            return web.Response()
        payload = await self._answer(inbound)
        return self._reply(payload, nonce) if payload else web.Response()

    async def _answer(self, inbound: Inbound) -> dict | None:
        msg = inbound.msg
        if msg.kind == "stream":
            return await self.streams.poll(inbound.stream_id)
        if not await self.core.first_time(inbound):
            return None if msg.kind in ("card", "event") else await self.streams.again(inbound)
        if msg.kind in ("card", "event"):
            return await self._event(inbound)
        msg, failed = await self.core.with_photos(inbound)
        task = self.core.start(msg, failed)
        turn = await self.core.within(task, self.budget_s)
        return await self.streams.start(inbound, task, turn)

    async def _event(self, inbound: Inbound) -> dict | None:
        msg = inbound.msg
        task = self.core.start(msg)
        turn = await self.core.within(task, self.budget_s)
        if turn is None:
            if msg.kind == "card":  # the click's 5 s are gone: its text through response_url
                self.core.spawn(self.streams.late_card(task, inbound.response_url))
            return None
        if msg.kind == "card":
            if turn.text:
                self.core.spawn(self.streams.post_once(inbound.response_url, turn.text))
            if turn.button:
                card = await self.core.card(msg, turn.button)
                return frames.update_card(card, [msg.user_id])
            return None
        return frames.text(turn.text) if turn.text and msg.event == "enter_agent" else None

    def _reply(self, payload: dict, nonce: str) -> web.Response:
        timestamp = str(int(self.clock.now().timestamp()))
        encrypt = self.crypto.encrypt(json.dumps(payload, ensure_ascii=False))
        return web.json_response({"encrypt": encrypt,
                                  "msgsignature": signature(self.crypto.token, timestamp, nonce,
                                                            encrypt),
                                  "timestamp": int(timestamp), "nonce": nonce})
