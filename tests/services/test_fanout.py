"""The live subscriber queue: bounded, cut off when too slow, and safe to cancel a read."""

from __future__ import annotations

import asyncio

from chat_services.fanout import Listener


async def test_events_arrive_in_order() -> None:
    listener: Listener[int] = Listener(limit=10)
    for event in range(3):
        listener.deliver(event)
    assert [await listener.next() for _ in range(3)] == [0, 1, 2]


async def test_a_listener_too_far_behind_is_cut_off_and_reads_the_end() -> None:
    listener: Listener[int] = Listener(limit=3)
    for event in range(5):
        listener.deliver(event)
    assert listener.overflowed
    assert await listener.next() is None
    listener.deliver(99)  # nothing more is queued once cut off
    assert listener.pending() == []


async def test_a_cancelled_read_takes_nothing_off_the_queue() -> None:
    listener: Listener[str] = Listener(limit=3)
    read = asyncio.ensure_future(listener.next())
    await asyncio.sleep(0)
    listener.deliver("kept")
    read.cancel()  # cancelled after the event arrived but before the read resumed
    await asyncio.gather(read, return_exceptions=True)
    if read.cancelled():
        assert await listener.next() == "kept"
    else:
        assert read.result() == "kept"


async def test_pending_takes_what_is_queued_without_waiting() -> None:
    listener: Listener[int] = Listener(limit=5)
    listener.deliver(1)
    listener.deliver(2)
    assert listener.pending() == [1, 2]
    assert listener.pending() == []
