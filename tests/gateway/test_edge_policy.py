"""The gateway's edge policy, written from its specification rather than from its own tables:
every gRPC code's HTTP status (google/rpc/code.proto), the call deadline on every kind of call
that waits for one reply, the caller's credential on GraphQL as on REST, and the body limit
on a chunked upload whose only fault is its size.

A scripted stand-in for the services answers what the real ones cannot be made to (every
status, a reply that never comes), on a real socket behind a real gateway.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest
from google.rpc import error_details_pb2
from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Stream
from starlette.requests import HTTPConnection

from chat.v1 import message_service_pb2
from chat_gateway.errors import MAX_DESCRIPTION, BadRequest, GatewayError, bounded
from chat_gateway.rest import caller_of, forwarded_metadata
from chat_gateway.upstream import upstream_errors
from chat_services.server import App
from tests.gateway.clients import graphql_socket, receive_json
from tests.gateway.harness import running_gateway, scripted_services
from tests.gateway.raw_upstream import Answer, headers_then_reset, raw_upstream, reset_at_once
from tests.gateway.test_auth_and_cors import TOKEN, record_authorization
from tests.gateway.test_errors import assert_status, closed_port
from tests.gateway.test_graphql import count_calls
from tests.services.clients import until

ANSWER_TIMEOUT = 30.0  # seconds an HTTP client waits before the test fails instead of hanging
DEADLINE = 0.5  # the gateway's call deadline in these tests, seconds

# google/rpc/code.proto, the "HTTP Mapping" line of each code, copied by hand.
CODE_PROTO_HTTP = {
    Status.OK: 200,
    Status.CANCELLED: 499,
    Status.UNKNOWN: 500,
    Status.INVALID_ARGUMENT: 400,
    Status.DEADLINE_EXCEEDED: 504,
    Status.NOT_FOUND: 404,
    Status.ALREADY_EXISTS: 409,
    Status.PERMISSION_DENIED: 403,
    Status.UNAUTHENTICATED: 401,
    Status.RESOURCE_EXHAUSTED: 429,
    Status.FAILED_PRECONDITION: 400,
    Status.ABORTED: 409,
    Status.OUT_OF_RANGE: 400,
    Status.UNIMPLEMENTED: 501,
    Status.INTERNAL: 500,
    Status.UNAVAILABLE: 503,
    Status.DATA_LOSS: 500,
}
HANG = "hang"  # a message id (or content) the stand-in never answers
SILENT = "silent"  # content of a SendMessages the stand-in ends with OK and no reply
REFUSED_CREDENTIAL = "Bearer refused"  # SendMessages refuses this caller before reading a request
NAMED_FIELD = "named-field"  # a message id refused with a field violation in the schema's names

GetRequest = message_service_pb2.GetMessageRequest
GetResponse = message_service_pb2.GetMessageResponse
SendRequest = message_service_pb2.SendMessagesRequest
SendResponse = message_service_pb2.SendMessagesResponse


class Scripted:
    """GetMessage fails with the status its message id names (or never answers on ``hang``);
    SendMessages reads every request, then never answers if one of them says ``hang``."""

    def __init__(self) -> None:
        self.forever = asyncio.Event()  # never set: what a hung service waits for

    async def get_message(self, stream: Stream[GetRequest, GetResponse]) -> None:
        request = await stream.recv_message()
        assert request is not None
        if request.message_id == HANG:
            await self.forever.wait()
        if request.message_id == NAMED_FIELD:
            violation = error_details_pb2.BadRequest.FieldViolation(
                field="message_id", description="scripted"
            )
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                "scripted",
                [error_details_pb2.BadRequest(field_violations=[violation])],
            )
        status = Status[request.message_id]
        raise GRPCError(status, f"scripted {status.name}")

    async def send_messages(self, stream: Stream[SendRequest, SendResponse]) -> None:
        if stream.metadata and stream.metadata.get("authorization") == REFUSED_CREDENTIAL:
            info = error_details_pb2.ErrorInfo(reason="SCRIPTED", domain="test")
            raise GRPCError(Status.PERMISSION_DENIED, "scripted refusal", [info])  # before any request
        received = [request async for request in stream]
        if any(request.message.content == HANG for request in received):
            await self.forever.wait()
        if any(request.message.content == SILENT for request in received):
            return  # status OK, and no reply
        await stream.send_message(SendResponse(created_count=len(received)))

    def __mapping__(self) -> dict[str, Handler]:
        return {
            "/chat.v1.MessageService/GetMessage": Handler(
                self.get_message, Cardinality.UNARY_UNARY, GetRequest, GetResponse
            ),
            # Served as stream-stream: grpclib then lets it end OK with no reply, as a faulty
            # service could; on the wire the call is the gateway's client stream all the same.
            "/chat.v1.MessageService/SendMessages": Handler(
                self.send_messages, Cardinality.STREAM_STREAM, SendRequest, SendResponse
            ),
        }


GATEWAY_WORDS = {
    Status.DEADLINE_EXCEEDED: "the service did not answer in time",
    Status.UNAVAILABLE: "the chat services are unavailable",
}


@pytest.fixture
async def scripted_gateway() -> AsyncIterator[httpx.AsyncClient]:
    """A gateway with a short call deadline in front of :class:`Scripted`."""
    async with (
        scripted_services(Scripted()) as port,
        running_gateway(port, unary_timeout=DEADLINE) as url,
        httpx.AsyncClient(base_url=url, timeout=ANSWER_TIMEOUT) as http,
    ):
        yield http


def test_each_code_has_the_http_status_code_proto_gives_it() -> None:
    for status, http_status in CODE_PROTO_HTTP.items():
        assert GatewayError(status, "m").http_status == http_status, status


async def test_every_upstream_status_reaches_the_caller_as_code_proto_maps_it(
    scripted_gateway: httpx.AsyncClient,
) -> None:
    for status, http_status in CODE_PROTO_HTTP.items():
        if status is Status.OK:
            continue
        reply = await scripted_gateway.get(f"/v1/messages/{status.name}")
        body = assert_status(reply, http_status, status.value)
        # In the gateway's own words where grpcio makes up the same status itself (its expired
        # deadline, no connection): its texts name addresses and internals.
        assert body["message"] == GATEWAY_WORDS.get(status, f"scripted {status.name}")


@pytest.mark.parametrize("kind", ["unary", "client-stream"])
async def test_a_call_the_services_never_answer_ends_by_the_deadline(
    scripted_gateway: httpx.AsyncClient, kind: str
) -> None:
    """504 DEADLINE_EXCEEDED once the deadline passes, for a unary call and a client stream alike."""
    if kind == "unary":
        reply = await scripted_gateway.get(f"/v1/messages/{HANG}")
    else:
        body = [{"message": {"content": "one"}}, {"message": {"content": HANG}}]
        reply = await scripted_gateway.post("/v1/messages:send", json=body)
    status = assert_status(reply, 504, Status.DEADLINE_EXCEEDED.value)
    assert status["message"] == "the service did not answer in time"


async def test_a_client_stream_the_services_answer_is_not_cut_by_the_deadline(
    scripted_gateway: httpx.AsyncClient,
) -> None:
    body = [{"message": {"content": str(n)}} for n in range(3)]
    reply = await scripted_gateway.post("/v1/messages:send", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["createdCount"] == 3


async def test_a_client_stream_ended_without_a_reply_is_an_internal_error(
    scripted_gateway: httpx.AsyncClient,
) -> None:
    reply = await scripted_gateway.post("/v1/messages:send", json=[{"message": {"content": SILENT}}])
    status = assert_status(reply, 500, Status.INTERNAL.value)
    assert status["message"] == "the service sent no reply"


async def test_an_upload_the_service_refuses_at_once_carries_its_status_message_and_details(
    scripted_gateway: httpx.AsyncClient,
) -> None:
    body = [{"message": {"content": str(n)}} for n in range(50)]
    reply = await scripted_gateway.post(
        "/v1/messages:send", json=body, headers={"authorization": REFUSED_CREDENTIAL}
    )
    status = assert_status(reply, 403, Status.PERMISSION_DENIED.value)
    assert status["message"] == "scripted refusal"
    assert [detail["reason"] for detail in status["details"]] == ["SCRIPTED"]


async def test_a_services_field_violation_reaches_the_caller_in_json_names(
    scripted_gateway: httpx.AsyncClient,
) -> None:
    reply = await scripted_gateway.get(f"/v1/messages/{NAMED_FIELD}")
    status = assert_status(reply, 400, Status.INVALID_ARGUMENT.value)
    [detail] = status["details"]
    assert detail["fieldViolations"] == [{"field": "messageId", "description": "scripted"}]


@pytest.mark.parametrize(
    ("length", "kept"),
    [(MAX_DESCRIPTION, MAX_DESCRIPTION), (MAX_DESCRIPTION + 1, MAX_DESCRIPTION - 1)],
)
def test_a_description_is_cut_to_the_bound_with_an_ellipsis(length: int, kept: int) -> None:
    text = "d" * length
    cut = bounded(text)
    assert len(cut) == MAX_DESCRIPTION
    assert cut == text if length == kept else cut == text[:kept] + "…"


async def test_graphql_forwards_the_callers_credential_on_queries_mutations_and_subscriptions(
    app: App, gateway_url: str
) -> None:
    seen = record_authorization(app)
    async with httpx.AsyncClient(base_url=gateway_url, timeout=ANSWER_TIMEOUT) as http:
        headers = {"authorization": TOKEN}
        read = await http.post(
            "/graphql", json={"query": "{ listPlugins(request: {}) { plugins { name } } }"}, headers=headers
        )
        assert read.status_code == 200 and "errors" not in read.json(), read.text
        write = {
            "query": 'mutation { sendMessages(requests: [{message: {idempotencyKey: "k", '
            'conversationId: "c-gql", authorId: "ada", content: "x"}}]) { createdCount } }'
        }
        written = await http.post("/graphql", json=write, headers=headers)
        assert written.status_code == 200 and "errors" not in written.json(), written.text
    subscribe = {
        "id": "1",
        "type": "subscribe",
        "payload": {
            "query": 'subscription { streamMessages(request: {conversationId: "c-gql"}) { message { id } } }'
        },
    }
    async with graphql_socket(gateway_url, headers={"authorization": TOKEN}) as socket:
        await socket.send(json.dumps(subscribe))
        await until(lambda: len(seen) == 3)
        await receive_json(socket)
    assert seen == [
        ("/chat.v1.PluginService/ListPlugins", TOKEN),
        ("/chat.v1.MessageService/SendMessages", TOKEN),
        ("/chat.v1.MessageService/StreamMessages", TOKEN),
    ]


LIMIT = 1000


def completion_body(size: int) -> bytes:
    """A valid Complete request of exactly ``size`` bytes: only its size can be refused."""
    head, tail = b'{"prompt": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def chunked(body: bytes, chunk: int = 100) -> AsyncIterator[bytes]:
    """``body`` in pieces and without Content-Length, as a chunked upload sends it."""
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


@pytest.mark.parametrize(("size", "refused"), [(LIMIT, False), (LIMIT + 1, True)])
async def test_a_chunked_upload_is_refused_by_its_size_alone(app: App, size: int, refused: bool) -> None:
    """A body of exactly the limit passes; one byte more is a 413 and reaches no service."""
    calls = count_calls(app)
    async with (
        running_gateway(app.port, body_limit=LIMIT) as url,
        httpx.AsyncClient(base_url=url, timeout=ANSWER_TIMEOUT) as http,
    ):
        body = completion_body(size)
        assert len(body) == size and json.loads(body)
        reply = await http.post(
            "/v1/completions", content=chunked(body), headers={"content-type": "application/json"}
        )
    assert "content-length" not in reply.request.headers
    if refused:
        status = assert_status(reply, 413, Status.INVALID_ARGUMENT.value)
        assert status["message"] == f"invalid request: the body is larger than {LIMIT} bytes"
        [detail] = status["details"]
        # The body as a whole: an empty field, which ProtoJSON leaves out.
        assert detail["fieldViolations"] == [{"description": f"the body is larger than {LIMIT} bytes"}]
        assert calls == []
    else:
        assert reply.status_code == 200, reply.text
        assert calls == ["/chat.v1.AIService/Complete"]


def connection(client: tuple[str, int] | None, authorization: str | None = None) -> HTTPConnection:
    """A request's connection as Starlette builds it from the ASGI scope."""
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return HTTPConnection({"type": "http", "headers": headers, "client": client})


