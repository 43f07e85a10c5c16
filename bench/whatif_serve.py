"""``safebot serve`` with run-time patches: what-ifs for the design discussion, measured by
``python -m bench.callback_load --service-variant PATCH[,PATCH...]``.

    python -m bench.whatif_serve --variant PATCH[,PATCH...] [--switch-interval S] --config PATH

Nothing in bot/ or models/ is edited; this process patches, before the app starts:

orm          nothing (the service as it is; use with --switch-interval alone)
lean         ``bot.dispatcher._begin_turn`` (dedupe insert + identity + conversation, one
             transaction) with cacheable ``text()`` statements through the same Session (one
             select for the identity with its roles); still a ``Database.run`` hop
raw          the same transaction on a raw sqlite3 connection, still on the database thread
inline       the same raw transaction run directly on the event-loop thread: no hop
orm-inline   every ``Database.run`` runs ``Database.call`` on the event-loop thread (no hop,
             the ORM functions unchanged)
lean-inline  the lean functions, and every other ``Database.run``, on the event-loop thread
no-wake      ``OutboxSender.wake`` does nothing: a finished turn no longer wakes the outbox
             sender (which then polls every second), so an idle outbox costs no claim +
             next_due transactions per message
gc-freeze    ``gc.collect(); gc.freeze()`` once before serving (fewer, shorter full GCs)

``--switch-interval`` sets ``sys.setswitchinterval`` (CPython's default is 0.005 s).

A sender with a saved conversation falls back to the ORM ``conversation.load`` (the benchmark's
帮助 never saves one). The answers are the same as the real functions'.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import sqlite3
import sys
import threading
from datetime import datetime, timezone

from sqlalchemy import text
from sqlmodel import Session

import bot.dispatcher
from bot.db import Database
from models import conversation, dedupe, org

PATCHES = ["orm", "lean", "raw", "inline", "orm-inline", "lean-inline", "no-wake", "gc-freeze"]
ORIG_FIRST_TIME = dedupe.first_time
ORIG_BEGIN_TURN = bot.dispatcher._begin_turn

INSERT_IGNORE = text("INSERT INTO processed_callback (key, received_at) VALUES (:key, :at) "
                     "ON CONFLICT DO NOTHING RETURNING key")
IDENTITY = text("SELECT p.id, p.name, u.id, u.name, u.kind, "
                "(SELECT group_concat(r.role, char(31)) FROM person_role r "
                " WHERE r.person_id = p.id) "
                "FROM person p JOIN unit u ON u.id = p.unit_id WHERE p.userid = :userid")
CONV_EXISTS = text("SELECT 1 FROM conversation WHERE key = :key")
RAW_INSERT = INSERT_IGNORE.text.replace(":key", "?").replace(":at", "?")
RAW_IDENTITY = IDENTITY.text.replace(":userid", "?")
RAW_CONV_EXISTS = CONV_EXISTS.text.replace(":key", "?")


def _sa_datetime(now: datetime) -> str:
    """How SQLAlchemy's SQLite DateTime stores a value (UTC, naive text)."""
    return now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _identity(row, userid: str) -> org.Identity | None:
    if row is None:
        return None
    roles = frozenset(r for r in (row[5] or "").split("\x1f") if r)
    return org.Identity(person_id=row[0], userid=userid, name=row[1], unit_id=row[2],
                        unit_name=row[3], unit_kind=row[4], roles=roles)


# --- lean: text() through the Session ------------------------------------------------------

def lean_first_time(*, session: Session, key: str, now: datetime) -> bool:
    return session.execute(INSERT_IGNORE,
                           {"key": key, "at": _sa_datetime(now)}).first() is not None


def lean_begin_turn(*, session: Session, userid: str, key: str, now: datetime,
                    dedupe_key: str | None = None):
    if dedupe_key is not None and not lean_first_time(session=session, key=dedupe_key,
                                                      now=now):
        return None
    ident = _identity(session.execute(IDENTITY, {"userid": userid}).first(), userid)
    if session.execute(CONV_EXISTS, {"key": key}).first() is None:
        return ident, conversation.Snapshot()
    return ident, conversation.load(session=session, key=key, now=now)


