"""chat_sdk.call_with_retry: retries what is retryable, within one deadline, and no more."""

from __future__ import annotations

import asyncio
import itertools
import random
import ssl
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

from chat_sdk import RetryPolicy, call_with_retry, connect, is_retry_safe, retry_delay
from chat_sdk.v1 import (
    GetMessageRequest,
    GetMessageResponse,
    MessageServiceStub,
    NewMessage,
    SendMessagesRequest,
)
from chat_services.server import build_app
from tests.services.conftest import make_config
from tests.services.harness import serve

from .server import FlakyMessages, Hanging, closed_port, serving

FAST = RetryPolicy(max_attempts=4, initial_backoff=0.001, max_backoff=0.01)
GET_MESSAGE = "/chat.v1.MessageService/GetMessage"


def _get_with_retry(service: FlakyMessages, policy: RetryPolicy) -> GetMessageResponse:
    async def scenario() -> GetMessageResponse:
        async with serving(service, []) as port, connect(f"127.0.0.1:{port}") as channel:
            stub = MessageServiceStub(channel)
            request = GetMessageRequest(message_id="m-9")
            return await call_with_retry(
                lambda remaining: stub.get_message(request, timeout=remaining), timeout=10, policy=policy
            )

    return asyncio.run(scenario())


def test_unavailable_is_retried_until_success() -> None:
    service = FlakyMessages(failures=2)
    reply = _get_with_retry(service, FAST)
    assert reply.message is not None and reply.message.id == "m-9"
    assert service.calls == 3


def test_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    service = FlakyMessages(failures=10)
    with pytest.raises(GRPCError) as raised:
        _get_with_retry(service, FAST)
    assert raised.value.status is Status.UNAVAILABLE
    assert service.calls == FAST.max_attempts


def test_other_statuses_are_not_retried() -> None:
    calls = 0

    async def invalid(_: float | None) -> None:
        nonlocal calls
        calls += 1
        raise GRPCError(Status.INVALID_ARGUMENT, "bad")

    with pytest.raises(GRPCError):
        asyncio.run(call_with_retry(invalid, policy=FAST))
    assert calls == 1


def test_each_attempt_gets_what_is_left_of_the_deadline() -> None:
    given: list[float | None] = []

    async def unavailable(remaining: float | None) -> None:
        given.append(remaining)
        raise GRPCError(Status.UNAVAILABLE)

    with pytest.raises(GRPCError):
        asyncio.run(call_with_retry(unavailable, timeout=30, policy=FAST))
    assert len(given) == FAST.max_attempts
    remaining = [r for r in given if r is not None]
    assert len(remaining) == len(given) and 0 < remaining[0] <= 30
    # Strictly shrinking: an attempt never gets back time an earlier one or a pause used.
    assert all(later < earlier for earlier, later in itertools.pairwise(remaining)), remaining


def test_without_a_timeout_every_attempt_is_unbounded() -> None:
    given: list[float | None] = []

    async def unavailable(remaining: float | None) -> None:
        given.append(remaining)
        raise GRPCError(Status.UNAVAILABLE)

    with pytest.raises(GRPCError):
        asyncio.run(call_with_retry(unavailable, policy=FAST))
    assert given == [None] * FAST.max_attempts


class FixedPause(RetryPolicy):
    """A policy whose pause is always ``initial_backoff``: deterministic."""

    def backoff(self, attempt: int) -> float:
        return self.initial_backoff


def test_a_pause_that_would_pass_the_deadline_gives_up_with_the_last_error() -> None:
    calls = 0

    async def unavailable(_: float | None) -> None:
        nonlocal calls
        calls += 1
        raise GRPCError(Status.UNAVAILABLE, "down")

    policy = FixedPause(initial_backoff=60.0, max_backoff=60.0)
    with pytest.raises(GRPCError) as raised:
        asyncio.run(call_with_retry(unavailable, timeout=30, policy=policy))
    assert raised.value.message == "down"
    assert calls == 1