def test_streams_are_shared_per_credential_else_per_address() -> None:
    """A share of upstream streams belongs to a credential, wherever it calls from, else to an address."""
    alice_home = caller_of(connection(("10.0.0.1", 5000), "Bearer alice"))
    alice_away = caller_of(connection(("10.0.0.2", 6000), "Bearer alice"))
    bob = caller_of(connection(("10.0.0.1", 5000), "Bearer bob"))
    anonymous_one = caller_of(connection(("10.0.0.1", 5001)))
    anonymous_two = caller_of(connection(("10.0.0.2", 5001)))
    assert alice_home == alice_away
    assert len({alice_home, bob, anonymous_one, anonymous_two}) == 4
    assert anonymous_one == caller_of(connection(("10.0.0.1", 7000)))  # the port does not matter
    assert "alice" not in alice_home  # the credential itself is never kept
    assert caller_of(connection(None)) == caller_of(connection(None))  # no address known: one share


def test_an_error_carries_its_retry_delay_as_header_and_detail() -> None:
    error = GatewayError(Status.UNAVAILABLE, "full", retry_after=3)
    assert (str(error), error.http_status, error.headers) == ("full", 503, {"retry-after": "3"})
    [retry] = error.details
    assert isinstance(retry, error_details_pb2.RetryInfo) and retry.retry_delay.seconds == 3
    assert GatewayError(Status.NOT_FOUND, "gone").headers == {}
    assert GatewayError(Status.INVALID_ARGUMENT, "big", http_status=413).http_status == 413


