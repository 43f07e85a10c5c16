"""Nightly pruning of what was delivered long ago: outbox rows and digest items.

Both tables gain a row per push (a district queues tens of thousands a day) and were never
emptied. During the quiet hours each pass deletes up to ``BATCH`` rows of each that went out
more than ``KEEP_DAYS`` days ago, so a first night after an upgrade catches up over a few
passes in short transactions. Kept whatever their age: pending and failed pushes (the
``safebot outbox`` CLI lists and retries them) and the overdue escalations' rows, whose keys
stop a hazard that stays overdue from being escalated again (reminders/overdue.py).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from models import digest, outbox
from reminders.sweep import SweepCtx

KEEP_DAYS = 180  # a school term and then some: what went out stays on record that long
BATCH = 5000
KEEP_PREFIXES = ("overdue-",)  # overdue-principal/-township/-major and overdue-escalations

log = logging.getLogger(__name__)


def sweep(ctx: SweepCtx) -> int:
    """Queues nothing: 0, whatever it deleted (logged)."""
    if ctx.daytime:
        return 0
    before = ctx.now - timedelta(days=KEEP_DAYS)
    pushes = outbox.prune(session=ctx.session, before=before, keep_prefixes=KEEP_PREFIXES,
                          limit=BATCH)
    items = digest.prune(session=ctx.session, before=before, limit=BATCH)
    if pushes or items:
        log.info("pruned %d outbox rows and %d digest items sent before %s", pushes, items,
                 before.date())
    return 0
