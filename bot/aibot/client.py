"""The long connection (doc 101463): one WebSocket to WeCom, kept up forever.

Subscribe with bot_id + secret, ``ping`` every 30 s (two unanswered: the connection is dead),
reconnect with exponential backoff capped at a minute. A ``disconnected_event`` means a newer
connection for this bot took over: do not fight it, pause for five minutes. Requests are
matched to their acks by ``req_id`` (futures with timeouts; replies to a callback reuse its
req_id, so acks of one req_id are matched in order). Frames that cannot be used are logged and
skipped; the connection stays up.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from typing import Any, Awaitable, Callable

import aiohttp

from bot.aibot import frames
from bot.aibot.frames import BadFrame, Frame

log = logging.getLogger(__name__)
FrameHandler = Callable[[Frame], Awaitable[None]]


class AibotError(Exception):
    """WeCom answered a request with an error code."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"{errcode} {errmsg}")
        self.errcode, self.errmsg = errcode, errmsg


class AibotUnavailable(Exception):
    """No connection, or no ack in time: worth trying again later."""


class AibotClient:
    def __init__(self, *, http: aiohttp.ClientSession, url: str, bot_id: str, secret: str,
                 on_frame: FrameHandler, heartbeat_s: float = 30.0, ack_timeout_s: float = 10.0,
                 max_missed: int = 2, backoff_s: float = 1.0, backoff_max_s: float = 60.0,
                 kicked_pause_s: float = 300.0) -> None:
        self.http, self.url, self.bot_id, self.secret = http, url, bot_id, secret
        self.on_frame, self.heartbeat_s, self.ack_timeout_s = on_frame, heartbeat_s, ack_timeout_s
        self.max_missed, self.backoff_s, self.backoff_max_s = max_missed, backoff_s, backoff_max_s
        self.kicked_pause_s = kicked_pause_s
        self.connected = asyncio.Event()
        self.sessions = 0          # subscribed connections so far
        self.kicked = 0            # times a newer connection took over
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[str, deque[asyncio.Future[Frame]]] = {}
        self._send_lock = asyncio.Lock()
        self._handlers: set[asyncio.Task] = set()  # frame handlers in flight
        self._pings: set[asyncio.Task] = set()
        self._pings_out = 0
        self._was_kicked = False
        self._failures = 0         # connection attempts failed in a row

    async def run(self) -> None:
        """Connect and stay connected until cancelled."""
        delay = self.backoff_s
        while True:
            outcome = await self._session()
            if outcome == "kicked":
                self.kicked += 1
                log.warning("AI bot: a newer connection for this bot took over; "
                            "not reconnecting for %.0f s", self.kicked_pause_s)
                await asyncio.sleep(self.kicked_pause_s)
                delay = self.backoff_s
                continue
            if outcome == "lost":  # it was up: try again soon
                delay = self.backoff_s
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff_max_s)

    async def _session(self) -> str:
        """One connection from connect to close: "kicked", "lost" (it was up) or "failed"."""
        try:
            ws = await self.http.ws_connect(self.url, autoping=True, heartbeat=None,
                                            timeout=aiohttp.ClientWSTimeout(ws_close=5.0))
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            self._failures += 1  # the first miss is routine (a server still starting up)
            log.log(logging.WARNING if self._failures > 1 else logging.INFO,
                    "AI bot: cannot connect to %s: %s", self.url, exc or type(exc).__name__)
            return "failed"
        self._failures = 0
        self._ws, self._was_kicked, self._pings_out = ws, False, 0
        reader = asyncio.create_task(self._read(ws), name="aibot-reader")
        heartbeat: asyncio.Task | None = None
        subscribe = asyncio.create_task(self._request_on(
            ws, frames.SUBSCRIBE, {"bot_id": self.bot_id, "secret": self.secret}))
        try:
            await asyncio.wait({subscribe, reader}, return_when=asyncio.FIRST_COMPLETED)
            if not subscribe.done():  # closed before it answered
                log.warning("AI bot: the gateway closed the connection before subscribing")
                return "failed"
            subscribe.result()
            self.sessions += 1
            self.connected.set()
            log.info("AI bot: connected and subscribed (%s)", self.url)
            heartbeat = asyncio.create_task(self._heartbeat(ws), name="aibot-heartbeat")
            await asyncio.wait({reader, heartbeat}, return_when=asyncio.FIRST_COMPLETED)
            return "kicked" if self._was_kicked else "lost"
        except AibotError as exc:
            log.error("AI bot: subscribe refused (%s); check bot_id and secret", exc)
            return "failed"
        except AibotUnavailable as exc:
            log.warning("AI bot: subscribe got no answer: %s", exc)
            return "failed"
        finally:
            self.connected.clear()
            self._ws = None
            tasks = [t for t in (subscribe, reader, heartbeat) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await ws.close()
            self._fail_pending()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                self._on_data(msg.data)
                if self._was_kicked:
                    return
            elif msg.type == aiohttp.WSMsgType.ERROR:
                log.warning("AI bot: connection error: %s", ws.exception())
                return
        log.warning("AI bot: the gateway closed the connection (code %s)", ws.close_code)

    def _on_data(self, data: str | bytes) -> None:
        try:
            frame = frames.parse(data)
        except BadFrame as exc:
            log.warning("AI bot: frame skipped: %s", exc)
            return
        if frame.is_ack:
            queue = self._pending.get(frame.req_id)
            if not queue:
                log.info("AI bot: ack for an unknown req_id skipped")
                return
            future = queue.popleft()
            if not queue:
                del self._pending[frame.req_id]
            if not future.done():
                future.set_result(frame)
        elif frame.cmd == frames.EVENT_CALLBACK and frame.event_type == frames.DISCONNECTED:
            self._was_kicked = True
        elif frame.cmd in (frames.MSG_CALLBACK, frames.EVENT_CALLBACK):
            task = asyncio.create_task(self._handle(frame))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        else:
            log.info("AI bot: unknown command %r skipped", frame.cmd[:64])

    async def _handle(self, frame: Frame) -> None:
        try:
            await self.on_frame(frame)
        except Exception:
            log.exception("AI bot: handling a %s frame failed", frame.cmd)

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Returns when the connection is presumed dead (pings unanswered)."""
        while True:
            await asyncio.sleep(self.heartbeat_s)
            if self._pings_out >= self.max_missed:
                log.warning("AI bot: %d heartbeats unanswered; reconnecting", self._pings_out)
                return
            self._pings_out += 1
            ping = asyncio.create_task(self._request_on(ws, frames.PING, {},
                                                        timeout=self.heartbeat_s * 3))
            ping.add_done_callback(self._pong)
            self._pings.add(ping)
            ping.add_done_callback(self._pings.discard)

    def _pong(self, ping: asyncio.Task) -> None:
        if not ping.cancelled() and ping.exception() is None:
            self._pings_out = 0

    async def request(self, cmd: str, body: dict[str, Any], *, req_id: str | None = None,
                      timeout: float | None = None) -> Frame:
        """Send a request and wait for its ack; ``AibotError`` if WeCom refused it."""
        ws = self._ws
        if ws is None or ws.closed or not self.connected.is_set():
            raise AibotUnavailable("not connected")
        return await self._request_on(ws, cmd, body, req_id=req_id, timeout=timeout)

    async def _request_on(self, ws: aiohttp.ClientWebSocketResponse, cmd: str,
                          body: dict[str, Any], *, req_id: str | None = None,
                          timeout: float | None = None) -> Frame:
        req_id = req_id or frames.new_req_id(cmd)
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(req_id, deque()).append(future)
        try:
            async with self._send_lock:
                await ws.send_str(frames.encode(cmd, req_id, body))
        except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
            future.cancel()  # stays queued so a late ack pairs with it, not the next one
            raise AibotUnavailable(f"send failed: {exc}") from None
        try:
            ack = await asyncio.wait_for(future, timeout or self.ack_timeout_s)
        except asyncio.TimeoutError:
            raise AibotUnavailable(f"no ack for {cmd} in time") from None
        except asyncio.CancelledError:
            if future.cancelled() and not asyncio.current_task().cancelling():
                raise AibotUnavailable("connection closed") from None
            raise
        if ack.errcode != 0:
            raise AibotError(ack.errcode, ack.errmsg)
        return ack

    def _fail_pending(self) -> None:
        for queue in self._pending.values():
            for future in queue:
                future.cancel()
        self._pending.clear()

    async def close(self, timeout: float = 10.0) -> None:
        """Let in-flight frame handlers finish (graceful shutdown), for ``timeout`` at most."""
        if self._handlers:
            _, late = await asyncio.wait(set(self._handlers), timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
