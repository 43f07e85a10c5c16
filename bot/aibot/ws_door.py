"""The long connection's door: callback frames in, reply frames out on the callback's req_id.

A message is answered with a stream: one finished chunk when the answer is ready within a
second, else an "已收到" chunk at once and the answer (finish=true) when it is done. A card click
is answered with ``aibot_respond_update_msg`` within WeCom's 5 s (its req_id takes nothing
else; any text goes out as a push), ``enter_chat`` with ``aibot_respond_welcome_msg``. A reply
the gateway cannot take (gone mid-stream, stream expired) becomes a push: nothing is lost.
"""
from __future__ import annotations

import logging
from typing import Any

from bot.aibot import frames
from bot.aibot.client import AibotClient, AibotError, AibotUnavailable
from bot.aibot.core import AibotCore
from bot.aibot.frames import Frame
from bot.aibot.inbound import Inbound

log = logging.getLogger(__name__)
QUICK_S = 1.0          # answered within this: one finished stream chunk
CARD_BUDGET_S = 3.5    # WeCom drops a card click not answered within 5 s
WELCOME_BUDGET_S = 3.5
STREAM_MAX_S = 300.0   # a stream lives 10 min at most [secondary]; push after this


class LongConnectionDoor:
    def __init__(self, *, core: AibotCore, quick_s: float = QUICK_S) -> None:
        self.core, self.quick_s = core, quick_s
        self.client: AibotClient | None = None  # set once the client exists (it calls us)

    async def on_frame(self, frame: Frame) -> None:
        inbound = self.core.parse(frame.body)
        if inbound is None:
            return
        if not await self.core.first_time(inbound):
            log.info("AI bot: repeated callback %s skipped", inbound.msg.dedupe_key)
            return
        kind = inbound.msg.kind
        if kind == "card":
            await self._card(frame, inbound)
        elif kind == "event":
            await self._event(frame, inbound)
        elif kind == "stream":
            log.info("AI bot: a stream poll on the long connection skipped")
        else:
            await self._message(frame, inbound)

    async def _message(self, frame: Frame, inbound: Inbound) -> None:
        msg, failed = await self.core.with_photos(inbound)
        task = self.core.start(msg, failed)
        stream_id = frames.new_stream_id()
        turn = await self.core.within(task, self.quick_s)
        received = ""
        if turn is None:
            received = self.core.render("aibot/received.txt.j2")
            await self._respond(frame, frames.RESPOND_MSG,
                                frames.stream(stream_id, received, finish=False))
            turn = await self.core.within(task, STREAM_MAX_S)
            if turn is None:  # far too slow for the stream: close it, push the answer later
                await self._respond(frame, frames.RESPOND_MSG, frames.stream(
                    stream_id, self.core.render("common/working.txt.j2"), finish=True))
                self.core.push_when_done(task, msg)
                return
        text = turn.text or received
        if not text:
            return
        done = await self._respond(frame, frames.RESPOND_MSG,
                                   frames.stream(stream_id, text, finish=True))
        if not done and turn.text:
            await self.core.push(msg, turn.text)

    async def _card(self, frame: Frame, inbound: Inbound) -> None:
        msg = inbound.msg
        task = self.core.start(msg)
        turn = await self.core.within(task, CARD_BUDGET_S)
        if turn is None:  # the click's 5 s are gone; what it says goes out as a push
            log.warning("AI bot: card click answered too late; its text goes as a push")
            self.core.push_when_done(task, msg)
            return
        if turn.button:
            card = await self.core.card(msg, turn.button)
            await self._respond(frame, frames.RESPOND_UPDATE,
                                frames.update_card(card, [msg.user_id]))
        if turn.text:
            await self.core.push(msg, turn.text)

    async def _event(self, frame: Frame, inbound: Inbound) -> None:
        msg = inbound.msg
        task = self.core.start(msg)
        turn = await self.core.within(task, WELCOME_BUDGET_S)
        if turn is not None and turn.text and msg.event == "enter_agent":
            await self._respond(frame, frames.RESPOND_WELCOME, frames.text(turn.text))

    async def _respond(self, frame: Frame, cmd: str, body: dict[str, Any]) -> bool:
        """Send a reply on the callback's req_id; False (logged) if it did not get through."""
        if self.client is None:
            return False
        try:
            await self.client.request(cmd, body, req_id=frame.req_id)
        except (AibotError, AibotUnavailable) as exc:
            log.warning("AI bot: %s on %s not delivered: %s", cmd, frame.cmd, exc)
            return False
        return True
