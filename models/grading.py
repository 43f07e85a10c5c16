"""Grading units by how they work (分类分级, seed 002; 抽查 and 通报批评, seed 000).

Seed 002 grades units so that supervision can differ by grade; seed 000 has the bureau spot
check schools' self-check / self-report / self-rectify work (自查自报自改) and publicly
criticise those that do it poorly, "as a basis of the school's grading". safebot grades every
school and kindergarten in the scope over a window (by default the last three full months)
on four criteria, 25 points each:

1. 自查 — self-checks run: finished self-check runs (``自查``) against two per 30 days of the
   window (at least one); points = 25 × min(1, runs / expected).
2. 自报 — hazards the unit reported itself versus hazards a township or bureau visit found
   (source ``supervisor``): points = 25 × own / (own + found by supervisors). A unit with no
   hazards at all gets the 25: no supervisor found anything it missed (criterion 1 already
   catches a unit that does not look).
3. 按期整改 — rectified on time: hazards whose 完成时限 fell in the window (and has passed, or
   they are rectified already) that were marked rectified on or before it (an approved 延期
   moves the 时限); points = 25 × on time / due; none due: 25.
4. 月报 — monthly updates on time: of the months whose update fell due in the window,
   those submitted and not late; points = 25 × on time / owed; none owed: 25.

Grade from the total: A ≥ 90, B ≥ 75, C ≥ 60, D below. A criterion with 0 points caps the
grade at C (no self-check at all, nothing rectified on time, no monthly update on time).
Grade D *falls short*: those units are what ``通报`` publishes. Every criterion short of full
marks is a *reason*, shown with its numbers.

Spot checks (抽查): units not visited by a supervisor (督查/暗访) in the last 30 days, the
lowest scores first (never visited before longest ago on ties), four of them, plus one drawn
at random from the rest — seeded by the window, so the proposal is stable for the window but
a unit cannot count on never being drawn because its grade is good.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

POINTS = 25
SELFCHECKS_PER_30_DAYS = 2
BOUNDS = (("A", 90.0), ("B", 75.0), ("C", 60.0))
FALLS_SHORT = "D"
SPOT_CHECKS = 5
SPOT_CHECK_RANDOM = 1
RECENT_VISIT_DAYS = 30
CRITERIA = ("selfchecks", "self_report", "on_time", "monthly")


@dataclass(frozen=True)
class Window:
    start: date
    end: date   # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def expected_selfchecks(self) -> int:
        return max(1, round(SELFCHECKS_PER_30_DAYS * self.days / 30))


@dataclass(frozen=True)
class Record:
    """What a unit did in the window: the facts the grade is computed from."""

    unit_id: int
    unit: str
    code: str
    selfchecks: int = 0
    own_found: int = 0          # hazards the unit reported (上报, 自查, its own 检查)
    supervisor_found: int = 0   # hazards a township or bureau visit found
    due: int = 0                # hazards whose deadline fell in the window
    on_time: int = 0
    months_owed: int = 0        # monthly updates that fell due in the window
    months_on_time: int = 0
    last_visit: date | None = None  # the last 督查/暗访 of the unit, any time


@dataclass(frozen=True)
class Grade:
    record: Record
    points: dict[str, float]
    score: float
    grade: str
    capped: bool
    reasons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def falls_short(self) -> bool:
        return self.grade == FALLS_SHORT


def _share(part: int, whole: int) -> float:
    return 1.0 if whole == 0 else min(1.0, part / whole)


def grade(record: Record, window: Window) -> Grade:
    """Apply the rules of this module's docstring to one unit."""
    expected = window.expected_selfchecks
    found = record.own_found + record.supervisor_found
    facts = {
        "selfchecks": (_share(record.selfchecks, expected),
                       {"runs": record.selfchecks, "expected": expected}),
        "self_report": (_share(record.own_found, found),
                        {"own": record.own_found, "supervisor": record.supervisor_found}),
        "on_time": (_share(record.on_time, record.due),
                    {"on_time": record.on_time, "due": record.due}),
        "monthly": (_share(record.months_on_time, record.months_owed),
                    {"on_time": record.months_on_time, "owed": record.months_owed}),
    }
    points = {name: round(POINTS * share, 1) for name, (share, _) in facts.items()}
    score = round(sum(points.values()), 1)
    letter = next((g for g, bound in BOUNDS if score >= bound), FALLS_SHORT)
    capped = letter in ("A", "B") and any(p == 0 for p in points.values())
    if capped:
        letter = "C"
    reasons = [{"criterion": name, "points": points[name], **data}
               for name, (share, data) in facts.items() if share < 1.0]
    return Grade(record=record, points=points, score=score, grade=letter, capped=capped,
                 reasons=reasons)


def rank(records: list[Record], window: Window) -> list[Grade]:
    """Every unit graded, worst first (then by code)."""
    return sorted((grade(r, window) for r in records), key=lambda g: (g.score, g.record.code))


def spot_checks(grades: list[Grade], *, today: date, window: Window) -> list[dict[str, Any]]:
    """Where the next 抽查 should go, with why (see the module docstring)."""
    recent = today - timedelta(days=RECENT_VISIT_DAYS)
    pool = [g for g in grades if g.record.last_visit is None or g.record.last_visit < recent]
    pool.sort(key=lambda g: (g.score, g.record.last_visit or date.min, g.record.code))
    chosen = pool[:SPOT_CHECKS - SPOT_CHECK_RANDOM]
    rest = pool[len(chosen):]
    drawn = random.Random(f"{window.start}:{window.end}").sample(
        rest, min(SPOT_CHECK_RANDOM, len(rest)))
    return ([{"grade": g, "why": "low", "last_visit": g.record.last_visit} for g in chosen]
            + [{"grade": g, "why": "random", "last_visit": g.record.last_visit} for g in drawn])
