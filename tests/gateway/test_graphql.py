"""GraphQL for reads: types generated from the descriptors, calls batched and deduplicated per query."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from grpclib.events import RecvRequest, listen

from chat.v1 import message_service_pb2
from chat_gateway.config import UpstreamPool
from chat_gateway.graphql import build_schema, read_only_rpcs, stream_rpcs, write_rpcs
from chat_services.server import App
from tests.gateway.clients import graphql_socket, receive_json
from tests.gateway.harness import running_gateway
from tests.services.clients import until
from tests.services.conftest import hub_listeners


def count_calls(app: App) -> list[str]:
    """The method of every call the services receive."""
    calls: list[str] = []

    async def on_request(event: RecvRequest) -> None:
        calls.append(event.method_name)

    listen(app.server, RecvRequest, on_request)
    return calls


async def query(http: httpx.AsyncClient, text: str) -> Any:
    reply = await http.post("/graphql", json={"query": text})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


async def send(http: httpx.AsyncClient, conversation: str, *contents: str) -> list[str]:
    body = [
        {
            "message": {
                "idempotencyKey": f"{conversation}-{n}",
                "conversationId": conversation,
                "authorId": "ada",
                "content": c,
            }
        }
        for n, c in enumerate(contents)
    ]
    reply = await http.post("/v1/messages:send", json=body)
    return [message["id"] for message in reply.json()["messages"]]


def test_types_are_generated_from_the_descriptors() -> None:
    sdl = str(build_schema(read_only_rpcs(), None, write_rpcs()))
    for field in message_service_pb2.Message.DESCRIPTOR.fields:
        assert f"  {field.json_name}: " in sdl.split("type Message {", 1)[1].split("}", 1)[0]
    assert "listMessages(request: ListMessagesRequestInput!): ListMessagesResponse!" in sdl
    assert "searchDocuments(" in sdl and "listPlugins(" in sdl and "getMessage(" in sdl
    query = sdl.split("type Query {", 1)[1].split("\n}", 1)[0]
    mutation = sdl.split("type Mutation {", 1)[1].split("\n}", 1)[0]
    assert "sendMessages" not in query and "editMessage" not in query  # reads only
    assert "sendMessages(requests: [SendMessagesRequestInput!]!): SendMessagesResponse!" in mutation
    assert "editMessage(request: EditMessageRequestInput!): EditMessageResponse!" in mutation
    assert "getMessage" not in mutation and "streamMessages" not in mutation and "chatStream" not in mutation
    assert '"""Message is one stored chat message' in sdl or "Message is" in sdl


async def test_a_conversation_reads_with_authors(http: httpx.AsyncClient) -> None:
    await send(http, "c-gql", "first", "second")
    data = await query(
        http,
        '{ listMessages(request: {conversationId: "c-gql", includeUser: true}) '
        "{ messages { content sequence createdAt author { displayName } } } }",
    )
    messages = data["listMessages"]["messages"]
    assert [m["content"] for m in messages] == ["first", "second"]
    assert messages[0]["sequence"] == "1" and messages[0]["author"] == {"displayName": "ada"}
    assert messages[0]["createdAt"].endswith("Z")


async def test_repeated_reads_in_one_query_cost_one_call(app: App, http: httpx.AsyncClient) -> None:
    [first, second] = await send(http, "c-batch", "one", "two")
    calls = count_calls(app)
    data = await query(
        http,
        f'{{ a: getMessage(request: {{messageId: "{first}"}}) {{ message {{ content }} }} '
        f'b: getMessage(request: {{messageId: "{first}"}}) {{ message {{ content }} }} '
        f'c: getMessage(request: {{messageId: "{second}"}}) {{ message {{ content }} }} '
        'd: listMessages(request: {conversationId: "c-batch"}) { messages { id } } '
        'e: listMessages(request: {conversationId: "c-batch"}) { messages { id } } }',
    )
    assert data["a"] == data["b"] == {"message": {"content": "one"}}
    assert data["c"]["message"]["content"] == "two"
    assert sorted(calls) == sorted(
        ["/chat.v1.MessageService/GetMessage"] * 2 + ["/chat.v1.MessageService/ListMessages"]
    )


async def test_documents_and_plugins(http: httpx.AsyncClient) -> None:
    ingest = [
        {"header": {"documentId": "d-gql", "title": "Otters"}},
        {"text": "Sea otters hold hands while they sleep."},
    ]
    assert (await http.post("/v1/documents", json=ingest)).status_code == 200
    data = await query(
        http,
        '{ searchDocuments(request: {text: "otters sleep", topK: 2}) { passages { documentId score text } } '
        "listPlugins(request: {}) { plugins { name argumentNames } } }",
    )
    assert data["searchDocuments"]["passages"][0]["documentId"] == "d-gql"
    assert {"name": "word_count", "argumentNames": ["text"]} in data["listPlugins"]["plugins"]


