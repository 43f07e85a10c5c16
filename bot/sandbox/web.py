"""The sandbox's web side: the chat page and its JSON API, added to the real service's app.

Every message typed on the page goes through ``AppCallbackSender``: encrypted and signed like
WeCom, POSTed over HTTP to the service's own ``/wecom/app/callback`` on the same server, and the
passive reply decrypted. The service cannot tell the sandbox from the real WeCom.
"""
from __future__ import annotations

import functools
import json
import logging
from importlib.resources import files
from typing import AsyncIterator

import aiohttp
import jinja2
from aiohttp import web

from bot.app import APP_CALLBACK_PATH
from bot.config import Config
from bot.crypto import CallbackCrypto
from bot.keys import db_key, renderer_key
from bot.sandbox.demo import seed_demo
from bot.sandbox.keys import http_key, pages_key, sender_key
from bot.sandbox.people import group_by_unit, list_people
from bot.sandbox.sender import AppCallbackSender
from bot.sandbox.settings import origin

log = logging.getLogger(__name__)
PREFIX = "/sandbox"
LOOPBACK_TIMEOUT_S = 30  # the door answers within its 3 s budget; this is only a safety net
MAX_TEXT_CHARS = 4000


def add_sandbox(app: web.Application, cfg: Config) -> None:
    """Add the sandbox's routes and its start-up/clean-up to an app made by ``create_app``.

    Must run before the app starts (the router freezes); ``create_app``'s own cleanup_ctx
    entries come first, so the database exists when the demo district is seeded.
    """
    app[pages_key] = make_pages_env()
    app.cleanup_ctx.append(functools.partial(_sandbox_ctx, cfg=cfg))
    app.router.add_get(PREFIX, _to_page)
    app.router.add_get(PREFIX + "/", page)
    app.router.add_get(PREFIX + "/api/people", api_people)
    app.router.add_post(PREFIX + "/api/messages", api_messages)


def make_pages_env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(files("templates"))),
                              undefined=jinja2.StrictUndefined, autoescape=True,
                              trim_blocks=True, lstrip_blocks=True)


async def _sandbox_ctx(app: web.Application, *, cfg: Config) -> AsyncIterator[None]:
    if await app[db_key].run(seed_demo):
        log.info("sandbox: demo district created in %s", cfg.database.url)
    app_cfg = cfg.wecom.app
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=LOOPBACK_TIMEOUT_S))
    app[http_key] = http
    app[sender_key] = AppCallbackSender(
        http=http, url=origin(cfg) + APP_CALLBACK_PATH, agent_id=app_cfg.agent_id,
        crypto=CallbackCrypto(app_cfg.token, app_cfg.encoding_aes_key, app_cfg.corp_id))
    yield
    await http.close()


async def _to_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(PREFIX + "/")


async def page(request: web.Request) -> web.Response:
    people = await request.app[db_key].run(list_people)
    html = request.app[pages_key].get_template("sandbox/index.html.j2").render(
        featured=[p for p in people if p.featured], groups=group_by_unit(people),
        people=[p.as_dict() for p in people])
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


async def api_people(request: web.Request) -> web.Response:
    people = await request.app[db_key].run(list_people)
    return _json([p.as_dict() for p in people])


async def api_messages(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _error(request, "not_json")
    if not isinstance(body, dict):
        return _error(request, "not_object")
    sender, text = body.get("from"), body.get("text")
    if not isinstance(sender, str) or not sender.strip():
        return _error(request, "no_sender")
    if not isinstance(text, str):
        return _error(request, "no_text")
    if len(text) > MAX_TEXT_CHARS:
        return _error(request, "text_too_long", limit=MAX_TEXT_CHARS)
    try:
        delivery = await request.app[sender_key].text(sender.strip(), text)
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.error("sandbox: callback to the service failed: %r", exc)
        return _error(request, "callback_failed", status=502, detail=type(exc).__name__)
    if delivery.status != 200:
        return _error(request, "callback_failed", status=502, detail=f"HTTP {delivery.status}")
    reply = delivery.reply_text
    return _json({"replies": [reply] if reply else []})


def _error(request: web.Request, reason: str, *, status: int = 400, **data: object) -> web.Response:
    message = request.app[renderer_key].render("sandbox/error.txt.j2", reason=reason, **data)
    return _json({"error": message}, status=status)


def _json(data: object, *, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda obj: json.dumps(obj, ensure_ascii=False))
