"""Routes come from the schema: a new RPC with a google.api.http option gets a route, no code needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2

import chat_sdk.schema
from chat.v1 import message_service_pb2
from chat_gateway.cli import main
from chat_gateway.schema import Kind, rpcs, walk
from chat_gateway.templates import PathTemplate

REQUEST = message_service_pb2.StreamMessagesRequest.DESCRIPTOR


def test_a_new_rpc_in_the_schema_gets_its_route() -> None:
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(f.SerializeToString())
        for f in chat_sdk.schema.file_descriptor_set().file
    ]
    [messages] = [f for f in files if f.name == "chat/v1/message_service.proto"]
    [service] = messages.service
    method = service.method.add(
        name="FollowMessages",
        input_type=".chat.v1.StreamMessagesRequest",
        output_type=".chat.v1.StreamMessagesResponse",
        server_streaming=True,
    )
    method.options.Extensions[annotations_pb2.http].CopyFrom(
        http_pb2.HttpRule(get="/v1/conversations/{conversation_id}/messages:follow")
    )
    walked = {rpc.operation_id: rpc for rpc in walk(files)}
    assert set(walked) == {rpc.operation_id for rpc in rpcs()} | {"MessageService_FollowMessages"}
    added = walked["MessageService_FollowMessages"]
    assert added.kind is Kind.SERVER_STREAM and added.verb == "get"
    assert added.template.route_path == "/v1/conversations/{conversation_id}/messages:follow"


def test_an_rpc_without_a_route_is_not_served() -> None:
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(f.SerializeToString())
        for f in chat_sdk.schema.file_descriptor_set().file
    ]
    [messages] = [f for f in files if f.name == "chat/v1/message_service.proto"]
    messages.service[0].method[0].options.ClearExtension(annotations_pb2.http)
    assert "MessageService_GetMessage" not in {rpc.operation_id for rpc in walk(files)}


@pytest.mark.parametrize(
    ("template", "route", "json_path"),
    [
        ("/v1/c/{conversation_id}/m", "/v1/c/{conversation_id}/m", ("conversationId",)),
        ("/v1/c/{conversation_id=*}:stream", "/v1/c/{conversation_id}:stream", ("conversationId",)),
        ("/v1/c/{conversation_id=**}", "/v1/c/{conversation_id:path}", ("conversationId",)),
        ("/v1/s/{after_sequence}", "/v1/s/{after_sequence}", ("afterSequence",)),
    ],
)
def test_path_templates_compile_to_routes(template: str, route: str, json_path: tuple[str, ...]) -> None:
    compiled = PathTemplate.parse(template, REQUEST)
    assert compiled.route_path == route
    assert [variable.json_path for variable in compiled.variables] == [json_path]


@pytest.mark.parametrize(
    "template",
    ["v1/no-slash", "/v1/{nope}", "/v1/{follow}", "/v1/{conversation_id=c/*}", "/v1/{conversation_id"],
)
def test_templates_the_gateway_cannot_serve_are_refused_at_start(template: str) -> None:
    with pytest.raises(ValueError, match=r"template|variable"):
        PathTemplate.parse(template, REQUEST)


def test_the_openapi_check_fails_on_a_stale_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n")
    assert main(["openapi", "--output", str(stale), "--check"]) == 1
    assert "nox -s openapi" in capsys.readouterr().err
    assert main(["openapi", "--output", str(stale)]) == 0
    assert main(["openapi", "--output", str(stale), "--check"]) == 0


def test_serve_flags_become_one_configuration() -> None:
    from chat_gateway.cli import config_from, parser

    args = parser().parse_args(
        [
            "serve",
            "--upstream-port",
            "6000",
            "--cors-origin",
            "https://a.test",
            "--body-limit",
            "10",
            "--call-timeout",
            "5",
        ]
    )
    config = config_from(args)
    assert (config.upstream.port, config.cors_origins, config.body_limit, config.unary_timeout) == (
        6000,
        ("https://a.test",),
        10,
        5.0,
    )
    assert config.host == "127.0.0.1" and config.port == 8080
    with pytest.raises(ValueError, match="body-limit"):
        config_from(parser().parse_args(["serve", "--body-limit", "0"]))
