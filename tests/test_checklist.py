"""The checklists: the files as shipped, the loader's checks, the look-ups, and 清单 through the
real door."""
from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

import bot.app
from bot.app import create_app
from models.checklist import ChecklistError, load_checklists

SHIPPED = Path(str(files("models") / "checklists"))
SEED_004 = ["危险化学品", "消防安全", "人员密集场所", "交通安全", "防汛和地质灾害"]
SEED_001 = ["在建工程", "校车", "食品安全", "校舍安全", "特种设备", "传染病防控", "治安防范"]

# Copied by hand from ../shared/seeds/004_0c1ecd74fb857fd7.txt, numbering and trailing space cut.
VERBATIM = {
    ("消防安全", 2): "校园违规采用易燃可燃装饰装修，占用、堵塞疏散通道、安全出口等问题情况。",
    ("危险化学品", 5): "对教学中已不需要的化学药品， 是否及时清理调出， 变质失效的是否及时报废。",
    ("危险化学品", 7): "危险化学品保管使用人员是否开展专项安全教育培训。",
    ("人员密集场所", 3): "防人员踩踏防范情况。",
    ("交通安全", 5): "学生上、下学期间，是否有学校领导或值班人员值守。",
    ("防汛和地质灾害", 5): "做好汛期暑期预防未成年人防溺水工作。",
    ("消防安全", 1): "“防风险、除隐患、保平安、迎大庆”消防安全检查专项行动是否扎实开展，"
                     "隐患排查整治是否扎实有效。",
}


@pytest.fixture(scope="module")
def checklists():
    return load_checklists()


def test_the_shipped_files_hold_twelve_areas_seed_004_first(checklists):
    assert [a.name for a in checklists.all()] == SEED_004 + SEED_001
    assert [len(a.items) for a in checklists.all()[:5]] == [7, 3, 4, 6, 5]
    assert all(4 <= len(a.items) <= 6 for a in checklists.all()[5:])
    assert load_checklists(SHIPPED).all() == checklists.all()


def test_seed_004_items_are_verbatim(checklists):
    by_name = {a.name: a for a in checklists.all()}
    for (name, number), text in VERBATIM.items():
        assert by_name[name].items[number - 1].text == text


def test_every_seed_004_item_appears_in_the_seed_text(checklists):
    # a copy of seed 004 (the 2019 Zhengdong campaign plan) kept with the tests
    body = (Path(__file__).parent / "seeds" / "004_zhengdong_2019.txt").read_text(encoding="utf-8")
    for area in checklists.all()[:5]:
        for number, item in enumerate(area.items, 1):
            assert f"{number}.{item.text}" in body, item.id


def test_the_word_the_list_suggests_finds_exactly_that_area(checklists):
    for area in checklists.all():
        assert checklists.find(area.shortcut) == [area]
    assert [a.shortcut for a in checklists.all()][:2] == ["危化品", "消防"]


def test_every_area_says_where_it_comes_from(checklists):
    assert all("2019" in a.source for a in checklists.all()[:5])
    assert all("safebot" in a.source and "常州" in a.source for a in checklists.all()[5:])


# --- the loader's checks -----------------------------------------------------------------

GOOD = """key = "{key}"
name = "{name}"
aliases = ["{alias}"]
keywords = ["电线"]
major_signs = ["锁闭"]
source = "测试"

[[items]]
id = "{key}-1"
text = "是否测试。"
"""


def write(tmp_path: Path, file: str, text: str) -> None:
    (tmp_path / file).write_text(text, encoding="utf-8")


def good(key="one", name="甲领域", alias="甲") -> str:
    return GOOD.format(key=key, name=name, alias=alias)


def test_a_copy_of_good_files_loads(tmp_path):
    write(tmp_path, "a.toml", good())
    write(tmp_path, "b.toml", good("two", "乙领域", "乙"))
    write(tmp_path, "notes.txt", "not a checklist")
    assert [a.key for a in load_checklists(tmp_path).all()] == ["one", "two"]


