"""Past one process: `chat-services serve` instances on one PostgreSQL database, as real processes.

Two instances share a throwaway database. A follower (StreamMessages) and a ChatStream
on each see every message sent through either, exactly once and in order, also across
a lost listening connection; typing crosses instances; a document ingested through one
is found by a search on the other, and a plugin invocation's events reach a subscriber
on the other. One instance killed with SIGKILL in the middle of a
load loses no acknowledged message and duplicates none (unacknowledged sends are sent
again, with the same idempotency keys, and the SDK's balancing client carries on with
the survivor). ``--workers 2`` serves one port from two processes and drains both on
SIGTERM; on SQLite it is refused.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import GRPCError, StreamTerminatedError

import chat_sdk
from chat.v1 import (
    common_pb2,
    message_service_grpc,
    message_service_pb2,
    plugin_service_grpc,
    plugin_service_pb2,
    rag_service_grpc,
    rag_service_pb2,
)
from chat.v1.message_service_pb2 import NewMessage, SendMessagesRequest, StreamMessagesRequest
from chat_sdk import v1

from .clients import channel, until

START_TIMEOUT = 120.0  # seconds a server process may take to say it serves (a loaded 2-core machine)
MESSAGES = 24
CONVERSATION = "room"
Chat = message_service_pb2.ChatStreamRequest


@dataclass
class Instance:
    """One `chat-services serve` process and what it logged."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    port: int = 0

    def wait_for(self, pattern: str, count: int = 1) -> list[re.Match[str]]:
        """The first ``count`` log matches of ``pattern``, waiting for them (at most START_TIMEOUT s)."""
        pause = threading.Event()  # never set: its bounded wait paces the polling of the log
        matches: list[re.Match[str]] = []
        for _ in range(int(START_TIMEOUT / 0.05)):
            matches = [m for line in list(self.lines) if (m := re.search(pattern, line))]
            if len(matches) >= count:
                return matches[:count]
            if self.process.poll() is not None and not self._reading.is_alive():
                break
            pause.wait(0.05)
        raise AssertionError(
            f"no {count} lines matching {pattern!r} (exit {self.process.poll()}):\n"
            + "".join(self.lines)[-3000:]
        )

    def start_reading(self) -> None:
        assert self.process.stderr is not None
        stderr = self.process.stderr
        self._reading = threading.Thread(target=lambda: self.lines.extend(stderr), daemon=True)
        self._reading.start()


def launch(database: str, *extra: str) -> Instance:
    """Start `chat-services serve` on a free port of 127.0.0.1 with ``database``; wait until it serves."""
    command = [sys.executable, "-m", "chat_services", "serve", "--port", "0", "--database", database, *extra]
    env = {**os.environ, "CHAT_SERVICES_LOG_LEVEL": "INFO", "CHAT_SERVICES_COMPLETION_CHUNK_DELAY": "0"}
    instance = Instance(subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env))
    instance.start_reading()
    return instance


async def serving(instance: Instance, count: int = 1) -> int:
    matches = await asyncio.to_thread(instance.wait_for, r"serving address=127\.0\.0\.1:(\d+)", count)
    instance.port = int(matches[0].group(1))
    return instance.port


def stop(instance: Instance) -> int:
    if instance.process.poll() is None:
        instance.process.send_signal(signal.SIGTERM)
        try:
            instance.process.wait(60)
        except subprocess.TimeoutExpired:
            instance.process.kill()
            instance.process.wait(10)
    instance._reading.join(30)  # the log is read to its end
    if instance.process.stderr is not None:
        instance.process.stderr.close()
    return instance.process.returncode


@pytest.fixture
async def pair(postgres_dsn: str) -> AsyncIterator[tuple[Instance, Instance]]:
    """Two instances on one fresh PostgreSQL database, serving."""
    first, second = launch(postgres_dsn), launch(postgres_dsn)
    try:
        await serving(first)
        await serving(second)
        yield first, second
    finally:
        for instance in (first, second):
            stop(instance)


def new(key: str, author: str = "alice") -> NewMessage:
    return NewMessage(idempotency_key=key, conversation_id=CONVERSATION, author_id=author, content=key)


async def follow(opened: Channel, count: int) -> list[tuple[int, str]]:
    """(sequence, content) of the first ``count`` messages a StreamMessages follower receives."""
    stub = message_service_grpc.MessageServiceStub(opened)
    received: list[tuple[int, str]] = []
    async with stub.StreamMessages.open(timeout=120) as stream:
        await stream.send_message(StreamMessagesRequest(conversation_id=CONVERSATION, follow=True), end=True)
        while len(received) < count:
            reply = await stream.recv_message()
            assert reply is not None
            received.append((reply.message.sequence, reply.message.content))
        await stream.cancel()
    return received


