"""The push path: client, outbox and dispatcher against the fake WeCom over real HTTP."""
from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import pytest
from sqlmodel import select

from bot.clock import Clock, FakeClock
from bot.outbox_sender import OutboxSender
from bot.pushes import enqueue_text
from bot.render import Renderer
from bot.wecom_api import WeComAPI, WeComError
from models import outbox
from models.outbox import OutboxMessage
from tests.conftest import AGENT_ID, CORP_ID, SECRET


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def api(http, fake_wecom, clock):
    return WeComAPI(http=http, base_url=fake_wecom.url, corp_id=CORP_ID, secret=SECRET,
                    agent_id=AGENT_ID, clock=clock, busy_backoff_s=0.01)


@pytest.fixture
def sender(demo, api, clock):
    return OutboxSender(db=demo, api=api, clock=clock, renderer=Renderer(),
                        webhooks={"cd-sy": "wh-key-1"})


def push(db, key, to="demo-principal", text="检查提醒", **kw):
    return db.call(enqueue_text, key=key, to=to, text=text, now=kw.pop("now"), **kw)


def rows(db):
    return db.call(lambda session: list(session.exec(select(OutboxMessage)
                                                     .order_by(OutboxMessage.id)).all()))


async def drain_until_quiet(sender, clock, step_s=1.0, max_steps=5000):
    for _ in range(max_steps):
        await sender.drain_once()
        if all(r.status != outbox.PENDING for r in rows(sender.db)):
            return
        clock.advance(seconds=step_s)
    raise AssertionError("outbox never drained")


async def test_one_gettoken_serves_many_concurrent_sends(api, fake_wecom):
    await asyncio.gather(*(api.send_message({"touser": f"u{i}", "msgtype": "text",
                                             "text": {"content": f"m{i}"}}) for i in range(40)))
    assert fake_wecom.gettoken_calls == 1
    assert len(fake_wecom.pushes) == 40


async def test_an_expired_token_is_fetched_again_once_mid_stream(api, fake_wecom):
    await api.send_message({"touser": "a", "msgtype": "text", "text": {"content": "1"}})
    fake_wecom.expire_tokens()  # WeCom may revoke early: 42001 on the next call
    await asyncio.gather(*(api.send_message({"touser": "a", "msgtype": "text",
                                             "text": {"content": f"n{i}"}}) for i in range(10)))
    assert fake_wecom.gettoken_calls == 2
    assert len(fake_wecom.pushes_to("a")) == 11


async def test_busy_is_retried_and_a_wrong_secret_is_reported(api, fake_wecom, http, clock):
    fake_wecom.fail_next(-1, -1)
    await api.send_message({"touser": "a", "msgtype": "text", "text": {"content": "x"}})
    assert len(fake_wecom.pushes_to("a")) == 1
    bad = WeComAPI(http=http, base_url=fake_wecom.url, corp_id=CORP_ID, secret="nope",
                   agent_id=AGENT_ID, clock=clock)
    with pytest.raises(WeComError) as err:
        await bad.send_message({"touser": "a", "msgtype": "text", "text": {"content": "x"}})
    assert err.value.errcode == 40001


async def test_enqueueing_the_same_key_twice_is_a_no_op(demo, clock):
    assert push(demo, "k1", now=clock.now()) == 1
    assert push(demo, "k1", text="另一条", now=clock.now()) == 0
    assert [r.payload["content"] for r in rows(demo)] == ["检查提醒"]


async def test_45009_backs_off_a_minute_then_delivers_once(sender, demo, clock, fake_wecom):
    push(demo, "k1", now=clock.now())
    fake_wecom.fail_next(45009)
    await sender.drain_once()
    [row] = rows(demo)
    assert row.status == outbox.PENDING and "45009" in row.last_error
    clock.advance(seconds=30)
    assert await sender.drain_once() == 0  # still backing off
    clock.advance(seconds=31)
    await sender.drain_once()
    assert rows(demo)[0].status == outbox.SENT
    assert len(fake_wecom.pushes_to("demo-principal")) == 1


async def test_a_minute_long_outage_delivers_everything_once_afterwards(sender, demo, clock,
                                                                        fake_wecom):
    for i in range(20):
        push(demo, f"k{i}", to=f"demo-{'principal' if i % 2 else 'liaison'}", text=f"提醒{i}",
             now=clock.now())
    fake_wecom.faults.down = True
    for _ in range(12):  # one minute of failures, five seconds apart
        await sender.drain_once()
        clock.advance(seconds=5)
    assert all(r.status == outbox.PENDING and r.attempts >= 2 for r in rows(demo))
    fake_wecom.faults.down = False
    await drain_until_quiet(sender, clock)
    delivered = Counter(p.body["content"] for p in fake_wecom.pushes)
    assert delivered == Counter(f"提醒{i}" for i in range(20))


