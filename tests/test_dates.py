"""Deadline parsing: every accepted form, every error reason, and garbage that must stay an error."""
from __future__ import annotations

from datetime import date

import pytest

from bot.cn_numbers import parse_count
from bot.dates import DateParseError, format_date, parse_date, parse_deadline
from bot.workcal import WorkCalendar, load_calendar

D = date
MONDAY = D(2026, 11, 23)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return load_calendar()


def reason_of(text: str, today: date, cal: WorkCalendar) -> str:
    with pytest.raises(DateParseError) as info:
        parse_date(text, today=today, calendar=cal)
    assert info.value.text == text
    return info.value.reason


@pytest.mark.parametrize(("text", "expected"), [
    # explicit dates
    ("2026-12-01", D(2026, 12, 1)),
    ("2026/12/1", D(2026, 12, 1)),
    ("2026.12.1", D(2026, 12, 1)),
    ("2026年12月1日", D(2026, 12, 1)),
    ("2026年12月1号", D(2026, 12, 1)),
    ("2027-02-01", D(2027, 2, 1)),
    ("2026-11-23", MONDAY),
    # month-day: this year, or next year once passed
    ("12月1日", D(2026, 12, 1)),
    ("12月1号", D(2026, 12, 1)),
    ("12月1", D(2026, 12, 1)),
    ("十二月一日", D(2026, 12, 1)),
    ("12-01", D(2026, 12, 1)),
    ("12/1", D(2026, 12, 1)),
    ("11月23日", MONDAY),
    ("11月22日", D(2027, 11, 22)),
    ("1月5日", D(2027, 1, 5)),
    # NFKC and whitespace
    ("２０２６－１２－０１", D(2026, 12, 1)),
    ("１２月１日", D(2026, 12, 1)),
    ("  12月1日 ", D(2026, 12, 1)),
    ("\u300012/1\u3000", D(2026, 12, 1)),
    ("12 月 1 日", D(2026, 12, 1)),
    ("\t明天\n", D(2026, 11, 24)),
    # relative days
    ("今天", MONDAY),
    ("今日", MONDAY),
    ("明天", D(2026, 11, 24)),
    ("明日", D(2026, 11, 24)),
    ("后天", D(2026, 11, 25)),
    ("大后天", D(2026, 11, 26)),
    ("3天后", D(2026, 11, 26)),
    ("3日后", D(2026, 11, 26)),
    ("三天后", D(2026, 11, 26)),
    ("3天以后", D(2026, 11, 26)),
    ("3天之后", D(2026, 11, 26)),
    ("两天后", D(2026, 11, 25)),
    ("0天后", MONDAY),
    ("十天后", D(2026, 12, 3)),
    ("十一天后", D(2026, 12, 4)),
    ("二十天后", D(2026, 12, 13)),
    ("二十五天后", D(2026, 12, 18)),
    ("九十九天后", D(2027, 3, 2)),
    ("99天后", D(2027, 3, 2)),
    # weeks and months
    ("1周后", D(2026, 11, 30)),
    ("一周后", D(2026, 11, 30)),
    ("1个星期后", D(2026, 11, 30)),
    ("两周后", D(2026, 12, 7)),
    ("两个礼拜后", D(2026, 12, 7)),
    ("1个月后", D(2026, 12, 23)),
    ("一个月后", D(2026, 12, 23)),
    ("两个月后", D(2027, 1, 23)),
    ("十二个月后", D(2027, 11, 23)),
    # next week (Monday-based)
    ("下周五", D(2026, 12, 4)),
    ("下星期五", D(2026, 12, 4)),
    ("下礼拜五", D(2026, 12, 4)),
    ("下个周五", D(2026, 12, 4)),
    ("下周一", D(2026, 11, 30)),
    ("下周日", D(2026, 12, 6)),
    ("下周天", D(2026, 12, 6)),
    # this week
    ("本周五", D(2026, 11, 27)),
    ("这周五", D(2026, 11, 27)),
    ("这个周五", D(2026, 11, 27)),
    ("周五", D(2026, 11, 27)),
    ("星期五", D(2026, 11, 27)),
    ("礼拜五", D(2026, 11, 27)),
    ("周5", D(2026, 11, 27)),
    ("本周一", MONDAY),
    ("周一", MONDAY),
    ("周日", D(2026, 11, 29)),
    ("星期天", D(2026, 11, 29)),
    ("周7", D(2026, 11, 29)),
    # month and year end
    ("月底", D(2026, 11, 30)),
    ("本月底", D(2026, 11, 30)),
    ("这个月底", D(2026, 11, 30)),
    ("下月底", D(2026, 12, 31)),
    ("下个月底", D(2026, 12, 31)),
    ("年底", D(2026, 12, 31)),
    ("今年底", D(2026, 12, 31)),
    # working days
    ("3个工作日", D(2026, 11, 26)),
    ("3个工作日后", D(2026, 11, 26)),
    ("三个工作日内", D(2026, 11, 26)),
    ("3个工作日以内", D(2026, 11, 26)),
    ("3工作日", D(2026, 11, 26)),
    ("十个工作日", D(2026, 12, 7)),         # over two weekends
])
def test_accepted_forms_from_a_monday(cal, text, expected):
    assert parse_date(text, today=MONDAY, calendar=cal) == expected


