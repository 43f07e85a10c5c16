"""Beginning turns in batches: every turn that starts while the database is busy with the last
batch begins in the next one, one transaction and one trip to the database thread for all.

Under load, a trip per message cost more than the message's SQL: each trip is a handover
between the event loop and the database thread, and the two then pass the interpreter lock back
and forth on every driver call (bench/profile_callback.py). A batch holds every message that
arrived meanwhile, so the trips per message fall as the load rises; a message alone still goes
at once. PostgreSQL runs a few batches at a time (its pool has several connections).
"""
from __future__ import annotations

import asyncio

from bot.db import Database
from models.turn_begin import Begin, Began, begin_many

MAX_BATCH = 256  # bounds one transaction's time


class TurnBegins:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.parallel = 1 if db.is_sqlite else max(1, db.workers // 2)
        self._waiting: list[tuple[Begin, asyncio.Future[Began]]] = []
        self._trips = 0  # batches in flight

    async def begin(self, begin: Begin) -> Began:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Began] = loop.create_future()
        self._waiting.append((begin, future))
        if self._trips < self.parallel:
            self._trips += 1
            loop.call_soon(self._next_batch)  # after the rest of this loop iteration's work
        return await future

    def _next_batch(self) -> None:
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        if not batch:
            self._trips -= 1
            return
        trip = asyncio.ensure_future(self.db.run_driver(begin_many,
                                                      begins=[b for b, _ in batch]))
        trip.add_done_callback(lambda done: self._settle(batch, done))

    def _settle(self, batch: list[tuple[Begin, asyncio.Future[Began]]],
                trip: asyncio.Future[list[Began]]) -> None:
        error = trip.exception() if not trip.cancelled() else asyncio.CancelledError()
        for i, (_, future) in enumerate(batch):
            if future.done():  # its caller was cancelled
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(trip.result()[i])
        self._next_batch()
