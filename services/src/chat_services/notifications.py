"""PostgreSQL LISTEN/NOTIFY between the instances sharing one database: no broker, no other server.

Each process holds one listening connection (psycopg 3, ``notifies()``) on the channels
its parts subscribed to, and one connection that sends (``pg_notify``), batching what
was published while the previous batch was on its way. What a notification says is a
hint (the message with sequence 5 of conversation c1 exists; document d changed): the
receiver reads the truth from the tables, so a notification lost while the listening
connection was down costs only latency. When that connection breaks, it is opened
again (waiting a little longer after each failure, at most :data:`MAX_BACKOFF` seconds)
and every ``on_reconnect`` callback runs, so listeners catch up from the tables.

PostgreSQL delivers notifications in commit order, at most 8000 bytes each, and drops
identical ones sent in one transaction: payloads are bounded by their senders
(:func:`bounded_json`) and carry what makes them distinct.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when used: an SQLite-only server never loads the driver
    import psycopg

log = logging.getLogger("chat_services.notifications")

MAX_PAYLOAD_BYTES = 7900  # PostgreSQL refuses payloads of 8000 bytes or more
MAX_BACKOFF = 5.0  # seconds between attempts to reopen a lost connection, at most
OUTBOX_LIMIT = 10_000  # notifications waiting to be sent; past it new ones are dropped (and counted)
SEND_BATCH = 200  # notifications sent in one statement
# A peer that vanished without closing (a cut network) is noticed by TCP keepalive.
_KEEPALIVE: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}

Handler = Callable[[str], None]


class Notifications:
    """One process's LISTEN and NOTIFY connections to the shared PostgreSQL database."""

    def __init__(self, dsn: str, *, instance_id: str | None = None) -> None:
        self.dsn = dsn
        # Names this process in payloads, so it can skip what it sent itself.
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self._handlers: dict[str, list[Handler]] = {}
        self._reconnected: list[Callable[[], None]] = []
        self._outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue(OUTBOX_LIMIT)
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()  # set while the listening connection is up
        self.dropped = 0  # notifications not sent because the outbox was full
        self.reconnects = 0  # times the listening connection was opened again after a loss
        self._listener: psycopg.AsyncConnection[Any] | None = None
        self._sender: psycopg.AsyncConnection[Any] | None = None

    def subscribe(self, channel: str, handler: Handler) -> None:
        """Call ``handler(payload)`` on the event loop for each notification on ``channel``."""
        self._handlers.setdefault(channel, []).append(handler)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the listening connection is back after a loss."""
        self._reconnected.append(callback)

    def publish(self, channel: str, payload: str) -> None:
        """Queue one notification without waiting; sent in order with the others of this process."""
        if len(payload.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"a notification payload holds at most {MAX_PAYLOAD_BYTES} bytes")
        try:
            self._outbox.put_nowait((channel, payload))
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("notification outbox full", extra={"dropped": self.dropped})

    async def start(self) -> None:
        """Listen on every subscribed channel (returns once listening) and start sending."""
        self._listener = await self._listen()
        self._sender = await self._connect("send")
        self.listening.set()
        self._tasks = [
            asyncio.create_task(self._receive(), name="notifications-listen"),
            asyncio.create_task(self._send(), name="notifications-send"),
        ]

    async def close(self) -> None:
        """Stop listening and sending (what is still queued is sent first, briefly)."""
        if self._tasks:
            try:
                await asyncio.wait_for(self._outbox.join(), 2.0)
            except TimeoutError:
                log.warning("notifications not sent at shutdown", extra={"queued": self._outbox.qsize()})
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for connection in (self._listener, self._sender):
            if connection is not None:
                await connection.close()
        self._listener = self._sender = None

    async def _connect(self, role: str) -> psycopg.AsyncConnection[Any]:
        import psycopg

        name = f"chat-services {role} {self.instance_id}"  # findable in pg_stat_activity
        return await psycopg.AsyncConnection.connect(
            self.dsn, autocommit=True, application_name=name, **_KEEPALIVE
        )

    async def _listen(self) -> psycopg.AsyncConnection[Any]:
        from psycopg import sql

        connection = await self._connect("listen")
        for channel in self._handlers:
            await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        return connection

    async def _receive(self) -> None:
        import psycopg

        backoff = 0.05
        while True:
            connection = self._listener
            try:
                if connection is None:
                    connection = self._listener = await self._listen()
                    self.reconnects += 1
                    self.listening.set()
                    log.info("notifications listening again", extra={"reconnects": self.reconnects})
                    # Whatever was notified while the connection was down is in the tables.
                    for callback in self._reconnected:
                        callback()
                backoff = 0.05
                async for notify in connection.notifies():
                    self._dispatch(notify.channel, notify.payload)
            except psycopg.Error as error:
                self.listening.clear()
                log.warning("notifications connection lost", extra={"error": str(error)[:200]})
                self._listener = None
                if connection is not None and not connection.closed:
                    await connection.close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _dispatch(self, channel: str, payload: str) -> None:
        for handler in self._handlers.get(channel, ()):
            try:
                handler(payload)
            except Exception:  # one failing handler must not stop fan-out for all
                log.exception("notification handler failed", extra={"channel": channel})

    async def _send(self) -> None:
        import psycopg

        backoff = 0.05
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < SEND_BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            channels, payloads = [c for c, _ in batch], [p for _, p in batch]
            while True:
                try:
                    if self._sender is None:
                        self._sender = await self._connect("send")
                    # One statement, one transaction: delivered in this order.
                    await self._sender.execute(
                        "SELECT pg_notify(c, p) FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY"
                        " AS t(c, p, n) ORDER BY n",
                        (channels, payloads),
                    )
                    backoff = 0.05
                    break
                except psycopg.Error as error:
                    log.warning("notifications not sent; retrying", extra={"error": str(error)[:200]})
                    if self._sender is not None:
                        await self._sender.close()
                    self._sender = None
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF)
            for _ in batch:
                self._outbox.task_done()


def bounded_json(fields: dict[str, Any], *, shrink: str) -> str:
    """``fields`` as compact JSON within :data:`MAX_PAYLOAD_BYTES`, cutting the text ``shrink`` if needed."""
    payload = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    excess = len(payload.encode()) - MAX_PAYLOAD_BYTES
    if excess <= 0:
        return payload
    text = str(fields.get(shrink, ""))
    # Cut by bytes (a character may take four), then drop a split character at the end.
    cut = text.encode()[: max(0, len(text.encode()) - excess - 16)].decode(errors="ignore")
    payload = json.dumps({**fields, shrink: cut}, separators=(",", ":"), ensure_ascii=False)
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError("the notification is too large even without its text")
    return payload
