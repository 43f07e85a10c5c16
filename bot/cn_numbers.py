"""Small counts as people type them: ASCII digits, or Chinese numerals from 零 to 九十九 (and 两)."""
from __future__ import annotations

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}

# Characters a caller's regex may accept before handing the match to `parse_count`.
CN_NUMERAL_CHARS = "".join(_DIGITS) + "两十"


def parse_count(text: str) -> int | None:
    """Return the non-negative integer `text` spells, or None if it is not a number we read.

    Accepts ``12``, ``三``, ``两`` (only on its own, as in 两周), ``十``, ``十一``, ``二十``, ``九十九``.
    """
    if text.isascii() and text.isdigit():
        return int(text)
    if text == "两":
        return 2
    if text in _DIGITS:
        return _DIGITS[text]
    tens, sep, units = text.partition("十")
    if not sep:
        return None
    if tens == "":
        high = 1
    elif tens in _DIGITS and _DIGITS[tens] > 0:
        high = _DIGITS[tens]
    else:
        return None
    if units == "":
        low = 0
    elif units in _DIGITS and _DIGITS[units] > 0:
        low = _DIGITS[units]
    else:
        return None
    return high * 10 + low
