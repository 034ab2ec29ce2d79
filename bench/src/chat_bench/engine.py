"""The load engine behind ``chat-load``: workers sharing a call budget, pacing and a deadline."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ssl import SSLContext

from google.protobuf.message import Message
from grpclib._typing import IProtoMessage
from grpclib.client import Channel
from grpclib.config import Configuration
from grpclib.encoding.proto import ProtoCodec
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from chat_bench.methods import Method
from chat_bench.stats import LoadResult, Outcome
from chat_bench.templates import RequestTemplate

MAX_CALLS = 1_000_000
MAX_SECONDS = 3600.0
MAX_CONCURRENCY = 1000
MAX_STREAM_COUNT = 100_000
_PREFIX = 5  # bytes of gRPC's length prefix before each message


@dataclass(frozen=True)
class CallPlan:
    """One kind of call in a run: the method, its request data, how many messages a stream sends."""

    method: Method
    template: RequestTemplate
    stream_count: int = 1
    weight: int = 1
    name: str = ""

    @property
    def label(self) -> str:
        """The name reported for these calls: ``name`` or the method's path."""
        return self.name or self.method.path.lstrip("/")


@dataclass(frozen=True)
class LoadPlan:
    """A whole run: where, what mix of calls, how many, how fast, how long."""

    host: str
    port: int
    calls: Sequence[CallPlan]
    total: int | None = 200
    duration: float | None = None
    concurrency: int = 50
    connections: int = 1
    rps: float | None = None
    timeout: float = 20.0
    ssl: SSLContext | None = None  # None: plaintext HTTP/2
    server_name: str | None = None  # the name the server's certificate must carry, if not the host
    metadata: tuple[tuple[str, str], ...] = ()  # sent with every call (a token as authorization)

    def check(self) -> None:
        """Refuse plans outside the tool's bounds, with a message naming the limit."""
        if not self.calls:
            raise ValueError("a run needs at least one call")
        if self.total is None and self.duration is None:
            raise ValueError("bound the run: give a call count (-n) or a duration (-z)")
        if self.total is not None and not 0 < self.total <= MAX_CALLS:
            raise ValueError(f"-n must be between 1 and {MAX_CALLS}")
        if self.duration is not None and not 0 < self.duration <= MAX_SECONDS:
            raise ValueError(f"-z must be between 0 and {MAX_SECONDS:.0f} seconds")
        if not 0 < self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"-c must be between 1 and {MAX_CONCURRENCY}")
        if not 0 < self.connections <= self.concurrency:
            raise ValueError("--connections must be between 1 and the concurrency (-c)")
        if self.rps is not None and not self.rps > 0:
            raise ValueError("--rps must be positive")
        if not 0 < self.timeout <= MAX_SECONDS:
            raise ValueError(f"--timeout must be between 0 and {MAX_SECONDS:.0f} seconds")
        for call in self.calls:
            if not 0 < call.stream_count <= MAX_STREAM_COUNT or call.weight < 1:
                raise ValueError(f"stream counts go from 1 to {MAX_STREAM_COUNT}, weights from 1")


class CountingCodec(ProtoCodec):
    """grpclib's protobuf codec, adding up the bytes of the messages it encodes and decodes."""

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0

    def encode(self, message: IProtoMessage, message_type: type[IProtoMessage]) -> bytes:
        """Serialize and count."""
        data = super().encode(message, message_type)
        self.sent += len(data) + _PREFIX
        return data

    def decode(self, data: bytes, message_type: type[IProtoMessage]) -> IProtoMessage:
        """Count and parse."""
        self.received += len(data) + _PREFIX
        return super().decode(data, message_type)


async def call_once(
    channel: Channel,
    method: Method,
    requests: Sequence[Message],
    timeout: float,
    metadata: Sequence[tuple[str, str]] = (),
) -> int:
    """Make one call of any kind; return the number of replies. Errors propagate."""
    received = 0
    async with channel.request(
        method.path,
        method.cardinality,
        method.request_type,
        method.reply_type,
        timeout=timeout,
        metadata=list(metadata) or None,
    ) as stream:
        for message in requests[:-1]:
            await stream.send_message(message)
        await stream.send_message(requests[-1], end=True)
        while await stream.recv_message() is not None:
            received += 1
    return received


def outcome_of(error: BaseException) -> Outcome:
    """The gRPC status a failed call is counted under, and its message (ghz's error distribution)."""
    if isinstance(error, GRPCError):
        return error.status.name, error.message or ""
    if isinstance(error, asyncio.TimeoutError):
        return "DEADLINE_EXCEEDED", "the call's deadline (--timeout) passed"
    described = f"{type(error).__name__}: {error}"
    if isinstance(error, StreamTerminatedError | ConnectionError | OSError):
        return "UNAVAILABLE", described
    return "INTERNAL", described


Progress = Callable[[int, float], None]


async def run_load(plan: LoadPlan, progress: Progress | None = None) -> LoadResult:
    """Run ``plan`` and return what it measured; ``progress(done, elapsed)`` after each call."""
    plan.check()
    loop = asyncio.get_running_loop()
    codecs = [CountingCodec() for _ in range(plan.connections)]
    config = Configuration(ssl_target_name_override=plan.server_name)
    channels = [Channel(plan.host, plan.port, ssl=plan.ssl, codec=codec, config=config) for codec in codecs]
    # The mix, expanded by weight and shuffled the same way every run: call i uses mix[i % len(mix)].
    mix = [call for call in plan.calls for _ in range(call.weight)]
    random.Random(0).shuffle(mix)
    result = LoadResult()
    numbers = itertools.count()
    start = loop.time()
    deadline = start + plan.duration if plan.duration is not None else math.inf
    budget = plan.total if plan.total is not None else math.inf

    async def worker(index: int) -> None:
        channel = channels[index % len(channels)]
        while True:
            number = next(numbers)
            if number >= budget or loop.time() >= deadline:
                return
            if plan.rps is not None:
                delay = start + number / plan.rps - loop.time()
                if delay > 0:
                    # A call paced past the end of a -z run is never made: wait no longer than the run.
                    await asyncio.sleep(min(delay, deadline - loop.time()))
                    if loop.time() >= deadline:
                        return
            call = mix[number % len(mix)]
            count = call.stream_count if call.method.client_streaming else 1
            requests = call.template.messages(number, count)
            began = time.perf_counter()
            status, message = "OK", ""
            try:
                replies = await call_once(channel, call.method, requests, plan.timeout, plan.metadata)
                result.messages_received += replies
            except (TimeoutError, GRPCError, StreamTerminatedError, ProtocolError, OSError) as error:
                status, message = outcome_of(error)
            result.record(call.label, time.perf_counter() - began, status, message)
            if progress is not None:
                progress(result.count, loop.time() - start)

    try:
        await asyncio.gather(*(worker(i) for i in range(plan.concurrency)))
    finally:
        result.elapsed = loop.time() - start
        for channel in channels:
            channel.close()
    result.bytes_sent = sum(codec.sent for codec in codecs)
    result.bytes_received = sum(codec.received for codec in codecs)
    return result
