"""The dashboard's long-lived objects, kept on the application under one key."""
from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from bot.dashboard.signing import Links, Signer


def make_html_env(tz: ZoneInfo) -> jinja2.Environment:
    """HTML templates (``templates/dashboard/``): autoescape on, every value escaped unless it
    is ``Markup`` made by ``bot.dashboard.svg``."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(files("templates"))),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda rate: "—" if rate is None else f"{rate * 100:.0f}%"
    env.filters["local"] = lambda dt: dt.astimezone(tz).strftime("%Y-%m-%d %H:%M") if dt else ""
    return env


@dataclass(frozen=True)
class Dashboard:
    signer: Signer
    links: Links
    env: jinja2.Environment
    tz: ZoneInfo


dashboard_key = web.AppKey("dashboard", Dashboard)