def test_a_bad_request_names_its_field_when_it_has_one() -> None:
    assert BadRequest("prompt", "too long").message == "invalid request: prompt: too long"
    assert BadRequest("", "not JSON").message == "invalid request: not JSON"


async def test_unreachable_services_are_503_saying_so() -> None:
    async with (
        running_gateway(closed_port()) as url,
        httpx.AsyncClient(base_url=url, timeout=ANSWER_TIMEOUT) as http,
    ):
        body = assert_status(await http.get("/v1/messages/m"), 503, Status.UNAVAILABLE.value)
    assert body["message"] == "the chat services are unavailable"


async def test_a_declared_length_over_the_limit_is_refused_before_any_body_is_sent(app: App) -> None:
    """Content-Length says 1 GB and no byte follows: the 413 comes at once, its details complete."""
    async with running_gateway(app.port, body_limit=LIMIT) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(
                b"POST /v1/completions HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
                b"content-length: 1000000000\r\n\r\n"
            )
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_TIMEOUT)
            length = int(
                next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))[15:]
            )
            body = json.loads(await asyncio.wait_for(reader.readexactly(length), ANSWER_TIMEOUT))
        finally:
            writer.close()
    assert head.startswith(b"HTTP/1.1 413 ")
    assert body["message"] == f"invalid request: the body is larger than {LIMIT} bytes"
    [detail] = body["details"]
    assert detail["fieldViolations"] == [{"description": f"the body is larger than {LIMIT} bytes"}]


