"""How long the hazard ledger export takes for a big district.

    python -m bench.ledger_export [--rows 100000] [--db URL]

Seeds the demo district into a fresh SQLite file (or the PostgreSQL database given, whose
hazard tables are emptied first), bulk-inserts ``--rows`` hazards spread over its seven units
and one month, a third of them closed, then times what `safebot export ledger --unit JYJ`
does: the query (models.ledger.ledger_rows) and the workbook (bot.ledger_xlsx.write_ledger).
The issue's goal: under 30 s for 100,000 rows.
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy import delete, insert
from sqlmodel import select

from bot.db import Database
from bot.ledger_xlsx import write_ledger
from bot.sandbox.demo import seed_demo
from models.hazard import Hazard, HazardCounter, HazardEvent, HazardPhoto
from models.ledger import ledger_rows
from models.migrate import upgrade
from models.org import Person, Unit, unit_by_code

TZ = ZoneInfo("Asia/Shanghai")
START, END = date(2026, 11, 1), date(2026, 11, 30)
BATCH = 5000


def fill(db: Database, rows: int) -> None:
    """``rows`` hazards in November 2026 (local), numbered YH2026-000001.., in batches."""
    with db.session() as session:
        for table in (HazardEvent, HazardPhoto, Hazard, HazardCounter):
            session.execute(delete(table))
        seed_demo(session=session)
    with db.session() as session:
        units = session.exec(select(Unit.id)).all()
        reporter = session.exec(select(Person.id)).first()
    rnd = random.Random(4)
    first = datetime(2026, 10, 31, 16, tzinfo=timezone.utc)  # 2026-11-01 00:00 local
    for offset in range(0, rows, BATCH):
        batch = []
        for i in range(offset + 1, min(offset + BATCH, rows) + 1):
            reported = first + timedelta(seconds=rnd.randrange(30 * 86400))
            closed = rnd.random() < 1 / 3
            batch.append({
                "number": f"YH2026-{i:06d}", "unit_id": rnd.choice(units), "area": "fire",
                "description": f"三楼东侧消防通道堵塞，杂物堆放 {i}", "location": "教学楼三楼",
                "level": "major" if i % 20 == 0 else "general",
                "status": "closed" if closed else "planned", "source": "self",
                "reporter_id": reporter, "reported_at": reported, "department": "总务处",
                "responsible": "王五", "measures": "清理杂物并张贴禁止堆放标识",
                "funds": "无需资金", "deadline": (reported + timedelta(days=7)).date(),
                "contingency": "设置警示标志，专人值守", "review_result": "通过" if closed else "",
                "closed_at": reported + timedelta(days=3) if closed else None})
        with db.session() as session:
            session.execute(insert(Hazard.__table__), batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", default="", help="database URL (default: a new SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.db or f"sqlite:///{tmp}/bench.db")
        try:
            upgrade(db.engine)
            began = time.perf_counter()
            fill(db, args.rows)
            print(f"inserted {args.rows} hazards in {time.perf_counter() - began:.1f} s "
                  f"({db.engine.dialect.name})")
            unit_id = db.call(lambda session: unit_by_code(session=session, code="JYJ").id)
            out = Path(tmp) / "ledger.xlsx"
            began = time.perf_counter()
            sheets = db.call(ledger_rows, unit_id=unit_id, start=START, end=END, tz=TZ,
                             today=date(2026, 12, 1), area_names={"fire": "消防安全"})
            queried = time.perf_counter()
            write_ledger(out, sheets, title="示范区教育局", period=(START, END))
            written = time.perf_counter()
            total = sum(len(r) for r in sheets.values())
            print(f"rows {total}: query {queried - began:.2f} s, xlsx {written - queried:.2f} s, "
                  f"total {written - began:.2f} s, file {out.stat().st_size / 1e6:.1f} MB")
            wb = load_workbook(out, read_only=True)
            assert sum(sum(1 for _ in wb[name].iter_rows(min_row=3)) for name in wb.sheetnames[1:]) == total
        finally:
            db.close()


if __name__ == "__main__":
    main()