async def test_an_upstream_error_is_a_graphql_error_carrying_the_status_without_a_logged_traceback(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    reply = await http.post(
        "/graphql", json={"query": '{ getMessage(request: {messageId: "nope"}) { message { id } } }'}
    )
    body = reply.json()
    [error] = body["errors"]
    assert body["data"] is None and "no message" in error["message"]
    status = error["extensions"]["status"]
    assert status["code"] == 5 and status["message"] == error["message"]
    assert "Traceback" not in caplog.text


async def test_writes_are_mutations_and_reads_see_them(http: httpx.AsyncClient) -> None:
    sent = await query(
        http,
        'mutation { sendMessages(requests: [{message: {idempotencyKey: "g-1", conversationId: "c-mut", '
        'authorId: "ada", content: "hello"}}, {message: {idempotencyKey: "g-2", conversationId: "c-mut", '
        'authorId: "ada", content: "again"}}]) { createdCount messages { id sequence } } }',
    )
    assert sent["sendMessages"]["createdCount"] == 2
    first = sent["sendMessages"]["messages"][0]["id"]
    edited = await query(
        http,
        f'mutation {{ editMessage(request: {{messageId: "{first}", editorId: "ada", content: "hi"}}) '
        "{ message { content } } }",
    )
    assert edited["editMessage"]["message"]["content"] == "hi"
    listed = await query(
        http, '{ listMessages(request: {conversationId: "c-mut"}) { messages { content } } }'
    )
    assert [m["content"] for m in listed["listMessages"]["messages"]] == ["hi", "again"]


async def test_a_mutation_the_schema_refuses_names_the_field_and_calls_nothing(
    app: App, http: httpx.AsyncClient
) -> None:
    calls = count_calls(app)
    reply = await http.post(
        "/graphql",
        json={
            "query": 'mutation { invokePlugin(request: {pluginName: "word_count", timeout: "soon"}) '
            "{ __typename } }"
        },
    )
    error = reply.json()["errors"][0]["message"]
    assert error.startswith("invalid request: timeout: expected a duration"), error
    assert calls == []


async def test_a_subscription_follows_a_conversation_until_completed(
    app: App, http: httpx.AsyncClient, gateway_url: str
) -> None:
    subscribe = {
        "id": "1",
        "type": "subscribe",
        "payload": {
            "query": 'subscription { streamMessages(request: {conversationId: "c-sub", follow: true}) '
            "{ message { content } } }"
        },
    }
    async with graphql_socket(gateway_url) as socket:
        await socket.send(json.dumps(subscribe))
        await until(lambda: hub_listeners(app, "c-sub") == 1)
        await send(http, "c-sub", "live")
        event = await receive_json(socket)
        assert event["type"] == "next" and event["payload"]["data"]["streamMessages"]["message"] == {
            "content": "live"
        }
        await socket.send(json.dumps({"id": "1", "type": "complete"}))
        await until(lambda: hub_listeners(app, "c-sub") == 0)  # unsubscribing cancels the upstream call


async def test_a_subscription_the_rules_refuse_is_an_error_before_any_event(gateway_url: str) -> None:
    """The service refuses it before its first reply; the field path is in ProtoJSON names."""
    subscribe = {
        "id": "1",
        "type": "subscribe",
        "payload": {
            "query": 'subscription { streamMessages(request: {conversationId: ""}) { message { id } } }'
        },
    }
    async with graphql_socket(gateway_url) as socket:
        await socket.send(json.dumps(subscribe))
        event = await receive_json(socket)
        assert event["payload"]["data"] is None, event
        [error] = event["payload"]["errors"]
        status = error["extensions"]["status"]
        [detail] = status["details"]
        assert status["code"] == 3 and detail["fieldViolations"][0]["field"] == "conversationId", status


async def test_a_plugins_map_arguments_and_data_cross_as_sorted_key_value_lists(
    http: httpx.AsyncClient,
) -> None:
    invoked = await query(
        http,
        'mutation { invokePlugin(request: {pluginName: "word_count", '
        'arguments: [{key: "text", value: "two words"}]}) { output data { key value } } }',
    )
    assert invoked["invokePlugin"] == {
        "output": "2 words, 9 characters, 1 line",
        "data": [
            {"key": "characters", "value": "9"},
            {"key": "lines", "value": "1"},
            {"key": "words", "value": "2"},
        ],
    }


async def test_a_repeated_input_reaches_the_service_and_enums_come_back_by_name(
    http: httpx.AsyncClient,
) -> None:
    await query(
        http,
        'mutation { createConversation(request: {conversationId: "c-roles", memberIds: ["bob", "carol"]}) '
        "{ conversation { conversationId } } }",
    )
    listed = await query(
        http, '{ listMembers(request: {conversationId: "c-roles"}) { members { userId role } } }'
    )
    roles = {member["userId"]: member["role"] for member in listed["listMembers"]["members"]}
    assert roles == {"bob": "MEMBER_ROLE_OWNER", "carol": "MEMBER_ROLE_MEMBER"}  # the first member owns it


async def test_one_failing_read_of_a_batch_fails_only_its_own_field(http: httpx.AsyncClient) -> None:
    [sent] = await send(http, "c-partial", "kept")
    reply = await http.post(
        "/graphql",
        json={
            "query": f'{{ a: getMessage(request: {{messageId: "{sent}"}}) {{ message {{ content }} }} '
            'b: getMessage(request: {messageId: "nope"}) { message { content } } }'
        },
    )
    # A failed field nulls the whole (non-null) answer, but the error is b's alone: a was answered.
    [error] = reply.json()["errors"]
    assert error["path"] == ["b"] and error["extensions"]["status"]["code"] == 5


async def test_a_refused_request_of_a_list_names_its_index(http: httpx.AsyncClient) -> None:
    reply = await http.post(
        "/graphql",
        json={
            "query": "mutation { sendMessages(requests: ["
            '{message: {idempotencyKey: "i-1", conversationId: "c-i", authorId: "ada", content: "fine"}}, '
            '{message: {idempotencyKey: "i-2", conversationId: "c-i", authorId: "ada", content: "big", '
            'files: [{fileId: "f-1", sizeBytes: "lots"}]}}]) { createdCount } }'
        },
    )
    [error] = reply.json()["errors"]
    assert error["message"].startswith("invalid request: [1].message.files.sizeBytes: expected a 64-bit"), (
        error["message"]
    )


async def test_an_unexpected_error_is_logged(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    reply = await http.post("/graphql", json={"query": "{ noSuchField }"})
    [error] = reply.json()["errors"]
    assert "noSuchField" in error["message"]
    [record] = [r for r in caplog.records if "noSuchField" in r.getMessage()]
    assert record.levelname == "ERROR"


async def test_subscriptions_count_against_their_own_callers_share_of_streams(app: App) -> None:
    def subscribe(number: int) -> str:
        query = (
            'subscription { streamMessages(request: {conversationId: "c-share", follow: true}) '
            + "{ message { id } } }"
        )
        return json.dumps({"id": str(number), "type": "subscribe", "payload": {"query": query}})

    async with (
        running_gateway(app.port, pool=UpstreamPool(caller_streams=1)) as url,
        graphql_socket(url, {"authorization": "Bearer one"}) as first,
        graphql_socket(url, {"authorization": "Bearer two"}) as second,
    ):
        await first.send(subscribe(1))
        await until(lambda: hub_listeners(app, "c-share") == 1)
        await first.send(subscribe(2))
        refused = await receive_json(first)
        assert refused["id"] == "2" and refused["payload"]["errors"][0]["extensions"]["status"]["code"] == 8
        await second.send(subscribe(1))  # another credential: a share of its own
        await until(lambda: hub_listeners(app, "c-share") == 2)


def test_the_schema_carries_the_protos_comments_and_nested_names() -> None:
    sdl = str(build_schema(read_only_rpcs(), None, write_rpcs(), stream_rpcs()))
    assert '"""MemberRole is what a member may do in a conversation."""\nenum MemberRole {' in sdl
    assert (
        '"""\n  role is what the member may do beyond reading and posting. Output only.\n  """\n  role: '
        in sdl
    )
    assert '"""Reads of the chat.v1 API."""\ntype Query {' in sdl
    assert '"""Writes of the chat.v1 API."""\ntype Mutation {' in sdl
    assert '"""Streams of the chat.v1 API."""\ntype Subscription {' in sdl
    for name in ("getMessage(", "sendMessages(", "streamMessages("):
        described = sdl.split(name, 1)[0].rsplit("\n", 2)[-2]
        assert described.strip().endswith('"""'), (name, described)
    assert "data: [InvokePluginResponseDataentry!]" in sdl  # a nested message's name, as clients see it


async def test_graphiql_is_served_to_browsers_only_with_introspection(app: App) -> None:
    browser = {"accept": "text/html"}
    async with running_gateway(app.port) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/graphql", headers=browser)
        assert page.status_code == 200 and "graphiql" in page.text.lower()
    async with (
        running_gateway(app.port, graphql_introspection=False) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert "graphiql" not in (await http.get("/graphql", headers=browser)).text.lower()
