"""The sandbox: the real service and a local WeCom in one process, reached over real HTTP."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import Session, select

from bot.cli import main
from bot.config import Config
from bot.crypto import CallbackCrypto
from bot.keys import db_key, renderer_key
from bot.sandbox import settings
from bot.sandbox.demo import DEMO_USERIDS, PEOPLE
from bot.sandbox.run import bind, build_app, prepare, run_sandbox
from models.dedupe import ProcessedCallback
from models.org import Person, Unit

CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Sandbox:
    cfg: Config
    app: web.Application
    http: aiohttp.ClientSession  # base_url: the sandbox's origin

    async def say(self, sender: str, text: str) -> list[str]:
        async with self.http.post("/sandbox/api/messages",
                                  json={"from": sender, "text": text}) as resp:
            assert resp.status == 200, await resp.text()
            return (await resp.json())["replies"]

    def render(self, name: str, **data: object) -> str:
        return self.app[renderer_key].render(name, **data)


@asynccontextmanager
async def running_sandbox(data_dir: Path) -> AsyncIterator[Sandbox]:
    """What ``run_sandbox`` serves, on a free port, inside the test's event loop."""
    sock, cfg = prepare(config_path=None, port=0, data_dir=data_dir)
    runner = web.AppRunner(build_app(cfg, sweeps=()), access_log=None)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
        async with aiohttp.ClientSession(base_url=settings.origin(cfg)) as http:
            yield Sandbox(cfg, runner.app, http)
    finally:
        await runner.cleanup()
        sock.close()


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    async with running_sandbox(tmp_path / "sandbox") as box:
        yield box


async def test_page_lists_the_demo_people(sandbox: Sandbox) -> None:
    async with sandbox.http.get("/sandbox") as resp:  # redirected to /sandbox/
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert str(resp.url).endswith("/sandbox/")
        page = await resp.text()
    for userid, name, *_ in PEOPLE:
        assert f'value="{userid}"' in page
        assert name in page
    assert "推送" in page and "api/pushes" in page
    assert "<script src" not in page and "http://" not in page.split("<script", 1)[1]


async def test_people_api(sandbox: Sandbox) -> None:
    async with sandbox.http.get("/sandbox/api/people") as resp:
        people = await resp.json()
    assert [p["userid"] for p in people][:len(DEMO_USERIDS)] == list(DEMO_USERIDS)
    assert sorted(p["userid"] for p in people) == sorted(p[0] for p in PEOPLE)
    liaison = people[0]
    assert liaison == {"userid": "demo-liaison", "name": "张联络", "title": "安全办主任",
                       "unit": "城东实验小学", "roles": ["成员", "联络员"], "featured": True}


async def test_page_escapes_names_from_the_database(sandbox: Sandbox) -> None:
    def add_person(*, session: Session) -> None:
        unit = session.exec(select(Unit).where(Unit.code == "CD-SY")).one()
        session.add(Person(userid="x-evil", name="<b>坏</b>", title="\"'&", unit_id=unit.id))

    await sandbox.app[db_key].run(add_person)
    async with sandbox.http.get("/sandbox/") as resp:
        page = await resp.text()
    assert "<b>坏</b>" not in page
    assert "&lt;b&gt;坏&lt;/b&gt;" in page
    assert "\\u003cb\\u003e" in page  # the JSON copy for the script is escaped too


async def test_help_goes_through_the_real_door(sandbox: Sandbox) -> None:
    def callbacks(*, session: Session) -> list[str]:
        return list(session.exec(select(ProcessedCallback.key)).all())

    before = await sandbox.app[db_key].run(callbacks)
    replies = await sandbox.say("demo-liaison", "帮助")
    assert len(replies) == 1 and "张联络" in replies[0]
    after = await sandbox.app[db_key].run(callbacks)
    new = set(after) - set(before)
    assert len(new) == 1 and new.pop().startswith("app:")


async def test_unknown_sender_is_told_how_to_bind(sandbox: Sandbox) -> None:
    assert await sandbox.say("new-teacher", "你好") == [sandbox.render("common/unbound.txt.j2")]


async def test_empty_text_is_answered(sandbox: Sandbox) -> None:
    assert await sandbox.say("demo-duty", "") == [sandbox.render("common/empty.txt.j2")]