def test_an_exhausted_deadline_raises_timeout_before_calling() -> None:
    calls = 0

    async def never(_: float | None) -> None:
        nonlocal calls
        calls += 1

    with pytest.raises(TimeoutError, match="deadline of -1 s exhausted after 0 attempts"):
        asyncio.run(call_with_retry(never, timeout=-1))
    assert calls == 0


def test_a_retryable_status_chosen_by_the_policy_is_retried() -> None:
    statuses = [Status.RESOURCE_EXHAUSTED, Status.RESOURCE_EXHAUSTED]

    async def busy(_: float | None) -> str:
        if statuses:
            raise GRPCError(statuses.pop())
        return "done"

    policy = RetryPolicy(
        initial_backoff=0.001, max_backoff=0.001, retryable=frozenset({Status.RESOURCE_EXHAUSTED})
    )
    assert asyncio.run(call_with_retry(busy, timeout=30, policy=policy)) == "done"
    assert RetryPolicy().retryable == frozenset({Status.UNAVAILABLE})


def test_the_default_policy_is_four_attempts_with_capped_doubling_backoff() -> None:
    assert RetryPolicy() == RetryPolicy(max_attempts=4, initial_backoff=0.1, max_backoff=2.0, multiplier=2.0)


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 0.1), (2, 0.2), (3, 0.4), (5, 1.6), (6, 2.0), (9, 2.0)])
def test_backoff_is_full_jitter_below_a_doubling_capped_ceiling(attempt: int, ceiling: float) -> None:
    policy = RetryPolicy(max_attempts=10)
    generator = random.Random(attempt)
    random.seed(attempt)
    pauses = [policy.backoff(attempt) for _ in range(200)]
    assert pauses == [generator.uniform(0, ceiling) for _ in range(200)]


def test_a_policy_at_the_edges_of_sense_is_allowed() -> None:
    RetryPolicy(max_attempts=1, initial_backoff=0.0, max_backoff=0.0, multiplier=1.0)


def test_read_only_rpcs_are_retry_safe_and_writes_are_not() -> None:
    assert is_retry_safe("/chat.v1.MessageService/GetMessage")
    assert is_retry_safe("/chat.v1.RAGService/SearchDocuments")
    assert not is_retry_safe("/chat.v1.MessageService/SendMessages")
    assert not is_retry_safe("/chat.v1.Nope/Nothing")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"initial_backoff": -1.0},
        {"initial_backoff": 3.0, "max_backoff": 1.0},
        {"multiplier": 0.5},
    ],
)
def test_a_nonsensical_policy_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(
        ValueError,
        match=r"^(max_attempts must be at least 1"
        r"|need 0 <= initial_backoff <= max_backoff and multiplier >= 1)$",
    ):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def _rate_limited(delay: float) -> GRPCError:
    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=int(delay * 1e9)))
    return GRPCError(Status.RESOURCE_EXHAUSTED, "slow down", [info])


def test_retry_info_makes_a_status_retryable_and_sets_the_pause() -> None:
    service = FlakyMessages(failures=2, error=_rate_limited(0.01))
    reply = _get_with_retry(service, FAST)
    assert reply.message is not None and service.calls == 3


def test_resource_exhausted_without_retry_info_is_not_retried() -> None:
    service = FlakyMessages(failures=1, error=GRPCError(Status.RESOURCE_EXHAUSTED, "too big"))
    with pytest.raises(GRPCError) as raised:
        _get_with_retry(service, FAST)
    assert raised.value.status is Status.RESOURCE_EXHAUSTED and service.calls == 1


def test_retry_delay_reads_the_retry_info_detail() -> None:
    assert retry_delay(_rate_limited(0.25)) == pytest.approx(0.25)
    assert retry_delay(GRPCError(Status.UNAVAILABLE, "down")) is None


def test_a_deadline_under_a_second_still_allows_the_call() -> None:
    async def ok(remaining: float | None) -> float | None:
        return remaining

    remaining = asyncio.run(call_with_retry(ok, timeout=0.5))
    assert remaining is not None and 0 < remaining <= 0.5


