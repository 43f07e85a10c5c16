"""Structured logs, and no secret in any log line, whatever the level."""
from __future__ import annotations

import io
import json
import logging
from dataclasses import replace

import pytest

from bot.config import Config, ConfigError, LoggingConfig, load_config
from bot.keys import sender_key
from bot.ops.logs import setup_logging
from bot.pushes import enqueue_text
from models import outbox
from tests.conftest import AES_KEY, SECRET, TOKEN, make_config


@pytest.fixture
def capture():
    """``capture(cfg)`` sets logging up as ``safebot`` does, into a buffer; undone after."""
    root, handlers = logging.getLogger(), []
    level = root.level

    def start(cfg) -> io.StringIO:
        buf = io.StringIO()
        handlers.append(setup_logging(cfg, stream=buf))
        return buf
    yield start
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_time_level_logger_message_and_extra_fields(capture):
    buf = capture(Config(logging=LoggingConfig(format="json")))
    log = logging.getLogger("safebot.test")
    log.info("sent %d pushes", 3, extra={"door": "app", "elapsed_ms": 12.5})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    first, second = (json.loads(line) for line in buf.getvalue().splitlines())
    assert first["ts"].endswith("Z") and first["level"] == "INFO"
    assert first["logger"] == "safebot.test" and first["message"] == "sent 3 pushes"
    assert first["door"] == "app" and first["elapsed_ms"] == 12.5
    assert second["level"] == "ERROR" and "ValueError: boom" in second["exc"]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_are_masked_in_messages_extras_and_tracebacks(capture, fmt):
    cfg = make_config("postgresql://safebot:pg-pass-42@db:5432/safebot",
                      webhooks={"g": "hook-key-123"})
    buf = capture(replace(cfg, logging=LoggingConfig(format=fmt)))
    log = logging.getLogger("safebot.test")
    log.warning("GET /cgi-bin/gettoken?corpid=ww1&corpsecret=%s", "anything-at-all")
    log.warning("POST /cgi-bin/message/send?access_token=TOKEN-abc.123_x&debug=1 failed")
    log.warning("webhook https://x/cgi-bin/webhook/send?key=unknown-key-9 and %s", "hook-key-123")
    log.warning('{"errcode": 0, "access_token": "TOKEN-xyz", "expires_in": 7200}')
    log.info("config", extra={"aes": AES_KEY, "secret": SECRET})
    try:
        raise RuntimeError(f"token {TOKEN} and pg-pass-42")
    except RuntimeError:
        log.exception("failed")
    out = buf.getvalue()
    for secret in ("anything-at-all", "TOKEN-abc.123_x", "unknown-key-9", "hook-key-123",
                   "TOKEN-xyz", AES_KEY, SECRET, TOKEN, "pg-pass-42"):
        assert secret not in out
    assert "access_token=***&debug=1" in out and "corpid=ww1" in out


def test_the_format_and_level_are_checked(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[logging]\nformat = "xml"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="logging.format"):
        load_config(path, env={}, require_app=False)
    cfg = load_config(None, env={"SAFEBOT_LOGGING_FORMAT": "json",
                                 "SAFEBOT_LOGGING_LEVEL": "DEBUG"}, require_app=False)
    assert cfg.logging == LoggingConfig(format="json", level="DEBUG")


async def test_callbacks_and_pushes_at_debug_leak_no_secret(start_service, database_url,
                                                            fake_wecom, demo, clock, capture):
    cfg = make_config(database_url, api_base_url=fake_wecom.url)
    buf = capture(replace(cfg, logging=LoggingConfig(format="json", level="DEBUG")))
    service = await start_service(config=cfg)
    for text in ("帮助", "隐患 YH2026-000001", "绑定 NOPE"):
        assert (await service.wecom.text("demo-liaison", text)).status == 200
    sender = service.server.app[sender_key]
    demo.call(enqueue_text, key="p1", to="demo-principal", text="提醒", now=clock.now())
    demo.call(outbox.enqueue, key="w1", channel="webhook", recipient="cd-sy", msgtype="text",
              payload={"content": "群提醒"}, now=clock.now())
    sender.wake()
    await fake_wecom.wait_for_pushes(2)
    fake_wecom.expire_tokens()  # 42001: the token is fetched again
    fake_wecom.fail_next(40008)  # a refused push is logged with WeCom's answer
    demo.call(enqueue_text, key="p2", to="demo-principal", text="再次提醒", now=clock.now())
    demo.call(enqueue_text, key="p3", to="demo-liaison", text="提醒", now=clock.now())
    sender.wake()
    await fake_wecom.wait_for_pushes(3)
    await service.server.close()  # shutdown logs too
    out = buf.getvalue()
    assert fake_wecom.gettoken_calls == 2 and "access_token=***" in out  # fake's access log
    for secret in (SECRET, TOKEN, AES_KEY, "wh-key-1", *fake_wecom.tokens):
        assert secret not in out, secret
    assert all(json.loads(line) for line in out.splitlines())
