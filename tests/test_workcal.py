"""The working-day calendar, checked against the State Council notices as chinese-calendar encodes
them: 国办发明电〔2024〕12号 (2025) and 国办发明电〔2025〕7号 (2026)."""
from __future__ import annotations

from datetime import date, timedelta
from importlib.resources import files
from pathlib import Path

import pytest

from bot.workcal import HolidayFileError, WorkCalendar, load_calendar, parse_overrides

D = date


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    return load_calendar()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "holidays.toml"
    path.write_text(text, encoding="utf-8")
    return path


# 2025 国庆节、中秋节: 10月1日至8日放假调休，共8天；9月28日（周日）、10月11日（周六）上班。
# 2026 春节: 2月15日至23日放假调休，共9天；2月14日（周六）、2月28日（周六）上班。
@pytest.mark.parametrize(("day", "workday", "holiday", "name"), [
    (D(2025, 9, 26), True, False, None),      # Friday
    (D(2025, 9, 27), False, False, None),     # plain Saturday
    (D(2025, 9, 28), True, False, None),      # Sunday, adjusted working day
    (D(2025, 9, 30), True, False, None),
    (D(2025, 10, 1), False, True, "国庆节"),
    (D(2025, 10, 4), False, True, "国庆节"),   # Saturday inside the holiday
    (D(2025, 10, 6), False, True, "中秋节"),   # the package names the festival day itself
    (D(2025, 10, 8), False, True, "国庆节"),   # Wednesday, day off in lieu
    (D(2025, 10, 9), True, False, None),
    (D(2025, 10, 11), True, False, None),     # Saturday, adjusted working day
    (D(2025, 10, 12), False, False, None),
    (D(2026, 1, 1), False, True, "元旦"),
    (D(2026, 1, 4), True, False, None),       # Sunday, adjusted working day
    (D(2026, 2, 14), True, False, None),      # Saturday, adjusted working day
    (D(2026, 2, 15), False, True, "春节"),
    (D(2026, 2, 17), False, True, "春节"),     # 正月初一
    (D(2026, 2, 23), False, True, "春节"),     # Monday, day off in lieu
    (D(2026, 2, 24), True, False, None),
    (D(2026, 2, 28), True, False, None),      # Saturday, adjusted working day
    (D(2026, 4, 5), False, True, "清明节"),
    (D(2026, 6, 19), False, True, "端午节"),
    (D(2026, 11, 28), False, False, None),    # plain weekend
    (D(2026, 11, 23), True, False, None),     # plain Monday
])
def test_days_match_the_state_council_notice(cal, day, workday, holiday, name):
    assert cal.is_workday(day) is workday
    assert cal.is_holiday(day) is holiday
    assert cal.holiday_name(day) == name


def test_adjusted_workdays_are_flagged(cal):
    assert cal.is_adjusted_workday(D(2025, 10, 11))
    assert not cal.is_adjusted_workday(D(2025, 10, 10))


def test_national_day_2025_lists_eight_days_off(cal):
    days = cal.holidays_in(D(2025, 9, 1), D(2025, 10, 31))
    assert [d for d, _ in days] == [D(2025, 10, 1) + timedelta(days=i) for i in range(8)]
    assert days[0] == (D(2025, 10, 1), "国庆节")


def test_spring_festival_2026_lists_nine_days_off(cal):
    days = cal.holidays_in(D(2026, 2, 1), D(2026, 2, 28))
    assert days == [(D(2026, 2, 15) + timedelta(days=i), "春节") for i in range(9)]


@pytest.mark.parametrize(("start", "n", "expected"), [
    (D(2026, 11, 23), 0, D(2026, 11, 23)),
    (D(2026, 11, 23), 3, D(2026, 11, 26)),
    (D(2026, 11, 27), 1, D(2026, 11, 30)),    # Friday -> Monday over a weekend
    (D(2026, 11, 28), 1, D(2026, 11, 30)),    # from a Saturday
    (D(2025, 9, 26), 1, D(2025, 9, 28)),      # the adjusted Sunday counts
    (D(2025, 9, 26), 3, D(2025, 9, 30)),
    (D(2025, 9, 30), 1, D(2025, 10, 9)),      # over the whole National Day holiday
    (D(2025, 9, 30), 3, D(2025, 10, 11)),     # the adjusted Saturday counts
    (D(2026, 2, 13), 1, D(2026, 2, 14)),
    (D(2026, 2, 13), 2, D(2026, 2, 24)),      # over the Spring Festival
    (D(2025, 10, 9), -1, D(2025, 9, 30)),     # backwards
    (D(2026, 11, 30), -1, D(2026, 11, 27)),
])
def test_add_workdays(cal, start, n, expected):
    assert cal.add_workdays(start, n) == expected


@pytest.mark.parametrize(("a", "b", "expected"), [
    (D(2025, 9, 30), D(2025, 10, 11), 3),
    (D(2025, 10, 11), D(2025, 9, 30), -3),
    (D(2025, 10, 1), D(2025, 10, 8), 0),
    (D(2026, 11, 23), D(2026, 11, 23), 0),
    (D(2026, 11, 23), D(2026, 11, 30), 5),
])
def test_workdays_between(cal, a, b, expected):
    assert cal.workdays_between(a, b) == expected


