"""The sandbox's configuration: the service's own config with local-only WeCom credentials.

These credentials are demo values for the loopback between the sandbox's local WeCom and the
service in the same process; they mean nothing to any real WeCom tenant.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bot.config import AibotConfig, AppConfig, Config
from bot.sandbox.demo import UNITS
from models.org import UnitKind

CORP_ID = "wwsandbox0000001"
AGENT_ID = 1000002
SECRET = "sandbox-secret-local-only"
TOKEN = "sandboxtoken"
ENCODING_AES_KEY = "c2FmZWJvdC1zYW5kYm94LWxvY2FsLW9ubHkta2V5ISE"  # 43 chars, 32 bytes
HOST = "127.0.0.1"
DB_FILE = "safebot.db"
WEBHOOK_KEY_PREFIX = "sandbox-"
WEBHOOK_KINDS = (UnitKind.SCHOOL, UnitKind.KINDERGARTEN)
AIBOT_ID = "sandbox-aibot"
AIBOT_SECRET = "sandbox-aibot-secret-local-only"
AIBOT_TOKEN = "sandboxaibottoken"
AIBOT_AES_KEY = "c2FuZGJveC1haWJvdC1jYWxsYmFjay1rZXktMzJiISE"  # 43 chars, 32 bytes
AIBOT_WS_PATH = "/sandbox/aibot/ws"


def sandbox_app_config() -> AppConfig:
    return AppConfig(corp_id=CORP_ID, agent_id=AGENT_ID, secret=SECRET, token=TOKEN,
                     encoding_aes_key=ENCODING_AES_KEY)


def sandbox_webhooks() -> dict[str, str]:
    """One group webhook per demo school or kindergarten: name = unit code, key = sandbox-CODE."""
    return {code: WEBHOOK_KEY_PREFIX + code for code, _name, kind, _parent in UNITS
            if kind in WEBHOOK_KINDS}


def sandbox_aibot_config(port: int, mode: str = "long_connection") -> AibotConfig:
    """The AI bot, on: a long connection to the sandbox's own gateway (or its callbacks)."""
    if mode == "callback":
        return AibotConfig(mode=mode, token=AIBOT_TOKEN, encoding_aes_key=AIBOT_AES_KEY)
    return AibotConfig(mode=mode, bot_id=AIBOT_ID, secret=AIBOT_SECRET,
                       ws_url=f"ws://{HOST}:{port}{AIBOT_WS_PATH}")


def sandbox_config(base: Config, *, port: int, data_dir: Path,
                   aibot_mode: str = "long_connection") -> Config:
    """``base`` with the sandbox's server, database and WeCom settings put over it.

    The database is always ``DATA_DIR/safebot.db``, whatever ``base`` says, so the sandbox can
    never write to a real database by accident; likewise the group webhooks are the demo ones,
    never the file's real keys.
    """
    db_path = (data_dir / DB_FILE).resolve()
    return replace(
        base,
        server=replace(base.server, host=HOST, port=port),
        database=replace(base.database, url=f"sqlite:///{db_path.as_posix()}"),
        wecom=replace(base.wecom, api_base_url=f"http://{HOST}:{port}", app=sandbox_app_config(),
                      webhooks=sandbox_webhooks(), aibot=sandbox_aibot_config(port, aibot_mode)),
    )


def origin(cfg: Config) -> str:
    """Where the sandbox listens, e.g. ``http://127.0.0.1:8080``."""
    return f"http://{cfg.server.host}:{cfg.server.port}"
