"""Typed keys for the sandbox's long-lived objects on the aiohttp application."""
import aiohttp
import jinja2
from aiohttp import web

from bot.sandbox.sender import AppCallbackSender

pages_key = web.AppKey("sandbox_pages", jinja2.Environment)  # HTML templates, autoescaped
http_key = web.AppKey("sandbox_http", aiohttp.ClientSession)
sender_key = web.AppKey("sandbox_sender", AppCallbackSender)