@pytest.mark.parametrize("n", [-12, -3, -1, 0, 1, 2, 5, 9, 30])
@pytest.mark.parametrize("start", [D(2025, 9, 26), D(2025, 10, 5), D(2026, 2, 14), D(2026, 12, 31)])
def test_workdays_between_undoes_add_workdays(cal, start, n):
    assert cal.workdays_between(start, cal.add_workdays(start, n)) == n


def test_package_years_are_covered_and_later_ones_are_not(cal):
    assert cal.covers(2004) and cal.covers(2025) and cal.covers(2026)
    assert not cal.covers(2003)
    assert not cal.covers(2099)


def test_unknown_year_falls_back_to_weekends(cal):
    assert cal.is_workday(D(2099, 1, 1))          # a Thursday: nobody told us it is 元旦
    assert not cal.is_workday(D(2099, 1, 3))      # Saturday
    assert cal.holiday_name(D(2099, 1, 1)) is None
    assert cal.add_workdays(D(2099, 1, 2), 1) == D(2099, 1, 5)


def test_bundled_override_file_is_package_data_and_parses():
    text = files("bot").joinpath("data/holidays.toml").read_text(encoding="utf-8")
    assert parse_overrides(text) == {}


def test_override_file_adds_a_year(tmp_path):
    cal = load_calendar(write(tmp_path, """
[2099]
holidays = [
    { date = 2099-01-01, name = "元旦" },
    { start = 2099-10-01, end = 2099-10-07, name = "国庆节" },
]
workdays = [2099-10-10]
"""))
    assert cal.covers(2099)
    assert cal.holiday_name(D(2099, 1, 1)) == "元旦"
    assert not cal.is_workday(D(2099, 1, 1))
    assert [d for d, _ in cal.holidays_in(D(2099, 10, 1), D(2099, 10, 31))] == [
        D(2099, 10, i) for i in range(1, 8)]
    assert cal.is_workday(D(2099, 10, 10))        # a Saturday
    assert cal.covers(2025)                       # the package's years stay


def test_override_wins_over_the_package_for_the_dates_it_lists(tmp_path):
    cal = load_calendar(write(tmp_path, """
[2025]
holidays = [{ date = 2025-10-11, name = "国庆节" }]
workdays = [2025-10-08]
"""))
    assert cal.is_workday(D(2025, 10, 8)) and not cal.is_holiday(D(2025, 10, 8))
    assert not cal.is_workday(D(2025, 10, 11)) and cal.holiday_name(D(2025, 10, 11)) == "国庆节"
    assert cal.holiday_name(D(2025, 10, 7)) == "国庆节"   # dates it does not list keep the package's


@pytest.mark.parametrize(("text", "reason"), [
    ("[2099\n", "syntax"),
    ("[next]\nworkdays = []\n", "bad_year"),
    ("year = 2099\n", "bad_year"),
    ("[2099]\nextra = 1\n", "unknown_key"),
    ("[2099]\nworkdays = 2099-01-01\n", "not_a_list"),
    ("[2099]\nworkdays = ['2099-01-03']\n", "bad_entry"),
    ("[2099]\nworkdays = [2099-01-03T08:00:00]\n", "bad_entry"),
    ("[2099]\nholidays = [{ date = 2099-01-01 }]\n", "bad_entry"),
    ("[2099]\nholidays = [{ date = 2099-01-01, name = '' }]\n", "bad_entry"),
    ("[2099]\nholidays = [{ date = '2099-01-01', name = '元旦' }]\n", "bad_entry"),
    ("[2099]\nholidays = [{ start = 2099-01-01, name = '元旦' }]\n", "bad_entry"),
    ("[2099]\nholidays = ['2099-01-01']\n", "bad_entry"),
    ("[2099]\nholidays = [{ start = 2099-01-05, end = 2099-01-01, name = '元旦' }]\n", "bad_range"),
    ("[2099]\nholidays = [{ start = 2099-01-01, end = 2099-12-31, name = '元旦' }]\n", "bad_range"),
    ("[2099]\nworkdays = [2098-12-31]\n", "wrong_year"),
    ("[2099]\nholidays = [{ date = 2100-01-01, name = '元旦' }]\n", "wrong_year"),
    ("[2099]\nholidays = [{ date = 2099-01-01, name = '元旦' }]\nworkdays = [2099-01-01]\n", "conflict"),
])
def test_malformed_override_file_names_the_reason(tmp_path, text, reason):
    with pytest.raises(HolidayFileError) as info:
        load_calendar(write(tmp_path, text))
    assert info.value.reason == reason


def test_calendar_refuses_a_date_that_is_both_holiday_and_workday():
    with pytest.raises(ValueError):
        WorkCalendar(holidays={D(2099, 1, 1): "元旦"}, workdays=[D(2099, 1, 1)], years=[2099])
