"""LISTEN/NOTIFY between processes' connections on a real, throwaway PostgreSQL database."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import psycopg
import pytest

from chat_services.notifications import MAX_PAYLOAD_BYTES, Notifications, bounded_json
from chat_services.plugin.events import (
    EventType,
    PluginEvent,
    PluginEventHub,
    Subscription,
    from_payload,
    to_payload,
)

from .clients import until

CHANNEL = "chat_test"


@pytest.fixture
async def pair(postgres_dsn: str) -> AsyncIterator[tuple[Notifications, Notifications]]:
    """Two instances' notifications on one database (not yet started)."""
    first, second = Notifications(postgres_dsn), Notifications(postgres_dsn)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_notifications_reach_every_listening_instance_in_the_order_sent(
    pair: tuple[Notifications, Notifications],
) -> None:
    sender, receiver = pair
    heard_here: list[str] = []
    heard_there: list[str] = []
    sender.subscribe(CHANNEL, heard_here.append)
    receiver.subscribe(CHANNEL, heard_there.append)
    await sender.start()
    await receiver.start()
    sent = [f"{i} c-1" for i in range(300)]  # more than one batch
    for payload in sent:
        sender.publish(CHANNEL, payload)
    await until(lambda: len(heard_there) == len(sent) and len(heard_here) == len(sent))
    assert heard_there == sent
    assert heard_here == sent  # the sender hears its own: receivers skip what is theirs


async def test_a_lost_listening_connection_is_reopened_and_listeners_are_told(
    pair: tuple[Notifications, Notifications], postgres_dsn: str
) -> None:
    sender, receiver = pair
    heard: list[str] = []
    reconnected: list[int] = []
    receiver.subscribe(CHANNEL, heard.append)
    receiver.on_reconnect(lambda: reconnected.append(receiver.reconnects))
    await sender.start()
    await receiver.start()
    async with await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (f"chat-services listen {receiver.instance_id}",),
        )
        assert [row[0] for row in await cursor.fetchall()] == [True]
    await until(lambda: reconnected == [1])
    sender.publish(CHANNEL, "after")
    await until(lambda: heard == ["after"])


async def test_a_payload_too_large_for_postgresql_is_refused_before_sending(
    pair: tuple[Notifications, Notifications],
) -> None:
    with pytest.raises(ValueError, match="at most"):
        pair[0].publish(CHANNEL, "x" * (MAX_PAYLOAD_BYTES + 1))


def test_bounded_json_cuts_the_named_text_to_fit() -> None:
    payload = bounded_json({"id": "e-1", "text": "é" * 10_000}, shrink="text")
    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    assert json.loads(payload)["id"] == "e-1"


def event(message: str = "done", **attributes: str) -> PluginEvent:
    return PluginEvent("e-1", "word_count", EventType.SUCCEEDED, 1, "inv-1", message, attributes, "alice")


def test_a_plugin_event_crosses_as_bounded_json_and_comes_back_equal() -> None:
    assert from_payload(to_payload(event(), "a")) == ("a", event())
    huge = event("m" * 50_000, **{f"k{i}": "v" * 100 for i in range(200)})
    payload = to_payload(huge, "a")
    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    _, crossed = from_payload(payload)
    assert crossed.event_id == "e-1" and crossed.message.startswith("mmm")
    assert crossed.attributes == {"truncated": "true"}


def test_plugin_events_from_other_instances_are_handed_on_once_and_own_ones_not_at_all() -> None:
    sent: list[str] = []
    here = PluginEventHub(instance_id="a", announce=sent.append)
    there = PluginEventHub(instance_id="b")

    subscription_here, subscription_there = Subscription((), ()), Subscription((), ())
    here.subscribe(subscription_here)
    there.subscribe(subscription_there)
    here.publish(event())
    [payload] = sent
    here.heard(payload)  # its own, back from the database
    there.heard(payload)
    there.heard(payload)  # sent twice (a retried batch): handed on once
    assert subscription_here.listener.pending() == [event()]
    assert subscription_there.listener.pending() == [event()]
