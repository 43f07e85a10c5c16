"""Routing, conversations, paging and roles, through the real door with a small test router."""
from __future__ import annotations

import asyncio
import pytest

import bot.app_door
from bot.clock import FakeClock
from bot.messages import Reply
from bot.router import Router, State, StatesGroup

router = Router("test")
calls: list[str] = []


def echo(text: str) -> Reply:
    # common/page.txt.j2 renders its text verbatim (plus a closing mark)
    return Reply.of("common/page.txt.j2", text=text, left=0)


class Survey(StatesGroup):
    colour = State()
    size = State()


@router.command("问卷")
async def start_survey(msg, ctx):
    """问卷 —— 测试用的两步对话"""
    ctx.conversation.set(Survey.colour)
    return echo("颜色？")


@router.state(Survey.colour)
async def on_colour(msg, ctx):
    """Stores the colour and asks for the size."""
    ctx.conversation.set(Survey.size, colour=ctx.args)
    return echo("尺寸？")


@router.state(Survey.size)
async def on_size(msg, ctx):
    """Stores the size and finishes."""
    data = ctx.conversation.data
    ctx.conversation.clear()
    return echo(f"完成:{data['colour']}/{ctx.args}")


@router.command("清单")
async def checklist(msg, ctx):
    """清单 —— 测试参数"""
    return echo(f"参数[{ctx.args}]")


@router.command("长文")
async def long_text(msg, ctx):
    """长文 —— 测试分页"""
    return Reply.of("common/page.txt.j2",
                    text="\n".join(f"第{i:03d}行：三楼东侧消防通道堵塞，需要立即清理。" for i in range(150)),
                    left=0)


@router.command("管理", roles={"admin"})
async def admin_only(msg, ctx):
    """管理 —— 只给管理员"""
    return echo("ok")


@router.command("慢")
async def slow(msg, ctx):
    """慢 —— 超时测试"""
    await asyncio.sleep(0.6)
    return echo("慢的结果")


@router.command("坏")
async def broken(msg, ctx):
    """坏 —— 异常测试"""
    raise RuntimeError("boom")


@router.command("回声")
async def echo_back(msg, ctx):
    """回声 —— 原样返回"""
    return echo(ctx.args)


@pytest.fixture
async def svc(start_service):
    return await start_service(routers=[router])


async def say(svc, user, text):
    delivery = await svc.wecom.text(user, text)
    assert delivery.status == 200
    return delivery.reply_text


async def test_a_conversation_survives_a_restart_of_the_service(start_service):
    first = await start_service(routers=[router])
    assert "颜色" in await say(first, "demo-liaison", "问卷")
    assert "尺寸" in await say(first, "demo-liaison", "红色")
    await first.server.close()
    second = await start_service(routers=[router])  # same database, new process state
    assert "完成:红色/大" in await say(second, "demo-liaison", "大")


async def test_cancel_leaves_the_conversation_and_others_are_untouched(svc):
    await say(svc, "demo-liaison", "问卷")
    await say(svc, "demo-principal", "问卷")
    assert "已取消" in await say(svc, "demo-liaison", "取消")
    assert "当前没有" in await say(svc, "demo-liaison", "取消")
    assert "尺寸" in await say(svc, "demo-principal", "蓝色")  # still in its own step


@pytest.fixture
def clock():
    """A movable clock; the door's replay check reads it too, so messages carry its time."""
    return FakeClock()


async def test_a_conversation_idle_for_half_an_hour_is_forgotten(start_service, clock):
    svc = await start_service(routers=[router])
    await say(svc, "demo-liaison", "问卷")
    clock.advance(minutes=29)
    assert "尺寸" in await say_at(svc, clock, "demo-liaison", "红色")
    clock.advance(minutes=31)
    assert "没有听懂" in await say_at(svc, clock, "demo-liaison", "大")


