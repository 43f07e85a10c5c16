"""Typed keys for the sandbox's long-lived objects on the aiohttp application."""
import aiohttp
import jinja2
from aiohttp import web

from bot.sandbox.fake_api import FakeWeCom
from bot.sandbox.sender import AppCallbackSender

pages_key = web.AppKey("sandbox_pages", jinja2.Environment)  # HTML templates, autoescaped
http_key = web.AppKey("sandbox_http", aiohttp.ClientSession)
callback_sender_key = web.AppKey("sandbox_sender", AppCallbackSender)
wecom_key = web.AppKey("sandbox_wecom", FakeWeCom)  # the local WeCom's API side, same port
