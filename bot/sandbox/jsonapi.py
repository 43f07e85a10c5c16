"""What the sandbox's JSON endpoints share: reading a JSON object, answering JSON, errors in
Chinese (from ``templates/sandbox/error.txt.j2``), and a callback's passive reply."""
from __future__ import annotations

import json
import logging
from typing import Any, Awaitable

import aiohttp
from aiohttp import web

from bot.keys import renderer_key
from bot.sandbox.sender import Delivery

log = logging.getLogger(__name__)


class BadRequest(Exception):
    """The request cannot be served; ``reason`` picks the message in error.txt.j2."""

    def __init__(self, reason: str, *, status: int = 400, **data: object) -> None:
        super().__init__(reason)
        self.reason, self.status, self.data = reason, status, data


def json_response(data: object, *, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda obj: json.dumps(obj, ensure_ascii=False),
                             headers={"Cache-Control": "no-store"})


def error(request: web.Request, reason: str, *, status: int = 400, **data: object) -> web.Response:
    message = request.app[renderer_key].render("sandbox/error.txt.j2", reason=reason, **data)
    return json_response({"error": message}, status=status)


def error_for(request: web.Request, exc: BadRequest) -> web.Response:
    return error(request, exc.reason, status=exc.status, **exc.data)


async def read_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or ``BadRequest``."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("not_json") from None
    if not isinstance(body, dict):
        raise BadRequest("not_object")
    return body


def required_text(body: dict[str, Any], field: str, reason: str) -> str:
    """A non-blank string field, stripped, or ``BadRequest(reason)``."""
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(reason)
    return value.strip()


async def replies(sending: Awaitable[Delivery]) -> list[str]:
    """Await a callback sent through ``AppCallbackSender``: the passive reply, if any, as a
    list; ``BadRequest`` (502) if the service could not be reached or did not answer 200."""
    try:
        delivery = await sending
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.error("sandbox: callback to the service failed: %r", exc)
        raise BadRequest("callback_failed", status=502, detail=type(exc).__name__) from None
    if delivery.status != 200:
        raise BadRequest("callback_failed", status=502, detail=f"HTTP {delivery.status}")
    reply = delivery.reply_text
    return [reply] if reply else []