async def test_a_restart_sends_pending_rows_and_a_row_sent_before_a_crash_reaches_once(
        demo, api, clock, fake_wecom):
    for i in range(5):
        push(demo, f"k{i}", text=f"提醒{i}", now=clock.now())
    # A dispatcher claims everything, sends two, and is killed before marking them.
    dead = OutboxSender(db=demo, api=api, clock=clock, renderer=Renderer(), webhooks={})
    claimed = demo.call(outbox.claim, owner=dead.owner, now=clock.now(), limit=10)
    for row in claimed[:2]:
        await api.send_message({"touser": row.recipient, "msgtype": row.msgtype,
                                row.msgtype: row.payload})
    fresh = OutboxSender(db=demo, api=api, clock=clock, renderer=Renderer(), webhooks={})
    assert await fresh.drain_once() == 0  # the dead one's lease still holds
    clock.advance(seconds=61)
    await drain_until_quiet(fresh, clock)
    assert all(r.status == outbox.SENT for r in rows(demo))
    delivered = [p.body["content"] for p in fake_wecom.pushes_to("demo-principal")]
    assert sorted(delivered) == [f"提醒{i}" for i in range(5)]  # the re-sends were absorbed
    assert sum(p.duplicate for p in fake_wecom.pushes) == 2


async def test_a_burst_of_500_to_one_person_keeps_wecom_limits(sender, demo, clock, fake_wecom):
    for i in range(500):
        push(demo, f"burst{i}", text=f"第{i}条", now=clock.now())
    await drain_until_quiet(sender, clock, step_s=2.0)
    pushes = fake_wecom.pushes_to("demo-principal", delivered_only=False)
    assert not any(p.dropped for p in pushes)
    assert len(pushes) == 500
    times = sorted(p.at for p in pushes)
    assert max(sum(1 for t in times if s <= t < s + 60) for s in times) <= 30
    assert max(sum(1 for t in times if s <= t < s + 3600) for s in times) <= 1000
    assert times[-1] - times[0] < 17.5 * 61  # and it did not dawdle: 500 / 30 per minute


async def test_an_unreachable_member_is_flagged_to_the_units_admin(sender, demo, clock, fake_wecom):
    fake_wecom.known_users = {"demo-admin", "demo-principal", "demo-liaison"}
    fake_wecom.unlicensed = {"demo-liaison"}
    push(demo, "k-duty", to="demo-duty", now=clock.now())
    push(demo, "k-liaison", to="demo-liaison", now=clock.now())
    await drain_until_quiet(sender, clock)
    by_key = {r.key: r for r in rows(demo)}
    assert by_key["k-duty"].status == outbox.FAILED and "81013" in by_key["k-duty"].last_error
    assert by_key["k-liaison"].status == outbox.FAILED
    assert by_key["k-liaison"].result["unlicenseduser"] == ["demo-liaison"]
    notices = [p.body["content"] for p in fake_wecom.pushes_to("demo-admin")]
    assert any("孙值班" in n for n in notices) and any("张联络" in n for n in notices)


async def test_webhook_pushes_and_an_unknown_webhook_fails_with_its_reason(sender, demo, clock,
                                                                          fake_wecom):
    demo.call(outbox.enqueue, key="w1", recipient="cd-sy", channel="webhook", msgtype="text",
              payload={"content": "群提醒"}, now=clock.now())
    demo.call(outbox.enqueue, key="w2", recipient="nowhere", channel="webhook", msgtype="text",
              payload={"content": "x"}, now=clock.now())
    await drain_until_quiet(sender, clock)
    assert [p.body["content"] for p in fake_wecom.pushes_to("webhook:wh-key-1")] == ["群提醒"]
    failed = [r for r in rows(demo) if r.status == outbox.FAILED]
    assert [r.key for r in failed] == ["w2"] and "nowhere" in failed[0].last_error


async def test_a_permanent_failure_is_kept_with_its_reason_and_can_be_requeued(sender, demo,
                                                                              clock, fake_wecom):
    push(demo, "k1", now=clock.now())
    fake_wecom.fail_next(40003)  # invalid userid: no retry helps
    await sender.drain_once()
    [row] = rows(demo)
    assert row.status == outbox.FAILED and "40003" in row.last_error
    assert demo.call(outbox.requeue, row_id=row.id, now=clock.now())
    await sender.drain_once()
    assert rows(demo)[0].status == outbox.SENT


async def test_big_media_is_fetched_in_range_chunks(api, fake_wecom, monkeypatch):
    import bot.wecom_api
    monkeypatch.setattr(bot.wecom_api, "MEDIA_CHUNK", 1000)
    content = bytes(range(256)) * 14
    media_id = fake_wecom.add_media(content, "image/png", "现场.png")
    media = await api.get_media(media_id)
    assert media.content == content and media.content_type == "image/png"
    assert media.filename == "现场.png"
    with pytest.raises(WeComError) as err:
        await api.get_media("nope")
    assert err.value.errcode == 40007


