"""``safebot backup [--out PATH]``: a consistent copy of the SQLite database, safe while the
service runs. sqlite3's online backup API copies every page, the WAL's committed pages
included, in one step under one read lock, so the copy is one moment of the database. It is
written beside the target, switched to a single file (journal_mode=DELETE), checked with
``PRAGMA integrity_check`` and only then renamed into place.

PostgreSQL is backed up with its own tool: the command refuses and prints the ``pg_dump`` line
for the configured database (without its password).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sqlite3
import sys
from contextlib import closing
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.clock import Clock
from bot.config import Config, load_config
from bot.db import engine_url
from bot.render import Renderer


class BackupError(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, require_app=False)
    renderer = Renderer(cfg.tz)
    url = make_url(engine_url(cfg.database.url))
    if url.get_backend_name() != "sqlite":
        print(renderer.render("ops/backup_postgres.txt.j2",
                              command=pg_dump_command(cfg.database.url)), file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else default_path(cfg, Clock().now())
    try:
        size = backup_sqlite(Path(url.database or ""), out)
    except BackupError as exc:
        print(renderer.render("ops/backup_failed.txt.j2", reason=exc.reason, detail=exc.detail,
                              source=url.database, out=out), file=sys.stderr)
        return 1
    print(renderer.render("ops/backup_done.txt.j2", path=out, size=size,
                          size_mb=round(size / 1024 / 1024, 2)))
    return 0


def default_path(cfg: Config, now: datetime) -> Path:
    return Path(cfg.storage.data_dir) / "backups" / f"safebot-{now:%Y%m%dT%H%M%SZ}.db"


def backup_sqlite(source: Path, out: Path) -> int:
    """Copy ``source`` to ``out`` consistently; the copy's size in bytes."""
    if not source.is_file():  # sqlite3.connect would create an empty database
        raise BackupError("missing")
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    part.unlink(missing_ok=True)
    try:
        with closing(sqlite3.connect(source, timeout=30)) as src, \
                closing(sqlite3.connect(part)) as dst:
            src.backup(dst)  # all pages in one step: one snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            check = [row[0] for row in dst.execute("PRAGMA integrity_check")]
        if check != ["ok"]:
            raise BackupError("corrupt", "; ".join(check[:5]))
        os.replace(part, out)
    except sqlite3.Error as exc:
        raise BackupError("sqlite", str(exc)) from None
    finally:
        part.unlink(missing_ok=True)
    return out.stat().st_size


def pg_dump_command(url: str) -> str:
    """The pg_dump line for ``url``: custom format, the password left to PGPASSWORD or
    ~/.pgpass, never printed."""
    # URL.set() ignores None: the NamedTuple's _replace really drops the password
    plain = make_url(engine_url(url))._replace(drivername="postgresql", password=None)
    uri = plain.render_as_string(hide_password=False)
    return (f"pg_dump -Fc --no-password --dbname={shlex.quote(uri)} "
            "--file=safebot-$(date -u +%Y%m%dT%H%M%SZ).dump")
