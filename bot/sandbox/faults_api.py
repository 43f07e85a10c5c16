"""``GET/POST api/faults``: make the local WeCom fail, slow down, go down or expire its tokens,
for scripts and manual trials, and see its counters.

POST takes any of ``{"reset": true, "fail": [45009, -1], "delay_s": 0.5, "down": false,
"expire_tokens": true, "rate_limits": true}``. Everything is checked before anything is applied;
``reset`` comes first (no pending errors, no delay, up, rate limits on), ``fail`` adds errcodes
for the next API calls, in order. Both answer the current state.
"""
from __future__ import annotations

from typing import Any, Callable

from aiohttp import web

from bot.sandbox.fake_api import FakeWeCom, Faults
from bot.sandbox.jsonapi import BadRequest, error_for, json_response, read_object
from bot.sandbox.keys import wecom_key

MAX_DELAY_S = 60
MAX_FAILS = 100
SWITCHES = ("reset", "down", "expire_tokens", "rate_limits")


async def api_faults(request: web.Request) -> web.Response:
    return json_response(state(request.app[wecom_key]))


async def api_set_faults(request: web.Request) -> web.Response:
    wecom = request.app[wecom_key]
    try:
        changes = parse(await read_object(request))
    except BadRequest as exc:
        return error_for(request, exc)
    for change in changes:
        change(wecom)
    return json_response(state(wecom))


def parse(body: dict[str, Any]) -> list[Callable[[FakeWeCom], None]]:
    """The changes ``body`` asks for, in the order they apply; ``BadRequest`` if any is wrong."""
    for name in body:
        if name not in (*SWITCHES, "fail", "delay_s"):
            raise BadRequest("unknown_fault", name=name)
    for name in SWITCHES:
        if name in body and not isinstance(body[name], bool):
            raise BadRequest("fault_not_bool", name=name)
    changes: list[Callable[[FakeWeCom], None]] = []
    if body.get("reset"):
        changes.append(_reset)
    if "fail" in body:
        codes = body["fail"]
        if not isinstance(codes, list) or len(codes) > MAX_FAILS or not all(
                isinstance(c, int) and not isinstance(c, bool) for c in codes):
            raise BadRequest("bad_fail", limit=MAX_FAILS)
        changes.append(lambda w: w.fail_next(*codes))
    if "delay_s" in body:
        delay = body["delay_s"]
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) \
                or not 0 <= delay <= MAX_DELAY_S:
            raise BadRequest("bad_delay", limit=MAX_DELAY_S)
        changes.append(lambda w: setattr(w.faults, "delay_s", float(delay)))
    if "down" in body:
        changes.append(lambda w: setattr(w.faults, "down", body["down"]))
    if "rate_limits" in body:
        changes.append(lambda w: setattr(w, "rate_limits", body["rate_limits"]))
    if body.get("expire_tokens"):
        changes.append(FakeWeCom.expire_tokens)
    return changes


def _reset(wecom: FakeWeCom) -> None:
    wecom.faults = Faults()
    wecom.rate_limits = True


def state(wecom: FakeWeCom) -> dict[str, Any]:
    return {"fail": list(wecom.faults.errors), "delay_s": wecom.faults.delay_s,
            "down": wecom.faults.down, "rate_limits": wecom.rate_limits,
            "token_ttl_s": wecom.token_ttl_s, "gettoken_calls": wecom.gettoken_calls,
            "api_calls": wecom.api_calls, "pushes": len(wecom.pushes),
            "delivered": sum(not (p.dropped or p.duplicate) for p in wecom.pushes),
            "dropped": sum(p.dropped for p in wecom.pushes),
            "duplicates": sum(p.duplicate for p in wecom.pushes),
            "webhooks": sorted(wecom.webhook_keys)}
