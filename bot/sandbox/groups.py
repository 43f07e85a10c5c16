"""The sandbox's group chats: one demo group per school or kindergarten, where people
@-mention the AI bot, and the AI bot's side of the local WeCom (gateway, images, callbacks).

``POST api/group_messages`` ``{"from", "chat_id", "text", ["image": base64]}`` sends a group
message through the AI bot's real door (the long connection, or callbacks in callback mode)
and answers the bot's reply; an image is encrypted and served at a five-minute URL, and the
message goes as ``mixed``. ``POST api/group_card_click`` clicks a card pushed to a group.
``GET api/pushes?to=aibot:<chat_id>`` (pushes_api) shows what was pushed to a group.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import os
import re
from dataclasses import dataclass
from typing import AsyncIterator

import aiohttp
from aiohttp import web

from bot.aibot.media import decode_key, sniff
from bot.aibot.setup import AIBOT_CALLBACK_PATH
from bot.clock import Clock
from bot.config import Config
from bot.crypto import CallbackCrypto
from bot.keys import config_key
from bot.sandbox.aibot_callback import AibotCallbackSender, ResponseUrls
from bot.sandbox.aibot_gateway import AibotGateway
from bot.sandbox.aibot_media import MediaStore
from bot.sandbox.demo import UNITS
from bot.sandbox.jsonapi import BadRequest, error_for, json_response, read_object, required_text
from bot.sandbox.keys import wecom_key
from bot.sandbox.push_view import clickable_keys, push_json
from bot.sandbox.settings import AIBOT_WS_PATH, WEBHOOK_KINDS, origin

MAX_TEXT_CHARS = 4000
MAX_IMAGE_MB = 5
MAX_BODY = (MAX_IMAGE_MB * 4 // 3 + 1) * 1024 * 1024  # the image as base64, and the text
ANSWER_TIMEOUT_S = 30
_CHAT_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


@dataclass(frozen=True)
class DemoGroup:
    chat_id: str
    name: str
    unit: str


DEMO_GROUPS = [DemoGroup("wr" + code.replace("-", ""), f"{name}安全工作群", name)
               for code, name, kind, _parent in UNITS if kind in WEBHOOK_KINDS]
gateway_key = web.AppKey("sandbox_aibot_gateway", AibotGateway)
media_key = web.AppKey("sandbox_aibot_media", MediaStore)
responses_key = web.AppKey("sandbox_aibot_responses", ResponseUrls)
aibot_sender_key = web.AppKey("sandbox_aibot_sender", AibotCallbackSender)


def add_group_chats(app: web.Application, cfg: Config, prefix: str) -> None:
    """The AI bot's local WeCom and the group APIs; call from ``add_sandbox``."""
    wecom, bot = app[wecom_key], cfg.wecom.aibot
    app[media_key] = MediaStore(clock=Clock(), path=prefix + "/aibot/media")
    app[responses_key] = ResponseUrls(wecom=wecom, path=prefix + "/aibot/response")
    app[media_key].url = app[responses_key].url = origin(cfg)
    app[gateway_key] = AibotGateway(bot_id=bot.bot_id, secret=bot.secret, wecom=wecom,
                                    path=AIBOT_WS_PATH)
    for part in (app[gateway_key], app[media_key], app[responses_key]):
        app.router.add_routes(part.routes())
    app.router.add_post(prefix + "/api/group_messages", api_group_messages)
    app.router.add_post(prefix + "/api/group_card_click", api_group_card_click)
    app.on_shutdown.append(_close_connections)  # before the server waits for its handlers
    if bot.mode == "callback" and bot.enabled:
        app.cleanup_ctx.append(_callback_sender)


async def _close_connections(app: web.Application) -> None:
    await app[gateway_key].close_all()


async def _callback_sender(app: web.Application) -> AsyncIterator[None]:
    cfg = app[config_key]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        bot = cfg.wecom.aibot
        app[aibot_sender_key] = AibotCallbackSender(
            http=http, url=origin(cfg) + AIBOT_CALLBACK_PATH, responses=app[responses_key],
            crypto=CallbackCrypto(bot.token, bot.encoding_aes_key, ""))
        yield


def _callback_mode(app: web.Application) -> bool:
    return aibot_sender_key in app


