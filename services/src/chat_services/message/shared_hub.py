"""Fan-out across instances that share one database: every listener gets each message once, in order.

A message stored through any instance exists in the shared table before anyone hears of
it. This hub hands a conversation's messages to its local listeners strictly by
sequence: the next one (``last + 1``) is handed on at once, one already handed on is
dropped (this instance's own notifications, a publish racing a catch-up), and one past a
gap is held while the gap is read from the store (the messages in between were stored
through another instance, or by a call of this one that has not published yet). A
notification from another instance (:meth:`SharedHub.notified`) is only a nudge: the
messages are read from the store, so one lost while the listening connection was down
is read when it comes back (:meth:`SharedHub.catch_up_all`). Where a conversation stands
is learnt from the first notification heard after its first listener subscribed:
notifications arrive in commit order, so every earlier message was committed before
anyone here listened (a follower's own replay from the store covers those).

Typing and presence are not stored: they are handed on locally and sent to the other
instances as a notification, which each hands to its own listeners.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from chat_services.message.hub import ConversationHub, Event, Listener, Presence, PresenceChange, Typing
from chat_services.message.model import StoredMessage
from chat_services.message.store import MessageStore

log = logging.getLogger("chat_services.message.shared_hub")

CATCH_UP_BATCH = 500  # messages read from the store at a time
HELD_LIMIT = 1000  # messages held past a gap per conversation; older ones are read again instead
RETRY_DELAY = 0.5  # seconds before a failed catch-up read is tried again (doubling, at most 5 s)


class SharedHub(ConversationHub):
    """A :class:`ConversationHub` that sequences stored messages and catches up from the store.

    ``announce(payload)`` sends typing and presence to the other instances; ``instance_id``
    names this one in those payloads, so its own come back ignored.
    """

    def __init__(
        self, store: MessageStore, *, instance_id: str, announce: Callable[[str], None] | None = None
    ) -> None:
        super().__init__()
        self.store = store
        self.instance_id = instance_id
        self.announce = announce
        self._delivered: dict[str, int] = {}  # conversation → last sequence handed to its listeners
        self._held: dict[str, dict[int, StoredMessage]] = {}  # past a gap, waiting for it to be read
        self._wanted: dict[str, int] = {}  # conversation → a sequence known to be stored
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.catch_up_reads = 0  # reads from the store (for tests and metrics)

    def unsubscribe(self, conversation_id: str, listener: Listener) -> None:
        super().unsubscribe(conversation_id, listener)
        if self.listener_count(conversation_id) == 0:
            for state in (self._delivered, self._held, self._wanted):
                state.pop(conversation_id, None)

    def publish(self, conversation_id: str, event: Event, *, skip: Listener | None = None) -> None:
        """Stored messages in sequence order, once; typing and presence here and on every other instance."""
        if isinstance(event, StoredMessage):
            self._accept(event)
            return
        super().publish(conversation_id, event, skip=skip)
        if self.announce is not None:
            self._announce(self.announce, event)

    def notified(self, payload: str) -> None:
        """A message was stored (``"<sequence> <conversation_id>"``, by any instance): catch up if new."""
        sequence_text, _, conversation_id = payload.partition(" ")
        try:
            sequence = int(sequence_text)
        except ValueError:
            log.warning("malformed message notification", extra={"payload": payload[:100]})
            return
        if self.listener_count(conversation_id) == 0:
            return
        last = self._delivered.get(conversation_id)
        if last is None:
            # The first notification since the conversation's first listener subscribed: every
            # earlier message was notified (so committed) before that, and is not this listener's.
            last = self._delivered[conversation_id] = sequence - 1
            self._release(conversation_id)
        if sequence > self._delivered[conversation_id]:  # else handed on already: stored here, or read
            self._catch_up(conversation_id, sequence)

    def heard(self, payload: str) -> None:
        """Typing or presence from another instance: hand it to the listeners here."""
        try:
            fields = json.loads(payload)
            if fields["i"] == self.instance_id:
                return
            conversation_id, user_id, kind = str(fields["c"]), str(fields["u"]), fields["k"]
            event: Event
            if kind == "typing":
                event = Typing(conversation_id, user_id, bool(fields["t"]))
            else:
                event = PresenceChange(conversation_id, user_id, Presence[kind])
        except (ValueError, KeyError, TypeError) as error:
            log.warning("malformed presence notification", extra={"error": str(error)[:100]})
            return
        super().publish(conversation_id, event)

    def catch_up_all(self) -> None:
        """Read what every listened-to conversation may have missed (after notifications were lost)."""
        for conversation_id in list(self._listeners):
            last = self._delivered.get(conversation_id)
            # Without a starting point yet, the read starts from the newest stored message.
            self._catch_up(conversation_id, None if last is None else last + 1)

    async def settle(self) -> None:
        """Wait until no catch-up read runs (what was heard so far has been handed on)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        """Stop the catch-up reads still running."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _announce(self, announce: Callable[[str], None], event: Typing | PresenceChange) -> None:
        fields: dict[str, object] = {"i": self.instance_id, "c": event.conversation_id, "u": event.user_id}
        if isinstance(event, Typing):
            fields.update(k="typing", t=event.typing)
        else:
            fields["k"] = event.state.name
        try:
            announce(json.dumps(fields, separators=(",", ":"), ensure_ascii=False))
        except ValueError as error:  # IDs too long for a notification: other instances miss this one
            log.warning("presence not sent to other instances", extra={"error": str(error)[:100]})

    def _accept(self, message: StoredMessage) -> None:
        conversation_id = message.conversation_id
        if self.listener_count(conversation_id) == 0:
            return
        last = self._delivered.get(conversation_id)
        if last is not None and message.sequence <= last:
            return
        if last is not None and message.sequence == last + 1:
            super().publish(conversation_id, message)
            self._delivered[conversation_id] = message.sequence
            self._release(conversation_id)
            return
        # Past a gap (read from the store now), or before the first notification since the
        # first listener subscribed says where this conversation stands (held until then).
        held = self._held.setdefault(conversation_id, {})
        held[message.sequence] = message
        if len(held) > HELD_LIMIT:
            del held[min(held)]  # stored all the same: a catch-up reads it again
        if last is not None:
            self._catch_up(conversation_id, message.sequence)

    def _release(self, conversation_id: str) -> None:
        """Hand on the held messages that now follow without a gap; forget those handed on already."""
        held = self._held.get(conversation_id)
        if not held:
            return
        last = self._delivered[conversation_id]
        for sequence in [s for s in held if s <= last]:
            del held[sequence]
        while (following := held.pop(last + 1, None)) is not None:
            super().publish(conversation_id, following)
            last = self._delivered[conversation_id] = following.sequence
        if not held:
            del self._held[conversation_id]

    def _catch_up(self, conversation_id: str, sequence: int | None) -> None:
        if sequence is not None:
            self._wanted[conversation_id] = max(self._wanted.get(conversation_id, 0), sequence)
        if conversation_id not in self._tasks:
            task = asyncio.ensure_future(self._catching_up(conversation_id))
            self._tasks[conversation_id] = task

    async def _catching_up(self, conversation_id: str) -> None:
        delay = RETRY_DELAY
        try:
            while self.listener_count(conversation_id):
                try:
                    more = await self._read_once(conversation_id)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # a storage fault: retried while listeners wait
                    log.warning(
                        "catching up from the store failed; retrying",
                        extra={"conversation": conversation_id[:100], "error": str(error)[:200]},
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                if not more:
                    return
                delay = RETRY_DELAY
        finally:
            self._tasks.pop(conversation_id, None)

    async def _read_once(self, conversation_id: str) -> bool:
        """One read from the store; True when another is needed."""
        if conversation_id not in self._delivered:
            # Notifications were lost before one said where this conversation stands: hand on
            # the newest stored message (a follower that missed earlier ones reads them itself).
            self.catch_up_reads += 1
            newest = await self.store.recent(conversation_id, 1)
            if self.listener_count(conversation_id) == 0 or conversation_id in self._delivered:
                return conversation_id in self._delivered
            sequence = newest[0].sequence if newest else 0
            self._delivered[conversation_id] = max(sequence - 1, 0)
            self._wanted[conversation_id] = max(self._wanted.get(conversation_id, 0), sequence)
            self._release(conversation_id)
        last = self._delivered[conversation_id]
        if last >= self._wanted.get(conversation_id, 0):
            return False
        self.catch_up_reads += 1
        view = await self.store.view_after(
            conversation_id, last, CATCH_UP_BATCH, include_user=False, include_files=True
        )
        for message in view.messages:
            self._accept(message)
        # Nothing newer stored: done (a notification of a conversation since emptied, too).
        return bool(view.messages)
