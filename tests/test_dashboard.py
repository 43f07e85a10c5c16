"""The dashboard over HTTP: signed links, scope, filters, expiry, the secret kept in the
database, and the `看板` command. (The same pages in a real browser: test_dashboard_browser.)"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.config import DashboardConfig, load_config
from bot.dashboard.signing import LinkError, Links, Signer
from handlers.stats import dashboard as dashboard_command
from models.dashboard_secret import get_or_create
from models.org import PersonRole, Role
from tests.conftest import make_config
from tests.stats_fixtures import TZ, seed_district, unit_id

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=TZ)


def test_a_token_carries_person_unit_and_expiry_and_any_change_breaks_it():
    signer = Signer("s3cret")
    token = signer.token(person_id=7, unit_id=4, expires=NOW + timedelta(hours=24))
    grant = signer.verify(token, now=NOW)
    assert (grant.person_id, grant.unit_id) == (7, 4)
    person, unit, stamp, sig = token.split(".")
    for altered in (f"{person}.5.{stamp}.{sig}", f"8.{unit}.{stamp}.{sig}",
                    f"{person}.{unit}.{int(stamp) + 3600}.{sig}", token[:-1] + "A",
                    "", "1.2.3", token + "x"):
        with pytest.raises(LinkError) as err:
            signer.verify(altered, now=NOW)
        assert err.value.reason == "invalid", altered
    with pytest.raises(LinkError) as err:
        Signer("another").verify(token, now=NOW)
    assert err.value.reason == "invalid"
    with pytest.raises(LinkError) as err:
        signer.verify(token, now=NOW + timedelta(hours=24))
    assert err.value.reason == "expired"


def test_links_point_at_the_public_url_and_last_24_hours():
    links = Links(signer=Signer("k"), public_url="https://safebot.example.edu.cn/")
    url, expires = links.url(person_id=1, unit_id=2, now=NOW)
    assert url.startswith("https://safebot.example.edu.cn/dashboard/?t=1.2.")
    assert expires == NOW + timedelta(hours=24)


def test_the_secret_and_public_url_come_from_the_config_or_the_environment(tmp_path):
    cfg = load_config(env={"SAFEBOT_DASHBOARD_SECRET": "from-env",
                           "SAFEBOT_DASHBOARD_PUBLIC_URL": "https://x.example"},
                      require_app=False)
    assert cfg.dashboard == DashboardConfig(secret="from-env", public_url="https://x.example")


def test_without_a_configured_secret_one_is_made_once_and_kept(db):
    first = db.call(get_or_create, now=NOW)
    assert len(first) == 64 and db.call(get_or_create, now=NOW) == first


async def test_the_command_sends_links_only_in_one_to_one_chats():
    reply = await dashboard_command(SimpleNamespace(chat_type="group"), SimpleNamespace())
    assert reply.template == "stats/dashboard_private.txt.j2"


# -- the service ------------------------------------------------------------------------------

@pytest.fixture
def clock():
    return FakeClock(NOW)


@pytest.fixture
async def service(start_service, demo, database_url, fake_wecom):
    demo.call(seed_district)
    return await start_service(config=make_config(database_url, replay_window_s=0,
                                                  api_base_url=fake_wecom.url))


async def link_for(svc, user):
    from tests.test_hazard_loop import say
    reply = await say(svc, user, "看板")
    url = re.search(r"https?://\S+", reply).group(0)
    assert "请勿转发" in reply
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}", parse_qs(parts.query)["t"][0]


async def get(svc, path_and_query):
    response = await svc.http.get(svc.server.make_url(path_and_query), allow_redirects=False)
    return response.status, await response.text(), response


async def test_a_fresh_link_shows_the_leaders_units_only(service):
    path, _ = await link_for(service, "demo-principal")
    assert path.startswith("/dashboard/?t=")
    status, html, response = await get(service, path)
    assert status == 200 and "城东实验小学 安全隐患看板" in html
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<script" not in html and "src=\"http" not in html and "<svg" in html
    status, ledger, _ = await get(service, path.replace("/dashboard/?", "/dashboard/ledger?"))
    assert status == 200 and "共 5 条" in ledger  # H1-H5, all of 城东实验小学
    assert "城西中学" not in ledger and "城东中心幼儿园" not in ledger
    _, district, _ = await get(service, (await link_for(service, "demo-bureau"))[0]
                               .replace("/dashboard/?", "/dashboard/ledger?"))
    assert "共 11 条" in district and "城西中学" in district


async def test_filters_narrow_and_a_unit_outside_the_scope_is_refused(service, demo):
    path, _ = await link_for(service, "cd-leader")
    ledger = path.replace("/dashboard/?", "/dashboard/ledger?")
    cx_zx = demo.call(lambda session: unit_id(session, "CX-ZX"))
    cd_yey = demo.call(lambda session: unit_id(session, "CD-YEY"))
    status, html, _ = await get(service, f"{ledger}&unit={cx_zx}")
    assert status == 403 and "无权查看" in html and "城西中学" not in html
    _, html, _ = await get(service, f"{ledger}&unit={cd_yey}")
    assert "共 2 条" in html
    _, html, _ = await get(service, f"{ledger}&status=planned&level=major")
    assert "共 1 条" in html and "chemicals 隐患 11-5" in html  # H2
    _, html, _ = await get(service, f"{ledger}&status=nonsense&area=fire")
    assert "共 4 条" in html  # H1, H3, H5, H7: an unknown status is ignored
    _, html, _ = await get(service, path.replace("/dashboard/?", "/dashboard/overdue?"))
    assert "逾期隐患（3 条）" in html


async def test_an_altered_or_expired_link_is_refused(service, clock):
    path, token = await link_for(service, "demo-principal")
    person, unit, stamp, sig = token.split(".")
    status, html, _ = await get(service, path.replace(token, f"{person}.1.{stamp}.{sig}"))
    assert status == 403 and "链接无效" in html
    status, html, _ = await get(service, "/dashboard/charts")
    assert status == 403 and "链接无效" in html
    clock.advance(hours=23, minutes=59)
    assert (await get(service, path))[0] == 200
    clock.advance(minutes=2)
    status, html, _ = await get(service, path)
    assert status == 403 and "链接已过期" in html and "看板" in html


async def test_a_leader_who_loses_the_role_loses_the_link(service, demo):
    path, token = await link_for(service, "demo-principal")
    person_id = int(token.split(".")[0])
    demo.call(lambda session: [session.delete(r) for r in session.exec(
        select(PersonRole).where(PersonRole.person_id == person_id,
                                 PersonRole.role == Role.LEADER)).all()])
    status, html, _ = await get(service, path)
    assert status == 403 and "链接已失效" in html


async def test_links_survive_a_restart_and_work_on_another_instance(
        service, start_service, database_url, fake_wecom):
    path, _ = await link_for(service, "demo-principal")
    other = await start_service(config=make_config(database_url, replay_window_s=0,
                                                   api_base_url=fake_wecom.url))
    assert (await get(other, path))[0] == 200
    configured = await start_service(config=replace(
        make_config(database_url, replay_window_s=0, api_base_url=fake_wecom.url),
        dashboard=DashboardConfig(secret="configured", public_url="https://x.example")))
    assert (await get(configured, path))[0] == 403  # signed with another secret
    assert (await link_for(configured, "demo-principal"))[0].startswith("/dashboard/?t=")


async def test_every_page_renders_and_the_bare_path_redirects(service):
    path, _ = await link_for(service, "demo-bureau")
    for page in ("ledger", "overdue", "monthly", "campaigns", "charts"):
        status, html, _ = await get(service, path.replace("/dashboard/?", f"/dashboard/{page}?"))
        assert status == 200 and "示范区教育局 安全隐患看板" in html, page
    status, _, response = await get(service, path.replace("/dashboard/?", "/dashboard?"))
    assert status == 302 and response.headers["Location"].startswith("/dashboard/?t=")
    assert (await get(service, path.replace("/dashboard/?", "/dashboard/nope?")))[0] == 404
