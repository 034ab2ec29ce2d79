"""Instances sharing one PostgreSQL database: what each tells the others, and what it does on hearing it.

Four channels (see :mod:`chat_services.notifications`):

- ``chat_messages``: ``"<sequence> <conversation_id>"``, sent by the database's trigger
  when a message is stored; the :class:`SharedHub` reads the new messages from the table.
- ``chat_presence``: typing and presence (not stored), JSON, from the instance whose
  ChatStream saw them.
- ``chat_plugin_events``: plugin invocation events (not stored), JSON, bounded.
- ``chat_documents``: a document ID, sent by the database's trigger when the document is
  stored or deleted; each instance's in-memory vector index re-reads that document from
  the tables (the instance that made the change too: its index already agrees, the read
  changes nothing).

When the listening connection comes back after a loss, every listened-to conversation
catches up from the table and the vector index is loaded again on the next search.
On SQLite (one process) nothing of this runs: the plain in-process hubs serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from chat_services.message.hub import ConversationHub
from chat_services.message.shared_hub import SharedHub
from chat_services.message.store import MessageStore
from chat_services.notifications import Notifications
from chat_services.plugin.events import PluginEventHub
from chat_services.rag.store import DocumentStore

log = logging.getLogger("chat_services.instances")

MESSAGES = "chat_messages"
PRESENCE = "chat_presence"
PLUGIN_EVENTS = "chat_plugin_events"
DOCUMENTS = "chat_documents"


@dataclass
class Fanout:
    """The hubs the services publish to, and (on PostgreSQL) the notifications linking instances."""

    hub: ConversationHub
    plugin_events: PluginEventHub
    notifications: Notifications | None = None
    _refreshing: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Stop listening and sending; cancel the catch-up reads still running."""
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing
        if self.notifications is not None:
            await self.notifications.close()
        if isinstance(self.hub, SharedHub):
            await self.hub.close()


def local_fanout() -> Fanout:
    """One process on its own: the in-process hubs."""
    return Fanout(ConversationHub(), PluginEventHub())


async def shared_fanout(dsn: str, messages: MessageStore, documents: DocumentStore) -> Fanout:
    """Hubs linked to every other instance on the PostgreSQL database at ``dsn``; listening on return."""
    notifications = Notifications(dsn)
    instance_id = notifications.instance_id
    hub = SharedHub(
        messages, instance_id=instance_id, announce=lambda payload: notifications.publish(PRESENCE, payload)
    )
    plugin_events = PluginEventHub(
        instance_id=instance_id, announce=lambda payload: notifications.publish(PLUGIN_EVENTS, payload)
    )
    changed: asyncio.Queue[str] = asyncio.Queue()

    async def refresh() -> None:
        # One at a time, in the order heard: the last read of a document decides what is indexed.
        while True:
            document_id = await changed.get()
            try:
                await documents.refresh(document_id)
            except Exception as error:  # a storage fault: the whole index is read again instead
                log.warning(
                    "document index refresh failed; reloading on the next search",
                    extra={"error": str(error)[:200]},
                )
                documents.reload()

    def reconnected() -> None:
        hub.catch_up_all()
        documents.reload()

    notifications.subscribe(MESSAGES, hub.notified)
    notifications.subscribe(PRESENCE, hub.heard)
    notifications.subscribe(PLUGIN_EVENTS, plugin_events.heard)
    notifications.subscribe(DOCUMENTS, changed.put_nowait)  # the document's ID
    notifications.on_reconnect(reconnected)
    await notifications.start()
    return Fanout(hub, plugin_events, notifications, asyncio.create_task(refresh(), name="documents-refresh"))
