"""A live subscriber's bounded queue, shared by every service that streams events as they happen.

A listener too slow to keep up is cut off (``overflowed``) rather than letting its
queue grow without limit; its stream then ends with RESOURCE_EXHAUSTED and the
client reconnects (resuming where it can).
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")
LISTENER_QUEUE_LIMIT = 1000


class Listener(Generic[T]):
    """One subscriber's queue of events.

    Reading is cancellation-safe: a ``next()`` cancelled while waiting takes
    nothing off the queue, so a subscriber can race it against other work.
    """

    def __init__(self, limit: int = LISTENER_QUEUE_LIMIT) -> None:
        # One slot more than the limit, for the end marker of a cut-off listener.
        self.queue: asyncio.Queue[T | None] = asyncio.Queue(limit + 1)
        self.limit = limit
        self.overflowed = False

    def deliver(self, event: T) -> None:
        """Queue ``event`` without blocking; a full queue cuts the listener off."""
        if self.overflowed:
            return
        if self.queue.qsize() < self.limit:
            self.queue.put_nowait(event)
            return
        # Cut off: what it has not read is dropped, and it reads the end marker next.
        self.overflowed = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    async def next(self) -> T | None:
        """The next event, or None once the listener has been cut off."""
        return await self.queue.get()

    def pending(self) -> list[T]:
        """Take every event already queued, without waiting."""
        taken = []
        while not self.queue.empty():
            event = self.queue.get_nowait()
            if event is not None:
                taken.append(event)
        return taken