@pytest.mark.parametrize(("today", "text", "expected"), [
    # month-day rolls into next year
    (D(2026, 12, 20), "1月5日", D(2027, 1, 5)),
    (D(2026, 12, 20), "1/5", D(2027, 1, 5)),
    (D(2026, 12, 20), "12月25日", D(2026, 12, 25)),
    (D(2026, 12, 20), "12月19日", D(2027, 12, 19)),
    (D(2026, 12, 20), "下月底", D(2027, 1, 31)),
    (D(2026, 12, 20), "1个月后", D(2027, 1, 20)),
    (D(2026, 12, 20), "3个工作日", D(2026, 12, 23)),     # from a Sunday
    # month-end clamping and leap years
    (D(2026, 1, 31), "1个月后", D(2026, 2, 28)),
    (D(2028, 1, 31), "1个月后", D(2028, 2, 29)),
    (D(2026, 3, 31), "1个月后", D(2026, 4, 30)),
    (D(2026, 12, 31), "2个月后", D(2027, 2, 28)),
    (D(2026, 2, 10), "月底", D(2026, 2, 28)),
    (D(2028, 2, 10), "月底", D(2028, 2, 29)),
    (D(2027, 12, 1), "2月29日", D(2028, 2, 29)),
    (D(2028, 1, 10), "2月29日", D(2028, 2, 29)),
    (D(2026, 11, 23), "2028-02-29", D(2028, 2, 29)),
    # a Saturday: bare weekday means the next one, 下周 is the week after this Monday-based one
    (D(2026, 11, 28), "周五", D(2026, 12, 4)),
    (D(2026, 11, 28), "本周六", D(2026, 11, 28)),
    (D(2026, 11, 28), "本周日", D(2026, 11, 29)),
    (D(2026, 11, 28), "下周五", D(2026, 12, 4)),
    (D(2026, 11, 29), "下周一", D(2026, 11, 30)),
    (D(2026, 11, 27), "3个工作日", D(2026, 12, 2)),      # Friday, over a weekend
    # 调休: National Day 2025 (Sep 28 Sun and Oct 11 Sat are working days)
    (D(2025, 9, 26), "1个工作日", D(2025, 9, 28)),
    (D(2025, 9, 26), "3个工作日", D(2025, 9, 30)),
    (D(2025, 9, 30), "1个工作日", D(2025, 10, 9)),
    (D(2025, 9, 30), "3个工作日", D(2025, 10, 11)),
    # 调休: Spring Festival 2026 (Feb 15-23 off, Feb 14 Sat a working day)
    (D(2026, 2, 13), "1个工作日", D(2026, 2, 14)),
    (D(2026, 2, 13), "两个工作日", D(2026, 2, 24)),
])
def test_accepted_forms_on_other_days(cal, today, text, expected):
    assert parse_date(text, today=today, calendar=cal) == expected


