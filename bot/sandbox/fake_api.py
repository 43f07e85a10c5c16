"""WeCom's API as the sandbox plays it: gettoken, message/send, update_template_card, media
upload/get and the group webhook, with WeCom's error codes, token expiry and per-member limits.

Like WeCom, it drops app messages over 30 a minute or 1000 an hour per member *silently* (the
push is recorded with ``dropped=True``), answers 45009 to a webhook over 20 a minute, and drops
a message identical to one sent to the same person within the duplicate-check interval. Tests
and the sandbox's control API can make it fail, slow down or expire tokens.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import secrets
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.clock import Clock

APP_LIMITS = ((60, 30), (3600, 1000))   # per member: (window seconds, messages)
WEBHOOK_LIMIT = (60, 20)


@dataclass
class Push:
    id: int
    to: str                     # userid, or "webhook:<key>"
    msgtype: str
    body: dict[str, Any]
    at: float
    dropped: bool = False       # over a rate limit: WeCom says ok and never delivers it
    duplicate: bool = False     # same content within the duplicate-check interval
    response_code: str = ""
    task_id: str = ""
    updated: dict[str, Any] | None = None  # what update_template_card did to this card

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "to": self.to, "msgtype": self.msgtype, "body": self.body,
                "at": self.at, "dropped": self.dropped, "duplicate": self.duplicate,
                "task_id": self.task_id, "updated": self.updated}


@dataclass
class Faults:
    errors: deque[int] = field(default_factory=deque)  # errcodes for the next calls, in order
    delay_s: float = 0.0                               # every API call waits this long
    down: bool = False                                 # HTTP 503 for every call


class FakeWeCom:
    def __init__(self, *, corp_id: str, secret: str, clock: Clock, token_ttl_s: int = 7200,
                 rate_limits: bool = True, webhook_keys: set[str] | None = None,
                 known_users: set[str] | None = None, unlicensed: set[str] | None = None) -> None:
        self.corp_id, self.secret, self.clock = corp_id, secret, clock
        self.url = ""  # base URL, set by whoever serves it
        self.token_ttl_s, self.rate_limits = token_ttl_s, rate_limits
        self.webhook_keys = webhook_keys or set()
        self.known_users, self.unlicensed = known_users, unlicensed or set()
        self.faults = Faults()
        self.tokens: dict[str, float] = {}
        self.pushes: list[Push] = []
        self.media: dict[str, tuple[bytes, str, str]] = {}
        self.gettoken_calls = 0
        self.api_calls = 0
        self._ids = itertools.count(1)
        self._sent_at: dict[str, deque[float]] = defaultdict(deque)
        self._last_content: dict[tuple[str, str], float] = {}
        self._waiters: list[asyncio.Event] = []

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/cgi-bin/gettoken", self.gettoken),
                web.post("/cgi-bin/message/send", self.message_send),
                web.post("/cgi-bin/message/update_template_card", self.update_card),
                web.post("/cgi-bin/media/upload", self.media_upload),
                web.get("/cgi-bin/media/get", self.media_get),
                web.post("/cgi-bin/webhook/send", self.webhook_send)]

    # -- test controls -------------------------------------------------------------------------
    def fail_next(self, *errcodes: int) -> None:
        self.faults.errors.extend(errcodes)

    def expire_tokens(self) -> None:
        self.tokens = {t: 0.0 for t in self.tokens}

    def pushes_to(self, userid: str, *, delivered_only: bool = True) -> list[Push]:
        return [p for p in self.pushes if p.to == userid
                and not (delivered_only and (p.dropped or p.duplicate))]

    def add_media(self, content: bytes, content_type: str = "image/jpeg",
                  filename: str = "photo.jpg") -> str:
        media_id = "MEDIA" + secrets.token_hex(12)
        self.media[media_id] = (content, content_type, filename)
        return media_id

    async def wait_for_pushes(self, count: int, timeout: float = 5.0) -> list[Push]:
        """Wait until at least ``count`` pushes were delivered (tests)."""
        async def reached() -> None:
            while sum(not (p.dropped or p.duplicate) for p in self.pushes) < count:
                event = asyncio.Event()
                self._waiters.append(event)
                await event.wait()
        await asyncio.wait_for(reached(), timeout)
        return self.pushes

    # -- helpers -------------------------------------------------------------------------------
    def _now(self) -> float:
        return self.clock.now().timestamp()

    async def _gate(self, request: web.Request) -> dict[str, Any] | None:
        """Faults, then the access token; an error dict if the call must fail."""
        self.api_calls += 1
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        if self.faults.down:
            raise web.HTTPServiceUnavailable()
        if self.faults.errors:
            code = self.faults.errors.popleft()
            return {"errcode": code, "errmsg": f"sandbox fault {code}"}
        token = request.query.get("access_token", "")
        if not token:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        if token not in self.tokens:
            return {"errcode": 40014, "errmsg": "invalid access_token"}
        if self.tokens[token] <= self._now():
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return None

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def record(self, to: str, msgtype: str, body: dict[str, Any], *, task_id: str = "") -> Push:
        """A push that reached WeCom some other way (the AI bot's gateway, a response_url)."""
        return self._record(Push(next(self._ids), to, msgtype, body, self._now(), task_id=task_id))

    def _record(self, push: Push) -> Push:
        self.pushes.append(push)
        for event in self._waiters:
            event.set()
        self._waiters.clear()
        return push

    def _over_limit(self, key: str, limits: tuple[tuple[int, int], ...]) -> bool:
        now, stamps = self._now(), self._sent_at[key]
        longest = max(window for window, _ in limits)
        while stamps and stamps[0] <= now - longest:
            stamps.popleft()
        over = self.rate_limits and any(
            sum(1 for t in stamps if t > now - window) >= cap for window, cap in limits)
        if not over:
            stamps.append(now)
        return over

    # -- endpoints -----------------------------------------------------------------------------
    async def gettoken(self, request: web.Request) -> web.Response:
        self.gettoken_calls += 1
        if self.faults.down:
            raise web.HTTPServiceUnavailable()
        q = request.query
        if q.get("corpid") != self.corp_id or q.get("corpsecret") != self.secret:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        token = secrets.token_urlsafe(32)
        self.tokens[token] = self._now() + self.token_ttl_s
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token,
                                  "expires_in": self.token_ttl_s})

    async def message_send(self, request: web.Request) -> web.Response:
        error = await self._gate(request)
        if error:
            return web.json_response(error)
        body = await self._json_body(request)
        if body is None:
            return web.json_response({"errcode": 47001, "errmsg": "data format error"})
        users = [u for u in str(body.get("touser", "")).split("|") if u]
        msgtype = body.get("msgtype", "")
        if not users or msgtype not in body:
            return web.json_response({"errcode": 40008 if users else 40003,
                                      "errmsg": "invalid message"})
        invalid = [u for u in users if self.known_users is not None and u not in self.known_users]
        unlicensed = [u for u in users if u in self.unlicensed]
        valid = [u for u in users if u not in invalid and u not in unlicensed]
        if not valid and not unlicensed:
            return web.json_response({"errcode": 81013, "errmsg": "user & party & tag all invalid",
                                      "invaliduser": "|".join(invalid)})
        content = json.dumps(body[msgtype], sort_keys=True, ensure_ascii=False)
        interactive = msgtype == "template_card" and "task_id" in body[msgtype]
        response_code = secrets.token_hex(16) if interactive else ""
        for user in valid:
            digest = hashlib.sha256(f"{msgtype}\x1f{content}".encode()).hexdigest()
            last = self._last_content.get((user, digest))
            window = int(body.get("duplicate_check_interval", 1800))
            duplicate = bool(body.get("enable_duplicate_check")) and last is not None \
                and self._now() - last < window
            dropped = not duplicate and self._over_limit(user, APP_LIMITS)
            if not duplicate and not dropped:
                self._last_content[(user, digest)] = self._now()
            self._record(Push(next(self._ids), user, msgtype, body[msgtype], self._now(),
                              dropped=dropped, duplicate=duplicate, response_code=response_code,
                              task_id=body[msgtype].get("task_id", "") if interactive else ""))
        answer = {"errcode": 0, "errmsg": "ok", "msgid": secrets.token_hex(8),
                  "invaliduser": "|".join(invalid), "unlicenseduser": "|".join(unlicensed)}
        if response_code:
            answer["response_code"] = response_code
        return web.json_response(answer)

    async def update_card(self, request: web.Request) -> web.Response:
        error = await self._gate(request)
        if error:
            return web.json_response(error)
        body = await self._json_body(request)
        if body is None:
            return web.json_response({"errcode": 47001, "errmsg": "data format error"})
        code = body.get("response_code", "")
        cards = [p for p in self.pushes if p.response_code and p.response_code == code]
        if not cards or any(p.updated is not None for p in cards):
            return web.json_response({"errcode": 40098, "errmsg": "invalid response_code"})
        for card in cards:
            card.updated = body.get("template_card") or {"button": body.get("button", {})}
        return web.json_response({"errcode": 0, "errmsg": "ok", "invaliduser": []})

    async def media_upload(self, request: web.Request) -> web.Response:
        error = await self._gate(request)
        if error:
            return web.json_response(error)
        form = await request.post()
        media = form.get("media")
        if media is None or not hasattr(media, "file"):
            return web.json_response({"errcode": 41007, "errmsg": "missing media"})
        media_id = self.add_media(media.file.read(), media.content_type, media.filename)
        return web.json_response({"errcode": 0, "errmsg": "ok", "type": request.query.get("type"),
                                  "media_id": media_id, "created_at": str(int(self._now()))})

    async def media_get(self, request: web.Request) -> web.Response:
        error = await self._gate(request)
        if error:
            return web.json_response(error)
        item = self.media.get(request.query.get("media_id", ""))
        if item is None:
            return web.json_response({"errcode": 40007, "errmsg": "invalid media_id"})
        content, content_type, filename = item
        headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
        rng = request.headers.get("Range", "")
        if rng.startswith("bytes="):
            start_s, _, end_s = rng[6:].partition("-")
            start = int(start_s or 0)
            end = min(int(end_s) if end_s else len(content) - 1, len(content) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            return web.Response(status=206, body=content[start:end + 1],
                                content_type=content_type, headers=headers)
        return web.Response(body=content, content_type=content_type, headers=headers)

    async def webhook_send(self, request: web.Request) -> web.Response:
        if self.faults.down:
            raise web.HTTPServiceUnavailable()
        key = request.query.get("key", "")
        if key not in self.webhook_keys:
            return web.json_response({"errcode": 93000, "errmsg": "invalid webhook url"})
        if self._over_limit("webhook:" + key, (WEBHOOK_LIMIT,)):
            return web.json_response({"errcode": 45009, "errmsg": "api freq out of limit"})
        body = await self._json_body(request)
        if body is None:
            return web.json_response({"errcode": 47001, "errmsg": "data format error"})
        msgtype = body.get("msgtype", "")
        self._record(Push(next(self._ids), "webhook:" + key, msgtype, body.get(msgtype, {}),
                          self._now()))
        return web.json_response({"errcode": 0, "errmsg": "ok"})
