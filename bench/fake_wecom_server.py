"""WeCom's API (the sandbox's fake) alone in its own process, for benchmarks.

    python -m bench.fake_wecom_server --port 18900 [--no-limits]
"""
from __future__ import annotations

import argparse

from aiohttp import web

from bot.clock import Clock
from bot.sandbox.fake_api import FakeWeCom

CORP_ID, SECRET = "wwbench00000001", "bench-secret"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-limits", action="store_true")
    args = parser.parse_args()
    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET, clock=Clock(),
                     rate_limits=not args.no_limits)
    app = web.Application()
    app.router.add_routes(fake.routes())

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"pushes": len(fake.pushes),
                                  "dropped": sum(p.dropped for p in fake.pushes),
                                  "duplicate": sum(p.duplicate for p in fake.pushes),
                                  "gettoken": fake.gettoken_calls})
    app.router.add_get("/stats", stats)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
