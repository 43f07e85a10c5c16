"""The ``safebot`` command line. Every command takes ``--config PATH`` (or ``$SAFEBOT_CONFIG``)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.config import Config, ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from bot.ops.logs import setup_for_cli

    setup_for_cli(getattr(args, "config", None))  # [logging]; secrets redacted
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"配置错误 / config error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="safebot", description="学校安全隐患排查治理 WeCom bot")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, run, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--config", metavar="PATH", help="TOML config file (or $SAFEBOT_CONFIG)")
        p.set_defaults(run=run)
        return p

    command("serve", _serve, "run the service for a real WeCom tenant")

    p = command("sandbox", _sandbox, "run the service with a local WeCom on 127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("--data", default="data/sandbox", help="directory for its files")

    p = command("db", _db, "database migrations")
    p.add_argument("action", choices=["upgrade"], help="upgrade: apply all migrations")

    p = command("import", _import, "import units and people from CSV or XLSX")
    p.add_argument("file", help="a .csv or .xlsx file (see README)")

    p = command("invite", _invite, "create one-time invite codes for 绑定")
    p.add_argument("--unit", required=True, help="unit code")
    p.add_argument("--role", required=True, help="role: 组长 副组长 成员 联络员 值班人员 安全专员 管理员")
    p.add_argument("--name", default="", help="the invitee's name (a new person)")
    p.add_argument("--person", default="", help="bind to an imported person: mobile number")
    p.add_argument("--count", type=int, default=1, help="how many codes (default 1)")
    p.add_argument("--days", type=int, default=7, help="days the codes stay valid (default 7)")
    p = command("outbox", _outbox, "list pending and failed pushes, or retry a failed one")
    p.add_argument("action", nargs="?", choices=["list", "retry"], default="list")
    p.add_argument("id", nargs="?", type=int, help="the push to retry")
    p.add_argument("--all", action="store_true", help="list sent pushes too")
    p = command("campaign", _campaign, "campaigns (专项行动): load a data file")
    p.add_argument("action", choices=["load"], help="load: check FILE and store the campaign")
    p.add_argument("file", help="a campaign TOML file (examples in models/campaigns/)")
    from bot import duty_cli
    p = command("roster", duty_cli.run_roster, "duty rosters (值班表): import slots from CSV/XLSX")
    p.add_argument("action", choices=["import"], help="import: check FILE, then store every slot")
    p.add_argument("file", help="a .csv or .xlsx file: 单位编码,日期,班次,开始,结束,值班人员,带班领导")
    command("check", duty_cli.run_check, "check rosters and escalation chains; print findings")
    from bot.ops import backup
    p = command("backup", backup.run, "a consistent copy of the SQLite database (PostgreSQL: "
                "prints the pg_dump command)")
    p.add_argument("--out", default="", metavar="PATH",
                   help="the copy (default: <data_dir>/backups/safebot-<UTC time>.db)")

    export = sub.add_parser("export", help="write data to files (XLSX)")
    targets = export.add_subparsers(dest="target", required=True)
    p = targets.add_parser("ledger", help="the hazard ledger of a unit and every unit below it")
    p.add_argument("--config", metavar="PATH", help="TOML config file (or $SAFEBOT_CONFIG)")
    p.add_argument("--unit", required=True, help="unit code")
    p.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD",
                   help="first day of the period (reported on or after)")
    p.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD",
                   help="last day of the period (included)")
    p.add_argument("--out", default="", metavar="PATH",
                   help="the XLSX file (default: <data_dir>/exports/ledger-CODE-FROM-TO.xlsx)")
    p.set_defaults(run=_export_ledger)
    p = targets.add_parser("monthly", help="the monthly progress table of a unit and the units "
                           "below it, with their work information and typical cases")
    p.add_argument("--config", metavar="PATH", help="TOML config file (or $SAFEBOT_CONFIG)")
    p.add_argument("--unit", required=True, help="unit code")
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="the month reported on")
    p.add_argument("--out", default="", metavar="PATH",
                   help="the XLSX file (default: <data_dir>/exports/monthly-CODE-YYYY-MM.xlsx)")
    p.set_defaults(run=_export_monthly)
    return parser


def _offline_config(args: argparse.Namespace) -> Config:
    return load_config(args.config, require_app=False)


def _serve(args: argparse.Namespace) -> int:
    from bot.app import create_app, run

    cfg = load_config(args.config)
    run(create_app(cfg), host=cfg.server.host, port=cfg.server.port, shutdown_timeout=10)
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from bot.sandbox.run import run_sandbox

    return run_sandbox(config_path=args.config, port=args.port, data_dir=Path(args.data))


def _db(args: argparse.Namespace) -> int:
    from bot.db import Database
    from models.migrate import upgrade

    db = Database(_offline_config(args).database.url)
    try:
        upgrade(db.engine)
    finally:
        db.close()
    print("database is up to date")
    return 0


def _import(args: argparse.Namespace) -> int:
    from bot.db import Database
    from bot.org_import import ImportError_, import_file
    from models.migrate import upgrade

    db = Database(_offline_config(args).database.url)
    try:
        upgrade(db.engine)
        report = import_file(db, Path(args.file))
    except ImportError_ as exc:
        print(exc.report(), file=sys.stderr)
        return 1
    finally:
        db.close()
    print(report)
    return 0


def _invite(args: argparse.Namespace) -> int:
    from bot.clock import Clock
    from bot.db import Database
    from bot.invites import InviteRequestError, make_invites
    from models.migrate import upgrade

    db = Database(_offline_config(args).database.url)
    try:
        upgrade(db.engine)
        codes = make_invites(db, unit_code=args.unit, role=args.role, name=args.name,
                             mobile=args.person, count=args.count, days=args.days,
                             now=Clock().now())
    except InviteRequestError as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    for code in codes:
        print(code)
    return 0


def _outbox(args: argparse.Namespace) -> int:
    from bot.clock import Clock
    from bot.db import Database
    from bot.render import Renderer
    from models import outbox
    from models.migrate import upgrade

    renderer = Renderer()
    db = Database(_offline_config(args).database.url)
    try:
        upgrade(db.engine)
        if args.action == "retry":
            if args.id is None:
                print(renderer.render("cli/outbox_retry.txt.j2", outcome="missing_id"),
                      file=sys.stderr)
                return 2
            ok = db.call(outbox.requeue, row_id=args.id, now=Clock().now())
            print(renderer.render("cli/outbox_retry.txt.j2", outcome="ok" if ok else "not_failed",
                                  id=args.id), file=sys.stdout if ok else sys.stderr)
            return 0 if ok else 1
        statuses = (outbox.PENDING, outbox.FAILED) + ((outbox.SENT,) if args.all else ())
        rows = db.call(outbox.listing, statuses=statuses)
    finally:
        db.close()
    print(renderer.render("cli/outbox_list.txt.j2", rows=rows))
    return 0


def _campaign(args: argparse.Namespace) -> int:
    from bot.campaign_cli import load_file

    return load_file(_offline_config(args), Path(args.file))


def _export_ledger(args: argparse.Namespace) -> int:
    from bot.clock import Clock
    from bot.dates import DateParseError, parse_any_date
    from bot.db import Database
    from bot.ledger_xlsx import export_path, write_ledger
    from bot.render import Renderer
    from models.checklist import load_checklists
    from models.ledger import ledger_counts, ledger_rows
    from models.migrate import upgrade
    from models.org import unit_by_code

    cfg = _offline_config(args)
    renderer = Renderer(cfg.tz)
    today = Clock().now().astimezone(cfg.tz).date()
    period = []
    for option, value in (("--from", args.start), ("--to", args.end)):
        try:
            period.append(parse_any_date(value, today=today))
        except DateParseError as exc:
            print(renderer.render("ledger/cli_error.txt.j2", kind="bad_date", option=option,
                                  value=value, reason=exc.reason), file=sys.stderr)
            return 2
    start, end = period
    if start > end:
        print(renderer.render("ledger/cli_error.txt.j2", kind="reversed", start=start, end=end),
              file=sys.stderr)
        return 2
    db = Database(cfg.database.url)
    try:
        upgrade(db.engine)
        unit = db.call(unit_by_code, code=args.unit)
        if unit is None:
            print(renderer.render("ledger/cli_error.txt.j2", kind="unknown_unit", code=args.unit),
                  file=sys.stderr)
            return 1
        areas = {c.key: c.name for c in load_checklists().all()}
        sheets = db.call(ledger_rows, unit_id=unit.id, start=start, end=end, tz=cfg.tz,
                         today=today, area_names=areas)
    finally:
        db.close()
    out = Path(args.out or Path(cfg.storage.data_dir) / export_path(unit.code, start, end))
    write_ledger(out, sheets, title=unit.name, period=(start, end))
    counts = ledger_counts(row for rows in sheets.values() for row in rows)
    print(renderer.render("ledger/cli_done.txt.j2", unit=unit.name, start=start, end=end,
                          units=len(sheets), path=out, **counts))
    return 0


def _export_monthly(args: argparse.Namespace) -> int:
    from bot.monthly_cli import export_monthly

    return export_monthly(_offline_config(args), unit_code=args.unit, month=args.month,
                          out=args.out)
