"""The rate-limit file's rules and the buckets they make, and the refusals the guard answers with,
each checked on its own against the module docstring's specification (no server)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from google.rpc import error_details_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat_services.security import ratelimit, refusals
from chat_services.security.meter import Meter, bind_meter, charge, unbind_meter
from chat_services.security.ratelimit import Limit, RateLimitConfig, RateLimiter, Work

from ..clients import until

SEND = "/chat.v1.MessageService/SendMessages"
GET = "/chat.v1.MessageService/GetMessage"


def test_an_empty_file_gives_the_documented_defaults() -> None:
    config = RateLimitConfig.from_mapping({})
    assert (config.default, config.max_streams) == (Limit(rate=100.0, burst=200), 32)
    assert config.work == {
        "messages": Limit(rate=50.0, burst=1000),
        "joins": Limit(rate=10.0, burst=100),
        "document_bytes": Limit(rate=1024 * 1024.0, burst=16 * 1024 * 1024),
    }
    assert config.limit_for(SEND) == config.default


def test_methods_inherit_what_they_leave_out_from_the_defaults() -> None:
    config = RateLimitConfig.from_mapping(
        {
            "defaults": {"rate": 10, "burst": 20, "max_streams": 3},
            "methods": {SEND: {"rate": 5}, GET: {"burst": 7}},
            "work": {"joins": {"burst": 4}},
        }
    )
    assert config.default == Limit(rate=10.0, burst=20)
    assert config.limit_for(SEND) == Limit(rate=5.0, burst=20)
    assert config.limit_for(GET) == Limit(rate=10.0, burst=7)
    assert config.max_streams == 3
    assert config.work["joins"] == Limit(rate=10.0, burst=4)  # the work default's rate, not [defaults]'
    assert config.work["messages"] == Work.DEFAULTS["messages"]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"defaults": {"rate": 1, "brust": 2}}, "rate limits [defaults]: unknown keys ['brust']"),
        ({"methods": {SEND: {"rate": 1, "per": 2}}}, f"rate limits [{SEND}]: unknown keys ['per']"),
        ({"work": {"messages": {"per": 2}}}, "rate limits [work.messages]: unknown keys ['per']"),
        (
            {"work": {"bytes": {"rate": 1}}},
            "rate limits [work.bytes]: unknown work; known: ['document_bytes', 'joins', 'messages']",
        ),
        ({"limits": {}}, "rate limits: unknown tables ['limits']"),
        ({"defaults": {"max_streams": 0}}, "max_streams must be at least 1"),
        ({"defaults": {"rate": 0}}, "a rate limit needs rate > 0 and burst >= 1"),
        ({"defaults": {"burst": 0}}, "a rate limit needs rate > 0 and burst >= 1"),
    ],
)
def test_a_mistake_in_the_file_is_refused_by_name(data: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(words)}$"):  # the whole message, nothing around it
        RateLimitConfig.from_mapping(data)


async def test_a_spent_bucket_refills_at_its_rate() -> None:
    """100 calls a second: the token taken is back within the poll's bound (at 1/100 s, not 100 s)."""
    limiter = RateLimiter(RateLimitConfig(default=Limit(rate=100.0, burst=1)))
    assert await limiter.try_acquire("user:a", GET) is None
    assert await limiter.try_acquire("user:a", GET) == pytest.approx(0.01)

    async def taken() -> bool:
        return await limiter.try_acquire("user:a", GET) is None

    await until(taken)


def test_the_smallest_valid_limit_is_accepted() -> None:
    assert Limit(rate=0.001, burst=1).refill_seconds == pytest.approx(1000.0)


async def test_a_bucket_holds_its_burst_per_caller_and_method_then_says_when_to_retry() -> None:
    limiter = RateLimiter(RateLimitConfig(default=Limit(rate=0.5, burst=3)))
    assert [await limiter.try_acquire("user:a", GET) for _ in range(3)] == [None, None, None]
    assert await limiter.try_acquire("user:a", GET) == pytest.approx(2.0)  # one token back in 1/rate s
    assert await limiter.try_acquire("user:b", GET) is None  # another caller: another bucket
    assert await limiter.try_acquire("user:a", SEND) is None  # another method: another bucket


async def test_work_is_charged_by_units_and_more_than_a_bucket_never_fits() -> None:
    config = RateLimitConfig(work={"messages": Limit(rate=2.0, burst=10)})
    limiter = RateLimiter(config)
    assert await limiter.try_charge("user:a", "messages", 6) is None
    assert await limiter.try_charge("user:a", "messages", 6) == pytest.approx(3.0)  # 6 units at 2/s
    assert await limiter.try_charge("user:a", "messages", 4) is None  # exactly what is left
    assert await limiter.try_charge("user:b", "messages", 50) is None  # capped at one full bucket
    assert await limiter.try_charge("user:b", "messages", 1) == pytest.approx(0.5)
    # Unknown work and nothing to charge are free.
    assert await limiter.try_charge("user:a", "unknown", 100) is None
    assert await limiter.try_charge("user:a", "messages", 0) is None


