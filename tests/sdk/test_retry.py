"""chat_sdk.call_with_retry: retries what is retryable, within one deadline, and no more."""

from __future__ import annotations

import asyncio

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
    assert all(r is not None and 0 < r <= 30 for r in given)
    assert given == sorted(given, reverse=True, key=lambda r: r or 0)


def test_read_only_rpcs_are_retry_safe_and_writes_are_not() -> None:
    assert is_retry_safe("/chat.v1.MessageService/GetMessage")
    assert is_retry_safe("/chat.v1.RAGService/SearchDocuments")
    assert not is_retry_safe("/chat.v1.MessageService/SendMessages")
    assert not is_retry_safe("/chat.v1.Nope/Nothing")


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"initial_backoff": -1.0}, {"initial_backoff": 3.0, "max_backoff": 1.0}],
)
def test_a_nonsensical_policy_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
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
