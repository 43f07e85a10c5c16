"""``safebot backup``: a consistent, checked SQLite copy while the service writes; for
PostgreSQL the exact pg_dump command, without the password."""
from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from bot.cli import main
from bot.db import Database
from bot.ops.backup import pg_dump_command
from bot.pushes import enqueue_text
from models.migrate import upgrade

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{url}"\n[storage]\ndata_dir = "{tmp_path / "data"}"\n',
                    encoding="utf-8")
    return path


def rows_in(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT count(*) FROM outbox").fetchone()[0]


def test_a_copy_taken_while_another_connection_writes_is_consistent(tmp_path, capsys):
    db = Database(f"sqlite:///{tmp_path / 'live.db'}")
    upgrade(db.engine)
    for i in range(50):
        db.call(enqueue_text, key=f"before-{i}", to="u", text="x", now=NOW)
    stop, written = threading.Event(), []

    def writer() -> None:  # the running service, as far as the file is concerned
        while not stop.is_set():
            db.call(enqueue_text, key=f"during-{len(written)}", to="u", text="y", now=NOW)
            written.append(1)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        out = tmp_path / "copies" / "safebot.db"
        code = main(["backup", "--config", str(config(tmp_path, db.url)), "--out", str(out)])
    finally:
        stop.set()
        thread.join()
        db.close()
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and str(out.stat().st_size) in printed
    assert 50 <= rows_in(out) <= 50 + len(written)  # one moment of the database
    with closing(sqlite3.connect(out)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file
    assert sorted(p.name for p in out.parent.iterdir()) == ["safebot.db"]


def test_the_default_copy_goes_under_data_dir_backups_with_a_utc_time(tmp_path, capsys):
    db = Database(f"sqlite:///{tmp_path / 'live.db'}")
    upgrade(db.engine)
    db.call(enqueue_text, key="k", to="u", text="x", now=NOW)  # still in the WAL
    try:
        assert main(["backup", "--config", str(config(tmp_path, db.url))]) == 0
    finally:
        db.close()
    [copy] = (tmp_path / "data" / "backups").iterdir()
    assert copy.name.startswith("safebot-") and copy.name.endswith("Z.db")
    assert rows_in(copy) == 1 and str(copy) in capsys.readouterr().out


def test_a_missing_database_is_reported_and_not_created(tmp_path, capsys):
    missing = tmp_path / "nothing.db"
    assert main(["backup", "--config", str(config(tmp_path, f"sqlite:///{missing}")),
                 "--out", str(tmp_path / "b.db")]) == 1
    assert "不存在" in capsys.readouterr().err
    assert not missing.exists() and not (tmp_path / "b.db").exists()


def test_postgresql_is_refused_with_the_pg_dump_command_and_no_password(tmp_path, capsys):
    url = "postgresql://safebot:s3cr%40t@db.example:5433/safebot?sslmode=require"
    assert main(["backup", "--config", str(config(tmp_path, url))]) == 2
    err = capsys.readouterr().err
    assert pg_dump_command(url) in err and "PGPASSWORD" in err
    assert ("pg_dump -Fc --no-password "
            "--dbname='postgresql://safebot@db.example:5433/safebot?sslmode=require'") in err
    assert "s3cr" not in err and "***" not in err
