"""``GET /healthz``: database, scheduler, WeCom token and outbox backlog; 503 only when the
database cannot be reached."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy import update

from bot.keys import api_key, db_key, scheduler_key, sender_key
from bot.ops import health
from bot.pushes import enqueue_text
from models.outbox import OutboxMessage


async def healthz(service) -> tuple[int, dict]:
    async with service.http.get(service.server.make_url("/healthz")) as resp:
        return resp.status, await resp.json()


async def test_a_fresh_service_is_ok_before_any_token_was_needed(service):
    status, body = await healthz(service)
    assert status == 200 and body["status"] == "ok"
    checks = body["checks"]
    assert checks["database"]["ok"] and checks["database"]["latency_ms"] >= 0
    assert checks["scheduler"]["ok"] and checks["scheduler"]["running"]
    assert checks["scheduler"]["next_run"]  # ISO time of the next sweep
    assert checks["wecom_token"] == {"ok": True, "fresh": False, "expires_in_s": None}
    assert checks["outbox"] == {"ok": True, "pending": 0, "failed": 0,
                                "oldest_pending_age_s": None}


async def test_after_a_push_the_token_is_fresh(service, demo, fake_wecom, clock):
    demo.call(enqueue_text, key="h1", to="demo-principal", text="提醒", now=clock.now())
    service.server.app[sender_key].wake()
    await fake_wecom.wait_for_pushes(1)
    _, body = await healthz(service)
    token = body["checks"]["wecom_token"]
    assert token["ok"] and token["fresh"] and 7000 < token["expires_in_s"] <= 7200


async def test_a_push_stuck_past_its_time_degrades_but_still_answers_200(service, demo, clock):
    """A row due ten minutes ago, leased by a dispatcher that never came back."""
    now = clock.now()
    demo.call(enqueue_text, key="stuck", to="demo-principal", text="提醒",
              now=now - timedelta(minutes=10))
    demo.call(lambda session: session.execute(update(OutboxMessage).values(
        lease_owner="gone", lease_until=now + timedelta(hours=1))))
    status, body = await healthz(service)
    assert status == 200 and body["status"] == "degraded"
    outbox = body["checks"]["outbox"]
    assert not outbox["ok"] and outbox["pending"] == 1 and outbox["oldest_pending_age_s"] >= 600
    assert body["checks"]["wecom_token"]["ok"]  # never fetched: not its fault


async def test_a_stopped_scheduler_degrades(service):
    service.server.app[scheduler_key].pause()
    status, body = await healthz(service)
    assert status == 200 and body["status"] == "degraded"
    assert body["checks"]["scheduler"] == {"ok": False, "running": False, "next_run": None}


async def test_an_unreachable_database_is_down_with_503(service, monkeypatch):
    db = service.server.app[db_key]

    async def broken(fn, /, **kwargs):
        raise OSError("connection refused")
    monkeypatch.setattr(db, "run", broken)
    status, body = await healthz(service)
    assert status == 503 and body["status"] == "down"
    assert body["checks"]["database"]["ok"] is False and body["checks"]["outbox"]["ok"] is False


async def test_a_hanging_database_times_out_quickly(service, monkeypatch):
    db = service.server.app[db_key]

    async def hanging(fn, /, **kwargs):
        await asyncio.sleep(30)
    monkeypatch.setattr(db, "run", hanging)
    monkeypatch.setattr(health, "DB_TIMEOUT_S", 0.2)
    status, body = await asyncio.wait_for(healthz(service), 5)
    assert status == 503 and 150 < body["checks"]["database"]["latency_ms"] < 2000


def test_a_stale_token_matters_only_while_pushes_wait(clock):
    now = clock.now()

    def check(expires_at, waiting):
        app = {api_key: SimpleNamespace(token_expires_at=expires_at)}
        return health.token_check(app, now, waiting)  # type: ignore[arg-type]
    assert check(None, True) == {"ok": True, "fresh": False, "expires_in_s": None}
    assert check(now.timestamp() + 3600, True)["fresh"]
    stale = now.timestamp() + 100  # inside the refresh margin: would be fetched again
    assert check(stale, False) == {"ok": True, "fresh": False, "expires_in_s": 100}
    assert check(stale, True)["ok"] is False