@dataclass
class ChatClient:
    """A ChatStream joined to the conversation; what it receives, sorted by kind."""

    stream: Any
    user: str
    messages: list[tuple[int, str]] = field(default_factory=list)
    typing: list[str] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)


async def presence_crossed(joiner: ChatClient, watcher: ChatClient, attempts: int = 12) -> None:
    """Wait until ``watcher`` (on the other instance) has seen ``joiner``'s join.

    Presence is live only: a join announced before the watcher's own join was handled on
    its instance is not replayed (as on one instance), and nothing tells a client when its
    join has been handled. So the joiner leaves and joins again until the watcher sees it.
    """
    join = message_service_pb2.ChatJoin(conversation_id=CONVERSATION, user_id=joiner.user)
    leave = message_service_pb2.ChatLeave(conversation_id=CONVERSATION)
    for _ in range(attempts - 1):
        try:
            await until(lambda: joiner.user in watcher.joined, timeout=5)
            return
        except TimeoutError:
            await joiner.stream.send_message(Chat(leave=leave))
            await joiner.stream.send_message(Chat(join=join))
    await until(lambda: joiner.user in watcher.joined, timeout=5)


@asynccontextmanager
async def chatting(opened: Channel, user: str) -> AsyncIterator[ChatClient]:
    stub = message_service_grpc.MessageServiceStub(opened)
    async with stub.ChatStream.open(timeout=120) as stream:
        client = ChatClient(stream, user)

        async def read() -> None:
            while (event := await stream.recv_message()) is not None:
                kind = event.WhichOneof("event")
                if kind == "message":
                    client.messages.append((event.message.sequence, event.message.content))
                elif kind == "typing":
                    client.typing.append(event.typing.user_id)
                elif kind == "presence":
                    client.joined.append(event.presence.user_id)

        await stream.send_message(
            Chat(join=message_service_pb2.ChatJoin(conversation_id=CONVERSATION, user_id=user))
        )
        reader = asyncio.ensure_future(read())
        try:
            yield client
        finally:
            reader.cancel()
            await stream.cancel()