@pytest.mark.parametrize(
    "error",
    [GRPCError(Status.UNAVAILABLE, "down"), _rate_limited(0.0), ConnectionRefusedError(111, "refused")],
    ids=["no-retry-info", "retry-now", "refused"],
)
def test_without_a_delay_asked_for_the_pause_is_only_the_backoff(error: Exception) -> None:
    # Two retries within half a second: no pause beyond the policy's few milliseconds.
    calls = 0

    async def flaky(_: float | None) -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise error
        return calls

    assert asyncio.run(call_with_retry(flaky, timeout=0.5, policy=FAST)) == 3


def test_a_delay_asked_for_past_the_deadline_gives_up_at_once() -> None:
    # The server asks for a minute; the caller has thirty seconds: waiting the backoff instead
    # would retry sooner than asked.
    calls = 0

    async def rate_limited(_: float | None) -> None:
        nonlocal calls
        calls += 1
        info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=60))
        raise GRPCError(Status.RESOURCE_EXHAUSTED, "slow down", [info])

    with pytest.raises(GRPCError) as raised:
        asyncio.run(call_with_retry(rate_limited, timeout=30, policy=FAST))
    assert (raised.value.status, raised.value.message, calls) == (Status.RESOURCE_EXHAUSTED, "slow down", 1)


# Transport failures: a server that is down, restarting, or drops the connection.

WAIT = 30.0  # seconds: a bound on waiting for an event that must come, never a speed target


@dataclass(frozen=True)
class CountedPauses(RetryPolicy):
    """The policy's own jittered backoff, recording the number of each retry it pauses before."""

    pauses: list[int] = field(default_factory=list, compare=False)

    def backoff(self, attempt: int) -> float:
        self.pauses.append(attempt)
        return super().backoff(attempt)


async def test_a_closed_port_takes_every_attempt_and_ends_unavailable() -> None:
    # The case: RetryPolicy(max_attempts=4) against a closed port gave up at once
    # with a raw ConnectionRefusedError. A refused connection sent nothing: even a call
    # not marked idempotent is retried.
    policy = CountedPauses(max_attempts=4)
    attempts = 0
    async with connect(f"127.0.0.1:{closed_port()}") as channel:
        stub = MessageServiceStub(channel)

        async def get(remaining: float | None) -> GetMessageResponse:
            nonlocal attempts
            attempts += 1
            return await stub.get_message(GetMessageRequest(message_id="m-1"), timeout=remaining)

        with pytest.raises(GRPCError) as raised:
            await call_with_retry(get, timeout=WAIT, policy=policy)
    assert raised.value.status is Status.UNAVAILABLE
    assert raised.value.message is not None and raised.value.message.startswith("connection refused")
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)
    assert attempts == 4
    assert policy.pauses == [1, 2, 3]  # a backoff before each retry, none after the last


async def test_calls_in_a_loop_survive_the_server_stopping_and_restarting(tmp_path: Path) -> None:
    app = await build_app(make_config(tmp_path))
    port = await app.start()
    policy = CountedPauses(max_attempts=1000, initial_backoff=0.01, max_backoff=0.1)
    attempts: list[int] = []  # per turn of the loop
    two_failed = asyncio.Event()
    contents: list[str] = []
    try:
        # One channel throughout: grpclib opens a new connection on the call after a failure.
        async with connect(f"127.0.0.1:{port}") as channel:
            stub = MessageServiceStub(channel, timeout=10)
            new = NewMessage(
                idempotency_key="restart-1", conversation_id="c-r", author_id="u-1", content="kept"
            )
            sent = await stub.send_messages([SendMessagesRequest(message=new)])
            request = GetMessageRequest(message_id=sent.messages[0].id)

            async def get(remaining: float | None) -> GetMessageResponse:
                attempts[-1] += 1
                if attempts[-1] == 3:
                    two_failed.set()
                return await stub.get_message(request, timeout=remaining)

            for turn in range(6):
                attempts.append(0)
                if turn == 2:
                    await app.shutdown()  # closes the clients' connections, then the port
                call = asyncio.create_task(
                    call_with_retry(get, timeout=120, policy=policy, idempotent=is_retry_safe(GET_MESSAGE))
                )
                if turn == 2:
                    await asyncio.wait_for(two_failed.wait(), WAIT)
                    app = await build_app(make_config(tmp_path, port=port))  # same port, same database
                    await app.start()
                reply = await call
                assert reply.message is not None
                contents.append(reply.message.content)
    finally:
        await app.shutdown()
    assert contents == ["kept"] * 6
    assert attempts[:2] == [1, 1] and attempts[3:] == [1, 1, 1]
    assert attempts[2] >= 3
    assert policy.pauses == list(range(1, attempts[2]))


