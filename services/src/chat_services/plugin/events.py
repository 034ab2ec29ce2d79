"""Plugin invocation events, fanned out live to StreamPluginEvents subscribers."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import Enum

from chat_services.fanout import Listener


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
    """Delivers each published event to every subscription that wants it; never blocks."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()

    def subscribe(self, subscription: Subscription) -> None:
        self._subscriptions.add(subscription)

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, event: PluginEvent) -> None:
        for subscription in list(self._subscriptions):
            if subscription.wants(event):
                subscription.listener.deliver(event)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)