async def terminate_listeners(dsn: str) -> int:
    """End every instance's listening connection, as a network failure or a database restart would."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE 'chat-services listen %' AND datname = current_database()"
        )
        return len(await cursor.fetchall())


async def test_followers_on_every_instance_see_every_message_once_in_order(
    pair: tuple[Instance, Instance], postgres_dsn: str
) -> None:
    first, second = pair
    async with channel(first.port) as a, channel(second.port) as b:
        followers = [asyncio.ensure_future(follow(c, MESSAGES)) for c in (a, b)]
        async with chatting(b, "bob") as bob, chatting(a, "alice") as alice:
            # Alice's join reached Bob's instance: both chat streams are listening.
            await presence_crossed(alice, bob)
            stubs = [message_service_grpc.MessageServiceStub(c) for c in (a, b)]
            for index in range(MESSAGES):
                if index == MESSAGES // 2:
                    # The listening connections are lost; messages sent meanwhile are read on reconnect.
                    assert await terminate_listeners(postgres_dsn) == 2
                author = ("alice", "bob")[index % 2]
                await stubs[index % 2].SendMessages([SendMessagesRequest(message=new(f"m{index}", author))])
            expected = [(index + 1, f"m{index}") for index in range(MESSAGES)]
            for follower in followers:
                assert await asyncio.wait_for(follower, 120) == expected
            await until(lambda: len(alice.messages) >= MESSAGES and len(bob.messages) >= MESSAGES, 120)
            # Typing is not stored: one sent while an instance is not listening is lost there.
            # The chat streams can have every message before then (read from the table when a
            # later one is stored), so wait until both listen again.
            for instance in pair:
                await asyncio.to_thread(instance.wait_for, "notifications listening again")
            await alice.stream.send_message(
                Chat(
                    typing=message_service_pb2.ChatTyping(
                        conversation_id=CONVERSATION, user_id="alice", typing=True
                    )
                )
            )
            await until(lambda: bob.typing == ["alice"], 60)
            assert alice.messages == expected
            assert bob.messages == expected


async def test_documents_and_plugin_events_of_one_instance_reach_the_other(
    pair: tuple[Instance, Instance],
) -> None:
    first, second = pair
    async with channel(first.port) as a, channel(second.port) as b:
        plugins_b = plugin_service_grpc.PluginServiceStub(b)
        async with plugins_b.StreamPluginEvents.open(timeout=120) as events:
            await events.send_message(plugin_service_pb2.StreamPluginEventsRequest(), end=True)
            await asyncio.wait_for(events.recv_initial_metadata(), 60)  # subscribed on B
            invoke = plugin_service_pb2.InvokePluginRequest(
                plugin_name="word_count", arguments={"text": "a b c"}
            )
            reply = await plugin_service_grpc.PluginServiceStub(a).InvokePlugin(invoke)
            seen = []
            for _ in range(2):
                response = await asyncio.wait_for(events.recv_message(), 60)
                assert response is not None
                seen.append(response.event)
            await events.cancel()
        assert [e.invocation_id for e in seen] == [reply.invocation_id] * 2
        assert [e.type for e in seen] == [
            plugin_service_pb2.PLUGIN_EVENT_TYPE_INVOCATION_STARTED,
            plugin_service_pb2.PLUGIN_EVENT_TYPE_INVOCATION_SUCCEEDED,
        ]
    text = "Retries use exponential backoff with jitter. Each retry waits longer than the last."
    search = rag_service_pb2.SearchDocumentsRequest(text="retry backoff jitter", min_score=-1)
    async with channel(first.port) as a, channel(second.port) as b:
        ingesting, searching = rag_service_grpc.RAGServiceStub(a), rag_service_grpc.RAGServiceStub(b)
        assert list((await searching.SearchDocuments(search)).passages) == []  # B's index is loaded now
        header = rag_service_pb2.DocumentHeader(document_id="d-1")
        await ingesting.IngestDocument([rag_service_pb2.IngestDocumentRequest(header=header, text=text)])

        async def found(expected: set[str]) -> bool:
            return {p.document_id for p in (await searching.SearchDocuments(search)).passages} == expected

        await until(lambda: found({"d-1"}), 60)
        await ingesting.DeleteDocument(rag_service_pb2.DeleteDocumentRequest(document_id="d-1"))
        await until(lambda: found(set()), 60)


async def test_an_instance_killed_mid_load_loses_no_acknowledged_message_and_duplicates_none(
    pair: tuple[Instance, Instance],
) -> None:
    first, second = pair
    senders, per_sender = 4, 12
    total = senders * per_sender
    acknowledged: dict[str, int] = {}
    errors: list[str] = []
    killed = asyncio.Event()
    async with channel(second.port) as survivor:
        follower = asyncio.ensure_future(follow(survivor, total))
        async with chat_sdk.connect([f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"]) as balanced:
            stub = v1.MessageServiceStub(balanced, timeout=20)

            async def send(key: str) -> None:
                request = v1.SendMessagesRequest(
                    message=v1.NewMessage(
                        idempotency_key=key, conversation_id=CONVERSATION, author_id="u", content=key
                    )
                )
                for _ in range(20):  # an unacknowledged send is sent again with the same key
                    try:
                        reply = await stub.send_messages([request])
                    except (GRPCError, StreamTerminatedError, OSError, TimeoutError) as error:
                        errors.append(type(error).__name__)
                        continue
                    acknowledged[key] = reply.messages[0].sequence
                    if len(acknowledged) == total // 3 and not killed.is_set():
                        first.process.send_signal(signal.SIGKILL)  # mid-load: other sends are in flight
                        killed.set()
                    return
                raise AssertionError(f"{key} was never acknowledged: {errors[-5:]}")

            async def sender(index: int) -> None:
                for n in range(per_sender):
                    await send(f"s{index}-{n}")

            await asyncio.wait_for(asyncio.gather(*(sender(i) for i in range(senders))), 300)
        assert killed.is_set() and first.process.wait(30) == -signal.SIGKILL
        received = await asyncio.wait_for(follower, 120)
        stub_b = message_service_grpc.MessageServiceStub(survivor)
        listed = await stub_b.ListMessages(
            message_service_pb2.ListMessagesRequest(
                conversation_id=CONVERSATION, page=common_pb2.PageRequest(page_size=1000)
            )
        )
    stored = {m.content: m.sequence for m in listed.messages}
    assert len(acknowledged) == total
    assert stored == acknowledged  # every acknowledged message stored once, with the sequence it was told
    assert sorted(stored.values()) == list(range(1, total + 1))  # no duplicate, no hole
    assert [s for s, _ in received] == list(range(1, total + 1))  # the survivor's follower: once, in order


@pytest.mark.parametrize(("scope", "admitted"), [("shared", 4), ("process", 8)])
async def test_two_real_servers_on_one_database_share_a_callers_limit(
    postgres_dsn: str, tmp_path: Path, scope: str, admitted: int
) -> None:
    limits = tmp_path / "limits.toml"
    limits.write_text("[defaults]\nrate = 0.001\nburst = 4\n")
    flags = ("--rate-limits", str(limits), "--rate-limit-scope", scope, "--metrics-port", "0")
    instances = [launch(postgres_dsn, *flags) for _ in range(2)]
    try:
        ports = [await serving(instance) for instance in instances]
        [address] = instances[0].wait_for(r"metrics address=(http://127\.0\.0\.1:\d+/metrics)")
        statuses = []
        for _ in range(5):
            for port in ports:
                async with Channel("127.0.0.1", port) as channel:
                    stub = message_service_grpc.MessageServiceStub(channel)
                    try:
                        await stub.GetMessage(message_service_pb2.GetMessageRequest(message_id="m-none"))
                    except GRPCError as error:
                        statuses.append(error.status)  # NOT_FOUND once admitted
        page = urllib.request.urlopen(address.group(1), timeout=10).read().decode()
    finally:
        for instance in instances:
            stop(instance)
    # Both servers see the caller as addr:127.0.0.1: shared, one burst of 4 between them;
    # per process, a burst each.
    assert statuses.count(Status.NOT_FOUND) == admitted
    assert statuses.count(Status.RESOURCE_EXHAUSTED) == 10 - admitted
    # Shared limits show in the metrics: leases granted and refused, and the state.
    assert ("chat_rate_limits_shared 1.0" in page) is (scope == "shared")
    assert ('chat_rate_limit_leases_total{outcome="granted"}' in page) is (scope == "shared")


def test_workers_share_one_port_and_drain_together_on_sigterm(postgres_dsn: str) -> None:
    parent = launch(postgres_dsn, "--workers", "2", "--metrics-port", "0")
    try:
        asyncio.run(serving(parent, count=2))
        metrics = [
            int(m.group(1))
            for m in parent.wait_for(r"metrics address=http://127\.0\.0\.1:(\d+)/metrics", count=2)
        ]
        assert len(set(metrics)) == 2  # one endpoint per worker

        def calls_seen() -> list[int]:
            counts = []
            for port in metrics:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
                counts.append(
                    sum(
                        float(m.group(1))
                        for m in re.finditer(r"^grpc_server_started_total\{[^}]*\} (\S+)$", page, re.M)
                    )
                )
            return [int(c) for c in counts]

        async def connect_until_both_answered() -> list[int]:
            for _ in range(16):  # new connections land on either worker, chosen by the kernel
                for _ in range(8):
                    async with Channel("127.0.0.1", parent.port) as opened:
                        stub = message_service_grpc.MessageServiceStub(opened)
                        with pytest.raises(GRPCError):
                            await stub.GetMessage(message_service_pb2.GetMessageRequest(message_id="none"))
                seen = await asyncio.to_thread(calls_seen)
                if all(seen):
                    return seen
            return seen

        seen = asyncio.run(connect_until_both_answered())
        assert all(seen), seen  # both workers answered calls on the one port
    finally:
        code = stop(parent)
    log = "".join(parent.lines)
    assert code == 0, log[-3000:]
    assert log.count("chat_services.server stopped") == 2
    assert "workers stopped failed=False" in log


def test_a_worker_that_dies_stops_the_others_and_the_parent_exits_non_zero(postgres_dsn: str) -> None:
    parent = launch(postgres_dsn, "--workers", "2")
    try:
        asyncio.run(serving(parent, count=2))
        [started] = parent.wait_for(r"workers started port=\d+ workers=2 pids=(\d+),(\d+)")
        os.kill(int(started.group(1)), signal.SIGKILL)
        assert parent.process.wait(60) == 1
    finally:
        stop(parent)
    log = "".join(parent.lines)
    assert "worker ended; stopping the others" in log
    assert log.count("chat_services.server stopped") == 1  # the other worker drained


@pytest.mark.parametrize("how", [["--workers", "2"], []])
def test_several_workers_on_sqlite_are_refused_with_one_line(tmp_path: Path, how: list[str]) -> None:
    env = {**os.environ, "CHAT_SERVICES_WORKERS": "3"}
    result = subprocess.run(
        [sys.executable, "-m", "chat_services", "serve", "--database", str(tmp_path / "chat.db"), *how],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    error = result.stderr.strip().splitlines()[-1]
    assert "needs a PostgreSQL --database" in error and "SQLite" in error
    assert not (tmp_path / "chat.db").exists()
