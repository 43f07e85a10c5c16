"""WeCom's side of the AI bot in callback mode (doc 101033/101031/101138): JSON callbacks
encrypted and signed like WeCom's (receive id ""), POSTed to the service's
``/wecom/aibot/callback``; the encrypted passive reply verified and opened; an unfinished
stream polled with ``msgtype: stream`` callbacks until it is finished, as WeCom does. Each
message carries a ``response_url`` served here: usable once, recorded as a push to the chat.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import aiohttp
from aiohttp import web

from bot.crypto import CallbackCrypto, CryptoError, signature
from bot.sandbox import aibot_bodies as bodies
from bot.sandbox.fake_api import FakeWeCom


class ResponseUrls:
    """``response_url``s: each accepts one markdown (or card) POST, recorded as a push."""

    def __init__(self, *, wecom: FakeWeCom, path: str) -> None:
        self.wecom, self.path = wecom, path
        self.url = ""
        self.open: dict[str, str] = {}  # code -> "aibot:<chat or user>"

    def routes(self) -> list[web.RouteDef]:
        return [web.post(self.path + "/{code}", self.post)]

    def new(self, to: str) -> str:
        code = secrets.token_urlsafe(12)
        self.open[code] = "aibot:" + to
        return f"{self.url}{self.path}/{code}"

    async def post(self, request: web.Request) -> web.Response:
        to = self.open.pop(request.match_info["code"], None)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if to is None:
            return web.json_response({"errcode": 40098, "errmsg": "invalid response_url"})
        msgtype = body.get("msgtype") if isinstance(body, dict) else None
        if msgtype not in ("markdown", "template_card") or not isinstance(body.get(msgtype), dict):
            return web.json_response({"errcode": 40008, "errmsg": "invalid message"})
        self.wecom.record(to, msgtype, body[msgtype])
        return web.json_response({"errcode": 0, "errmsg": "ok"})


class AibotCallbackSender:
    def __init__(self, *, http: aiohttp.ClientSession, url: str, crypto: CallbackCrypto,
                 responses: ResponseUrls, poll_s: float = 0.3) -> None:
        self.http, self.url, self.crypto = http, url, crypto
        self.responses, self.poll_s = responses, poll_s

    def signed(self, plaintext: str, *, timestamp: str | None = None) -> tuple[dict, dict]:
        timestamp = timestamp or str(int(time.time()))
        nonce = str(secrets.randbelow(10**10))
        encrypt = self.crypto.encrypt(plaintext)
        query = {"msg_signature": signature(self.crypto.token, timestamp, nonce, encrypt),
                 "timestamp": timestamp, "nonce": nonce}
        return query, {"encrypt": encrypt}

    async def post(self, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        """POST one callback; (status, the decrypted passive reply or None)."""
        query, envelope = self.signed(json.dumps(body, ensure_ascii=False))
        async with self.http.post(self.url, params=query, json=envelope) as resp:
            raw = await resp.read()
        if resp.status != 200 or not raw:
            return resp.status, None
        return resp.status, self.open_reply(json.loads(raw), query["nonce"])

    def open_reply(self, reply: dict[str, Any], nonce: str) -> dict[str, Any]:
        encrypt, ts = reply.get("encrypt", ""), str(reply.get("timestamp", ""))
        if reply.get("nonce") != nonce or not self.crypto.check_signature(
                str(reply.get("msgsignature", "")), ts, nonce, encrypt):
            raise CryptoError("bad reply signature")
        return json.loads(self.crypto.decrypt(encrypt))

    async def say(self, user: str, text: str, *, chat_id: str = "",
                  images: list[dict[str, str]] = (), timeout: float = 20.0) -> list[str]:
        """A message, its stream polled until finished; the answer (or nothing)."""
        body = bodies.message(user=user, text=text, chat_id=chat_id, images=images,
                              response_url=self.responses.new(chat_id or user))
        status, reply = await self.post(body)
        if status != 200 or reply is None:
            return []
        return [await asyncio.wait_for(self.follow(user, chat_id, reply), timeout)]

    async def follow(self, user: str, chat_id: str, reply: dict[str, Any]) -> str:
        stream = reply.get("stream", {})
        while not stream.get("finish"):
            await asyncio.sleep(self.poll_s)
            _, reply = await self.post(bodies.stream_poll(user=user, chat_id=chat_id,
                                                          stream_id=stream.get("id", "")))
            stream = (reply or {}).get("stream", {})
        return stream.get("content", "")

    async def click(self, user: str, *, chat_id: str, task_id: str,
                    key: str) -> dict[str, Any] | None:
        body = bodies.card_event(user=user, chat_id=chat_id, task_id=task_id, key=key,
                                 response_url=self.responses.new(chat_id or user))
        return (await self.post(body))[1]
