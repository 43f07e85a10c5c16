"""Configuration: typed, validated, the bad key named; secrets from the environment."""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, load_config

ROOT = Path(__file__).parent.parent
GOOD_APP = """
[wecom.app]
corp_id = "wwabc"
agent_id = 1000002
secret = "s"
token = "t"
encoding_aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_config_documents_every_key_and_loads(tmp_path):
    example = (ROOT / "config.example.toml").read_text()
    cfg = load_config(write(tmp_path, example), env={}, require_app=False)
    assert cfg.server.port == 8080 and cfg.scheduler.timezone == "Asia/Shanghai"
    for key in ("host", "port", "url", "api_base_url", "replay_window_s", "corp_id", "agent_id",
                "secret", "token", "encoding_aes_key", "timezone"):
        assert f"\n{key} =" in example


def test_defaults_need_no_file(tmp_path):
    cfg = load_config(None, env={}, require_app=False)
    assert cfg.database.url.startswith("sqlite:///data/")
    assert cfg.wecom.replay_window_s == 300
    assert cfg.wecom.api_base_url == "https://qyapi.weixin.qq.com"


def test_secrets_come_from_the_environment(tmp_path):
    path = write(tmp_path, GOOD_APP.replace('secret = "s"', ""))
    cfg = load_config(path, env={"SAFEBOT_WECOM_APP_SECRET": "from-env",
                                 "SAFEBOT_SERVER_PORT": "9001"})
    assert cfg.wecom.app.secret == "from-env" and cfg.server.port == 9001


def test_the_config_path_may_come_from_safebot_config(tmp_path):
    path = write(tmp_path, "[server]\nport = 7001\n")
    assert load_config(None, env={"SAFEBOT_CONFIG": str(path)}, require_app=False).server.port == 7001


@pytest.mark.parametrize("text, key", [
    ('[server]\nport = "eighty"\n', "server.port"),
    ("[server]\nport = 70000\n", "server.port"),
    ('[database]\nurl = "mysql://x"\n', "database.url"),
    ('[scheduler]\ntimezone = "Mars/Base"\n', "scheduler.timezone"),
    ("[wecom]\nreplay_window_s = -1\n", "wecom.replay_window_s"),
    ('[server]\nhots = "x"\n', "server.hots"),
    (GOOD_APP.replace('token = "t"', ""), "wecom.app.token"),
    (GOOD_APP.replace("agent_id = 1000002", ""), "wecom.app.agent_id"),
    (GOOD_APP.replace("ABCDEFG", "AB"), "wecom.app.encoding_aes_key"),
    ("[server\n", "not valid TOML"),
])
def test_a_bad_or_missing_key_is_named(tmp_path, text, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(write(tmp_path, text), env={})


def test_serve_stops_at_start_up_naming_the_missing_key(tmp_path, capsys):
    assert main(["serve", "--config", str(write(tmp_path, "[server]\nport = 8099\n"))]) == 2
    assert "wecom.app.corp_id" in capsys.readouterr().err


def test_db_upgrade_creates_the_schema(tmp_path, capsys):
    path = write(tmp_path, f'[database]\nurl = "sqlite:///{tmp_path}/x/s.db"\n')
    assert main(["db", "upgrade", "--config", str(path)]) == 0
    assert (tmp_path / "x" / "s.db").exists()
