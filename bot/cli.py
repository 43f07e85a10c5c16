"""The ``safebot`` command line. Every command takes ``--config PATH`` (or ``$SAFEBOT_CONFIG``)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bot.config import Config, ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
    return parser


def _offline_config(args: argparse.Namespace) -> Config:
    return load_config(args.config, require_app=False)


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import create_app

    cfg = load_config(args.config)
    web.run_app(create_app(cfg), host=cfg.server.host, port=cfg.server.port,
                access_log=None, shutdown_timeout=10)
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
