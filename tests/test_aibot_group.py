"""Group chats through the AI bot's long connection, against the sandbox's gateway over real
WebSocket: binding a group, a whole 上报 in a group with a photo, the one "how to bind" note,
a review done with a card button in the group, and pushes to a group."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from pathlib import Path
from typing import AsyncIterator

import pytest
from sqlmodel import Session, select

from bot.aibot import frames
from bot.keys import dispatcher_key
from handlers.hazard_common import facts
from models import hazard as hz
from models import outbox
from models.group import GroupChat
from models.org import Person, Unit
from models.photo import Photo
from bot.sandbox.groups import DEMO_GROUPS
from tests.aibot_sandbox import CHAT, JPEG, Box, aibot_sandbox

PLAN = ("责任部门:总务处 责任人:孙值班 措施:清理杂物并张贴禁止堆放标识 资金:无需资金 "
        "时限:3天后 预案:设置警示标志，专人值守")


@pytest.fixture
async def box(tmp_path: Path, database_url: str) -> AsyncIterator[Box]:
    async with aibot_sandbox(tmp_path / "sandbox", database_url=database_url) as sandbox:
        yield sandbox


def unit_id(session: Session, code: str) -> int:
    return session.exec(select(Unit.id).where(Unit.code == code)).one()


async def bind(box: Box, chat: str = CHAT, unit: str = "城东实验小学") -> str:
    return await box.say("demo-principal", f"绑定群 {unit}", chat)


async def test_a_hazard_reported_in_a_bound_group_is_the_group_units_with_its_photo(box):
    assert "本群已绑定到「城东实验小学」" in await bind(box)
    # 钱联络 works for the township (城东镇中心校); in the school's group she reports for it
    user = "cd-liaison"
    assert "描述" in await box.say(user, "上报")
    assert "位置" in await box.say(user, "三楼东侧消防通道堵塞，杂物堆放")
    assert "领域" in await box.say(user, "@教学楼三楼")  # "@机器人 @教学楼三楼": one mention cut
    assert "一般" in await box.say(user, "是")
    assert "照片" in await box.say(user, "一般")
    exchange = await box.gateway.say(user, "", chat_id=CHAT, images=[box.image()])
    assert exchange.body["msgtype"] == "mixed"
    assert "请确认" in exchange.answer and "1" in exchange.answer
    reply = await box.say(user, "确认")
    number = re.search(r"YH\d{4}-\d{6}", reply).group(0)

    def check(*, session: Session) -> None:
        hazard = hz.by_number(session=session, number=number)
        assert hazard.unit_id == unit_id(session, "CD-SY")
        reporter = session.get(Person, hazard.reporter_id)
        assert reporter.userid == user and reporter.unit_id == unit_id(session, "CD")
        [photo_id] = hz.photos(session=session, hazard_id=hazard.id)["report"]
        photo = session.get(Photo, photo_id)
        assert photo.status == "stored" and photo.userid == user
        assert photo.sha256 == hashlib.sha256(JPEG).hexdigest()
        assert (Path(box.cfg.storage.data_dir) / photo.path).read_bytes() == JPEG
        assert photo.path.endswith(".jpg")
    await box.run(check)


async def test_text_and_photo_in_one_message_skip_the_photo_question(box):
    await bind(box)
    answer = (await box.gateway.say("demo-liaison", "上报 二楼消防栓被杂物遮挡 @综合楼二楼",
                                    chat_id=CHAT, images=[box.image()])).answer
    assert "领域" in answer
    assert "一般" in await box.say("demo-liaison", "消防安全")
    confirm = await box.say("demo-liaison", "一般")
    assert "请确认" in confirm  # the photo came with the report: not asked for again


async def test_an_unbound_group_is_told_how_to_bind_once(box):
    note = box.render("group/unbound.txt.j2")
    first = await box.say("demo-liaison", "帮助", "wrCXZX")
    assert first.startswith(note) and "张联络" in first
    again = await box.say("cxzx-liaison", "帮助", "wrCXZX")
    assert note not in again and "黄联络" in again
    other = await box.say("demo-liaison", "帮助", "wrCDYEY")  # per group, not per sender
    assert other.startswith(note)

    def told(*, session: Session) -> list[str]:
        return sorted(g.chatid for g in session.exec(select(GroupChat)).all()
                      if g.told_unbound_at is not None and g.unit_id is None)
    assert await box.run(told) == ["wrCDYEY", "wrCXZX"]


async def test_only_the_units_principal_or_an_admin_above_binds(box):
    assert "只有「城东实验小学」" in await box.say("cxzx-leader", "绑定群 城东实验小学")
    assert "角色不能使用" in await box.say("demo-liaison", "绑定群 城东实验小学")
    assert "没有找到" in await box.say("demo-principal", "绑定群 火星小学")
    assert "本群已绑定" in await box.say("demo-admin", "绑定群 CD-SY")  # bureau admin, by code
    assert "已经绑定" in await box.say("demo-principal", "绑定群 城东实验小学")
    moved = await box.say("demo-admin", "绑定群 城东镇中心校")
    assert "已从「城东实验小学」改为绑定到「城东镇中心校」" in moved
    # the school's principal has no right over the township: cannot move it back
    assert "只有「城东镇中心校」" in await box.say("demo-principal", "绑定群 城东实验小学")


async def test_a_review_is_done_with_a_card_button_in_the_group(box):
    await bind(box)
    reply = await box.say("demo-liaison", "上报 三楼东侧消防通道堵塞 @教学楼三楼")
    assert "领域" in reply
    await box.say("demo-liaison", "是")
    await box.say("demo-liaison", "一般")
    await box.say("demo-liaison", "跳过")
    number = re.search(r"YH\d{4}-\d{6}", await box.say("demo-liaison", "确认")).group(0)
    assert "整改方案已记录" in await box.say("demo-liaison", f"整改 {number} {PLAN}")
    await box.say("demo-liaison", f"整改完成 {number}")
    assert "复查" in await box.say("demo-liaison", "跳过")

    def card(*, session: Session) -> dict:
        hazard = hz.by_number(session=session, number=number)
        info = facts(session, hazard, box.app[dispatcher_key].services["areas"])
        return json.loads(box.render("hazard/review_request.card.json.j2",
                                     task_id="review-group-1", rectifier="张联络", **info))
    payload = await box.run(card)

    def enqueue(*, session: Session) -> None:
        outbox.enqueue(session=session, key="test:group-card", recipient=CHAT,
                       channel="aibot", msgtype="template_card", payload=payload,
                       now=box.now())
    await box.run(enqueue)
    box.wake_outbox()
    [pushed] = await box.wait_pushes(f"aibot:{CHAT}", 1)
    assert pushed.msgtype == "template_card" and pushed.task_id == "review-group-1"

    async with box.http.post("/sandbox/api/group_card_click", json={
            "from": "demo-principal", "chat_id": CHAT, "task_id": "review-group-1",
            "key": f"hz:pass:{number}"}) as resp:
        assert resp.status == 200, await resp.text()
        shown = (await resp.json())["push"]["view"]
    assert shown["updated"] and shown["replace_name"] == "已通过" and not shown["clickable"]
    [click] = [e for e in box.gateway.exchanges.values() if e.body["msgtype"] == "event"]
    [update] = click.replies
    assert update["cmd"] == frames.RESPOND_UPDATE
    card_back = update["body"]["template_card"]
    assert card_back["task_id"] == "review-group-1" and card_back["replace_text"] == "已通过"
    assert card_back["main_title"] == payload["main_title"]  # the same card, buttons greyed

    status = await box.run(lambda *, session: hz.by_number(session=session,
                                                           number=number).status)
    assert status == hz.Status.CLOSED


async def test_a_units_group_push_goes_to_its_bound_group_or_its_webhook(box):
    await bind(box)
    pushes = box.app[dispatcher_key].services["group_pushes"]

    def push(*, session: Session) -> tuple[int, int]:
        school = pushes.enqueue(session=session, key="test:remind", text="**本周安全检查**提醒",
                                unit_id=unit_id(session, "CD-SY"), now=box.now())
        kindergarten = pushes.enqueue(session=session, key="test:remind", text="提醒",
                                      unit_id=unit_id(session, "CD-YEY"), now=box.now())
        return school, kindergarten
    assert await box.run(push) == (1, 1)
    box.wake_outbox()
    [group_push] = await box.wait_pushes(f"aibot:{CHAT}", 1)
    assert group_push.msgtype == "markdown" and "本周安全检查" in group_push.body["content"]
    [hook] = await box.wait_pushes("webhook:sandbox-CD-YEY", 1)  # no group bound: its webhook
    assert hook.body["content"] == "提醒"
    sent = [r for r in box.gateway.received if r["cmd"] == frames.SEND_MSG]
    assert sent[0]["body"]["chatid"] == CHAT


async def test_the_page_sends_group_messages_with_a_photo(box):
    async with box.http.post("/sandbox/api/group_messages", json={
            "from": "demo-principal", "chat_id": CHAT, "text": "绑定群 城东实验小学"}) as resp:
        assert resp.status == 200, await resp.text()
        assert "本群已绑定" in (await resp.json())["replies"][0]
    await box.say("demo-liaison", "上报 楼梯扶手松动 @一号楼")
    await box.say("demo-liaison", "校舍安全")
    await box.say("demo-liaison", "一般")
    async with box.http.post("/sandbox/api/group_messages", json={
            "from": "demo-liaison", "chat_id": CHAT, "text": "",
            "image": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()}) as resp:
        assert resp.status == 200, await resp.text()
        assert "请确认" in (await resp.json())["replies"][0]
    async with box.http.post("/sandbox/api/group_messages", json={
            "from": "demo-liaison", "chat_id": CHAT, "text": "x", "image": "not base64!"}) as r:
        assert r.status == 400
    photos = await box.run(lambda *, session: session.exec(select(Photo)).all())
    assert [p.status for p in photos] == ["stored"]


async def test_the_page_offers_the_demo_groups_and_their_push_feeds(box):
    async with box.http.get("/sandbox/") as resp:
        page = await resp.text()
    for group in DEMO_GROUPS:
        assert f'<option value="{group.chat_id}">群聊：{group.name}' in page
        assert f'<option value="aibot:{group.chat_id}">' in page
    assert "api/group_messages" in page and "api/group_card_click" in page
    assert "http://" not in page.split("<script", 1)[1]


async def test_a_group_message_while_the_bot_is_offline_gets_a_chinese_503(tmp_path):
    async with aibot_sandbox(tmp_path / "sb", connect=False) as offline:
        offline.gateway.secret = "rotated"  # the bot cannot subscribe
        async with offline.http.post("/sandbox/api/group_messages", json={
                "from": "demo-liaison", "chat_id": CHAT, "text": "帮助"}) as resp:
            assert resp.status == 503
            assert "智能机器人" in (await resp.json())["error"]
        async with offline.http.post("/sandbox/api/group_messages", json={
                "from": "demo-liaison", "chat_id": "bad id!", "text": "帮助"}) as resp:
            assert resp.status == 400


async def test_a_phone_sized_photo_fits_through_the_page(box):
    big = JPEG + os.urandom(3 * 1024 * 1024)  # bigger than the service's 1 MB request limit
    async with box.http.post("/sandbox/api/group_messages", json={
            "from": "demo-liaison", "chat_id": CHAT, "text": "帮助",
            "image": base64.b64encode(big).decode()}) as resp:
        assert resp.status == 200, await resp.text()
    photos = await box.run(lambda *, session: session.exec(select(Photo)).all())
    assert [p.size for p in photos] == [len(big)]
