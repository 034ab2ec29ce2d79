"""Plugin invocation events, fanned out live to StreamPluginEvents subscribers.

Events are not stored. With several instances on one PostgreSQL database each event is
also sent to the others as a notification (:func:`to_payload`, bounded to what
PostgreSQL carries) and handed to their subscribers once (:meth:`PluginEventHub.heard`).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from chat_services.fanout import Listener
from chat_services.notifications import MAX_PAYLOAD_BYTES

log = logging.getLogger("chat_services.plugin.events")
HEARD_IDS = 4096  # event IDs remembered, so one sent twice (a retried notification) is handed on once


class EventType(Enum):
    """What happened to an invocation."""

    STARTED = 1
    SUCCEEDED = 2
    FAILED = 3


@dataclass(frozen=True)
class PluginEvent:
    """Something that happened during a plugin invocation."""

    event_id: str
    plugin_name: str
    type: EventType
    time_ns: int
    invocation_id: str
    message: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    invoker: str | None = None  # the invoking caller's principal; None on an open server


@dataclass(eq=False)
class Subscription:
    """A subscriber's filters (empty means everything) and its queue."""

    plugin_names: Collection[str]
    types: Collection[EventType]
    listener: Listener[PluginEvent] = field(default_factory=Listener)
    audience: str | None = None  # only events of this principal's invocations; None: everyone's

    def wants(self, event: PluginEvent) -> bool:
        if self.audience is not None and event.invoker != self.audience:
            return False  # another caller's arguments and failures are not this subscriber's to see
        return (not self.plugin_names or event.plugin_name in self.plugin_names) and (
            not self.types or event.type in self.types
        )


class PluginEventHub:
    """Delivers each published event to every subscription that wants it; never blocks.

    ``announce(payload)`` (set when other instances share the database) sends each
    published event to them; ``instance_id`` names this one, so its own come back ignored.
    """

    def __init__(self, *, instance_id: str = "", announce: Callable[[str], None] | None = None) -> None:
        self._subscriptions: set[Subscription] = set()
        self.instance_id = instance_id
        self.announce = announce
        self._heard: OrderedDict[str, None] = OrderedDict()

    def subscribe(self, subscription: Subscription) -> None:
        self._subscriptions.add(subscription)

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, event: PluginEvent) -> None:
        """Hand ``event`` to this instance's subscribers and announce it to the others."""
        self._deliver(event)
        if self.announce is not None:
            self.announce(to_payload(event, self.instance_id))

    def heard(self, payload: str) -> None:
        """An event announced by an instance: hand it to the subscribers here, once."""
        try:
            instance_id, event = from_payload(payload)
        except (ValueError, KeyError, TypeError) as error:
            log.warning("malformed plugin event notification", extra={"error": str(error)[:100]})
            return
        if instance_id == self.instance_id or event.event_id in self._heard:
            return
        self._heard[event.event_id] = None
        if len(self._heard) > HEARD_IDS:
            self._heard.popitem(last=False)
        self._deliver(event)

    def _deliver(self, event: PluginEvent) -> None:
        for subscription in list(self._subscriptions):
            if subscription.wants(event):
                subscription.listener.deliver(event)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)


def to_payload(event: PluginEvent, instance_id: str) -> str:
    """``event`` as JSON within a notification's limit: a long message is cut, then attributes dropped."""
    fields: dict[str, Any] = {
        "i": instance_id,
        "id": event.event_id,
        "p": event.plugin_name,
        "t": event.type.name,
        "ns": event.time_ns,
        "inv": event.invocation_id,
        "m": event.message,
        "a": event.attributes,
        "by": event.invoker,
    }
    for shrink in (None, "m", "a"):
        if shrink == "m":
            fields["m"] = fields["m"][: MAX_PAYLOAD_BYTES // 8]  # at most 4 bytes a character, escaped
        elif shrink == "a":
            fields["a"] = {"truncated": "true"}
        payload = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        if len(payload.encode()) <= MAX_PAYLOAD_BYTES:
            return payload
    raise ValueError("the plugin event is too large for a notification even without its text")


def from_payload(payload: str) -> tuple[str, PluginEvent]:
    """The sending instance and the event of a :func:`to_payload` payload."""
    fields = json.loads(payload)
    event = PluginEvent(
        event_id=str(fields["id"]),
        plugin_name=str(fields["p"]),
        type=EventType[fields["t"]],
        time_ns=int(fields["ns"]),
        invocation_id=str(fields["inv"]),
        message=str(fields["m"]),
        attributes={str(k): str(v) for k, v in dict(fields["a"]).items()},
        invoker=None if fields["by"] is None else str(fields["by"]),
    )
    return str(fields["i"]), event
