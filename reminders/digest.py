"""The morning digest: each person's routine reminders in one message, oldest first."""
from __future__ import annotations

from datetime import time

from bot.config import parse_hhmm
from bot.pushes import enqueue_text
from models import digest
from reminders.sweep import SweepCtx


def sweep(ctx: SweepCtx) -> int:
    if ctx.local_now.time() < time(*parse_hhmm(ctx.settings.digest_time)) or not ctx.daytime:
        return 0
    sent = 0
    for userid, items in digest.pending(session=ctx.session).items():
        text = ctx.pusher.renderer.render("reminders/digest.txt.j2", today=ctx.today,
                                          items=[i.text for i in items])
        # One digest a day: whoever inserts today's row marks the items; an item that comes
        # after today's digest waits for tomorrow's.
        if enqueue_text(session=ctx.session, key=f"digest:{userid}:{ctx.today}", to=userid,
                        text=text, now=ctx.now):
            digest.mark_sent(session=ctx.session, ids=[i.id for i in items], now=ctx.now)
            sent += 1
    return sent
