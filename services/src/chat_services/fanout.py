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
    """One subscriber's queue of events."""

    def __init__(self, limit: int = LISTENER_QUEUE_LIMIT) -> None:
        self.queue: asyncio.Queue[T] = asyncio.Queue(limit)
        self.overflowed = asyncio.Event()

    def deliver(self, event: T) -> None:
        """Queue ``event`` without blocking; a full queue cuts the listener off."""
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed.set()

    async def next(self) -> T | None:
        """The next event, or None once the listener has been cut off."""
        if self.overflowed.is_set():
            return None
        get = asyncio.ensure_future(self.queue.get())
        cut = asyncio.ensure_future(self.overflowed.wait())
        try:
            await asyncio.wait({get, cut}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cut.cancel()
            if not get.done():
                get.cancel()
        if get.done() and not get.cancelled():
            return get.result()
        return None

    def pending(self) -> list[T]:
        """Take every event already queued, without waiting."""
        taken = []
        while not self.queue.empty():
            taken.append(self.queue.get_nowait())
        return taken
