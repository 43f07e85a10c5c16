"""kill -9 of a real ``safebot serve`` subprocess mid-dispatch and mid-conversation, then a
restart: nothing lost, nothing delivered or filed twice (bench/faults_process.py, small); and
a 确认 whose turn failed after filing is not filed twice (bench/faults_process.py pg-restart).

The service runs with a 2-second outbox lease (``python -m bench.harness serve``) so the rows
the killed instance had leased come due again quickly; the fake WeCom runs in this process.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from bench.faults_process import (ConversationPlan, DispatchPlan, Report, kill_conversation,
                                  kill_dispatch)
from bench.harness import CORP_ID, SECRET, LocalFakeWeCom
from bot.clock import Clock
from bot.db import Database
from bot.sandbox.fake_api import FakeWeCom
from models.hazard import Hazard

LEASE_S = 2.0


@pytest.fixture
async def wecom() -> AsyncIterator[LocalFakeWeCom]:
    """The fake WeCom, with the credentials the harness writes into the service's config."""
    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET, clock=Clock(), rate_limits=True)
    app = web.Application()
    app.router.add_routes(fake.routes())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield LocalFakeWeCom(fake)
    await server.close()


def failed(report: Report, *, tolerated: tuple[str, ...] = ()) -> list[str]:
    return [name for name in report.failures if not name.endswith(tolerated)]


async def test_a_kill_mid_dispatch_loses_no_push_and_delivers_none_twice(
        demo: Database, database_url: str, wecom: LocalFakeWeCom, tmp_path: Path):
    lines: list[str] = []
    report = Report("kill-dispatch", out=lines.append)
    plan = DispatchPlan(bulk=300, members=20, reports=2, kill_after=0.3, lease_s=LEASE_S,
                        wecom_delay_s=0.1)
    await kill_dispatch(database_url, wecom, tmp_path, plan, report)
    print("\n".join(lines))
    assert report.passed + report.failed >= 10 and not failed(report), "\n".join(lines)


async def test_a_kill_mid_conversation_resumes_it_and_files_every_hazard_once(
        demo: Database, database_url: str, wecom: LocalFakeWeCom, tmp_path: Path):
    """Also: a 确认 killed between its dedupe row and its hazard is processed on WeCom's
    re-delivery (the row was not marked done: models.dedupe), and a user who sends 确认 again
    gets it filed once."""
    lines: list[str] = []
    report = Report("kill-conversation", out=lines.append)
    plan = ConversationPlan(in_flight_users=("cd-liaison", "cx-liaison", "cdyey-liaison"),
                            lease_s=LEASE_S, mid_turn=False)
    await kill_conversation(database_url, wecom, tmp_path, plan, report)
    print("\n".join(lines))
    assert report.passed + report.failed >= 7, "\n".join(lines)
    assert not failed(report), "\n".join(lines)


async def test_a_confirm_whose_turn_failed_after_filing_is_answered_not_filed_again(
        service, demo: Database, monkeypatch):
    """The database goes away after 确认 filed the hazard, before the dispatcher writes the
    conversation back (what pg-restart caught): the user is told it failed and sends 确认
    again, which must answer with that hazard instead of filing a second one."""
    import bot.dispatcher
    from models import conversation

    user = "demo-liaison"
    for words in ("上报 楼梯扶手松动 @教学楼一楼", "校舍", "一般", "跳过"):
        reply = (await service.wecom.text(user, words)).reply_text
    assert "请确认隐患信息" in reply

    def save_fails(**kwargs):
        raise OperationalError("COMMIT", {}, Exception("terminating connection"))
    monkeypatch.setattr(bot.dispatcher, "conversation",
                        SimpleNamespace(load=conversation.load, save=save_fails))
    assert "出错了" in (await service.wecom.text(user, "确认")).reply_text
    monkeypatch.undo()

    again = (await service.wecom.text(user, "确认")).reply_text
    filed = demo.call(lambda session: session.exec(
        select(Hazard).where(Hazard.description == "楼梯扶手松动")).all())
    assert len(filed) == 1 and f"已上报隐患 {filed[0].number}" in again
    assert "没有听懂" in (await service.wecom.text(user, "确认")).reply_text  # and it is over
