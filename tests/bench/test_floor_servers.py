"""The floor servers on real sockets, started as the runner starts them: each shape, its recorded replies."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_bench import floor_replies
from chat_bench.floor_servers import FLOOR_GRPCLIB, FLOOR_HTTP_JSON, FLOOR_SHAPE, STACKS, floor_server
from chat_bench.runner import BASELINE, Results, Settings, Shape, _rounds, _server_cpu, floor_clients
from chat_bench.servers import ServerProcess
from chat_bench.transports import HttpJsonTransport, Pb2Transport, Transport
from google.protobuf.message import Message
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from chat.v1 import ai_service_pb2
from chat.v1 import message_service_pb2 as pb


def _message(number: int, content: str = "hello") -> pb.Message:
    return pb.Message(id=f"m-{number}", content=content, conversation_id="c-1")


GET, PAGE, SEND, REPLAY, COMPLETE = (
    "/chat.v1.MessageService/GetMessage",
    "/chat.v1.MessageService/ListMessages",
    "/chat.v1.MessageService/SendMessages",
    "/chat.v1.MessageService/StreamMessages",
    "/chat.v1.AIService/StreamCompletion",
)
SMALL, LARGE = (
    pb.GetMessageResponse(message=_message(1)),
    pb.GetMessageResponse(message=_message(2, "x" * 9000)),
)
# What a real server might have answered each method: the floor servers repeat these.
REPLIES: dict[str, list[Message]] = {
    GET: [SMALL, LARGE],
    PAGE: [pb.ListMessagesResponse(messages=[_message(3), _message(4)])],
    SEND: [pb.SendMessagesResponse(messages=[_message(5)], created_count=1)],
    REPLAY: [pb.StreamMessagesResponse(message=_message(n)) for n in range(6, 9)],
    COMPLETE: [
        ai_service_pb2.StreamCompletionResponse(chunk=ai_service_pb2.CompletionChunk(text="Hel")),
        ai_service_pb2.StreamCompletionResponse(done=ai_service_pb2.CompletionDone()),
    ],
}


async def _start_both(folder: Path) -> dict[str, ServerProcess]:
    floor_replies.write(
        folder / "replies", {path: [m.SerializeToString() for m in ms] for path, ms in REPLIES.items()}
    )
    servers = {name: floor_server(name, folder / "replies", folder / f"{name}.log") for name in STACKS}
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    await asyncio.gather(*(server.start(cpus) for server in servers.values()))
    return servers


@pytest.fixture(scope="module")
def floor_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """Both floor servers, started as the runner starts them, on 127.0.0.1 (once: each is a process)."""
    servers = asyncio.run(_start_both(tmp_path_factory.mktemp("floor")))
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


async def _get(transport: Transport, _number: int) -> None:
    await transport.get("m-1")


async def _page(transport: Transport, _number: int) -> int:
    return await transport.page("any", 50)


async def _send(transport: Transport, number: int) -> None:
    await transport.send("any", ["one", "two", "three"], f"key-{number}")


async def _replay(transport: Transport, _number: int) -> int:
    return await transport.stream("any")


async def _complete(transport: Transport, _number: int) -> int:
    return await transport.complete("any", "a prompt")


CALLS = [_get, _page, _send, _replay, _complete]


def _wire(reply: Message) -> bytes:
    return reply.SerializeToString()


async def test_the_grpclib_floor_server_answers_every_shape_with_the_recorded_replies(
    floor_servers: dict[str, ServerProcess],
) -> None:
    """Recorded back through the runner's recorder: the very messages written, method by method."""
    port = floor_servers[FLOOR_GRPCLIB].port

    async def _get_large(transport: Transport, _number: int) -> None:
        await transport.get("m-2")

    replies = await floor_replies.record(port, [_get, _get_large, *CALLS[1:]])
    assert replies == {path: [_wire(m) for m in messages] for path, messages in REPLIES.items()}