async def say_at(svc, clock, user, text):
    plain = svc.wecom.message_xml(user, "text", f"<Content>{text}</Content>")
    delivery = await svc.wecom.post_plaintext(plain, timestamp=str(int(clock.now().timestamp())))
    return delivery.reply_text


@pytest.mark.parametrize("text", ["清单消防", "清单 消防", "清单\u3000消防", "  清单　　消防  "])
async def test_commands_match_after_nfkc_with_or_without_spaces(svc, text):
    assert "参数[消防]" in await say(svc, "demo-liaison", text)


async def test_a_long_reply_is_paged_within_wecom_limits(svc):
    pages = [await say(svc, "demo-liaison", "长文")]
    while "下一页" in pages[-1]:
        pages.append(await say(svc, "demo-liaison", "下一页"))
        assert len(pages) < 20
    assert len(pages) > 2
    assert all(len(p.encode()) <= 2048 for p in pages)
    body = "\n".join(pages)
    assert all(f"第{i:03d}行" in body for i in range(150))
    assert "没有更多" in await say(svc, "demo-liaison", "下一页")


async def test_a_new_reply_discards_the_unread_pages(svc):
    await say(svc, "demo-liaison", "长文")
    await say(svc, "demo-liaison", "清单 消防")
    assert "没有更多" in await say(svc, "demo-liaison", "下一页")


async def test_help_lists_only_what_the_role_may_use(svc):
    liaison = await say(svc, "demo-liaison", "帮助")
    admin = await say(svc, "demo-admin", "帮助")
    assert "管理 —— 只给管理员" in admin and "管理" not in liaison.replace("管理员", "")
    assert "问卷 —— 测试用的两步对话" in liaison
    assert "不能使用「管理」" in await say(svc, "demo-liaison", "管理")


async def test_user_text_cannot_break_out_of_the_reply_cdata(svc):
    reply = await say(svc, "demo-liaison", "回声 a]]><x>b</x>]]>c")
    assert "a]]><x>b</x>]]>c" in reply


async def test_a_slow_handler_answers_at_once_and_pushes_its_result(svc, monkeypatch,
                                                                  fake_wecom):
    monkeypatch.setattr(bot.app_door, "REPLY_BUDGET_S", 0.1)
    reply = await say(svc, "demo-liaison", "慢")
    assert "正在处理" in reply
    await fake_wecom.wait_for_pushes(1)
    [push] = fake_wecom.pushes_to("demo-liaison")
    assert "慢的结果" in push.body["content"]


async def test_a_failing_handler_gets_an_apology_not_a_500(svc):
    assert "出错" in await say(svc, "demo-liaison", "坏")


async def test_a_photo_outside_any_conversation_is_answered_politely(svc):
    delivery = await svc.wecom.image("demo-liaison", "MEDIA123")
    assert "图片" in delivery.reply_text


def test_state_names_are_readable():
    assert Survey.colour.name == "Survey:colour"


async def test_a_users_messages_at_once_each_see_the_conversation_the_last_one_left(svc):
    """Messages arriving together read their conversation before the lock, in one batch; a
    turn that finds an earlier turn wrote it since reads it again (bot.dispatcher)."""
    from datetime import datetime, timezone

    from bot.keys import dispatcher_key
    from bot.messages import Incoming

    dispatcher = svc.server.app[dispatcher_key]

    def text(n: int, words: str) -> Incoming:
        return Incoming(channel="app", user_id="demo-liaison", kind="text",
                        dedupe_key=f"at-once:{n}", created_at=datetime.now(timezone.utc),
                        text=words)

    turns = await asyncio.gather(*(dispatcher.handle(text(n, words), dedupe_key=f"at-once:{n}")
                                   for n, words in enumerate(["问卷", "红色", "大"])))
    assert ["颜色" in turns[0].text, "尺寸" in turns[1].text] == [True, True]
    assert "完成:红色/大" in turns[2].text
    assert len(dispatcher.locks) == 0  # every key's slot is gone once nobody uses it
