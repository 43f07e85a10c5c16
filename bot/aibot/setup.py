"""Wiring the AI bot into the service: its routes, and one cleanup context that makes and
closes everything it needs. Off (routes answer 404, group pushes fall back to webhooks) when
``[wecom.aibot]`` is not configured.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import aiohttp
from aiohttp import web

from bot.aibot.callback_door import CallbackDoor
from bot.aibot.channel import AibotChannel, GroupPushes
from bot.aibot.client import AibotClient
from bot.aibot.core import AibotCore
from bot.aibot.leader import Leadership
from bot.aibot.media import MediaFetcher, decode_key
from bot.aibot.ws_door import LongConnectionDoor
from bot.crypto import CallbackCrypto
from bot.keys import clock_key, config_key, db_key, dispatcher_key, renderer_key, sender_key

AIBOT_CALLBACK_PATH = "/wecom/aibot/callback"


@dataclass(frozen=True)
class AibotTiming:
    """The long connection's clocks (tests shorten them)."""

    heartbeat_s: float = 30.0
    ack_timeout_s: float = 10.0
    backoff_s: float = 1.0
    backoff_max_s: float = 60.0
    kicked_pause_s: float = 300.0
    leader_retry_s: float = 10.0
    leader_check_s: float = 10.0
    quick_s: float = 1.0            # long connection: answered within this, one stream chunk
    callback_budget_s: float = 3.0  # callback mode: the passive reply waits this long


aibot_timing_key = web.AppKey("aibot_timing", AibotTiming)
aibot_client_key = web.AppKey("aibot_client", AibotClient)
aibot_door_key = web.AppKey("aibot_door", CallbackDoor)
aibot_leader_key = web.AppKey("aibot_leader", Leadership)


def add_aibot(app: web.Application) -> None:
    """Call in ``create_app`` after the dispatcher's cleanup context (this one uses it)."""
    app.cleanup_ctx.append(_aibot)
    app.router.add_get(AIBOT_CALLBACK_PATH, _verify_url)
    app.router.add_post(AIBOT_CALLBACK_PATH, _receive)


async def _verify_url(request: web.Request) -> web.StreamResponse:
    door = request.app.get(aibot_door_key)
    return await door.verify_url(request) if door else web.Response(status=404)


async def _receive(request: web.Request) -> web.StreamResponse:
    door = request.app.get(aibot_door_key)
    return await door.receive(request) if door else web.Response(status=404)


async def _aibot(app: web.Application) -> AsyncIterator[None]:
    cfg = app[config_key]
    bot = cfg.wecom.aibot
    long_connection = bot.enabled and bot.mode == "long_connection"
    app[dispatcher_key].services["group_pushes"] = GroupPushes(aibot_push=long_connection,
                                                               webhooks=cfg.wecom.webhooks)
    if not bot.enabled:
        app[sender_key].channels["aibot"] = AibotChannel(None)
        yield
        return
    timing = app.get(aibot_timing_key, AibotTiming())
    # No total timeout on the session: it would cut the long connection. Downloads and POSTs
    # set their own.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=15)) as http:
        media_key = None if long_connection else decode_key(bot.encoding_aes_key)
        core = AibotCore(db=app[db_key], dispatcher=app[dispatcher_key],
                         renderer=app[renderer_key], clock=app[clock_key], media_key=media_key,
                         media=MediaFetcher(http=http, db=app[db_key], clock=app[clock_key],
                                            data_dir=Path(cfg.storage.data_dir)),
                         wake=app[sender_key].wake)
        if not long_connection:
            app[sender_key].channels["aibot"] = AibotChannel(None)
            app[aibot_door_key] = CallbackDoor(
                crypto=CallbackCrypto(bot.token, bot.encoding_aes_key, ""), core=core,
                replay_window_s=cfg.wecom.replay_window_s, clock=app[clock_key], http=http,
                budget_s=timing.callback_budget_s)
            yield
            await core.drain()
            return
        door = LongConnectionDoor(core=core, quick_s=timing.quick_s)
        client = AibotClient(http=http, url=bot.ws_url, bot_id=bot.bot_id, secret=bot.secret,
                             on_frame=door.on_frame, heartbeat_s=timing.heartbeat_s,
                             ack_timeout_s=timing.ack_timeout_s, backoff_s=timing.backoff_s,
                             backoff_max_s=timing.backoff_max_s,
                             kicked_pause_s=timing.kicked_pause_s)
        door.client = client
        leader = Leadership(database_url=app[db_key].url, bot_id=bot.bot_id,
                            retry_s=timing.leader_retry_s, check_s=timing.leader_check_s)
        app[aibot_client_key], app[aibot_leader_key] = client, leader
        app[sender_key].channels["aibot"] = AibotChannel(client, leader.leading)
        running = asyncio.create_task(leader.run(client.run), name="aibot-connection")
        yield
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await client.close()
        await core.drain()
