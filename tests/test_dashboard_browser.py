"""The dashboard in a real headless Chromium (Playwright driving the system's browser): a fresh
link loads on a phone-sized screen, filters work, an altered or expired link is refused, a
leader sees only their units, and the SVG charts draw bars.

Needs the ``browser`` extra (``pip install -e '.[browser]'``) and Chromium at /usr/bin/chromium
(Debian/Ubuntu: ``apt-get install chromium``); without either the tests are skipped. Nothing is
downloaded (no ``playwright install``). Screenshots go to $SAFEBOT_TEST_ARTIFACTS if set, else
to the test's tmp dir.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from bot.clock import FakeClock
from tests.conftest import make_config
from tests.stats_fixtures import TZ, seed_district, unit_id
from tests.test_dashboard import link_for

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

try:
    from playwright import async_api
except ImportError:  # not installed (or broken): skip, as without Chromium
    async_api = None

pytestmark = [
    pytest.mark.skipif(async_api is None, reason="playwright is not installed "
                       "(pip install -e '.[browser]'; no 'playwright install' needed)"),
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 11, 20, 10, 0, tzinfo=TZ))


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SAFEBOT_TEST_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def service(start_service, demo, database_url, fake_wecom):
    demo.call(seed_district)
    return await start_service(config=make_config(database_url, replay_window_s=0,
                                                  api_base_url=fake_wecom.url))


@pytest.fixture
async def browser():
    async with async_api.async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS,
                                            headless=True)
        yield chromium
        await chromium.close()


async def open_page(browser, viewport):
    context = await browser.new_context(viewport=viewport, device_scale_factor=2,
                                        is_mobile=viewport is PHONE, has_touch=viewport is PHONE,
                                        locale="zh-CN")
    return await context.new_page()


def url(svc, path):
    return str(svc.server.make_url(path))


async def bar_heights(page, selector):
    return await page.eval_on_selector_all(
        selector, "bars => bars.map(b => b.getBoundingClientRect().height)")


async def test_a_fresh_link_loads_on_a_phone_and_its_filters_keep_the_scope(
        service, browser, artifacts, demo):
    path, token = await link_for(service, "demo-principal")
    page = await open_page(browser, PHONE)
    response = await page.goto(url(service, path))
    assert response.status == 200
    assert "城东实验小学 安全隐患看板" in await page.inner_text("header")
    assert await page.inner_text(".card.bad .n") == "3"  # overdue today
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]  # nothing wider than the phone
    await page.screenshot(path=str(artifacts / "dashboard-phone.png"), full_page=True)

    await page.click("nav >> text=台账")
    assert "/dashboard/ledger?t=" in page.url
    assert await page.locator("#f-unit").count() == 0  # one unit: no unit filter
    metas = await page.locator("li.hazard .meta").all_inner_texts()
    assert len(metas) == 5 and all(m.startswith("城东实验小学") for m in metas)
    await page.select_option("#f-status", "planned")
    await page.click("form.filters button")
    await page.wait_for_url("**/dashboard/ledger?**status=planned**")
    assert "共 3 条" in await page.inner_text("main")  # H2, H3, H5
    assert f"t={token}" in page.url.replace("%2E", ".")
    await page.screenshot(path=str(artifacts / "dashboard-phone-ledger.png"), full_page=True)


async def test_a_township_leader_sees_only_its_own_schools(service, browser, demo):
    path, _ = await link_for(service, "cd-leader")
    page = await open_page(browser, DESKTOP)
    await page.goto(url(service, path.replace("/dashboard/?", "/dashboard/ledger?")))
    options = await page.locator("#f-unit option").all_inner_texts()
    assert options == ["全部单位", "城东镇中心校", "城东实验小学", "城东中心幼儿园"]
    units = {m.split(" · ")[0] for m in await page.locator("li.hazard .meta").all_inner_texts()}
    assert units == {"城东实验小学", "城东中心幼儿园"}
    cx_zx = demo.call(lambda session: unit_id(session, "CX-ZX"))
    response = await page.goto(page.url + f"&unit={cx_zx}")  # edited by hand: refused
    assert response.status == 403 and "无权查看" in await page.inner_text("main")


async def test_an_altered_or_expired_link_is_refused(service, browser, clock, artifacts):
    path, token = await link_for(service, "demo-principal")
    page = await open_page(browser, PHONE)
    person, unit, stamp, sig = token.split(".")
    response = await page.goto(url(service, path.replace(token, f"{person}.1.{stamp}.{sig}")))
    assert response.status == 403 and "链接无效" in await page.inner_text("h1")
    clock.advance(hours=24, seconds=1)
    response = await page.goto(url(service, path))
    assert response.status == 403 and "链接已过期" in await page.inner_text("h1")
    await page.screenshot(path=str(artifacts / "dashboard-expired.png"))


async def test_the_charts_draw_bars(service, browser, artifacts):
    path, _ = await link_for(service, "demo-bureau")
    page = await open_page(browser, DESKTOP)
    await page.goto(url(service, path.replace("/dashboard/?", "/dashboard/charts?")))
    weekly = await bar_heights(page, "svg.chart-weekly rect.bar")
    assert len(weekly) == 24 and sum(h > 0 for h in weekly) >= 4  # 12 weeks, found + closed
    areas = await bar_heights(page, "svg.chart-areas rect.bar")
    assert len(areas) == 6 and all(h > 0 for h in areas)
    await page.screenshot(path=str(artifacts / "dashboard-desktop-charts.png"), full_page=True)
    await page.goto(url(service, path))
    await page.screenshot(path=str(artifacts / "dashboard-desktop.png"), full_page=True)


CAMPAIGN = """
key = "winter-2026"
name = "冬季安全隐患排查专项行动"
source = "测试"
units = ["school", "kindergarten"]

