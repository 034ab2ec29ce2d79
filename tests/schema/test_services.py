"""The schema carries every service and RPC of the internal API, with its streaming kind."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2

from ..sdk.samples import chat_files

UNARY, SERVER_STREAM, CLIENT_STREAM, BIDI = "unary", "server-streaming", "client-streaming", "bidirectional"

EXPECTED_RPCS = {
    ("chat.v1.MessageService", "GetMessage"): UNARY,
    ("chat.v1.MessageService", "ListMessages"): UNARY,
    ("chat.v1.MessageService", "StreamMessages"): SERVER_STREAM,
    ("chat.v1.MessageService", "SendMessages"): CLIENT_STREAM,
    ("chat.v1.MessageService", "ChatStream"): BIDI,
    ("chat.v1.MessageService", "EditMessage"): UNARY,  # since 1.1.0
    ("chat.v1.ConversationService", "CreateConversation"): UNARY,  # since 2.1.0
    ("chat.v1.ConversationService", "AddMember"): UNARY,
    ("chat.v1.ConversationService", "RemoveMember"): UNARY,
    ("chat.v1.ConversationService", "ListMembers"): UNARY,
    ("chat.v1.AIService", "StreamCompletion"): SERVER_STREAM,
    ("chat.v1.AIService", "Complete"): UNARY,
    ("chat.v1.RAGService", "IngestDocument"): CLIENT_STREAM,
    ("chat.v1.RAGService", "DeleteDocument"): UNARY,
    ("chat.v1.RAGService", "SearchDocuments"): UNARY,
    ("chat.v1.PluginService", "ListPlugins"): UNARY,
    ("chat.v1.PluginService", "InvokePlugin"): UNARY,
    ("chat.v1.PluginService", "StreamPluginEvents"): SERVER_STREAM,
}

READ_ONLY = {"GetMessage", "ListMessages", "ListMembers", "SearchDocuments", "ListPlugins"}


def _kind(method: descriptor_pb2.MethodDescriptorProto) -> str:
    return {
        (False, False): UNARY,
        (False, True): SERVER_STREAM,
        (True, False): CLIENT_STREAM,
        (True, True): BIDI,
    }[(method.client_streaming, method.server_streaming)]


def _methods() -> dict[tuple[str, str], descriptor_pb2.MethodDescriptorProto]:
    return {
        (f"{file.package}.{service.name}", method.name): method
        for file in chat_files()
        for service in file.service
        for method in service.method
    }


def test_the_schema_has_exactly_the_expected_rpcs() -> None:
    assert {key: _kind(method) for key, method in _methods().items()} == EXPECTED_RPCS


@pytest.mark.parametrize("key", sorted(EXPECTED_RPCS))
def test_each_rpc_has_its_own_request_and_response(key: tuple[str, str]) -> None:
    method = _methods()[key]
    assert method.input_type == f".chat.v1.{method.name}Request"
    assert method.output_type == f".chat.v1.{method.name}Response"


def test_read_only_rpcs_are_marked_safe_to_retry() -> None:
    no_side_effects = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    marked = {name for (_, name), m in _methods().items() if m.options.idempotency_level == no_side_effects}
    assert marked == READ_ONLY


def test_get_message_request_matches_the_adr() -> None:
    (request,) = [m for f in chat_files() for m in f.message_type if m.name == "GetMessageRequest"]
    assert [(f.name, f.number) for f in request.field] == [
        ("message_id", 1),
        ("include_user", 2),
        ("include_files", 3),
    ]


def test_message_created_time_is_a_timestamp() -> None:
    (message,) = [m for f in chat_files() for m in f.message_type if m.name == "Message"]
    created = {f.name: f for f in message.field}["created_at"]
    assert created.type_name == ".google.protobuf.Timestamp"


def test_every_element_carries_a_comment_in_the_shipped_image() -> None:
    undocumented = []
    for file in chat_files():
        commented = {
            tuple(location.path)
            for location in file.source_code_info.location
            if location.leading_comments.strip()
        }
        for i, message in enumerate(file.message_type):
            if (4, i) not in commented:
                undocumented.append(f"{file.name}: message {message.name}")
            for j, field in enumerate(message.field):
                if (4, i, 2, j) not in commented:
                    undocumented.append(f"{file.name}: field {message.name}.{field.name}")
        for i, service in enumerate(file.service):
            if (6, i) not in commented:
                undocumented.append(f"{file.name}: service {service.name}")
            for j, method in enumerate(service.method):
                if (6, i, 2, j) not in commented:
                    undocumented.append(f"{file.name}: rpc {service.name}.{method.name}")
    assert undocumented == []
