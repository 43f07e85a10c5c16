"""``safebot outbox``: what an admin sees of pending and failed pushes, and the retry."""
from __future__ import annotations

from datetime import timedelta

from bot.cli import main
from bot.clock import Clock
from models import outbox


def config_file(tmp_path, database_url):
    path = tmp_path / "c.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n', encoding="utf-8")
    return str(path)


def test_outbox_lists_pending_and_failed_and_retries_a_failed_one(db, database_url, tmp_path,
                                                                 capsys):
    now = Clock().now()
    for key in ("a", "b", "c"):
        db.call(outbox.enqueue, key=key, recipient=f"user-{key}", msgtype="text",
                payload={"content": key}, now=now)
    claimed = db.call(outbox.claim, owner="o", now=now, limit=10)
    db.call(outbox.mark_sent, row_id=claimed[0].id, owner="o", now=now, result={})
    db.call(outbox.mark_failed, row_id=claimed[1].id, owner="o", now=now,
            error="81013 user & party & tag all invalid")
    db.call(outbox.mark_retry, row_id=claimed[2].id, owner="o", now=now, error="HTTP 503",
            delay=timedelta(0))
    cfg = config_file(tmp_path, database_url)

    assert main(["outbox", "--config", cfg]) == 0
    listing = capsys.readouterr().out
    assert "user-b" in listing and "失败" in listing and "81013" in listing
    assert "user-c" in listing and "待发送" in listing
    assert "user-a" not in listing

    assert main(["outbox", "retry", str(claimed[1].id), "--config", cfg]) == 0
    assert "重新排队" in capsys.readouterr().out
    assert main(["outbox", "retry", str(claimed[0].id), "--config", cfg]) == 1  # sent: no
    assert "只有失败的推送" in capsys.readouterr().err
    assert main(["outbox", "retry", "--config", cfg]) == 2
    assert main(["outbox", "--all", "--config", cfg]) == 0
    assert "user-a" in capsys.readouterr().out


def test_an_empty_outbox_says_so(db, database_url, tmp_path, capsys):
    assert main(["outbox", "--config", config_file(tmp_path, database_url)]) == 0
    assert "队列为空" in capsys.readouterr().out
