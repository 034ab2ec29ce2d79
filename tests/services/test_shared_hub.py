"""The shared hub on a real SQLite store: notifications from other instances, gaps, lost notifications.

Two hubs over one store stand for two instances over one database; what the database's
trigger would send (``"<sequence> <conversation>"``) is handed to ``notified`` as the
listening connection would, in commit order. The end-to-end version, with processes and
PostgreSQL, is test_scale_out.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat_services.message.hub import Listener, Presence, PresenceChange, Typing
from chat_services.message.model import Draft, StoredMessage
from chat_services.message.shared_hub import SharedHub
from chat_services.message.store import MIGRATIONS, MessageStore
from chat_services.storage import Database


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[MessageStore]:
    database = Database(tmp_path / "messages.db")
    await database.open(MIGRATIONS)
    try:
        yield MessageStore(database)
    finally:
        await database.close()


async def send(store: MessageStore, key: str, conversation: str = "c-1") -> StoredMessage:
    [(stored, _)] = await store.store([Draft(key, conversation, "u-1", key)])
    return stored


async def received(listener: Listener, count: int) -> list[int]:
    """The sequences of the next ``count`` messages the listener is handed (bounded wait)."""
    sequences: list[int] = []
    while len(sequences) < count:
        event = await asyncio.wait_for(listener.next(), 10)
        assert isinstance(event, StoredMessage)
        sequences.append(event.sequence)
    return sequences


def listening(store: MessageStore) -> tuple[SharedHub, Listener]:
    """One instance's hub with a listener on conversation c-1."""
    hub = SharedHub(store, instance_id="a")
    listener = Listener()
    hub.subscribe("c-1", listener)
    return hub, listener


def notification(message: StoredMessage) -> str:
    return f"{message.sequence} {message.conversation_id}"


async def test_messages_of_another_instance_reach_listeners_once_in_order(store: MessageStore) -> None:
    here, there = SharedHub(store, instance_id="a"), SharedHub(store, instance_id="b")
    listener = Listener()
    here.subscribe("c-1", listener)
    sent = [await send(store, f"k{i}") for i in range(5)]
    for message in sent:
        there.publish("c-1", message)  # the sender's own instance
        here.notified(notification(message))  # what the trigger tells everyone, this one included
    assert await received(listener, 5) == [m.sequence for m in sent]
    # Own-instance notifications of messages already handed on change nothing.
    here.notified(notification(sent[-1]))
    await here.settle()
    assert listener.pending() == []


async def test_own_messages_published_before_and_after_their_notification_come_once(
    store: MessageStore,
) -> None:
    hub, listener = listening(store)
    first, second, third = [await send(store, f"k{i}") for i in range(3)]
    hub.notified(notification(first))  # the notification won the race with the publish
    hub.publish("c-1", first)
    hub.publish("c-1", second)  # the publish won this one
    hub.notified(notification(second))
    hub.publish("c-1", third)
    hub.notified(notification(third))
    assert await received(listener, 3) == [first.sequence, second.sequence, third.sequence]
    await hub.settle()
    assert listener.pending() == []


async def test_a_message_past_a_gap_waits_for_the_gap_read_from_the_store(store: MessageStore) -> None:
    hub, listener = listening(store)
    first = await send(store, "k0")
    hub.notified(notification(first))
    # Two messages stored through another instance whose notifications are still on their way,
    # then one of this instance's own, published at once.
    await send(store, "k1")
    await send(store, "k2")
    own = await send(store, "k3")
    hub.publish("c-1", own)
    assert await received(listener, 4) == [1, 2, 3, 4]


async def test_messages_stored_while_notifications_were_lost_are_read_on_reconnect(
    store: MessageStore,
) -> None:
    hub, listener = listening(store)
    first = await send(store, "k0")
    hub.notified(notification(first))
    assert await received(listener, 1) == [1]
    for i in range(3):  # their notifications were lost with the connection
        await send(store, f"lost{i}")
    hub.catch_up_all()
    assert await received(listener, 3) == [2, 3, 4]


async def test_a_conversations_starting_point_is_its_first_notification(store: MessageStore) -> None:
    for i in range(3):
        await send(store, f"before{i}")  # stored before anyone here listened
    hub, listener = listening(store)
    own = await send(store, "own")
    hub.publish("c-1", own)  # held until a notification says where the conversation stands
    await hub.settle()
    assert listener.pending() == []
    hub.notified(notification(own))
    assert await received(listener, 1) == [own.sequence]


async def test_conversations_without_listeners_cost_no_reads(store: MessageStore) -> None:
    hub = SharedHub(store, instance_id="a")
    message = await send(store, "k0")
    hub.notified(notification(message))
    hub.publish("c-1", message)
    await hub.settle()
    assert hub.catch_up_reads == 0


async def test_typing_and_presence_are_announced_and_heard_but_not_echoed(store: MessageStore) -> None:
    sent: list[str] = []
    here = SharedHub(store, instance_id="a", announce=sent.append)
    there = SharedHub(store, instance_id="b")
    listener_there = Listener()
    there.subscribe("c-1", listener_there)
    here.publish("c-1", Typing("c-1", "u-1", True))
    here.publish("c-1", PresenceChange("c-1", "u-2", Presence.JOINED))
    assert [json.loads(p)["k"] for p in sent] == ["typing", "JOINED"]
    for payload in sent:
        there.heard(payload)
        here.heard(payload)  # its own, back from the database: ignored
    assert listener_there.pending() == [
        Typing("c-1", "u-1", True),
        PresenceChange("c-1", "u-2", Presence.JOINED),
    ]
    there.heard("not json")  # logged and dropped
