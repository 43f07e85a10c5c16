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
from bot.callback_gate import CallbackGate
from bot.clock import Clock
from bot.crypto import CallbackCrypto, signature

log = logging.getLogger(__name__)
BUDGET_S = 3.0  # WeCom waits 5 s
_ENCRYPT_RE = re.compile(rb'"encrypt"\s*:\s*"([A-Za-z0-9+/=]{1,65536})"')


def _extract_encrypt(body: bytes) -> str | None:
    """The ``encrypt`` value of ``{"encrypt": "..."}`` without parsing the JSON."""
    match = _ENCRYPT_RE.search(body)
    return match.group(1).decode("ascii") if match else None


class CallbackDoor:
    def __init__(self, *, crypto: CallbackCrypto, replay_window_s: int, clock: Clock,
                 core: AibotCore, http: aiohttp.ClientSession, budget_s: float = BUDGET_S) -> None:
        self.crypto, self.clock, self.core = crypto, clock, core
        self.gate = CallbackGate(crypto=crypto, replay_window_s=replay_window_s, clock=clock,
                                 name="AI bot")
        self.budget_s = budget_s
        self.streams = StreamState(core=core, http=http)

    async def verify_url(self, request: web.Request) -> web.Response:
        return await self.gate.verify_url(request)

    async def receive(self, request: web.Request) -> web.Response:
        opened = await self.gate.open(request, _extract_encrypt)
        if isinstance(opened, web.Response):
            return opened
        nonce = opened.nonce
        try:
            body = json.loads(opened.plaintext)
        except (ValueError, RecursionError) as exc:  # RecursionError: [[[[…
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