@pytest.mark.parametrize("broken, problem", [
    (good().replace('name = "甲领域"\n', ""), "'name' is missing"),
    (good().replace('source = "测试"', 'source = " "'), "'source' is missing or empty"),
    (good().replace('aliases = ["甲"]', "aliases = []"), "'aliases' is missing or empty"),
    (good().replace('keywords = ["电线"]', 'keywords = [""]'), "'keywords' must hold"),
    (good().split("[[items]]")[0], "no items"),
    (good().replace('text = "是否测试。"', 'text = ""'), "text is empty"),
    (good().replace('id = "one-1"\n', ""), "item 1 must have exactly 'id' and 'text'"),
    (good().replace('key = "one"', 'key = "消防"'), "lower-case ASCII"),
    (good().replace('source = ', 'sauce = "x"\nsource = '), "unknown field(s) sauce"),
    (good().replace('aliases = ["甲"]', 'aliases = ["甲"'), "not valid TOML"),
    (good().replace('major_signs = ["锁闭"]', 'major_signs = ["锁闭+"]'), "empty part"),
])
def test_a_broken_file_is_refused_with_its_name(tmp_path, broken, problem):
    write(tmp_path, "a.toml", good())
    write(tmp_path, "broken.toml", broken.replace('"one', '"two').replace("甲", "乙"))
    with pytest.raises(ChecklistError) as err:
        load_checklists(tmp_path)
    assert str(err.value).startswith("broken.toml: ")
    assert problem in str(err.value)


@pytest.mark.parametrize("second, problem", [
    (good(name="乙领域", alias="乙"), "key 'one' already used in a.toml"),
    (good("two", "乙领域", "乙").replace('id = "two-1"', 'id = "one-1"'),
     "item id 'one-1' already used in a.toml"),
    (good("two", "乙领域", "甲"), "'甲' already used by 甲领域 in a.toml"),
    (good("two", "乙领域", "甲领域"), "'甲领域' already used by 甲领域 in a.toml"),
])
def test_what_must_be_unique_across_files_is(tmp_path, second, problem):
    write(tmp_path, "a.toml", good())
    write(tmp_path, "b.toml", second)
    with pytest.raises(ChecklistError) as err:
        load_checklists(tmp_path)
    assert str(err.value).startswith("b.toml: ") and problem in str(err.value)


def test_an_empty_directory_is_refused(tmp_path):
    with pytest.raises(ChecklistError, match="no checklist files"):
        load_checklists(tmp_path)


# --- look-ups ----------------------------------------------------------------------------

@pytest.mark.parametrize("word, names", [
    ("消防", ["消防安全"]),
    ("消防安全", ["消防安全"]),
    ("危化", ["危险化学品"]),
    ("防汛", ["防汛和地质灾害"]),
    ("地质", ["防汛和地质灾害"]),
    ("校车", ["校车"]),
    ("食堂", ["食品安全"]),
    ("Fire", ["消防安全"]),
    ("消防安全检查表", ["消防安全"]),
    ("车", ["交通安全", "校车"]),
    ("安全", ["消防安全", "交通安全", "校车", "食品安全", "校舍安全"]),
    ("天文", []),
    ("", []),
])
def test_find_takes_a_name_an_alias_or_part_of_one(checklists, word, names):
    assert [a.name for a in checklists.find(word)] == names


@pytest.mark.parametrize("description, name", [
    ("三楼东侧疏散通道堆放杂物，灭火器过期", "消防安全"),
    ("食堂留样记录不全，有过期食材", "食品安全"),
    ("化学实验室试剂柜没有上锁", "危险化学品"),
    ("暴雨后操场积水严重", "防汛和地质灾害"),
    ("教学楼外墙墙皮脱落", "校舍安全"),
    ("校门口没有保安，外来人员随意进出", "治安防范"),
    ("今天一切正常", None),
])
def test_suggest_area_picks_the_best_keyword_match(checklists, description, name):
    area = checklists.suggest_area(description)
    assert (area.name if area else None) == name


def test_major_signs_are_found_even_when_the_words_are_apart(checklists):
    assert checklists.major_signs_in("二楼安全出口被锁闭，疏散通道堵塞") == [
        "疏散通道+堵", "安全出口+锁"]
    assert checklists.major_signs_in("校车今天超员了") == ["校车+超员"]
    assert checklists.major_signs_in("实验室药品混放") == ["药品+混放"]
    assert checklists.major_signs_in("走廊灯不亮") == []