@pytest.mark.parametrize("idempotent", [False, True])
async def test_a_connection_lost_mid_call_is_retried_only_for_an_idempotent_call(idempotent: bool) -> None:
    hanging = Hanging()
    policy = CountedPauses(max_attempts=3, initial_backoff=0.001, max_backoff=0.01)
    causes: list[BaseException] = []
    channel = None
    try:
        async with serve([hanging]) as port:
            channel = connect(f"127.0.0.1:{port}")
            stub = MessageServiceStub(channel)

            async def get(remaining: float | None) -> GetMessageResponse:
                try:
                    return await stub.get_message(GetMessageRequest(message_id="m-1"), timeout=remaining)
                except (OSError, StreamTerminatedError) as error:
                    causes.append(error)
                    raise

            call = asyncio.create_task(
                call_with_retry(get, timeout=WAIT, policy=policy, idempotent=idempotent)
            )
            await asyncio.wait_for(hanging.received.wait(), WAIT)
        # The server has stopped with the request read and unanswered: it may have acted.
        with pytest.raises(GRPCError) as raised:
            await call
    finally:
        if channel is not None:
            channel.close()
    assert raised.value.status is Status.UNAVAILABLE
    assert isinstance(causes[0], StreamTerminatedError)
    if idempotent:
        # Retried; the server is gone, so the later attempts are refused.
        assert len(causes) == 3 and all(isinstance(c, ConnectionRefusedError) for c in causes[1:])
    else:
        assert len(causes) == 1 and policy.pauses == []
    assert raised.value.__cause__ is causes[-1]


async def test_an_attempt_that_passes_its_deadline_is_not_retried() -> None:
    # grpclib raises the deadline as asyncio.TimeoutError, an OSError: never a transport failure.
    hanging = Hanging()
    attempts = 0
    async with serve([hanging]) as port, connect(f"127.0.0.1:{port}") as channel:
        stub = MessageServiceStub(channel)

        async def get(remaining: float | None) -> GetMessageResponse:
            nonlocal attempts
            attempts += 1
            return await stub.get_message(GetMessageRequest(message_id="m-1"), timeout=remaining)

        with pytest.raises(TimeoutError):
            await call_with_retry(get, timeout=0.2, policy=FAST, idempotent=True)
    assert attempts == 1


async def test_retries_of_a_closed_port_stop_at_the_deadline() -> None:
    given: list[float | None] = []
    async with connect(f"127.0.0.1:{closed_port()}") as channel:
        stub = MessageServiceStub(channel)

        async def get(remaining: float | None) -> GetMessageResponse:
            given.append(remaining)
            return await stub.get_message(GetMessageRequest(message_id="m-1"), timeout=remaining)

        policy = FixedPause(max_attempts=100_000, initial_backoff=0.05, max_backoff=0.05)
        with pytest.raises(GRPCError) as raised:
            await call_with_retry(get, timeout=2.0, policy=policy)
    assert raised.value.status is Status.UNAVAILABLE
    assert 1 < len(given) < policy.max_attempts
    remaining = [r for r in given if r is not None]
    assert len(remaining) == len(given)
    assert all(later < earlier for earlier, later in itertools.pairwise(remaining)), remaining