[[phases]]
name = "排查整治"
start = 2026-11-01
end = 2026-11-30
summary = "各校全面排查。"

  [[phases.deliverables]]
  key = "plan"
  name = "排查方案"
  due = 2026-11-15

[[phases]]
name = "总结"
start = 2026-12-01
end = 2026-12-31

  [[phases.deliverables]]
  key = "summary"
  name = "总结报告"
  due = 2026-12-25
"""


async def test_monthly_status_and_campaign_progress_pages(service, browser, demo, artifacts):
    from models import campaign as cp
    from models.campaign_file import load_campaign, parse_campaign
    from models.org import get_identity
    from tests.test_stats import seed_updates
    demo.call(seed_updates)
    demo.call(load_campaign, spec=parse_campaign("winter-2026.toml", CAMPAIGN),
              now=clock_now())
    who = demo.call(get_identity, userid="demo-liaison")
    plan = demo.call(lambda session: session.exec(
        cp.select(cp.Deliverable).where(cp.Deliverable.key == "plan")).one())
    demo.call(cp.record_submission, deliverable_id=plan.id, unit_id=who.unit_id,
              person_id=who.person_id, now=clock_now(), text="", photo_ids=[])
    path, _ = await link_for(service, "cd-leader")
    page = await open_page(browser, PHONE)
    await page.goto(url(service, path.replace("/dashboard/?", "/dashboard/monthly?")))
    states = await page.locator("ul.monthly li").all_inner_texts()
    assert states == ["迟交 城东中心幼儿园 2026-11-08 10:00", "按时提交 城东镇中心校 2026-11-04 10:00",
                      "按时提交 城东实验小学 2026-11-04 10:00"]
    await page.screenshot(path=str(artifacts / "dashboard-phone-monthly.png"), full_page=True)
    await page.goto(url(service, path.replace("/dashboard/?", "/dashboard/campaigns?")))
    text = await page.inner_text("main")
    assert "冬季安全隐患排查专项行动" in text and "当前阶段：排查整治" in text
    assert "下属单位已提交 1/2" in text and "下属单位已提交 0/2" in text
    await page.screenshot(path=str(artifacts / "dashboard-phone-campaigns.png"), full_page=True)


def clock_now():
    return datetime(2026, 11, 10, 9, 0, tzinfo=TZ)