# --- raw: one sqlite3 connection -----------------------------------------------------------

class Raw:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.conn = sqlite3.connect(db.engine.url.database, isolation_level=None,
                                    check_same_thread=False, timeout=10)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000",
                       "foreign_keys=ON"):
            self.conn.execute("PRAGMA " + pragma)
        self.lock = threading.Lock()  # one transaction at a time on this connection

    def first_time(self, *, key: str, now: datetime) -> bool:
        with self.lock:
            c = self.conn
            c.execute("BEGIN IMMEDIATE")
            try:
                new = c.execute(RAW_INSERT, (key, _sa_datetime(now))).fetchone() is not None
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            return new

    def begin_turn(self, *, userid: str, key: str, now: datetime,
                   dedupe_key: str | None = None):
        with self.lock:
            c = self.conn
            c.execute("BEGIN IMMEDIATE" if dedupe_key is not None else "BEGIN")
            try:
                if dedupe_key is not None and c.execute(
                        RAW_INSERT, (dedupe_key, _sa_datetime(now))).fetchone() is None:
                    c.execute("COMMIT")
                    return None
                ident = _identity(c.execute(RAW_IDENTITY, (userid,)).fetchone(), userid)
                has_conv = c.execute(RAW_CONV_EXISTS, (key,)).fetchone() is not None
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
        if has_conv:
            return ident, self.db.call(conversation.load, key=key, now=now)
        return ident, conversation.Snapshot()


def install(patches: set[str]) -> None:
    if "no-wake" in patches:
        from bot.outbox_sender import OutboxSender

        OutboxSender.wake = lambda self: None  # type: ignore[method-assign]
    if "lean" in patches or "lean-inline" in patches:
        dedupe.first_time = lean_first_time
        bot.dispatcher._begin_turn = lean_begin_turn
    if "orm-inline" in patches or "lean-inline" in patches:
        async def run_inline(self: Database, fn, /, **kwargs):
            return self.call(fn, **kwargs)

        Database.run = run_inline  # type: ignore[method-assign]
    elif "raw" in patches or "inline" in patches:
        original_run = Database.run
        raws: dict[int, Raw] = {}
        inline = "inline" in patches

        async def run(self: Database, fn, /, **kwargs):
            if fn is ORIG_FIRST_TIME or fn is ORIG_BEGIN_TURN:
                raw = raws.get(id(self)) or raws.setdefault(id(self), Raw(self))
                target = raw.first_time if fn is ORIG_FIRST_TIME else raw.begin_turn
            else:
                return await original_run(self, fn, **kwargs)
            if inline:
                return target(**kwargs)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor,
                                              functools.partial(target, **kwargs))

        Database.run = run  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.whatif_serve",
                                description=__doc__.splitlines()[0])
    p.add_argument("--variant", required=True,
                   help="comma-separated patches: " + ", ".join(PATCHES))
    p.add_argument("--switch-interval", type=float, default=None,
                   help="sys.setswitchinterval(S) before serving (default: leave CPython's)")
    p.add_argument("--config", required=True)
    args = p.parse_args(argv)
    patches = {v.strip() for v in args.variant.split(",") if v.strip()}
    unknown = patches - set(PATCHES)
    if unknown:
        p.error(f"unknown patch(es): {', '.join(sorted(unknown))}")
    install(patches)
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    from bot.cli import main as safebot_main

    if "gc-freeze" in patches:
        from bot.app import create_app  # noqa: F401  (import the app's modules first)
        gc.collect()
        gc.freeze()
    print(f"whatif_serve: {', '.join(sorted(patches))}; switch interval "
          f"{sys.getswitchinterval()}", file=sys.stderr, flush=True)
    return safebot_main(["serve", "--config", args.config])


if __name__ == "__main__":
    raise SystemExit(main())