async def test_a_refused_connection_is_not_retried_when_the_policy_leaves_out_unavailable() -> None:
    attempts = 0

    async def refused(_: float | None) -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionRefusedError(111, "Connect call failed")

    policy = RetryPolicy(
        initial_backoff=0.001, max_backoff=0.001, retryable=frozenset({Status.RESOURCE_EXHAUSTED})
    )
    with pytest.raises(GRPCError) as raised:
        await call_with_retry(refused, timeout=WAIT, policy=policy, idempotent=True)
    assert raised.value.status is Status.UNAVAILABLE and attempts == 1


@pytest.mark.parametrize(
    ("error", "plain_attempts", "idempotent_attempts"),
    [
        (ConnectionRefusedError(111, "refused"), FAST.max_attempts, FAST.max_attempts),
        (ConnectionResetError(104, "reset by peer"), 1, FAST.max_attempts),
        (BrokenPipeError(32, "broken pipe"), 1, FAST.max_attempts),
        (StreamTerminatedError("Connection lost"), 1, FAST.max_attempts),
        (OSError(113, "no route to host"), 1, FAST.max_attempts),
    ],
    ids=["refused", "reset", "broken-pipe", "stream-terminated", "unreachable"],
)  # fmt: skip
@pytest.mark.parametrize("idempotent", [False, True])
async def test_transport_failures_count_as_unavailable(
    error: Exception, plain_attempts: int, idempotent_attempts: int, idempotent: bool
) -> None:
    attempts = 0

    async def failing(_: float | None) -> None:
        nonlocal attempts
        attempts += 1
        raise error

    with pytest.raises(GRPCError) as raised:
        await call_with_retry(failing, timeout=WAIT, policy=FAST, idempotent=idempotent)
    assert raised.value.status is Status.UNAVAILABLE and raised.value.__cause__ is error
    assert attempts == (idempotent_attempts if idempotent else plain_attempts)


@pytest.mark.parametrize(
    "error",
    [
        ssl.SSLCertVerificationError("certificate verify failed"),
        TimeoutError("deadline"),
        PermissionError(1, "no"),
    ],
    ids=["tls", "deadline", "permission"],
)
async def test_tls_failures_deadlines_and_local_errors_are_raised_unchanged(error: Exception) -> None:
    attempts = 0

    async def failing(_: float | None) -> None:
        nonlocal attempts
        attempts += 1
        raise error

    with pytest.raises(type(error)) as raised:
        await call_with_retry(failing, timeout=WAIT, policy=FAST, idempotent=True)
    assert raised.value is error and attempts == 1


async def test_a_long_transport_error_is_cut_in_the_status_message() -> None:
    async def failing(_: float | None) -> None:
        raise ConnectionResetError(104, "x" * 100_000)

    with pytest.raises(GRPCError) as raised:
        await call_with_retry(failing, policy=RetryPolicy(max_attempts=1))
    assert raised.value.message is not None and len(raised.value.message) < 300


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            ConnectionRefusedError(111, "refused"),
            "connection refused (ConnectionRefusedError: [Errno 111] refused)",
        ),
        (
            ConnectionResetError(104, "reset by peer"),
            "connection failed or lost (ConnectionResetError: [Errno 104] reset by peer)",
        ),
        (
            StreamTerminatedError("Connection lost"),
            "connection failed or lost (StreamTerminatedError: Connection lost)",
        ),
    ],
    ids=["refused", "reset", "stream-terminated"],
)
async def test_the_unavailable_status_says_what_happened_to_the_connection_and_why(
    error: Exception, message: str
) -> None:
    async def failing(_: float | None) -> None:
        raise error

    with pytest.raises(GRPCError) as raised:
        await call_with_retry(failing, policy=RetryPolicy(max_attempts=1))
    assert raised.value.message == message


async def test_a_call_is_not_taken_for_idempotent_unless_the_caller_says_so() -> None:
    attempts = 0

    async def reset(_: float | None) -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionResetError(104, "reset by peer")

    with pytest.raises(GRPCError) as raised:
        await call_with_retry(reset, timeout=WAIT, policy=FAST)
    assert raised.value.status is Status.UNAVAILABLE and attempts == 1
