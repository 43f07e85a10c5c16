"""Fixtures: every test runs on SQLite and, when $SAFEBOT_TEST_POSTGRES_URL is set, again on
PostgreSQL; the service is started on a random 127.0.0.1 port and reached over real HTTP."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.app import APP_CALLBACK_PATH, create_app
from bot.clock import Clock
from bot.config import AppConfig, Config, DatabaseConfig, StorageConfig, WecomConfig
from bot.crypto import CallbackCrypto
from bot.db import Database, engine_url
from bot.sandbox.demo import seed_demo
from bot.sandbox.fake_api import FakeWeCom
from bot.sandbox.sender import AppCallbackSender
from models.migrate import upgrade

PG_ENV = "SAFEBOT_TEST_POSTGRES_URL"
CORP_ID = "wwtestcorp0000001"
AGENT_ID = 1000002
TOKEN = "testtoken"
SECRET = "testsecret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
BACKENDS = ["sqlite"] + (["postgres"] if os.environ.get(PG_ENV) else [])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "safebot.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    db.close()
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test run's own, so parallel runs on one server cannot collide."""
    base = make_url(engine_url(os.environ[PG_ENV]))
    name = f"safebot_test_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    upgrade(db.engine)
    db.close()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "safebot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    engine = create_engine(engine_url(url))
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"))]
        if tables:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables)
                              + " RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture
def demo(db: Database) -> Database:
    """The demo district of the sandbox, in the test database."""
    db.call(seed_demo)
    return db


def make_config(database_url: str, **wecom: object) -> Config:
    app = AppConfig(corp_id=CORP_ID, agent_id=AGENT_ID, secret=SECRET, token=TOKEN,
                    encoding_aes_key=AES_KEY)
    wecom.setdefault("webhooks", {"cd-sy": "wh-key-1"})
    return Config(database=DatabaseConfig(url=database_url), wecom=WecomConfig(app=app, **wecom))


@pytest.fixture
def crypto() -> CallbackCrypto:
    return CallbackCrypto(TOKEN, AES_KEY, CORP_ID)


@dataclass
class Service:
    server: TestServer
    http: aiohttp.ClientSession
    wecom: AppCallbackSender

    @property
    def url(self) -> str:
        return str(self.server.make_url(APP_CALLBACK_PATH))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake_wecom(clock: Clock) -> AsyncIterator[FakeWeCom]:
    """WeCom's API on a random 127.0.0.1 port; ``fake_wecom.url`` is its base URL."""
    from aiohttp import web
    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET, clock=clock,
                     webhook_keys={"wh-key-1"})
    app = web.Application()
    app.router.add_routes(fake.routes())
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    yield fake
    await server.close()


@pytest.fixture
async def start_service(demo: Database, database_url: str, clock: Clock,
                        fake_wecom: FakeWeCom, tmp_path: Path):
    """Start the real service on a random port; returns a ``Service`` (closed after the test).

    Keyword arguments: ``crypto``/``config`` to change credentials, ``routers`` to add test
    routers in front of the real ones, ``sweeps`` to run reminder sweeps (none by default:
    the catch-up sweep at start would make what a test sees depend on the wall clock).
    """
    started: list[tuple[TestServer, aiohttp.ClientSession]] = []

    async def start(*, config: Config | None = None, crypto: CallbackCrypto | None = None,
                    routers=None, sweeps=()) -> Service:
        from handlers import ROUTERS
        cfg = config or make_config(database_url, api_base_url=fake_wecom.url)
        cfg = replace(cfg, storage=StorageConfig(data_dir=str(tmp_path / "data")))
        app = create_app(cfg, clock=clock, routers=(*(routers or ()), *ROUTERS), sweeps=sweeps)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        http = aiohttp.ClientSession()
        started.append((server, http))
        sender = AppCallbackSender(http=http, url=str(server.make_url(APP_CALLBACK_PATH)),
                                   crypto=crypto or CallbackCrypto(
                                       cfg.wecom.app.token, cfg.wecom.app.encoding_aes_key,
                                       cfg.wecom.app.corp_id),
                                   agent_id=cfg.wecom.app.agent_id)
        return Service(server, http, sender)

    yield start
    for server, http in started:
        await http.close()
        await server.close()


@pytest.fixture
async def service(start_service) -> Service:
    return await start_service()
