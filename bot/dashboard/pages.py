"""The dashboard's pages: read-only HTML for a signed link, nothing else.

Every request checks the link (signature, expiry), then that the person it was made for still
leads the unit it was made for; the scope is that unit's subtree. A ``unit`` filter outside
the scope is refused (403), the other filters take only known values. Pages allow no scripts
and load nothing from elsewhere (Content-Security-Policy), and tell the browser not to pass
the link on (Referrer-Policy) or keep the page (Cache-Control).
"""
from __future__ import annotations

import functools
from datetime import date
from typing import Any, Mapping
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlmodel import Session

from bot.dashboard import data, svg
from bot.dashboard.signing import Grant, LinkError
from bot.dashboard.state import dashboard_key
from bot.keys import clock_key, config_key, db_key, dispatcher_key
from models import leader_monthly

try:
    from models import campaign_view
except ImportError:  # pragma: no cover - campaigns are optional
    campaign_view = None  # type: ignore[assignment]

PAGES = ("overview", "ledger", "overdue", "monthly", "campaigns", "charts")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class OutOfScope(Exception):
    """A filter names a unit the link does not cover."""


async def serve(request: web.Request) -> web.StreamResponse:
    if request.path == "/dashboard":  # relative links need the trailing slash
        query = request.query_string
        raise web.HTTPFound("/dashboard/" + (f"?{query}" if query else ""))
    name = request.match_info.get("page", "") or "overview"
    if name not in PAGES:
        return _error(request, 404, "not_found")
    dash = request.app[dashboard_key]
    now = request.app[clock_key].now()
    try:
        grant = dash.signer.verify(request.query.get("t", ""), now=now)
    except LinkError as exc:
        return _error(request, 403, exc.reason)
    today = now.astimezone(dash.tz).date()
    areas = request.app[dispatcher_key].services["areas"]
    monthly = request.app[config_key].monthly
    try:
        found = await request.app[db_key].run(
            _load, grant=grant, page=name, filters=_filters(request.query, areas), today=today,
            tz=dash.tz, areas=areas, cal=leader_monthly.Calendar(monthly.due_day,
                                                                 monthly.late_days))
    except OutOfScope:
        return _error(request, 403, "scope")
    if found is None:
        return _error(request, 403, "revoked")
    viewer, page_data = found
    html = dash.env.get_template(f"dashboard/{name}.html.j2").render(
        current_page=name, viewer=viewer, token=grant.token, expires=grant.expires, today=today,
        link=functools.partial(link, grant.token), **page_data)
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=HEADERS)


def link(token: str, page: str, **query: object) -> str:
    """A page's address relative to ``/dashboard/``, keeping the token and the filters set."""
    kept = {key: value for key, value in query.items() if value not in ("", None)}
    return f"{'./' if page == 'overview' else page}?{urlencode({'t': token, **kept})}"


def _error(request: web.Request, status: int, reason: str) -> web.Response:
    dash = request.app[dashboard_key]
    html = dash.env.get_template("dashboard/error.html.j2").render(reason=reason)
    return web.Response(status=status, text=html, content_type="text/html", charset="utf-8",
                        headers=HEADERS)


def _int(text: str | None) -> int | None:
    # isascii: "²" passes isdigit() but not int() (a 500 for ?page=²)
    return int(text) if text and text.isascii() and text.isdigit() and len(text) < 12 else None


def _filters(query: Mapping[str, str], areas: dict[str, str]) -> data.Filters:
    """The ledger's filters; an unknown status, level or area is ignored."""
    known = data.choices(areas)
    pick = {key: query.get(key, "") for key in ("status", "level", "area")}
    return data.Filters(unit=_int(query.get("unit")), page=_int(query.get("page")) or 1,
                        **{key: value if value in {v for v, _ in known[key]} else ""
                           for key, value in pick.items()})


def _load(*, session: Session, grant: Grant, page: str, filters: data.Filters, today: date,
          tz: ZoneInfo, areas: dict[str, str],
          cal: leader_monthly.Calendar) -> tuple[data.Viewer, dict[str, Any]] | None:
    viewer = data.viewer(session=session, grant=grant)
    if viewer is None:
        return None
    ids = viewer.unit_ids
    if page in ("overview", "charts"):
        found = data.overview(session=session, viewer=viewer, today=today, tz=tz, areas=areas)
        found["weekly_svg"] = svg.weekly_bars(found["weeks"])
        found["areas_svg"] = svg.area_bars(found["areas"])
        return viewer, found
    if page == "ledger":
        if filters.unit is not None and filters.unit not in ids:
            raise OutOfScope(filters.unit)
        return viewer, {"filters": filters, "choices": data.choices(areas),
                        **data.ledger(session=session, unit_ids=ids, filters=filters,
                                      today=today, tz=tz, areas=areas)}
    if page == "overdue":
        return viewer, {"rows": data.overdue(session=session, unit_ids=ids, today=today, tz=tz,
                                             areas=areas)}
    if page == "monthly":
        return viewer, leader_monthly.month_status(session=session, unit_ids=ids, today=today,
                                                   cal=cal)
    campaigns = (campaign_view.overview(session=session, unit_id=grant.unit_id, today=today)
                 if campaign_view is not None else [])
    rows = [{**c, "rows": c.get("deliverables", [])} for c in campaigns]
    return viewer, {"campaigns": rows}
