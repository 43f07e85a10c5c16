"""One turn per conversation at a time, in one process and across instances: a double-tapped
确认 that reaches two instances at once files one hazard (bench/two_instances.py --double-tap
found it filed twice before turns took a PostgreSQL advisory lock)."""
from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.turn_locks import TurnLocks
from models.hazard import Hazard
from tests.test_hazard_loop import say

USER = "demo-liaison"


async def test_a_double_tapped_confirm_files_one_hazard(start_service, demo, database_url):
    first = await start_service()
    # two instances on PostgreSQL; SQLite is one process, so both copies go to one instance
    second = await start_service() if database_url.startswith("postgresql") else first
    for _ in range(3):
        assert "领域" in await say(first, USER, "上报 楼梯扶手松动 @教学楼二楼")
        assert "一般" in await say(first, USER, "是")
        assert "照片" in await say(first, USER, "一般")
        assert "请确认" in await say(first, USER, "跳过")
        replies = await asyncio.gather(say(first, USER, "确认"), say(second, USER, "确认"))
        assert sum("YH" in r for r in replies) == 1, replies
    count = demo.call(lambda session: session.execute(
        select(func.count()).select_from(Hazard)).scalar_one())
    assert count == 3


async def test_a_turn_waits_for_the_same_key_held_by_another_instance(database_url):
    a, b = (TurnLocks(database_url=database_url, wait_s=5) for _ in range(2))
    order: list[str] = []
    try:
        async with a.hold("u1"):
            waiting = asyncio.create_task(_take(b, "u1", order))
            async with b.hold("u2"):  # another key is free
                order.append("b:u2")
            await asyncio.sleep(0.2)
            order.append("a:u1 done")
        await asyncio.wait_for(waiting, 5)
    finally:
        await a.close()
        await b.close()
    if database_url.startswith("postgresql"):
        assert order == ["b:u2", "a:u1 done", "b:u1"]
    else:  # one process: no lock across instances (the dispatcher's KeyedLocks serialise)
        assert order == ["b:u2", "b:u1", "a:u1 done"]


async def _take(locks: TurnLocks, key: str, order: list[str]) -> None:
    async with locks.hold(key):
        order.append(f"b:{key}")
