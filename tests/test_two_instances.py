"""Two ``safebot serve`` processes on one PostgreSQL behind a round-robin proxy (issue 8): a
small run of bench/two_instances.py, and its checks shown to catch what they look for."""
from __future__ import annotations

import os

import pytest

from bench.two_instances import Settings, check_deliveries, check_numbers, run

PG_ENV = "SAFEBOT_TEST_POSTGRES_URL"
A, B = 7001, 7002  # the fake's port per instance
INSTANCES = {A: "A", B: "B"}


def row(i: int, to: str, content: str = "c", msgid: str | None = None) -> dict:
    return {"id": i, "key": f"k{i}", "channel": "app", "recipient": to, "msgtype": "text",
            "hash": content, "status": "sent", "msgid": msgid or f"m{i}", "last_error": ""}


def push(i: int, to: str, content: str = "c", msgid: str | None = None, port: int = A) -> dict:
    return {"id": i, "to": to, "msgtype": "text", "hash": content, "port": port,
            "msgid": msgid or f"m{i}", "dropped": False, "duplicate": False}


def failed(checks) -> list[str]:
    return [c.name for c in checks if not c.ok]


def test_the_delivery_checks_pass_when_each_row_arrived_once_from_either_instance():
    rows = [row(1, "u1"), row(2, "u2", "d")]
    assert failed(check_deliveries(rows, [push(1, "u1"), push(2, "u2", "d", port=B)],
                                   INSTANCES)) == []


def test_a_push_sent_twice_by_two_instances_fails():
    rows = [row(1, "u1"), row(2, "u2")]
    # instance B sent row 1 again: WeCom answered another msgid, which no row recorded
    pushes = [push(1, "u1"), push(2, "u2", port=B), push(3, "u1", msgid="m-again", port=B)]
    names = failed(check_deliveries(rows, pushes, INSTANCES))
    assert "each sent row reached WeCom exactly once (by its msgid)" in names
    assert "pushes per recipient and content = outbox rows (no duplicate, none lost)" in names


def test_a_lost_push_a_pending_row_and_one_silent_instance_fail():
    rows = [row(1, "u1"), row(2, "u2"), {**row(3, "u3"), "status": "pending", "msgid": ""}]
    names = failed(check_deliveries(rows, [push(1, "u1")], INSTANCES))
    assert "every outbox row was sent" in names
    assert "each sent row reached WeCom exactly once (by its msgid)" in names
    assert "both instances sent pushes" in names


def test_a_push_dropped_by_wecom_fails():
    dropped = {**push(1, "u1"), "dropped": True}
    names = failed(check_deliveries([row(1, "u1")], [dropped, push(2, "u1", "d", port=B)],
                                    INSTANCES))
    assert "no push dropped by WeCom's limits or duplicate check" in names


def test_numbers_must_be_unique_and_gapless_and_told_once():
    good = ["YH2026-000001", "YH2026-000002", "YH2027-000001"]
    assert failed(check_numbers(good, {2026: 2, 2027: 1}, good[:2])) == []
    twice = ["YH2026-000001", "YH2026-000001"]
    assert failed(check_numbers(twice, {2026: 2}, twice)) == [
        "every hazard number unique and gapless per year",
        "every reporter told a different, real number"]
    gap = ["YH2026-000001", "YH2026-000003"]
    assert failed(check_numbers(gap, {2026: 3}, gap)) == [
        "every hazard number unique and gapless per year"]


@pytest.mark.skipif(not os.environ.get(PG_ENV),
                    reason=f"two instances need PostgreSQL: set {PG_ENV}")
async def test_two_instances_on_one_database_send_every_push_once():
    settings = Settings(pg_url=os.environ[PG_ENV], messages=63, users=4, duration=15.0,
                        periodic=False, sweep_every_min=60, drain_timeout=20.0)
    report = await run(settings, say=lambda line: None)
    assert report.ok, "\n".join(map(str, [*report.figures, *report.checks]))
    assert len(report.checks) >= 12
