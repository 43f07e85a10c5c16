"""Hazard numbers: YH<year>-<6 digits>, unique under concurrency, per-year sequences."""
from __future__ import annotations

import asyncio
import unicodedata
from concurrent.futures import ThreadPoolExecutor

from bot.clock import Clock
from bot.db import Database
from models import hazard_flow
from models.hazard import Level, normalise_number, split_number
from models.org import get_identity


def file_one(db_url: str, year: int) -> str:
    db = Database(db_url)
    try:
        who = db.call(get_identity, userid="demo-liaison")
        return db.call(lambda session: hazard_flow.create(
            session=session, unit_id=who.unit_id, reporter=who, description="消防通道堵塞",
            location="三楼", area="fire", level=Level.GENERAL, now=Clock().now(), year=year,
            photo_ids=[]).number)
    finally:
        db.close()


async def test_concurrent_reports_from_separate_connections_get_distinct_numbers(demo,
                                                                                database_url):
    with ThreadPoolExecutor(max_workers=8) as pool:
        loop = asyncio.get_running_loop()
        numbers = await asyncio.gather(*(loop.run_in_executor(pool, file_one, database_url, 2026)
                                         for _ in range(24)))
    assert sorted(numbers) == [f"YH2026-{i:06d}" for i in range(1, 25)]
    assert file_one(database_url, 2027) == "YH2027-000001"  # a new year starts again at 1


def test_numbers_are_found_however_they_are_typed():
    assert normalise_number("隐患 yh2026-123") == "YH2026-000123"
    full_width = unicodedata.normalize("NFKC", "ＹＨ２０２６－０００１２３")  # as the router hands it on
    assert normalise_number(full_width) == "YH2026-000123"
    assert split_number("复查 YH2026-000007 不通过 没整改") == ("YH2026-000007", "不通过 没整改")
    assert split_number("复查 没有编号") == (None, "复查 没有编号")