@pytest.mark.parametrize("body", [
    b"not json", b"", b"[1, 2]", b'{"text": "hi"}', b'{"from": "", "text": "hi"}',
    b'{"from": "  ", "text": "hi"}', b'{"from": 7, "text": "hi"}', b'{"from": "demo-duty"}',
    b'{"from": "demo-duty", "text": 5}', b'{"from": "demo-duty", "text": null}',
])
async def test_bad_requests_get_400_with_a_chinese_error(sandbox: Sandbox, body: bytes) -> None:
    async with sandbox.http.post("/sandbox/api/messages", data=body,
                                 headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
    assert CJK.search(error)


async def test_overlong_text_is_refused(sandbox: Sandbox) -> None:
    async with sandbox.http.post("/sandbox/api/messages",
                                 json={"from": "demo-duty", "text": "长" * 5000}) as resp:
        assert resp.status == 400
        assert "4000" in (await resp.json())["error"]


async def test_restart_keeps_the_data(tmp_path: Path) -> None:
    async with running_sandbox(tmp_path) as box:
        await box.say("demo-liaison", "帮助")
    async with running_sandbox(tmp_path) as box:
        count = await box.app[db_key].run(lambda *, session: len(session.exec(select(Unit)).all()))
        assert count == 7
        assert len(await box.say("demo-liaison", "帮助")) == 1


def test_sandbox_config_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "safebot.toml"
    path.write_text('[server]\nhost = "0.0.0.0"\nport = 9000\n'
                    '[database]\nurl = "postgresql://prod/db"\n'
                    '[wecom]\napi_base_url = "https://qyapi.weixin.qq.com"\n'
                    '[wecom.app]\ncorp_id = "wwreal"\nsecret = "real"\n'
                    '[scheduler]\ntimezone = "Asia/Urumqi"\n', encoding="utf-8")
    sock, cfg = prepare(config_path=path, port=0, data_dir=tmp_path / "d")
    port = sock.getsockname()[1]
    sock.close()
    assert (cfg.server.host, cfg.server.port) == ("127.0.0.1", port)
    assert cfg.database.url == f"sqlite:///{(tmp_path / 'd' / 'safebot.db').resolve().as_posix()}"
    assert cfg.wecom.api_base_url == f"http://127.0.0.1:{port}"
    assert cfg.wecom.app == settings.sandbox_app_config()
    assert cfg.scheduler.timezone == "Asia/Urumqi"  # everything else comes from the file
    app = cfg.wecom.app
    CallbackCrypto(app.token, app.encoding_aes_key, app.corp_id)  # a valid key


def test_busy_port_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock = bind(0)
    try:
        port = sock.getsockname()[1]
        assert run_sandbox(config_path=None, port=port, data_dir=tmp_path) == 1
    finally:
        sock.close()
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["sandbox", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--port" in out and "--data" in out and "--config" in out


def test_the_command_runs(tmp_path: Path) -> None:
    """``safebot sandbox`` as a real process: it announces its page, serves it, and stops.
    Bounded: at most about 20 s before the process is killed."""
    sock = bind(0)
    port = sock.getsockname()[1]
    sock.close()
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from bot.cli import main; raise SystemExit(main())",
             "sandbox", "--port", str(port), "--data", str(tmp_path / "data")],
            stdout=stdout, stderr=stderr, cwd=Path(__file__).parents[1])
    try:
        url = _wait_for_address(out, proc, deadline=time.monotonic() + 10)
        assert url == f"http://127.0.0.1:{port}/sandbox/", err.read_text()
        with urllib.request.urlopen(url, timeout=3) as resp:
            assert resp.status == 200 and "张联络" in resp.read().decode()
        body = json.dumps({"from": "demo-liaison", "text": "帮助"}).encode()
        request = urllib.request.Request(url + "api/messages", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert "张联络" in json.loads(resp.read())["replies"][0]
        proc.terminate()
        assert proc.wait(timeout=5) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert (tmp_path / "data" / "safebot.db").exists()


def _wait_for_address(out: Path, proc: subprocess.Popen, *, deadline: float) -> str:
    while time.monotonic() < deadline:
        found = re.search(r"open (http://\S+) in a browser", out.read_text())
        if found:
            return found.group(1)
        assert proc.poll() is None, f"exited with {proc.returncode}"
        time.sleep(0.1)
    raise AssertionError("safebot sandbox did not announce its address in time")
