"""The morning digest: each person's routine reminders in one message, oldest first."""
from __future__ import annotations

from datetime import time

from bot.config import parse_hhmm
from bot.pushes import enqueue_text
from models import digest
from reminders.sweep import SweepCtx

MARK_CHUNK = 1000


def sweep(ctx: SweepCtx) -> int:
    if ctx.local_now.time() < time(*parse_hhmm(ctx.settings.digest_time)) or not ctx.daytime:
        return 0
    sent = 0
    marked: list[int] = []
    for userid, items in digest.pending(session=ctx.session).items():
        text = ctx.pusher.renderer.render("reminders/digest.txt.j2", today=ctx.today,
                                          items=[i.text for i in items])
        # One digest a day: whoever inserts today's row marks the items; an item that comes
        # after today's digest waits for tomorrow's.
        if enqueue_text(session=ctx.session, key=f"digest:{userid}:{ctx.today}", to=userid,
                        text=text, now=ctx.now):
            marked += [i.id for i in items]
            sent += 1
    for i in range(0, len(marked), MARK_CHUNK):  # a few statements, not one per person
        digest.mark_sent(session=ctx.session, ids=marked[i:i + MARK_CHUNK], now=ctx.now)
    return sent