async def test_a_body_of_exactly_the_declared_limit_is_read(app: App) -> None:
    async with (
        running_gateway(app.port, body_limit=LIMIT) as url,
        httpx.AsyncClient(base_url=url, timeout=ANSWER_TIMEOUT) as http,
    ):
        reply = await http.post(
            "/v1/completions", content=completion_body(LIMIT), headers={"content-type": "application/json"}
        )
    assert reply.request.headers["content-length"] == str(LIMIT)
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("value", ["Bearer caf\u00e9", "Bearer \x7f", "Bearer a\tb"])
def test_a_credential_that_is_not_printable_ascii_is_a_bad_request(value: str) -> None:
    with pytest.raises(GatewayError) as refused:
        forwarded_metadata({"authorization": value})
    assert (refused.value.status, refused.value.message) == (
        Status.INVALID_ARGUMENT,
        "the authorization header must be printable ASCII",
    )
    assert forwarded_metadata({"authorization": "Bearer abc", "cookie": "x"}) == {
        "authorization": "Bearer abc"
    }


def upstream_failure(error: BaseException) -> GatewayError:
    """What the gateway makes of ``error`` raised by a call to the services."""
    with pytest.raises(GatewayError) as made, upstream_errors():
        raise error
    return made.value


def test_an_upstream_status_passes_on_its_code_message_and_details_with_the_message_bounded() -> None:
    info = error_details_pb2.ErrorInfo(reason="SCRIPTED")
    passed = upstream_failure(GRPCError(Status.NOT_FOUND, "no such message", [info]))
    assert (passed.status, passed.message, passed.details) == (Status.NOT_FOUND, "no such message", [info])
    unnamed = upstream_failure(GRPCError(Status.ABORTED))
    assert (unnamed.status, unnamed.message, unnamed.details) == (Status.ABORTED, "ABORTED", [])
    assert upstream_failure(GRPCError(Status.INTERNAL, "x" * 500)).message == "x" * 200


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (TimeoutError(), Status.DEADLINE_EXCEEDED, "the service did not answer in time"),
        (
            ssl.SSLError(1, "certificate verify failed"),
            Status.UNAVAILABLE,
            "the TLS handshake with the chat services failed",
        ),
        (ConnectionResetError(), Status.UNAVAILABLE, "the chat services are unavailable"),
    ],
)
def test_a_failure_to_reach_the_services_is_said_in_the_gateways_words(
    error: BaseException, status: Status, message: str
) -> None:
    made = upstream_failure(error)
    assert (made.status, made.message) == (status, message)


@pytest.mark.parametrize("answer", [reset_at_once, headers_then_reset], ids=["reset", "headers-then-reset"])
async def test_a_stream_the_services_reset_before_answering_is_a_503(answer: Answer) -> None:
    """A reset instead of an answer (no grpc-status anywhere) is the services failing, not a status."""
    async with (
        raw_upstream(answer) as port,
        running_gateway(port) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        reply = await http.get("/v1/conversations/c-1/messages:stream")
    body = assert_status(reply, 503, Status.UNAVAILABLE.value)
    assert body["message"] == "the chat services are unavailable"
