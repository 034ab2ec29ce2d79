"""The memory budget: request bytes a call may accept, and all running calls together.

A call that collects many request messages before it answers (``SendMessages``) holds
every one of them, their decoded drafts and then its reply in memory at once. Such a
call takes each message's encoded size from a :class:`MemoryBudget` as it accepts it,
and gives it all back when it ends: past ``per_call`` bytes the call is refused
(RESOURCE_EXHAUSTED: split the batch), and while the server-wide ``limit`` is taken by
running calls new bytes are refused with a ``RetryInfo`` (RESOURCE_EXHAUSTED: retry
soon). Resident memory is a small multiple of the bytes held (see services/README.md,
"Memory"), so the limit bounds the server's peak however many calls arrive at once.

Shortly after the last running call gives its bytes back, once calls held at least
``TRIM_AFTER_BYTES``, the C heap's free pages are handed back to the system
(:func:`trim_heap`, on a worker thread, once the calls' objects are gone): glibc otherwise
keeps them, and a server that once took four large calls would stay tens of megabytes
larger for good.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from chat_services.errors import ResourceExhausted

DEFAULT_CALL_BYTES = 8 * 1024 * 1024
DEFAULT_INFLIGHT_BYTES = 32 * 1024 * 1024  # four calls at the per-call cap
RETRY_AFTER = 1.0  # seconds: a running call frees its bytes when it ends, typically well within this
TRIM_AFTER_BYTES = 1024 * 1024
# The trim waits this long after the last call gives its bytes back: the call's request, drafts
# and reply are still referenced then (its handler's frame, an exception's traceback while the
# trailers are sent), and pages freed after a trim would stay with glibc until the next one.
TRIM_DELAY = 0.25  # seconds


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    trim: Callable[[int], int] | None = getattr(ctypes.CDLL(name), "malloc_trim", None)  # glibc only
    return trim


_MALLOC_TRIM = _malloc_trim()


def trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``); elsewhere, nothing."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@dataclass
class MemoryBudget:
    """Request bytes held by running calls, server-wide, and what one call may hold."""

    limit: int = DEFAULT_INFLIGHT_BYTES
    per_call: int = DEFAULT_CALL_BYTES
    in_flight: int = 0
    taken_since_trim: int = 0

    @contextmanager
    def call(self, what: str) -> Iterator[CallBudget]:
        """A call's share of the budget (``what`` names it in refusals); everything is given back at exit."""
        held = CallBudget(self, what)
        try:
            yield held
        finally:
            self.in_flight -= held.held
            held.held = 0
            if not self.in_flight and self.taken_since_trim >= TRIM_AFTER_BYTES:
                self.taken_since_trim = 0
                loop = asyncio.get_running_loop()
                # On a worker thread: trimming a large heap takes milliseconds.
                loop.call_later(TRIM_DELAY, loop.run_in_executor, None, trim_heap)


@dataclass
class CallBudget:
    """What one running call holds of its server's :class:`MemoryBudget`."""

    budget: MemoryBudget
    what: str
    held: int = 0

    def take(self, size: int) -> None:
        """Hold ``size`` more bytes; RESOURCE_EXHAUSTED (taking nothing) when the call or server is full."""
        budget = self.budget
        if self.held + size > budget.per_call:
            raise ResourceExhausted(
                f"a {self.what} call accepts at most {budget.per_call} bytes of request messages;"
                " split the batch into smaller calls"
            )
        if budget.in_flight + size > budget.limit:
            raise ResourceExhausted(
                f"the server holds its limit of {budget.limit} request bytes in running calls;"
                f" retry in {RETRY_AFTER:g} s",
                retry_after=RETRY_AFTER,
            )
        self.held += size
        budget.in_flight += size
        budget.taken_since_trim += size
