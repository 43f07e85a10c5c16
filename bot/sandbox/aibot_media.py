"""The AI bot's images as WeCom serves them: encrypted (AES-256-CBC, IV = key[:16], PKCS#7 to
32 bytes) at a URL that works for five minutes, then answers 404."""
from __future__ import annotations

import secrets
from aiohttp import web

from bot.aibot.media import encrypt
from bot.clock import Clock

TTL_S = 300


class MediaStore:
    def __init__(self, *, clock: Clock, path: str, ttl_s: float = TTL_S) -> None:
        self.clock, self.path, self.ttl_s = clock, path, ttl_s
        self.url = ""  # the server's origin, set by whoever serves it
        self.items: dict[str, tuple[bytes, float]] = {}
        self.fetches = 0

    def routes(self) -> list[web.RouteDef]:
        return [web.get(self.path + "/{token}", self.get)]

    def put(self, content: bytes, key: bytes) -> str:
        """Encrypt ``content`` with ``key``; the URL it can be fetched from for five minutes."""
        now = self.clock.now().timestamp()
        self.items = {t: v for t, v in self.items.items() if v[1] > now}  # forget old ones
        token = secrets.token_urlsafe(16)
        self.items[token] = (encrypt(content, key), now + self.ttl_s)
        return f"{self.url}{self.path}/{token}"

    def expire_all(self) -> None:
        self.items = {t: (data, 0.0) for t, (data, _) in self.items.items()}

    async def get(self, request: web.Request) -> web.Response:
        self.fetches += 1
        item = self.items.get(request.match_info["token"])
        if item is None or item[1] <= self.clock.now().timestamp():
            return web.Response(status=404, text="expired")
        return web.Response(body=item[0], content_type="application/octet-stream")