async def test_calls_and_work_of_one_caller_are_separate_buckets() -> None:
    config = RateLimitConfig(default=Limit(rate=1.0, burst=1), work={"messages": Limit(rate=1.0, burst=1)})
    limiter = RateLimiter(config)
    assert await limiter.try_acquire("user:a", "messages") is None
    assert await limiter.try_charge("user:a", "messages", 1) is None


def test_open_streams_are_counted_per_caller_up_to_the_limit() -> None:
    limiter = RateLimiter(RateLimitConfig(max_streams=2))
    assert [limiter.open_stream("user:a") for _ in range(3)] == [True, True, False]
    assert limiter.open_stream("user:b")
    limiter.close_stream("user:a")
    assert limiter.open_stream("user:a")
    assert not limiter.open_stream("user:a")
    for _ in range(2):
        limiter.close_stream("user:a")
    assert limiter._streams == {"user:b": 1}  # a caller with none open is forgotten
    limiter.close_stream("user:nobody")  # closing what was never counted changes nothing
    assert limiter._streams == {"user:b": 1}


def error_info(error: Any) -> error_details_pb2.ErrorInfo:
    [info] = [d for d in error.details if isinstance(d, error_details_pb2.ErrorInfo)]
    return info


def test_a_method_missing_from_the_table_is_refused_as_open_to_no_caller() -> None:
    error = refusals.permission_denied(GET, None)
    assert (error.status, error.message) == (Status.PERMISSION_DENIED, f"{GET} is not open to any caller")
    info = error_info(error)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "METHOD_NOT_ALLOWED",
        "chat.v1",
        {"method": GET},
    )


def test_missing_scopes_are_named_sorted() -> None:
    # Five scopes: a set's own order is sorted by chance once in 120 runs at most.
    missing = frozenset({"plugins:read", "messages:write", "ai:complete", "messages:read", "documents:read"})
    named = "ai:complete documents:read messages:read messages:write plugins:read"
    error = refusals.permission_denied(SEND, missing)
    assert (error.status, error.message) == (Status.PERMISSION_DENIED, f"{SEND} needs the scope(s) {named}")
    info = error_info(error)
    assert (info.reason, info.domain, dict(info.metadata)) == (
        "MISSING_SCOPE",
        "chat.v1",
        {"method": SEND, "missing_scopes": named},
    )


def test_unauthenticated_and_rate_limited_carry_their_details() -> None:
    error = refusals.unauthenticated("TOKEN_EXPIRED", "the bearer token has expired", GET)
    assert (error.status, error.message) == (Status.UNAUTHENTICATED, "the bearer token has expired")
    info = error_info(error)
    assert (info.reason, info.domain, dict(info.metadata)) == ("TOKEN_EXPIRED", "chat.v1", {"method": GET})
    limited = refusals.rate_limited(GET, 2.5, "slow down")
    assert (limited.status, limited.message) == (Status.RESOURCE_EXHAUSTED, "slow down")
    [retry] = [d for d in limited.details if isinstance(d, error_details_pb2.RetryInfo)]
    assert retry.retry_delay.ToTimedelta().total_seconds() == pytest.approx(2.5)
    info = error_info(limited)
    assert (info.reason, info.domain, dict(info.metadata)) == ("RATE_LIMITED", "chat.v1", {"method": GET})


async def test_charging_nothing_never_costs_another_caller_their_bucket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Buckets past the cap drop the oldest; a charge of no units makes none, so it evicts nobody."""
    monkeypatch.setattr(ratelimit, "_MAX_BUCKETS", 2)
    limiter = RateLimiter(RateLimitConfig(default=Limit(rate=0.5, burst=1)))
    assert await limiter.try_acquire("user:a", GET) is None
    assert await limiter.try_acquire("user:b", GET) is None
    assert await limiter.try_charge("user:c", "messages", 0) is None
    assert await limiter.try_acquire("user:a", GET) == pytest.approx(2.0)  # a's bucket is still spent
    assert await limiter.try_acquire("user:c", GET) is None  # a third bucket: a's goes
    assert await limiter.try_acquire("user:a", GET) is None


async def test_work_is_charged_to_the_running_calls_caller_a_unit_at_a_time() -> None:
    """What the guard binds (see meter.py): each caller its own budget; ``charge(work)`` is one unit."""
    limiter = RateLimiter(RateLimitConfig(work={"joins": Limit(rate=0.5, burst=3)}))
    token = bind_meter(Meter(limiter, "user:a", SEND))
    try:
        for _ in range(3):
            await charge("joins")
        with pytest.raises(GRPCError) as refused:
            await charge("joins")
    finally:
        unbind_meter(token)
    assert (refused.value.status, refused.value.message) == (
        Status.RESOURCE_EXHAUSTED,
        "this caller's joins budget is spent; retry in 2 s",
    )
    assert dict(error_info(refused.value).metadata) == {"method": SEND}
    token = bind_meter(Meter(limiter, "user:b", SEND))
    try:
        await charge("joins", 3)
    finally:
        unbind_meter(token)
    await charge("joins", 100)  # no meter bound: an open server charges nothing