async def test_the_http_json_floor_server_answers_every_shape_with_the_recorded_replies(
    floor_servers: dict[str, ServerProcess],
) -> None:
    http = HttpJsonTransport("127.0.0.1", floor_servers[FLOOR_HTTP_JSON].port)
    try:
        assert [await call(http, 0) for call in CALLS] == [None, 2, None, 3, 2]
        url = f"{http.base}/chat.v1.MessageService/GetMessage"
        async with http.session.post(url, json={"messageId": "m-1"}) as response:
            assert response.status == 200
            assert await response.json() == {
                "message": {"id": "m-1", "content": "hello", "conversationId": "c-1"}
            }
    finally:
        await http.close()


async def test_a_floor_server_asked_for_a_message_it_has_no_reply_for_answers_not_found(
    floor_servers: dict[str, ServerProcess],
) -> None:
    grpc = Pb2Transport("127.0.0.1", floor_servers[FLOOR_GRPCLIB].port)
    http = HttpJsonTransport("127.0.0.1", floor_servers[FLOOR_HTTP_JSON].port)
    try:
        with pytest.raises(GRPCError) as raised:
            await grpc.get("m-404")
        assert raised.value.status == Status.NOT_FOUND
        url = f"{http.base}/chat.v1.MessageService/GetMessage"
        async with http.session.post(url, json={"messageId": "m-404"}) as response:
            assert response.status == 404
    finally:
        await grpc.close()
        await http.close()


def test_a_reply_file_cut_inside_a_message_is_refused(tmp_path: Path) -> None:
    floor_replies.write(tmp_path, {PAGE: [_wire(REPLIES[PAGE][0])]})
    file = tmp_path / floor_replies.file_name(PAGE)
    assert file.name == "chat.v1.MessageService.ListMessages.bin"
    assert [_wire(m) for m in floor_replies.read(tmp_path)[PAGE]] == [_wire(REPLIES[PAGE][0])]
    file.write_bytes(file.read_bytes()[:-1])
    with pytest.raises(ValueError, match="ends inside a message"):
        floor_replies.read(tmp_path)


async def _never(_transport: object, _number: int) -> None:
    raise AssertionError("the server-CPU floor measures the floor servers on the small GetMessage alone")


async def test_the_runner_measures_the_floor_servers_on_the_small_getmessage_alone(
    floor_servers: dict[str, ServerProcess],
) -> None:
    shapes = [Shape(FLOOR_SHAPE, "", _get, lambda _s: 1), Shape("ListMessages 50", "", _never, lambda _s: 1)]
    results = Results(Settings(rounds=2, cpu_calls=4), ["pb2", BASELINE], shapes, pinned=False)
    await _server_cpu(results, floor_servers)
    assert sorted(results.cpu_per_call) == [(FLOOR_SHAPE, FLOOR_GRPCLIB), (FLOOR_SHAPE, FLOOR_HTTP_JSON)]
    assert all(len(rounds) == 2 and min(rounds) >= 0 for rounds in results.cpu_per_call.values())


async def test_the_runner_measures_the_floor_servers_at_c1_in_the_same_rounds_but_not_at_c50(
    floor_servers: dict[str, ServerProcess],
) -> None:
    """The HTTP/JSON floor stands in for the HTTP/JSON server: only the round structure is under test."""
    shapes = [Shape(name, "", call, lambda _s: 2) for name, call in zip("abcde", CALLS, strict=True)]
    results = Results(Settings(rounds=2, c50_calls=2), [BASELINE], shapes, pinned=False)
    ports = {name: server.port for name, server in floor_servers.items()}
    clients: dict[str, Transport] = {BASELINE: HttpJsonTransport("127.0.0.1", ports[FLOOR_HTTP_JSON])}
    floors = floor_clients(ports)
    try:
        await _rounds(results, clients, floors)
    finally:
        for client in [*clients.values(), *floors.values()]:
            await client.close()
    names = [BASELINE, FLOOR_GRPCLIB, FLOOR_HTTP_JSON]
    assert sorted(results.latencies) == sorted((shape, name) for shape in "abcde" for name in names)
    assert all(len(rounds) == 2 and all(len(r) == 2 for r in rounds) for rounds in results.latencies.values())
    assert list(results.c50) == [BASELINE]