def _image(app: web.Application, body: dict) -> list[dict[str, str]]:
    """The page's image (base64), encrypted the way the bot's mode expects, at a short URL."""
    data = body.get("image")
    if data in (None, ""):
        return []
    if not isinstance(data, str) or len(data) > MAX_IMAGE_MB * 1024 * 1024 * 4 // 3 + 100:
        raise BadRequest("image_too_large" if isinstance(data, str) else "bad_image",
                         limit=MAX_IMAGE_MB)
    try:
        content = base64.b64decode(data.split(",", 1)[-1], validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("bad_image") from None
    if not sniff(content).startswith("image/"):
        raise BadRequest("bad_image")
    if _callback_mode(app):
        key = decode_key(app[config_key].wecom.aibot.encoding_aes_key)  # the callback's key
        return [{"url": app[media_key].put(content, key)}]
    key = os.urandom(32)
    return [{"url": app[media_key].put(content, key), "aeskey": base64.b64encode(key).decode()}]


async def api_group_messages(request: web.Request) -> web.Response:
    app = request.app
    request = request.clone(client_max_size=MAX_BODY)  # a photo is bigger than the app's 1 MB
    try:
        body = await read_object(request)
        sender = required_text(body, "from", "no_sender")
        chat_id = required_text(body, "chat_id", "no_chat")
        text = body.get("text", "")
        if not _CHAT_ID.match(chat_id):
            raise BadRequest("no_chat")
        if not isinstance(text, str):
            raise BadRequest("no_text")
        if len(text) > MAX_TEXT_CHARS:
            raise BadRequest("text_too_long", limit=MAX_TEXT_CHARS)
        images = _image(app, body)
        replies = await _say(app, sender, text, chat_id, images)
    except BadRequest as exc:
        return error_for(request, exc)
    return json_response({"replies": replies})


async def _say(app: web.Application, sender: str, text: str, chat_id: str,
               images: list[dict[str, str]]) -> list[str]:
    try:
        if _callback_mode(app):
            return await app[aibot_sender_key].say(sender, text, chat_id=chat_id,
                                                   images=images, timeout=ANSWER_TIMEOUT_S)
        exchange = await app[gateway_key].say(sender, text, chat_id=chat_id, images=images,
                                              timeout=ANSWER_TIMEOUT_S)
    except ConnectionError:
        raise BadRequest("aibot_offline", status=503) from None
    except (asyncio.TimeoutError, aiohttp.ClientError):
        raise BadRequest("aibot_timeout", status=504, seconds=ANSWER_TIMEOUT_S) from None
    return [exchange.answer] if exchange.answer else []


async def api_group_card_click(request: web.Request) -> web.Response:
    app = request.app
    try:
        body = await read_object(request)
        user = required_text(body, "from", "no_sender")
        chat_id = required_text(body, "chat_id", "no_chat")
        task_id = required_text(body, "task_id", "no_task_id")
        key = required_text(body, "key", "no_button_key")
        cards = [p for p in app[wecom_key].pushes if p.to == f"aibot:{chat_id}"
                 and p.msgtype == "template_card" and p.task_id == task_id]
        if not cards:
            raise BadRequest("no_such_card", status=404, task_id=task_id)
        card = cards[-1]
        if not clickable_keys(card):
            raise BadRequest("card_done", status=409)
        if key not in clickable_keys(card):
            raise BadRequest("no_such_button", key=key)
        await _click(app, user, chat_id, task_id, key, card)
    except BadRequest as exc:
        return error_for(request, exc)
    return json_response({"replies": [], "push": push_json(card)})


async def _click(app: web.Application, user: str, chat_id: str, task_id: str, key: str,
                 card) -> None:
    try:
        if _callback_mode(app):
            reply = await app[aibot_sender_key].click(user, chat_id=chat_id, task_id=task_id,
                                                      key=key)
            if reply and reply.get("response_type") == "update_template_card":
                card.updated = reply.get("template_card") or {}
            return
        await app[gateway_key].click(user, chat_id=chat_id, task_id=task_id, key=key,
                                     timeout=ANSWER_TIMEOUT_S)
    except ConnectionError:
        raise BadRequest("aibot_offline", status=503) from None
    except (asyncio.TimeoutError, aiohttp.ClientError):
        raise BadRequest("aibot_timeout", status=504, seconds=ANSWER_TIMEOUT_S) from None


def group_choices() -> list[tuple[str, str, str]]:
    """(chat_id, group name, unit name) for the page."""
    return [(g.chat_id, g.name, g.unit) for g in DEMO_GROUPS]
