"""chat_sdk.call_with_retry: retries what is retryable, within one deadline, and no more."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat_sdk import RetryPolicy, call_with_retry, connect, is_retry_safe, retry_delay
from chat_sdk.v1 import GetMessageRequest, GetMessageResponse, MessageServiceStub

from .server import FlakyMessages, serving

FAST = RetryPolicy(max_attempts=4, initial_backoff=0.001, max_backoff=0.01)


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
    "error", [GRPCError(Status.UNAVAILABLE, "down"), _rate_limited(0.0)], ids=["no-retry-info", "retry-now"]
)
def test_without_a_delay_asked_for_the_pause_is_only_the_backoff(error: GRPCError) -> None:
    # Two retries within half a second: no pause beyond the policy's few milliseconds.
    calls = 0

    async def flaky(_: float | None) -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise error
        return calls

    assert asyncio.run(call_with_retry(flaky, timeout=0.5, policy=FAST)) == 3
