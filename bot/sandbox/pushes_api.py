"""The sandbox's JSON API for what the service pushed through the local WeCom.

``GET api/pushes?to=USERID[&after=ID]``: that person's pushes (``to=webhook:KEY`` for a group
webhook), oldest first, dropped and duplicate ones included and flagged; with ``after`` only the
newer ones, plus ``updated``: that person's earlier cards that ``update_template_card`` changed.
``POST api/card_click``: a button click, sent to the service as WeCom's real
``template_card_event`` callback. ``GET/POST api/faults``: the local WeCom's fault switches.
"""
from __future__ import annotations

from aiohttp import web

from bot.sandbox import faults_api
from bot.sandbox.fake_api import Push
from bot.sandbox.jsonapi import (BadRequest, error_for, json_response, read_object,
                                 replies, required_text)
from bot.sandbox.keys import callback_sender_key, wecom_key
from bot.sandbox.push_view import clickable_keys, push_json

MAX_PUSHES = 500  # the newest ones, when a person has more


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(prefix + "/api/pushes", api_pushes)
    app.router.add_post(prefix + "/api/card_click", api_card_click)
    app.router.add_get(prefix + "/api/faults", faults_api.api_faults)
    app.router.add_post(prefix + "/api/faults", faults_api.api_set_faults)


async def api_pushes(request: web.Request) -> web.Response:
    to = request.query.get("to", "").strip()
    after_s = request.query.get("after", "").strip()
    if not to:
        return error_for(request, BadRequest("no_recipient"))
    if after_s and not (after_s.isascii() and after_s.isdigit() and len(after_s) < 16):
        return error_for(request, BadRequest("bad_after"))
    after = int(after_s or 0)
    mine = [p for p in request.app[wecom_key].pushes if p.to == to]
    newer = [p for p in mine if p.id > after][-MAX_PUSHES:]
    data: dict[str, object] = {"pushes": [push_json(p) for p in newer]}
    if after_s:
        data["updated"] = [push_json(p) for p in mine if p.id <= after and p.updated is not None]
    return json_response(data)


async def api_card_click(request: web.Request) -> web.Response:
    try:
        body = await read_object(request)
        user = required_text(body, "from", "no_sender")
        task_id = required_text(body, "task_id", "no_task_id")
        key = required_text(body, "key", "no_button_key")
        card = find_card(request.app[wecom_key].pushes, user, task_id)
        keys = clickable_keys(card)
        if not keys:
            raise BadRequest("card_done", status=409)
        if key not in keys:
            raise BadRequest("no_such_button", key=key)
        answer = await replies(request.app[callback_sender_key].card_click(
            user, key, task_id, card.response_code))
    except BadRequest as exc:
        return error_for(request, exc)
    return json_response({"replies": answer, "push": push_json(card)})


def find_card(pushes: list[Push], user: str, task_id: str) -> Push:
    """The card with ``task_id`` that WeCom delivered to ``user`` (the newest, if several)."""
    cards = [p for p in pushes if p.to == user and p.msgtype == "template_card"
             and p.task_id == task_id]
    if not cards:
        raise BadRequest("no_such_card", status=404, task_id=task_id)
    delivered = [p for p in cards if not (p.dropped or p.duplicate)]
    if not delivered:
        raise BadRequest("card_not_delivered", status=404, task_id=task_id)
    return delivered[-1]
