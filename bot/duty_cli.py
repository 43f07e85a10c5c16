"""``safebot roster import FILE`` and ``safebot check``: the duty commands of the CLI."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.config import load_config


def run_roster(args: argparse.Namespace) -> int:
    from bot.clock import Clock
    from bot.db import Database
    from bot.roster_import import RosterImportError, import_roster
    from bot.workcal import load_calendar
    from models.migrate import upgrade

    cfg = load_config(args.config, require_app=False)
    db = Database(cfg.database.url)
    try:
        upgrade(db.engine)
        report = import_roster(db, Path(args.file), tz=cfg.tz, now=Clock().now(),
                               calendar=load_calendar())
    except RosterImportError as exc:
        print(exc.report(), file=sys.stderr)
        return 1
    finally:
        db.close()
    print(report)
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Print the nightly check's findings for every unit; exit 0 (findings are not errors)."""
    from bot.clock import Clock
    from bot.db import Database
    from bot.duty_check import findings
    from bot.render import Renderer
    from bot.workcal import load_calendar
    from models.migrate import upgrade

    cfg = load_config(args.config, require_app=False)
    db = Database(cfg.database.url)
    today = Clock().now().astimezone(cfg.tz).date()
    try:
        upgrade(db.engine)
        units = db.call(findings, today=today, calendar=load_calendar())
    finally:
        db.close()
    print(Renderer(cfg.tz).render("duty/check_cli.txt.j2", today=today, units=units))
    return 0