# --- through the real door ---------------------------------------------------------------

async def say(service, text: str) -> str:
    delivery = await service.wecom.text("demo-liaison", text)
    assert delivery.status == 200
    return delivery.reply_text


async def test_checklist_alone_lists_the_areas_with_counts_and_what_to_type(service):
    reply = await say(service, "清单")
    assert "1. 危险化学品（7项）：清单 危化品" in reply
    assert "2. 消防安全（3项）：清单 消防" in reply
    assert "7. 校车（6项）：清单 校车" in reply
    assert "10. 特种设备（5项）：清单 特种" in reply
    assert "12. 治安防范（6项）：清单 治安" in reply
    assert "下一页" not in reply


@pytest.mark.parametrize("text", ["清单消防", "清单 消防", "清单\u3000消防", "清单 2"])
async def test_checklist_with_a_word_shows_the_items_verbatim(service, text):
    reply = await say(service, text)
    assert "【消防安全】隐患排查清单（3项）" in reply
    assert "2. " + VERBATIM[("消防安全", 2)] in reply
    assert "3. 学校建筑物是否有消防验收手续。" in reply
    assert "来源：郑东新区" in reply


async def test_the_longest_shipped_checklist_fits_one_message(service, checklists):
    reply = await say(service, "清单\u3000危化")
    assert len(reply.encode()) <= 2048 and "下一页" not in reply
    assert all(item.text in reply for item in checklists.all()[0].items)


async def test_a_checklist_longer_than_a_message_is_paged(start_service, monkeypatch, tmp_path):
    items = "".join(f'\n[[items]]\nid = "one-{i}"\ntext = "第{i:02d}条：是否' + "检查" * 40
                    + '。"\n' for i in range(1, 31))
    write(tmp_path, "a.toml", good().split("[[items]]")[0] + items)
    monkeypatch.setattr(bot.app, "load_checklists", lambda: load_checklists(tmp_path))
    service = await start_service()
    pages = [await say(service, "清单 甲")]
    while "下一页" in pages[-1]:
        pages.append(await say(service, "下一页"))
        assert len(pages) < 20
    assert len(pages) >= 3
    assert all(len(p.encode()) <= 2048 for p in pages)
    body = "\n".join(pages)
    assert all(f"{i}. 第{i:02d}条" in body for i in range(1, 31)) and "来源：测试" in body


async def test_an_ambiguous_word_asks_which_area(service):
    reply = await say(service, "清单 车")
    assert "「车」对应 2 个领域" in reply
    assert "交通安全：回复「清单 交通」" in reply and "校车：回复「清单 校车」" in reply


async def test_an_unknown_word_says_so_and_lists_the_areas(service):
    reply = await say(service, "清单 天文")
    assert "没有找到与「天文」对应的清单" in reply
    assert "5. 防汛和地质灾害（5项）：清单 防汛" in reply
    assert "没有找到" in await say(service, "清单 99")


async def test_checklist_is_in_the_help(service):
    shown = await say(service, "帮助")
    if "下一页" in shown:  # the help may run over one message
        shown += await say(service, "下一页")
    assert "清单 [领域] —— 查看隐患排查清单（如：清单 消防）" in shown


async def test_a_broken_checklist_file_stops_the_start(database_url, monkeypatch, tmp_path):
    from tests.conftest import make_config
    shutil.copytree(SHIPPED, tmp_path / "lists")
    (tmp_path / "lists" / "02-fire.toml").write_text('key = "fire"\n', encoding="utf-8")
    monkeypatch.setattr(bot.app, "load_checklists",
                        lambda: load_checklists(tmp_path / "lists"))
    cfg = make_config(database_url, api_base_url="http://127.0.0.1:9")
    server = TestServer(create_app(cfg), host="127.0.0.1")
    try:
        with pytest.raises(ChecklistError, match="02-fire.toml: 'name' is missing"):
            await server.start_server()
    finally:
        await server.close()
