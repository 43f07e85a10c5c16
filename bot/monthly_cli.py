"""``safebot export monthly --month YYYY-MM --unit CODE``: the monthly progress table (seed 004
附件 进展情况) of a unit and the units below it, as XLSX."""
from __future__ import annotations

import sys
from pathlib import Path

from bot.clock import Clock
from bot.config import Config
from bot.db import Database
from bot.monthly_xlsx import export_path, write_monthly
from bot.render import Renderer
from models import monthly as mo
from models.migrate import upgrade
from models.monthly_report import progress_table
from models.org import unit_by_code


def export_monthly(cfg: Config, *, unit_code: str, month: str, out: str = "",
                   clock: Clock | None = None) -> int:
    renderer = Renderer(cfg.tz)
    today = (clock or Clock()).now().astimezone(cfg.tz).date()
    try:
        month = mo.parse_month(month, today=today) or ""
        win = mo.window(month, due_day=cfg.monthly.due_day, late_days=cfg.monthly.late_days)
    except ValueError:
        print(renderer.render("monthly/cli_error.txt.j2", kind="bad_month", value=month),
              file=sys.stderr)
        return 2
    db = Database(cfg.database.url)
    try:
        upgrade(db.engine)
        unit = db.call(unit_by_code, code=unit_code)
        if unit is None:
            print(renderer.render("monthly/cli_error.txt.j2", kind="unknown_unit",
                                  code=unit_code), file=sys.stderr)
            return 1
        table = db.call(progress_table, unit_id=unit.id, win=win, tz=cfg.tz, today=today)
    finally:
        db.close()
    path = Path(out or Path(cfg.storage.data_dir) / export_path(unit.code, win.month))
    write_monthly(path, table, title=unit.name, month=win.month)
    print(renderer.render("monthly/cli_done.txt.j2", unit=unit.name, month=win.month, path=path,
                          **table["total"]))
    return 0
