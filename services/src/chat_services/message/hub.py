"""Live fan-out: who listens to which conversation, and what they are told.

The hub lives in one process; instances sharing a PostgreSQL database each run a
:class:`~chat_services.message.shared_hub.SharedHub`, which also hands on what the others
stored. Each listener (a ChatStream or a following StreamMessages call) owns a bounded
queue (see :mod:`chat_services.fanout`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from chat_services import fanout
from chat_services.message.model import StoredMessage


class Presence(Enum):
    """A user joined or left a conversation."""

    JOINED = 1
    LEFT = 2


@dataclass(frozen=True)
class Typing:
    """A user started (``typing``) or stopped typing."""

    conversation_id: str
    user_id: str
    typing: bool


@dataclass(frozen=True)
class PresenceChange:
    """A user joined or left a conversation."""

    conversation_id: str
    user_id: str
    state: Presence


Event = StoredMessage | Typing | PresenceChange


Listener = fanout.Listener[Event]


class ConversationHub:
    """Conversation ID → listeners; publishing never blocks."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[Listener]] = {}

    def subscribe(self, conversation_id: str, listener: Listener) -> None:
        self._listeners.setdefault(conversation_id, set()).add(listener)

    def unsubscribe(self, conversation_id: str, listener: Listener) -> None:
        listeners = self._listeners.get(conversation_id)
        if listeners is None:
            return
        listeners.discard(listener)
        if not listeners:
            del self._listeners[conversation_id]

    def publish(self, conversation_id: str, event: Event, *, skip: Listener | None = None) -> None:
        """Hand ``event`` to every listener of the conversation except ``skip``."""
        for listener in list(self._listeners.get(conversation_id, ())):
            if listener is not skip:
                listener.deliver(event)

    def listener_count(self, conversation_id: str) -> int:
        return len(self._listeners.get(conversation_id, ()))