async def test_upload_and_card_update_round_trip(api, fake_wecom):
    media_id = await api.upload_media("file", "台账.xlsx", b"PK\x03\x04data")
    assert fake_wecom.media[media_id][0] == b"PK\x03\x04data"
    card = {"card_type": "button_interaction", "main_title": {"title": "重大隐患"},
            "task_id": "t1", "button_list": [{"text": "查看", "key": "open:1"}]}
    sent = await api.send_message({"touser": "demo-principal", "msgtype": "template_card",
                                   "template_card": card})
    await api.update_template_card(userids=["demo-principal"], response_code=sent.response_code,
                                   replace_name="已查看")
    assert fake_wecom.pushes[-1].updated == {"button": {"replace_name": "已查看"}}
    with pytest.raises(WeComError):  # a response code works once
        await api.update_template_card(userids=["demo-principal"],
                                       response_code=sent.response_code, replace_name="x")


async def test_the_dispatcher_sleeps_when_idle_and_wakes_on_enqueue(sender, demo, fake_wecom):
    sender.clock = Clock()  # real-time pacing for the background loop
    sender.idle_s = 30.0
    task = asyncio.create_task(sender.run())
    await asyncio.sleep(0.3)
    calls_idle = fake_wecom.api_calls
    push(demo, "wake", now=sender.clock.now())
    sender.wake()
    await fake_wecom.wait_for_pushes(1, timeout=3)
    for _ in range(100):  # marked under the lease right after the send returns
        if rows(demo)[0].status == outbox.SENT:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    assert calls_idle == 0
    assert rows(demo)[0].status == outbox.SENT


async def test_three_dispatchers_one_killed_deliver_everything_once(demo, api, clock, fake_wecom):
    for i in range(600):
        push(demo, f"many{i}", to=f"member-{i % 300}", text=f"提醒{i}", now=clock.now())
    senders = [OutboxSender(db=demo, api=api, clock=clock, renderer=Renderer(), webhooks={},
                            batch=50, chunk=10) for _ in range(3)]

    async def drain(sender):
        while await sender.drain_once():
            await asyncio.sleep(0)

    doomed = asyncio.create_task(drain(senders[0]))
    await asyncio.sleep(0.05)
    doomed.cancel()  # killed mid-run: its leased rows wait for the lease to expire
    await asyncio.gather(doomed, return_exceptions=True)
    await asyncio.gather(drain(senders[1]), drain(senders[2]))
    clock.advance(seconds=61)
    await asyncio.gather(drain(senders[1]), drain(senders[2]))
    assert all(r.status == outbox.SENT for r in rows(demo))
    delivered = Counter(p.body["content"] for p in fake_wecom.pushes
                        if not (p.dropped or p.duplicate))
    assert delivered == Counter(f"提醒{i}" for i in range(600))


async def test_a_file_push_is_uploaded_when_it_is_sent(demo, api, clock, fake_wecom, tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "ledger.xlsx").write_bytes(b"PK\x03\x04ledger")
    sender = OutboxSender(db=demo, api=api, clock=clock, renderer=Renderer(), webhooks={},
                          data_dir=tmp_path)
    demo.call(outbox.enqueue, key="f1", recipient="demo-bureau", msgtype="file",
              payload={"path": "exports/ledger.xlsx", "filename": "台账.xlsx"}, now=clock.now())
    demo.call(outbox.enqueue, key="f2", recipient="demo-bureau", msgtype="file",
              payload={"path": "exports/gone.xlsx"}, now=clock.now())
    await drain_until_quiet(sender, clock)
    [pushed] = fake_wecom.pushes_to("demo-bureau")
    content, _, filename = fake_wecom.media[pushed.body["media_id"]]
    assert (content, filename) == (b"PK\x03\x04ledger", "台账.xlsx")
    assert [r.status for r in rows(demo)] == [outbox.SENT, outbox.FAILED]


async def test_a_photo_push_waits_until_the_photo_is_fetched(demo, api, clock, fake_wecom,
                                                             tmp_path):
    from models import photo
    [photo_id] = demo.call(photo.register, media_ids=("MEDIA-later",), userid="demo-liaison",
                           now=clock.now())
    sender = OutboxSender(db=demo, api=api, clock=clock, renderer=Renderer(), webhooks={},
                          data_dir=tmp_path)
    demo.call(outbox.enqueue, key="p1", recipient="demo-principal", msgtype="image",
              payload={"photo_id": photo_id}, now=clock.now())
    await sender.drain_once()
    assert rows(demo)[0].status == outbox.PENDING and "not fetched yet" in rows(demo)[0].last_error
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"\xff\xd8scene")
    demo.call(photo.mark_stored, photo_id=photo_id, sha256="ab", path="photos/a.jpg",
              content_type="image/jpeg", size=7, now=clock.now())
    await drain_until_quiet(sender, clock)
    [pushed] = fake_wecom.pushes_to("demo-principal")
    assert fake_wecom.media[pushed.body["media_id"]][0] == b"\xff\xd8scene"
