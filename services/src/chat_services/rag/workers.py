"""Splitting and embedding in worker processes, so the event loop only awaits them.

Both are pure Python and hold the GIL: in a thread they would still slow every call of
every service (16 MiB of text took the loop 9-11 s). A process pool of ``workers``
processes runs them; at most two jobs per worker are handed over at a time, the rest
wait (cheaply, on the loop) for a turn, so the pool's queue stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from chat_services.errors import Unavailable
from chat_services.rag.chunking import split_passages
from chat_services.rag.embedding import Embedder

JOBS_PER_WORKER = 2
T = TypeVar("T")
_fork_server_owner: int | None = None  # the process whose fork server starts the workers


@dataclass(frozen=True)
class Embedded:
    """A text's passages and their unit vectors (row ``i`` embeds passage ``i``)."""

    passages: list[str]
    vectors: npt.NDArray[np.float32]


def split_and_embed(embedder: Embedder, text: str) -> tuple[list[str], bytes]:
    """Run in a worker: the passages of ``text`` and their float32 vectors as one buffer."""
    passages = split_passages(text)
    vectors = np.array([embedder.embed(p) for p in passages], dtype=np.float32)
    return passages, vectors.tobytes()


def embed(embedder: Embedder, text: str) -> bytes:
    """Run in a worker: the float32 vector of ``text``."""
    return np.array(embedder.embed(text), dtype=np.float32).tobytes()


class EmbeddingWorkers:
    """A lazily started pool of ``workers`` processes that split and embed text."""

    def __init__(self, embedder: Embedder, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError("at least one embedding worker is needed")
        self.embedder = embedder
        self.workers = workers
        self.running = 0  # jobs handed to the pool and not yet answered
        self._turns = asyncio.Semaphore(workers * JOBS_PER_WORKER)
        self._pool: ProcessPoolExecutor | None = None

    async def split_and_embed(self, text: str) -> Embedded:
        """The passages of ``text`` and their vectors, computed in a worker process."""
        passages, buffer = await self._run(split_and_embed, text)
        vectors = np.frombuffer(buffer, dtype=np.float32).reshape(len(passages), self.embedder.dimension)
        return Embedded(passages, vectors)

    async def embed(self, text: str) -> list[float]:
        """The vector of ``text``, computed in a worker process."""
        buffer = await self._run(embed, text)
        vector: list[float] = np.frombuffer(buffer, dtype=np.float32).tolist()
        return vector

    async def _run(self, function: Callable[[Embedder, str], T], text: str) -> T:
        await self._turns.acquire()
        try:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=_worker_context())
            pool = self._pool
            job = pool.submit(function, self.embedder, text)
        except BaseException:
            self._turns.release()
            raise
        self.running += 1
        # The turn is given back when the job ends, not when its caller stops waiting: a
        # cancelled call's job may still be running, and must still count against the bound.
        loop = asyncio.get_running_loop()
        job.add_done_callback(lambda _: _call_soon(loop, self._job_done))
        try:
            return await asyncio.wrap_future(job)
        except BrokenProcessPool as error:
            # A worker died (killed, out of memory): the next call starts a fresh pool.
            if self._pool is pool:
                self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise Unavailable("the embedding worker stopped unexpectedly; retry the call") from error

    def _job_done(self) -> None:
        self.running -= 1
        self._turns.release()

    async def close(self) -> None:
        """Stop the worker processes: queued jobs are cancelled, running ones finish first."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


def _worker_context() -> multiprocessing.context.BaseContext:
    """How worker processes start: forked from a fork server, never from the server itself.

    A child forked from the server would inherit its threads and locks mid-use. The fork
    server is a fresh interpreter started once per server process, with this module (and
    numpy) already imported: a pool started later (after a worker died, or by another
    server in the same process) gets its workers in milliseconds, where ``spawn`` paid a
    whole interpreter start and these imports for each.

    A process forked from one that uses the fork server (a test runner's forked child, a
    pre-forking supervisor) inherits multiprocessing's record of that server but cannot
    reach it (it is not its child: starting a worker raised ``ChildProcessError``): its
    workers are spawned instead.
    """
    global _fork_server_owner
    if _fork_server_owner is None:
        _fork_server_owner = os.getpid()
    if _fork_server_owner != os.getpid():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """Schedule ``callback`` on ``loop`` from a pool's thread; nothing once the loop is closed."""
    if not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # closed between the check and the call
            loop.call_soon_threadsafe(callback)
