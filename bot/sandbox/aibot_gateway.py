"""WeCom's long-connection gateway for the AI bot, as the sandbox plays it (doc 101463).

A WebSocket endpoint on the sandbox's own port: ``aibot_subscribe`` with the bot's id and
secret (errcode 853000 otherwise), a newer subscription kicks the older connection off with a
``disconnected_event``, every request is acked on its req_id, replies must use a live
callback's req_id (846605 otherwise), ``aibot_send_msg`` is recorded as a push to the chat
(``aibot:<chatid>``) in the local WeCom. Tests and the page send messages and card clicks
through it and wait for the answers; they can drop the connection, mute the heartbeat or send
garbage.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.aibot import frames
from bot.sandbox import aibot_bodies as bodies
from bot.sandbox.fake_api import FakeWeCom

log = logging.getLogger(__name__)
BAD_CREDENTIALS, BAD_REQ_ID, STREAM_DONE, BAD_MSG = 853000, 846605, 846608, 40008


@dataclass
class Exchange:
    """One callback sent to the bot and what it answered on that req_id."""

    req_id: str
    body: dict[str, Any]
    replies: list[dict[str, Any]] = field(default_factory=list)  # (cmd, body) as dicts
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def streams(self) -> list[dict[str, Any]]:
        return [r["body"].get("stream", {}) for r in self.replies if r["cmd"] == frames.RESPOND_MSG]

    @property
    def answer(self) -> str | None:
        final = [s for s in self.streams() if s.get("finish")]
        return final[-1].get("content") if final else None


class AibotGateway:
    def __init__(self, *, bot_id: str, secret: str, wecom: FakeWeCom, path: str) -> None:
        self.bot_id, self.secret, self.wecom, self.path = bot_id, secret, wecom, path
        self.conn: web.WebSocketResponse | None = None   # the subscribed connection
        self.all: set[web.WebSocketResponse] = set()
        self.exchanges: dict[str, Exchange] = {}
        self.subscribes = 0
        self.pings = 0
        self.mute_pings = False
        self.withheld: set[str] = set()                    # commands whose acks never come
        self.received: list[dict[str, Any]] = []          # every frame a client sent
        self._up = asyncio.Event()

    def routes(self) -> list[web.RouteDef]:
        return [web.get(self.path, self.handle)]

    # -- the server side -----------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.all.add(ws)
        try:
            async for msg in ws:
                if msg.type == web.WSMsgType.TEXT:
                    await self._on_frame(ws, msg.data)
        finally:
            self.all.discard(ws)
            if self.conn is ws:
                self.conn = None
                self._up.clear()
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, data: str) -> None:
        try:
            frame = frames.parse(data)
        except frames.BadFrame as exc:
            log.info("sandbox gateway: unusable frame from the client: %s", exc)
            return
        self.received.append({"cmd": frame.cmd, "req_id": frame.req_id, "body": frame.body})
        if frame.cmd == frames.SUBSCRIBE:
            await self._subscribe(ws, frame)
        elif ws is not self.conn:
            await ws.send_str(frames.encode_ack(frame.req_id, BAD_CREDENTIALS, "not subscribed"))
        elif frame.cmd == frames.PING:
            self.pings += 1
            if not self.mute_pings:
                await ws.send_str(frames.encode_ack(frame.req_id))
        elif frame.cmd == frames.SEND_MSG:
            await ws.send_str(frames.encode_ack(frame.req_id, *self._send_msg(frame.body)))
        elif frame.cmd in (frames.RESPOND_MSG, frames.RESPOND_UPDATE, frames.RESPOND_WELCOME):
            answer = self._reply(frame)
            if frame.cmd not in self.withheld:
                await ws.send_str(frames.encode_ack(frame.req_id, *answer))
        else:
            await ws.send_str(frames.encode_ack(frame.req_id, BAD_MSG, "unknown cmd"))

    async def _subscribe(self, ws: web.WebSocketResponse, frame: frames.Frame) -> None:
        if (frame.body.get("bot_id"), frame.body.get("secret")) != (self.bot_id, self.secret):
            await ws.send_str(frames.encode_ack(frame.req_id, BAD_CREDENTIALS,
                                                "invalid bot_id or secret"))
            await ws.close()
            return
        old, self.conn = self.conn, ws
        self.subscribes += 1
        await ws.send_str(frames.encode_ack(frame.req_id))
        self._up.set()
        if old is not None and old is not ws and not old.closed:
            await self._kick(old)

    @staticmethod
    async def _kick(ws: web.WebSocketResponse) -> None:
        body = {"msgid": bodies.new_msgid(), "aibotid": bodies.AIBOT_ID, "msgtype": "event",
                "create_time": 0, "event": {"eventtype": frames.DISCONNECTED}}
        await ws.send_str(frames.encode(frames.EVENT_CALLBACK,
                                        frames.new_req_id(frames.EVENT_CALLBACK), body))
        await ws.close()

    def _send_msg(self, body: dict[str, Any]) -> tuple[int, str]:
        chatid, msgtype = body.get("chatid"), body.get("msgtype")
        payload = body.get(msgtype) if isinstance(msgtype, str) else None
        if not isinstance(chatid, str) or not chatid or msgtype not in ("markdown",
                                                                       "template_card") \
                or not isinstance(payload, dict):
            return BAD_MSG, "invalid message"
        task_id = str(payload.get("task_id", "")) if msgtype == "template_card" else ""
        self.wecom.record(f"aibot:{chatid}", msgtype, payload, task_id=task_id)
        return 0, "ok"

    def _reply(self, frame: frames.Frame) -> tuple[int, str]:
        exchange = self.exchanges.get(frame.req_id)
        if exchange is None:
            return BAD_REQ_ID, "invalid req_id"
        if exchange.done.is_set() and frame.cmd == frames.RESPOND_MSG:
            return STREAM_DONE, "stream already finished"
        exchange.replies.append({"cmd": frame.cmd, "body": frame.body})
        finished = frame.cmd != frames.RESPOND_MSG or bool(
            frame.body.get("stream", {}).get("finish"))
        if frame.cmd == frames.RESPOND_UPDATE:
            self._update_card(exchange, frame.body.get("template_card"))
        if finished:
            exchange.done.set()
        return 0, "ok"

    def _update_card(self, exchange: Exchange, card: Any) -> None:
        event = exchange.body.get("event", {}).get("template_card_event", {})
        to = "aibot:" + (exchange.body.get("chatid") or exchange.body["from"]["userid"])
        for push in self.wecom.pushes:
            if push.to == to and push.task_id and push.task_id == event.get("task_id"):
                push.updated = card if isinstance(card, dict) else {}

    # -- what tests and the page do ------------------------------------------------------------
    async def wait_connected(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._up.wait(), timeout)

    async def send(self, body: dict[str, Any], *, cmd: str = frames.MSG_CALLBACK) -> Exchange:
        """Deliver a callback to the subscribed client (raises if none is connected)."""
        if self.conn is None:
            raise ConnectionError("no AI bot connection")
        exchange = Exchange(frames.new_req_id(cmd), body)
        self.exchanges[exchange.req_id] = exchange
        await self.conn.send_str(frames.encode(cmd, exchange.req_id, body))
        return exchange

    async def say(self, user: str, text: str, *, chat_id: str = "",
                  images: list[dict[str, str]] = (), timeout: float = 10.0) -> Exchange:
        """A message (``mixed`` with images); returns once its stream is finished."""
        exchange = await self.send(bodies.message(user=user, text=text, chat_id=chat_id,
                                                  images=images))
        await asyncio.wait_for(exchange.done.wait(), timeout)
        return exchange

    async def click(self, user: str, *, chat_id: str, task_id: str, key: str,
                    timeout: float = 10.0) -> Exchange:
        exchange = await self.send(bodies.card_event(user=user, chat_id=chat_id,
                                                     task_id=task_id, key=key),
                                   cmd=frames.EVENT_CALLBACK)
        await asyncio.wait_for(exchange.done.wait(), timeout)
        return exchange

    async def send_raw(self, text: str) -> None:
        if self.conn is not None:
            await self.conn.send_str(text)

    async def drop(self) -> None:
        """The gateway closes the connection (a network blip, a WeCom restart)."""
        if self.conn is not None:
            await self.conn.close(code=1001, message=b"going away")

    async def kick(self) -> None:
        """As if a newer connection for this bot had subscribed elsewhere."""
        if self.conn is not None:
            old, self.conn = self.conn, None
            self._up.clear()
            await self._kick(old)

    async def close_all(self) -> None:
        for ws in list(self.all):
            await ws.close(code=1001, message=b"server shutdown")

    def dump(self) -> str:
        return json.dumps(self.received, ensure_ascii=False)
