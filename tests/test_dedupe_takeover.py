"""A message whose turn died with its process is handled on WeCom's retry, not lost; a copy of a
live or finished turn, or a late replay, is still dropped (models.turn_begin, models.dedupe).
The raw SQL of models.turn_begin is checked here against what the ORM functions read."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from models import conversation, dedupe, org
from models.conversation import Snapshot
from models.turn_begin import Begin, Seen, begin_many

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _seen(db, at_s: float, key: str = "app:msg:1") -> Seen:
    [began] = db.call_driver(begin_many, begins=[
        Begin(userid="nobody", key="nobody", now=_at(at_s), dedupe_key=key)])
    return began.seen


def _take_over(db, at_s: float, key: str = "app:msg:1") -> bool:
    return db.call(dedupe.take_over, key=key, now=_at(at_s))


def test_an_unfinished_turn_is_taken_over_by_a_retry_only(db):
    assert _seen(db, 0) is Seen.NEW
    assert _seen(db, 0.5) is Seen.DUPLICATE   # a concurrent copy: the turn may still run
    assert _seen(db, 5) is Seen.UNFINISHED    # WeCom's retry after 5 s: did the turn die?
    assert _take_over(db, 5)                  # (asked under the lock): yes, handle it
    assert _seen(db, 5.5) is Seen.DUPLICATE   # the retry's own turn now holds it
    assert _seen(db, 7) is Seen.UNFINISHED
    assert not _take_over(db, 5.5)            # two copies racing: only one takes it over
    db.call(dedupe.mark_done, key="app:msg:1")
    assert _seen(db, 15) is Seen.DUPLICATE    # finished: WeCom's last retry is dropped
    assert not _take_over(db, 15)


def test_a_late_replay_and_rows_written_done_are_dropped(db):
    assert _seen(db, 0) is Seen.NEW
    assert _seen(db, 120) is Seen.DUPLICATE   # past WeCom's retries: a replay, never again
    assert not _take_over(db, 120)
    assert db.call(dedupe.first_time, key="aibot:1", now=_at(0))
    assert not db.call(dedupe.first_time, key="aibot:1", now=_at(10))
    assert _seen(db, 10, key="aibot:1") is Seen.DUPLICATE  # written done: never taken over


def test_one_batch_reads_what_the_orm_functions_read(demo):
    now = datetime.now(timezone.utc)
    demo.call(conversation.save, key="demo-liaison", now=now - timedelta(minutes=1),
              snapshot=Snapshot(state="report:name", data={"名称": "楼梯扶手松动", "n": 2},
                                pages=["第二页"]))
    demo.call(conversation.save, key="demo-duty", now=now - timedelta(hours=2),
              snapshot=Snapshot(state="report:name", data={}, pages=[]))
    begins = [Begin(userid="demo-liaison", key="demo-liaison", now=now, dedupe_key="k1"),
              Begin(userid="demo-liaison", key="demo-liaison", now=now, dedupe_key="k1"),
              Begin(userid="demo-duty", key="demo-duty", now=now),
              Begin(userid="stranger", key="stranger", now=now, dedupe_key="k2",
                    conversation=False)]
    first, copy, duty, stranger = demo.call_driver(begin_many, begins=begins)
    assert first.seen is Seen.NEW and copy.seen is Seen.DUPLICATE
    assert copy.identity is None and copy.snapshot is None
    assert first.identity == demo.call(org.get_identity, userid="demo-liaison")
    assert first.identity is not None and "liaison" in first.identity.roles
    assert first.snapshot == demo.call(conversation.load, key="demo-liaison", now=now)
    assert first.snapshot.data == {"名称": "楼梯扶手松动", "n": 2}
    assert first.snapshot.pages == ["第二页"]
    assert duty.seen is Seen.NEW and duty.snapshot == Snapshot()  # idle: timed out
    assert duty.identity == demo.call(org.get_identity, userid="demo-duty")
    assert stranger.identity is None and stranger.snapshot is None
