"""The load engine behind ``chat-load``: workers sharing a call budget, pacing and a deadline."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message
from grpclib._typing import IProtoMessage
from grpclib.client import Channel
from grpclib.encoding.proto import ProtoCodec
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from chat_bench.methods import Method
from chat_bench.stats import LoadResult
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


async def call_once(channel: Channel, method: Method, requests: Sequence[Message], timeout: float) -> int:
    """Make one call of any kind; return the number of replies. Errors propagate."""
    received = 0
    async with channel.request(
        method.path, method.cardinality, method.request_type, method.reply_type, timeout=timeout
    ) as stream:
        for message in requests[:-1]:
            await stream.send_message(message)
        await stream.send_message(requests[-1], end=True)
        while await stream.recv_message() is not None:
            received += 1
    return received


def status_name(error: BaseException) -> str:
    """The gRPC status a failed call is counted under."""
    if isinstance(error, GRPCError):
        return error.status.name
    if isinstance(error, asyncio.TimeoutError):
        return "DEADLINE_EXCEEDED"
    if isinstance(error, StreamTerminatedError | ConnectionError | OSError):
        return "UNAVAILABLE"
    return "INTERNAL"


Progress = Callable[[int, float], None]


async def run_load(plan: LoadPlan, progress: Progress | None = None) -> LoadResult:
    """Run ``plan`` and return what it measured; ``progress(done, elapsed)`` after each call."""
    plan.check()
    loop = asyncio.get_running_loop()
    codecs = [CountingCodec() for _ in range(plan.connections)]
    channels = [Channel(plan.host, plan.port, codec=codec) for codec in codecs]
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
                    await asyncio.sleep(delay)
                    if loop.time() >= deadline:
                        return
            call = mix[number % len(mix)]
            count = call.stream_count if call.method.client_streaming else 1
            requests = call.template.messages(number, count)
            began = time.perf_counter()
            try:
                replies = await call_once(channel, call.method, requests, plan.timeout)
                result.messages_received += replies
                status = "OK"
            except (TimeoutError, GRPCError, StreamTerminatedError, ProtocolError, OSError) as error:
                status = status_name(error)
            latency = time.perf_counter() - began
            result.latencies.append(latency)
            result.per_call.setdefault(call.label, []).append(latency)
            result.statuses[status] += 1
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
