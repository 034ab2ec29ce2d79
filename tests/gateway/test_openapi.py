"""The OpenAPI document: generated from the schema, valid OpenAPI 3.1, and committed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from google.protobuf import descriptor_pool
from openapi_spec_validator import validate

from chat_gateway import limits
from chat_gateway.cli import openapi_text
from chat_gateway.schema import rpcs

COMMITTED = Path(__file__).resolve().parents[2] / "gateway" / "openapi.json"


async def test_the_served_document_is_the_committed_one(http: httpx.AsyncClient) -> None:
    served = (await http.get("/openapi.json")).json()
    assert served == json.loads(COMMITTED.read_text()), "gateway/openapi.json drifted: run `nox -s openapi`"
    assert openapi_text() == COMMITTED.read_text()


def test_the_document_is_valid_openapi_3_1() -> None:
    document: Any = json.loads(COMMITTED.read_text())
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_of_the_schema_is_documented_with_its_comment() -> None:
    document: Any = json.loads(COMMITTED.read_text())
    for rpc in rpcs():
        operation = document["paths"][rpc.template.openapi_path][rpc.verb]
        assert operation["operationId"] == rpc.operation_id
        assert operation["description"] == rpc.comment and rpc.comment.startswith(rpc.name)


def test_message_fields_carry_their_proto_comments() -> None:
    schemas: Any = json.loads(COMMITTED.read_text())["components"]["schemas"]
    message = schemas["chat.v1.Message"]
    assert message["description"].startswith("Message ")
    assert message["properties"]["createdAt"]["format"] == "date-time"
    assert message["properties"]["sequence"]["type"] == "string"  # int64 is a string in ProtoJSON
    assert message["properties"]["content"]["description"].startswith("content ")
    assert schemas["chat.v1.FinishReason"]["enum"][0] == "FINISH_REASON_UNSPECIFIED"


async def test_interactive_docs_are_served(http: httpx.AsyncClient) -> None:
    docs = await http.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    assert "https://" not in docs.text.split("<body>", 1)[1], "Swagger UI comes from the gateway, not a CDN"
    bundle = await http.get("/docs-assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000


def test_request_limits_are_json_schema_keywords() -> None:
    """What the services enforce (buf.validate) is what REST clients read in the document."""
    document: Any = json.loads(COMMITTED.read_text())
    schemas = document["components"]["schemas"]
    new = schemas["chat.v1.NewMessage"]["properties"]
    assert (new["conversationId"]["minLength"], new["conversationId"]["maxLength"]) == (1, 64)
    assert (new["content"]["maxLength"], new["content"]["x-maxBytes"]) == (65536, 65536)
    assert new["files"]["maxItems"] == 10
    assert schemas["chat.v1.SendMessagesRequest"]["required"] == ["message"]
    listing = document["paths"]["/v1/conversations/{conversation_id}/messages"]["get"]["parameters"]
    by_name = {parameter["name"]: parameter["schema"] for parameter in listing}
    assert by_name["conversation_id"] == {"type": "string", "minLength": 1, "maxLength": 64}
    assert by_name["page.pageSize"]["minimum"] == 0
    assert by_name["page.pageToken"]["maxLength"] == 1024


def test_every_string_and_list_limit_of_the_schema_is_in_the_document() -> None:
    """Derived from the descriptors, so a limit added to the schema is checked unaided."""
    schemas: Any = json.loads(COMMITTED.read_text())["components"]["schemas"]
    checked = 0
    for name, schema in schemas.items():
        if "properties" not in schema or not name.startswith("chat."):
            continue  # enums, google.rpc.Status
        descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
        for field in descriptor.fields:
            rules = limits.rules_of(field)
            if rules is None:
                continue
            documented = schema["properties"][field.json_name]
            if rules.string.HasField("max_len"):
                assert documented["maxLength"] <= rules.string.max_len, field.full_name
                checked += 1
            if rules.string.HasField("min_len"):
                assert documented["minLength"] == rules.string.min_len, field.full_name
            if rules.repeated.HasField("max_items"):
                assert documented["maxItems"] == rules.repeated.max_items, field.full_name
                checked += 1
            if rules.map.HasField("max_pairs"):
                assert documented["maxProperties"] == rules.map.max_pairs, field.full_name
                checked += 1
    assert checked >= 20  # not vacuous: 27 limits when this was written