@pytest.mark.parametrize("text", [
    "2月30日", "2026-02-30", "2026年2月30日", "13月1日", "2026-13-01", "13/1", "0月1日",
    "12月0日", "12月32日", "2026-02-29", "2027-02-29", "2月29日",
    "3661天后", "9999天后", "600周后", "200个月后", "5000个工作日",
])
def test_invalid_dates(cal, text):
    assert reason_of(text, MONDAY, cal) == "invalid"


@pytest.mark.parametrize(("today", "text", "resolved"), [
    (MONDAY, "2026-11-22", D(2026, 11, 22)),
    (MONDAY, "2025年1月1日", D(2025, 1, 1)),
    (MONDAY, "2020/1/1", D(2020, 1, 1)),
    (D(2026, 11, 28), "本周五", D(2026, 11, 27)),
    (D(2026, 11, 28), "这周一", MONDAY),
    (D(2028, 3, 1), "2月29日", D(2028, 2, 29)),      # next year has no Feb 29: it meant the past one
])
def test_past_dates_say_which_date_they_meant(cal, today, text, resolved):
    with pytest.raises(DateParseError) as info:
        parse_date(text, today=today, calendar=cal)
    assert (info.value.reason, info.value.resolved) == ("past", resolved)


@pytest.mark.parametrize("text", [
    "", "   ", "\u3000", "明天吧?", "明天吧？", "😀", "📅12月1日", "{{ 7*7 }}", "{% if x %}",
    "<script>", "周八", "十十天后", "两十天后", "三十三十天后", "abc", "12月", "2026", "12.1",
    "2026-12/01", "下下周五", "3天前", "-3天后", "2026-12-01 10:00", "null", "\x00", "明天" * 30,
    "10000天后", "1e3天后", "１２月１日前",
])
def test_garbage_is_unparseable(cal, text):
    assert reason_of(text, MONDAY, cal) == "unparseable"


def test_deadline_allows_today_and_refuses_yesterday(cal):
    assert parse_deadline("今天", today=MONDAY, calendar=cal) == MONDAY
    with pytest.raises(DateParseError) as info:
        parse_deadline("2026-11-22", today=MONDAY, calendar=cal)
    assert info.value.reason == "past"


def test_error_is_a_value_error_with_machine_readable_fields(cal):
    with pytest.raises(ValueError) as info:
        parse_date("明天吧?", today=MONDAY, calendar=cal)
    assert isinstance(info.value, DateParseError)
    assert (info.value.reason, info.value.text, info.value.resolved) == ("unparseable", "明天吧?", None)


@pytest.mark.parametrize(("d", "text"), [
    (D(2026, 12, 1), "2026-12-01（周二）"),
    (MONDAY, "2026-11-23（周一）"),
    (D(2026, 11, 29), "2026-11-29（周日）"),
])
def test_format_date(d, text):
    assert format_date(d) == text


@pytest.mark.parametrize(("text", "n"), [
    ("0", 0), ("12", 12), ("零", 0), ("一", 1), ("两", 2), ("九", 9), ("十", 10), ("十一", 11),
    ("二十", 20), ("二十五", 25), ("九十九", 99),
    ("", None), ("两十", None), ("十两", None), ("十十", None), ("零十", None), ("十零", None),
    ("一二", None), ("百", None), ("３", None), ("٣", None),
])
def test_parse_count(text, n):
    assert parse_count(text) == n


_DATEISH = "0123456789-/. 年月日号天周后个工作下本这星期礼拜一二三四五六七八九十两零今明大底内以之"

try:  # the property test runs where the `test` extra is installed; the tables above run anyway
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover
    pass
else:
    @settings(max_examples=400, deadline=None)
    @given(text=st.one_of(st.text(max_size=20), st.text(alphabet=_DATEISH, max_size=12)),
           today=st.dates(min_value=D(2000, 1, 1), max_value=D(2100, 12, 31)))
    def test_any_text_gives_a_date_from_today_on_or_a_parse_error(cal, text, today):
        try:
            result = parse_date(text, today=today, calendar=cal)
        except DateParseError as exc:
            assert exc.reason in ("unparseable", "invalid", "past")
        else:
            assert type(result) is date and result >= today
