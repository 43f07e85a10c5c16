"""A message whose turn died with its process is handled on WeCom's retry, not lost; a copy of a
live or finished turn, or a late replay, is still dropped (models.dedupe)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from models import dedupe

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


def _first(db, at_s: float, *, takeover: bool = True, key: str = "app:msg:1") -> bool:
    return db.call(dedupe.first_time, key=key, now=T0 + timedelta(seconds=at_s),
                   takeover=takeover)


def test_an_unfinished_turn_is_taken_over_by_a_retry_only(db):
    assert _first(db, 0)
    assert not _first(db, 0.5)      # a concurrent copy: the turn may still run
    assert _first(db, 5)            # WeCom's retry after 5 s: the turn died unfinished
    assert not _first(db, 6)        # the retry's own turn now holds it
    db.call(dedupe.mark_done, key="app:msg:1")
    assert not _first(db, 15)       # finished: WeCom's last retry is dropped


def test_a_late_replay_and_callers_without_takeover_are_dropped(db):
    assert _first(db, 0)
    assert not _first(db, 120)      # past WeCom's retries: a replay, never handled again
    assert _first(db, 0, takeover=False, key="aibot:1")
    assert not _first(db, 10, takeover=False, key="aibot:1")
    assert not _first(db, 10, takeover=True, key="aibot:1")  # written done: never taken over
