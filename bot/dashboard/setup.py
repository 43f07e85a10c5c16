"""Wiring the dashboard into the service: its routes, and one cleanup context that finds the
signing secret and makes the link maker the ``看板`` command uses."""
from __future__ import annotations

import logging
from typing import AsyncIterator

from aiohttp import web

from bot.dashboard import pages
from bot.dashboard.signing import Links, Signer
from bot.dashboard.state import Dashboard, dashboard_key, make_html_env
from bot.keys import clock_key, config_key, db_key, dispatcher_key
from models.dashboard_secret import get_or_create

log = logging.getLogger(__name__)
PATHS = ("/dashboard", "/dashboard/", "/dashboard/{page}")


def add_dashboard(app: web.Application) -> None:
    """Call in ``create_app`` after the database's and the dispatcher's cleanup contexts."""
    app.cleanup_ctx.append(_dashboard)
    for path in PATHS:
        app.router.add_get(path, pages.serve)


def public_url(app: web.Application) -> str:
    """``[dashboard] public_url``, else this server's own address (right for the sandbox; a
    real install behind a proxy must set it, or phones get a link they cannot open)."""
    cfg = app[config_key]
    url = cfg.dashboard.public_url or f"http://{cfg.server.host}:{cfg.server.port}"
    if not cfg.dashboard.public_url and cfg.server.host in ("0.0.0.0", "::"):
        log.warning("dashboard.public_url is not set: links point at %s, which no phone can "
                    "open", url)
    log.info("dashboard links point at %s", url)
    return url


async def _dashboard(app: web.Application) -> AsyncIterator[None]:
    cfg = app[config_key]
    # No secret configured: one kept in the database, the same for every instance and restart.
    secret = cfg.dashboard.secret or await app[db_key].run(get_or_create,
                                                           now=app[clock_key].now())
    signer = Signer(secret)
    links = Links(signer=signer, public_url=public_url(app))
    app[dashboard_key] = Dashboard(signer=signer, links=links, env=make_html_env(cfg.tz),
                                   tz=cfg.tz)
    app[dispatcher_key].services["dashboard_links"] = links
    yield
