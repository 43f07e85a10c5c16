"""The unauthenticated front of every WeCom callback door (the app's XML, the AI bot's JSON).

Cheapest check first, so nothing unauthenticated costs much: body limit (64 KiB; WeCom's
envelopes are under 2 KiB) → timestamp inside the replay window → the encrypted field cut out
by the door's ``extract`` without parsing the envelope → constant-time signature → decrypt and
check the receive id. What gets through is authenticated plaintext; anything that fails after
the signature answers 200 (a non-200 makes WeCom deliver it three more times).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from aiohttp import web

from bot.clock import Clock
from bot.crypto import CallbackCrypto, CryptoError

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
Extract = Callable[[bytes], "str | None"]


@dataclass(frozen=True)
class Opened:
    plaintext: str
    nonce: str  # the passive reply is signed with the callback's nonce


class CallbackGate:
    def __init__(self, *, crypto: CallbackCrypto, replay_window_s: int, clock: Clock,
                 name: str) -> None:
        self.crypto, self.window, self.clock, self.name = crypto, replay_window_s, clock, name

    def fresh(self, timestamp: str) -> bool:
        # isascii: "²" and "፩" pass isdigit() but not int()
        if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
            return False
        return self.window == 0 or abs(self.clock.now().timestamp() - int(timestamp)) <= self.window

    async def verify_url(self, request: web.Request) -> web.Response:
        """GET URL verification: answer the decrypted echostr bare (no quotes, no newline)."""
        q = request.query
        sig, ts, nonce, echostr = (q.get("msg_signature", ""), q.get("timestamp", ""),
                                   q.get("nonce", ""), q.get("echostr", ""))
        if not (sig and echostr and self.fresh(ts)
                and self.crypto.check_signature(sig, ts, nonce, echostr)):
            log.warning("%s URL verification refused from %s", self.name, request.remote)
            return web.Response(status=403)
        try:
            plain = self.crypto.decrypt(echostr)
        except CryptoError as exc:
            log.warning("%s URL verification echostr undecryptable: %s", self.name, exc)
            return web.Response(status=403)
        return web.Response(body=plain.encode(), content_type="text/plain")

    async def open(self, request: web.Request, extract: Extract) -> Opened | web.Response:
        """The authenticated plaintext, or the response that refuses the request."""
        if request.content_length is not None and request.content_length > MAX_BODY:
            return web.Response(status=413)
        body = await read_limited(request, MAX_BODY)
        if body is None:
            return web.Response(status=413)
        q = request.query
        sig, ts, nonce = q.get("msg_signature", ""), q.get("timestamp", ""), q.get("nonce", "")
        if not sig or not self.fresh(ts):
            log.warning("%s callback refused from %s: missing signature or stale timestamp",
                        self.name, request.remote)
            return web.Response(status=403)
        encrypt = extract(body)
        if encrypt is None:
            return web.Response(status=400)
        if not self.crypto.check_signature(sig, ts, nonce, encrypt):
            log.warning("%s callback refused from %s: bad signature", self.name, request.remote)
            return web.Response(status=403)
        try:
            return Opened(self.crypto.decrypt(encrypt), nonce)
        except CryptoError as exc:
            log.error("authenticated %s callback could not be decrypted: %s", self.name, exc)
            return web.Response()


async def read_limited(request: web.Request, limit: int) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(16384):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
