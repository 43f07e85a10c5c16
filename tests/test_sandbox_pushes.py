"""The sandbox's local WeCom API side: the service's pushes arrive through the real gettoken and
message/send, card buttons go back through the real template_card_event callback, and the
faults API changes how the local WeCom behaves. All over real HTTP on 127.0.0.1."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from sqlmodel import Session, select

import bot.pushes
from bot.keys import api_key, clock_key, db_key
from bot.keys import sender_key as outbox_key
from bot.sandbox import settings
from bot.sandbox.keys import wecom_key
from models import outbox
from models.dedupe import ProcessedCallback
from tests.test_sandbox import CJK, Sandbox, running_sandbox

WAIT_S = 5.0
CARD = {"card_type": "button_interaction", "main_title": {"title": "隐患整改待确认"},
        "sub_title_text": "请确认已收到", "task_id": "t1",
        "horizontal_content_list": [{"keyname": "学校", "value": "城东实验小学"}],
        "button_list": [{"text": "确认", "style": 1, "key": "ack:1"},
                        {"text": "稍后", "style": 2, "key": "later:1"}]}


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with running_sandbox(tmp_path / "sandbox") as box:
        yield box


async def push_text(box: Sandbox, to: str, text: str, key: str) -> None:
    app = box.app
    await app[db_key].run(bot.pushes.enqueue_text, key=key, to=to, text=text,
                          now=app[clock_key].now())
    app[outbox_key].wake()


async def push_card(box: Sandbox, to: str, card: dict[str, Any], key: str) -> None:
    app = box.app
    await app[db_key].run(outbox.enqueue, key=key, recipient=to, msgtype="template_card",
                          payload=card, now=app[clock_key].now())
    app[outbox_key].wake()


async def get_json(box: Sandbox, path: str, *, status: int = 200, **params: str) -> Any:
    async with box.http.get(path, params=params) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


async def post_json(box: Sandbox, path: str, body: Any, *, status: int = 200) -> Any:
    async with box.http.post(path, json=body) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


async def wait_pushes(box: Sandbox, to: str, count: int) -> list[dict[str, Any]]:
    """Poll the pushes API until ``to`` has ``count`` pushes; at most ``WAIT_S`` seconds."""
    deadline = time.monotonic() + WAIT_S
    while True:
        pushes = (await get_json(box, "/sandbox/api/pushes", to=to))["pushes"]
        if len(pushes) >= count or time.monotonic() > deadline:
            assert len(pushes) == count, pushes
            return pushes
        await asyncio.sleep(0.05)


async def faults(box: Sandbox) -> dict[str, Any]:
    return await get_json(box, "/sandbox/api/faults")


def processed(*, session: Session) -> set[str]:
    return set(session.exec(select(ProcessedCallback.key)).all())


async def test_a_text_push_arrives_through_gettoken_and_message_send(sandbox: Sandbox) -> None:
    assert (await faults(sandbox))["gettoken_calls"] == 0
    await push_text(sandbox, "demo-principal", "今天有 2 条隐患待处理", key="t:1")
    [push] = await wait_pushes(sandbox, "demo-principal", 1)
    assert push["msgtype"] == "text" and push["to"] == "demo-principal"
    assert push["view"] == {"kind": "text", "content": "今天有 2 条隐患待处理"}
    assert push["dropped"] is False and push["duplicate"] is False
    assert push["time"].startswith(time.strftime("%Y-", time.gmtime(push["at"])))
    state = await faults(sandbox)
    assert (state["gettoken_calls"], state["api_calls"], state["pushes"]) == (1, 1, 1)
    assert state["delivered"] == 1 and state["dropped"] == 0
    # ``after``: nothing newer; other people have nothing
    assert await get_json(sandbox, "/sandbox/api/pushes", to="demo-principal",
                          after=str(push["id"])) == {"pushes": [], "updated": []}
    assert await get_json(sandbox, "/sandbox/api/pushes", to="demo-duty") == {"pushes": []}


async def test_a_card_click_goes_back_through_the_real_callback(sandbox: Sandbox) -> None:
    await push_card(sandbox, "demo-principal", CARD, key="c:1")
    [push] = await wait_pushes(sandbox, "demo-principal", 1)
    view = push["view"]
    assert view["kind"] == "template_card" and view["card_type"] == "button_interaction"
    assert (view["main_title"], view["sub_title"], view["task_id"]) == (
        "隐患整改待确认", "请确认已收到", "t1")
    assert view["horizontal_content_list"] == [{"keyname": "学校", "value": "城东实验小学"}]
    assert view["button_list"] == [{"text": "确认", "key": "ack:1", "style": 1},
                                   {"text": "稍后", "key": "later:1", "style": 2}]
    assert (view["updated"], view["replace_name"], view["clickable"]) == (False, "", True)

    before = await sandbox.app[db_key].run(processed)
    answer = await post_json(sandbox, "/sandbox/api/card_click",
                             {"from": "demo-principal", "task_id": "t1", "key": "ack:1"})
    assert isinstance(answer["replies"], list) and answer["push"]["id"] == push["id"]
    new = await sandbox.app[db_key].run(processed) - before
    assert len(new) == 1 and new.pop().startswith("app:")

    # the service greys the button out with the response_code WeCom gave it
    [sent] = [p for p in sandbox.app[wecom_key].pushes if p.task_id == "t1"]
    await sandbox.app[api_key].update_template_card(
        userids=["demo-principal"], response_code=sent.response_code, replace_name="已确认")
    changed = await get_json(sandbox, "/sandbox/api/pushes", to="demo-principal",
                             after=str(push["id"]))
    assert changed["pushes"] == [] and len(changed["updated"]) == 1
    view = changed["updated"][0]["view"]
    assert (view["updated"], view["replace_name"], view["clickable"]) == (True, "已确认", False)
    async with sandbox.http.post("/sandbox/api/card_click", json={
            "from": "demo-principal", "task_id": "t1", "key": "ack:1"}) as resp:
        assert resp.status == 409 and CJK.search((await resp.json())["error"])


@pytest.mark.parametrize("replace_text, clickable", [("已处理", False), (None, True)])
async def test_a_card_replaced_by_a_whole_new_card(sandbox: Sandbox, replace_text: str | None,
                                                   clickable: bool) -> None:
    await push_card(sandbox, "demo-liaison", CARD, key="c:1")
    [push] = await wait_pushes(sandbox, "demo-liaison", 1)
    [sent] = [p for p in sandbox.app[wecom_key].pushes if p.task_id == "t1"]
    new_card = {**CARD, "main_title": {"title": "隐患已整改"},
                "button_list": [{"text": "复查", "style": 1, "key": "recheck:1"}]}
    if replace_text:
        new_card["replace_text"] = replace_text
    await sandbox.app[api_key].update_template_card(
        userids=["demo-liaison"], response_code=sent.response_code, card=new_card)
    [changed] = (await get_json(sandbox, "/sandbox/api/pushes", to="demo-liaison",
                                after=str(push["id"])))["updated"]
    view = changed["view"]
    assert (view["main_title"], view["updated"], view["clickable"]) == (
        "隐患已整改", True, clickable)
    assert view["replace_name"] == (replace_text or "")
    assert view["button_list"] == [{"text": "复查", "key": "recheck:1", "style": 1}]
    click = {"from": "demo-liaison", "task_id": "t1", "key": "recheck:1"}
    await post_json(sandbox, "/sandbox/api/card_click", click, status=200 if clickable else 409)
    click["key"] = "ack:1"  # the old card's button is gone
    await post_json(sandbox, "/sandbox/api/card_click", click, status=400 if clickable else 409)


@pytest.mark.parametrize("body, status", [
    ({"from": "demo-principal", "task_id": "nope", "key": "ack:1"}, 404),
    ({"from": "demo-duty", "task_id": "t1", "key": "ack:1"}, 404),         # not this person's
    ({"from": "demo-principal", "task_id": "t1", "key": "bogus"}, 400),    # no such button
    ({"task_id": "t1", "key": "ack:1"}, 400),
    ({"from": "demo-principal", "key": "ack:1"}, 400),
    ({"from": "demo-principal", "task_id": "t1"}, 400),
    ({"from": "demo-principal", "task_id": "t1", "key": 5}, 400),
    ({"from": " ", "task_id": "t1", "key": "ack:1"}, 400),
    (["demo-principal"], 400),
])
async def test_bad_card_clicks_are_refused_in_chinese(sandbox: Sandbox, body: Any,
                                                     status: int) -> None:
    await push_card(sandbox, "demo-principal", CARD, key="c:1")
    await wait_pushes(sandbox, "demo-principal", 1)
    before = await sandbox.app[db_key].run(processed)
    error = (await post_json(sandbox, "/sandbox/api/card_click", body, status=status))["error"]
    assert CJK.search(error)
    assert await sandbox.app[db_key].run(processed) == before  # nothing reached the service


async def test_expired_tokens_cost_exactly_one_more_gettoken(sandbox: Sandbox) -> None:
    await push_text(sandbox, "demo-liaison", "第一条", key="t:1")
    await wait_pushes(sandbox, "demo-liaison", 1)
    assert (await faults(sandbox))["gettoken_calls"] == 1
    await post_json(sandbox, "/sandbox/api/faults", {"expire_tokens": True})
    await push_text(sandbox, "demo-liaison", "第二条", key="t:2")
    pushes = await wait_pushes(sandbox, "demo-liaison", 2)
    assert pushes[1]["view"]["content"] == "第二条"
    state = await faults(sandbox)
    assert state["gettoken_calls"] == 2  # 42001, one refetch, the same call again
    assert state["api_calls"] == 3


async def test_a_busy_wecom_is_retried(sandbox: Sandbox) -> None:
    state = await post_json(sandbox, "/sandbox/api/faults", {"fail": [-1]})
    assert state["fail"] == [-1]
    await push_text(sandbox, "demo-duty", "值班提醒", key="t:1")
    await wait_pushes(sandbox, "demo-duty", 1)
    state = await faults(sandbox)
    assert state["fail"] == [] and state["api_calls"] == 2


async def test_fault_switches_and_reset(sandbox: Sandbox) -> None:
    state = await post_json(sandbox, "/sandbox/api/faults", {
        "fail": [45009, 40014], "delay_s": 0.25, "down": True, "rate_limits": False})
    assert (state["fail"], state["delay_s"], state["down"], state["rate_limits"]) == (
        [45009, 40014], 0.25, True, False)
    assert state == await faults(sandbox)
    wecom = sandbox.app[wecom_key]
    assert wecom.faults.down and wecom.faults.delay_s == 0.25 and not wecom.rate_limits
    async with sandbox.http.get("/cgi-bin/gettoken", params={
            "corpid": settings.CORP_ID, "corpsecret": settings.SECRET}) as resp:
        assert resp.status == 503  # down, as told
    state = await post_json(sandbox, "/sandbox/api/faults", {"reset": True, "fail": [-1]})
    assert (state["fail"], state["delay_s"], state["down"], state["rate_limits"]) == (
        [-1], 0.0, False, True)
    assert state["webhooks"] == sorted(settings.sandbox_webhooks().values())


@pytest.mark.parametrize("body", [
    {"fail": "45009"}, {"fail": [True]}, {"fail": [1.5]}, {"fail": 45009}, {"fail": [0] * 101},
    {"delay_s": -1}, {"delay_s": 61}, {"delay_s": "1"}, {"delay_s": True},
    {"down": "yes"}, {"expire_tokens": 1}, {"rate_limits": None}, {"reset": "true"},
    {"bogus": 1}, {"down": True, "delay_s": -1}, [1], "down",
])
async def test_bad_faults_are_refused_and_change_nothing(sandbox: Sandbox, body: Any) -> None:
    before = await faults(sandbox)
    error = (await post_json(sandbox, "/sandbox/api/faults", body, status=400))["error"]
    assert CJK.search(error)
    assert await faults(sandbox) == before


async def test_faults_not_json(sandbox: Sandbox) -> None:
    async with sandbox.http.post("/sandbox/api/faults", data=b"{",
                                 headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400 and CJK.search((await resp.json())["error"])


@pytest.mark.parametrize("params", [{}, {"to": ""}, {"to": "  "},
                                    {"to": "demo-duty", "after": "x"},
                                    {"to": "demo-duty", "after": "-1"},
                                    {"to": "demo-duty", "after": "１"}])
async def test_bad_pushes_queries_are_refused_in_chinese(sandbox: Sandbox,
                                                         params: dict[str, str]) -> None:
    error = (await get_json(sandbox, "/sandbox/api/pushes", status=400, **params))["error"]
    assert CJK.search(error)


async def test_over_the_limit_pushes_are_shown_as_dropped(sandbox: Sandbox) -> None:
    """WeCom drops the 31st message in a minute to one person and still says ok."""
    async with sandbox.http.get("/cgi-bin/gettoken", params={
            "corpid": settings.CORP_ID, "corpsecret": settings.SECRET}) as resp:
        token = (await resp.json())["access_token"]

    async def send(msgtype: str, body: dict[str, Any]) -> dict[str, Any]:
        async with sandbox.http.post("/cgi-bin/message/send", params={"access_token": token},
                                     json={"touser": "demo-duty", "msgtype": msgtype,
                                           "agentid": settings.AGENT_ID, msgtype: body}) as resp:
            return await resp.json()

    for i in range(30):
        assert (await send("text", {"content": f"第 {i} 条"}))["errcode"] == 0
    answer = await send("template_card", {**CARD, "task_id": "late"})
    assert answer["errcode"] == 0 and answer["response_code"]  # ok, yet never delivered
    pushes = (await get_json(sandbox, "/sandbox/api/pushes", to="demo-duty"))["pushes"]
    assert len(pushes) == 31 and not any(p["dropped"] for p in pushes[:30])
    assert pushes[30]["dropped"] is True and pushes[30]["view"]["clickable"] is False
    assert (await faults(sandbox))["dropped"] == 1
    error = (await post_json(sandbox, "/sandbox/api/card_click",
                             {"from": "demo-duty", "task_id": "late", "key": "ack:1"},
                             status=404))["error"]
    assert "丢弃" in error


async def test_a_group_webhook_push_is_listed_under_its_key(sandbox: Sandbox) -> None:
    assert sandbox.cfg.wecom.webhooks["CD-SY"] == "sandbox-CD-SY"
    app = sandbox.app
    await app[db_key].run(outbox.enqueue, key="w:1", recipient="CD-SY", msgtype="markdown",
                          payload={"content": "**本周隐患通报**"}, now=app[clock_key].now(),
                          channel="webhook")
    app[outbox_key].wake()
    [push] = await wait_pushes(sandbox, "webhook:sandbox-CD-SY", 1)
    assert push["view"] == {"kind": "markdown", "content": "**本周隐患通报**"}
    assert (await faults(sandbox))["gettoken_calls"] == 0  # a webhook needs no token


async def test_the_page_shows_pushes_and_webhooks(sandbox: Sandbox) -> None:
    async with sandbox.http.get("/sandbox/") as resp:
        page = await resp.text()
    assert "api/card_click" in page and "after=" in page and "被丢弃" in page
    assert 'value="webhook:sandbox-CD-SY"' in page and "城东实验小学（CD-SY）" in page
