"""The sandbox's web side: the chat page, its JSON API and the local WeCom's API, added to the
real service's app.

Every message typed on the page goes through ``AppCallbackSender``: encrypted and signed like
WeCom, POSTed over HTTP to the service's own ``/wecom/app/callback`` on the same server, and the
passive reply decrypted. The service's pushes go the other way through ``FakeWeCom`` at
``/cgi-bin/...`` on the same server (``[wecom] api_base_url`` points there). The service cannot
tell the sandbox from the real WeCom.
"""
from __future__ import annotations

import functools
import logging
from importlib.resources import files
from typing import AsyncIterator

import aiohttp
import jinja2
from aiohttp import web

from bot.app import APP_CALLBACK_PATH
from bot.clock import Clock
from bot.config import Config
from bot.crypto import CallbackCrypto
from bot.keys import config_key, db_key
from bot.sandbox import pushes_api, settings
from bot.sandbox.demo import UNITS, seed_demo
from bot.sandbox.fake_api import FakeWeCom
from bot.sandbox.groups import add_group_chats, group_choices
from bot.sandbox.jsonapi import (BadRequest, error_for, json_response, read_object,
                                 replies, required_text)
from bot.sandbox.keys import callback_sender_key, http_key, pages_key, wecom_key
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
    app[wecom_key] = make_wecom(cfg)
    app.router.add_routes(app[wecom_key].routes())
    app.cleanup_ctx.append(functools.partial(_sandbox_ctx, cfg=cfg))
    app.router.add_get(PREFIX, _to_page)
    app.router.add_get(PREFIX + "/", page)
    app.router.add_get(PREFIX + "/api/people", api_people)
    app.router.add_post(PREFIX + "/api/messages", api_messages)
    pushes_api.add_routes(app, PREFIX)
    add_group_chats(app, cfg, PREFIX)  # the AI bot's group chats


def make_wecom(cfg: Config) -> FakeWeCom:
    """The local WeCom's API side. Every userid is a valid member (as anyone in a real tenant's
    visible range is), the demo group webhooks are its webhooks; nothing to close."""
    wecom = FakeWeCom(corp_id=settings.CORP_ID, secret=settings.SECRET, clock=Clock(),
                      webhook_keys=set(cfg.wecom.webhooks.values()))
    wecom.url = origin(cfg)
    return wecom


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
    app[callback_sender_key] = AppCallbackSender(
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
        people=[p.as_dict() for p in people], webhooks=webhook_choices(request.app[config_key]),
        chats=group_choices())
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


def webhook_choices(cfg: Config) -> list[tuple[str, str, str]]:
    """(name, key, demo unit's name or "") of each group webhook, for the page's feed list."""
    units = {code: name for code, name, _kind, _parent in UNITS}
    return [(name, key, units.get(name, "")) for name, key in sorted(cfg.wecom.webhooks.items())]


async def api_people(request: web.Request) -> web.Response:
    people = await request.app[db_key].run(list_people)
    return json_response([p.as_dict() for p in people])


async def api_messages(request: web.Request) -> web.Response:
    try:
        body = await read_object(request)
        sender = required_text(body, "from", "no_sender")
        text = body.get("text")
        if not isinstance(text, str):
            raise BadRequest("no_text")
        if len(text) > MAX_TEXT_CHARS:
            raise BadRequest("text_too_long", limit=MAX_TEXT_CHARS)
        answer = await replies(request.app[callback_sender_key].text(sender, text))
    except BadRequest as exc:
        return error_for(request, exc)
    return json_response({"replies": answer})
