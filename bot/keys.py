"""Typed keys for the long-lived objects kept on the aiohttp application."""
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app_door import AppDoor
from bot.clock import Clock
from bot.config import Config
from bot.db import Database
from bot.dispatcher import Dispatcher
from bot.render import Renderer
from bot.outbox_sender import OutboxSender
from bot.photos import PhotoFetcher
from bot.router import Routes
from bot.wecom_api import WeComAPI
from reminders.sweep import Sweeper

config_key = web.AppKey("config", Config)
clock_key = web.AppKey("clock", Clock)
db_key = web.AppKey("db", Database)
renderer_key = web.AppKey("renderer", Renderer)
dispatcher_key = web.AppKey("dispatcher", Dispatcher)
door_key = web.AppKey("app_door", AppDoor)
routes_key = web.AppKey("routes", Routes)
api_key = web.AppKey("wecom_api", WeComAPI)
sender_key = web.AppKey("outbox_sender", OutboxSender)
photos_key = web.AppKey("photo_fetcher", PhotoFetcher)
sweeper_key = web.AppKey("sweeper", Sweeper)
scheduler_key = web.AppKey("scheduler", AsyncIOScheduler)
sweeps_key = web.AppKey("sweeps", tuple)
