"""WeCom's API (the sandbox's fake) alone in its own process, for benchmarks.

    python -m bench.fake_wecom_server --port 18900 [--also-port 18901 ...] [--no-limits]

Every port serves the same fake: give each service instance its own port (its
``api_base_url``) and every push says which instance sent it. ``GET /stats`` counts the
pushes; ``GET /stats?detail=1`` also lists each one (recipient, type, a hash of its content,
the port it came in on, the msgid WeCom answered, dropped/duplicate), so a checker can match
them one to one with the outbox rows that record that msgid.

``POST /control`` switches faults at run time (bench/faults_wecom.py): ``{"down": true}`` (HTTP
503 for every call, gettoken too), ``{"delay_s": 3}`` (every ``/cgi-bin/`` call waits that long
first), ``{"rate_limited": true}`` (every call but gettoken answers 45009), ``{"reset": true}``;
``GET /control`` answers the switches and the calls counted per path since the start.
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from collections import Counter
from contextvars import ContextVar
from typing import Any

from aiohttp import web

from bot.clock import Clock
from bot.sandbox.fake_api import FakeWeCom, Push

CORP_ID, SECRET = "wwbench00000001", "bench-secret"
# the pushes recorded while handling the current request (each request is its own task)
_REQUEST_PUSHES: ContextVar[list[Push] | None] = ContextVar("request_pushes", default=None)


def content_hash(body: Any) -> str:
    """The same hash for the same message body, wherever it was read from (JSON, a row)."""
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class TaggedFakeWeCom(FakeWeCom):
    """The fake, remembering for every push the port it came in on and WeCom's msgid."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tags: dict[int, tuple[int, str]] = {}  # push id -> (port, msgid)

    def _record(self, push: Push) -> Push:
        pushes = _REQUEST_PUSHES.get()
        if pushes is not None:
            pushes.append(push)
        return super()._record(push)

    @web.middleware
    async def tagging(self, request: web.Request, handler) -> web.StreamResponse:
        pushes: list[Push] = []
        token = _REQUEST_PUSHES.set(pushes)
        try:
            response = await handler(request)
        finally:
            _REQUEST_PUSHES.reset(token)
        if pushes:
            port = _local_port(request)
            msgid = _msgid(response)
            for push in pushes:
                self.tags[push.id] = (port, msgid)
        return response

    def detail(self) -> list[dict[str, Any]]:
        out = []
        for p in self.pushes:
            port, msgid = self.tags.get(p.id, (0, ""))
            out.append({"id": p.id, "to": p.to, "msgtype": p.msgtype, "hash": content_hash(p.body),
                        "port": port, "msgid": msgid, "dropped": p.dropped,
                        "duplicate": p.duplicate})
        return out


def _local_port(request: web.Request) -> int:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    return int(sockname[1]) if sockname else int(request.url.port or 0)


def _msgid(response: web.StreamResponse) -> str:
    body = getattr(response, "body", None)
    try:
        return str(json.loads(body).get("msgid", "")) if body else ""
    except (TypeError, ValueError, AttributeError):
        return ""


class FaultSwitches:
    """Faults a benchmark turns on and off while the service runs (``/control``): every
    ``/cgi-bin/`` call is counted per path, then delayed, then refused with 45009 if asked."""

    MAX_DELAY_S = 60.0

    def __init__(self, fake: FakeWeCom) -> None:
        self.fake = fake
        self.delay_s = 0.0
        self.rate_limited = False
        self.calls: Counter[str] = Counter()

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        if not request.path.startswith("/cgi-bin/"):
            return await handler(request)
        self.calls[request.path] += 1
        if self.delay_s:
            # WeCom has the whole request before it is slow to answer: a call the client
            # gives up on is still carried out (the runner does not cancel the handler).
            await request.read()
            await asyncio.sleep(self.delay_s)
        if self.rate_limited and request.path != "/cgi-bin/gettoken":
            return web.json_response({"errcode": 45009, "errmsg": "api freq out of limit"})
        return await handler(request)

    def state(self) -> dict[str, Any]:
        return {"down": self.fake.faults.down, "delay_s": self.delay_s,
                "rate_limited": self.rate_limited, "calls": dict(self.calls)}

    async def get(self, _: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def post(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or set(body) - {"reset", "down", "delay_s",
                                                      "rate_limited"}:
            raise web.HTTPBadRequest(text="expected {reset, down, delay_s, rate_limited}")
        if body.get("reset"):
            self.fake.faults.down, self.delay_s, self.rate_limited = False, 0.0, False
        if "down" in body:
            self.fake.faults.down = bool(body["down"])
        if "delay_s" in body:
            self.delay_s = min(max(float(body["delay_s"]), 0.0), self.MAX_DELAY_S)
        if "rate_limited" in body:
            self.rate_limited = bool(body["rate_limited"])
        return web.json_response(self.state())


def make_app(fake: TaggedFakeWeCom) -> web.Application:
    switches = FaultSwitches(fake)
    app = web.Application(middlewares=[switches.middleware, fake.tagging])
    app.router.add_routes(fake.routes())
    app.router.add_get("/control", switches.get)
    app.router.add_post("/control", switches.post)

    async def stats(request: web.Request) -> web.Response:
        by_port = Counter(str(port) for port, _ in fake.tags.values())
        answer: dict[str, Any] = {
            "pushes": len(fake.pushes), "dropped": sum(p.dropped for p in fake.pushes),
            "duplicate": sum(p.duplicate for p in fake.pushes),
            "gettoken": fake.gettoken_calls, "by_port": dict(by_port)}
        if request.query.get("detail"):
            answer["list"] = fake.detail()
        return web.json_response(answer)
    app.router.add_get("/stats", stats)
    return app


async def serve(fake: TaggedFakeWeCom, ports: list[int]) -> None:
    runner = web.AppRunner(make_app(fake), access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.Event().wait()  # until the process is stopped
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--also-port", type=int, action="append", default=[],
                        help="serve the same fake on this port too (one per instance)")
    parser.add_argument("--no-limits", action="store_true")
    args = parser.parse_args()
    fake = TaggedFakeWeCom(corp_id=CORP_ID, secret=SECRET, clock=Clock(),
                           rate_limits=not args.no_limits)
    try:
        asyncio.run(serve(fake, [args.port, *args.also_port]))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
