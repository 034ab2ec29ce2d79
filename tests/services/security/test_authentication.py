"""Every chat.v1 method refuses callers without valid credentials or scopes, with ErrorInfo details."""

from __future__ import annotations

from typing import Any

import pytest
from google.rpc import error_details_pb2
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.health.v1 import health_pb2
from grpclib.health.v1.health_grpc import HealthStub

from chat.v1 import message_service_pb2
from chat.v1.message_service_grpc import MessageServiceStub
from chat_services.security.scopes import METHOD_SCOPES
from chat_services.server import App

from ..clients import channel, expect_status
from .conftest import ALL_SCOPES, SERVICE_TOKEN, Issuer


def chat_methods(app: App) -> dict[str, Any]:
    """Every chat.v1 method the app serves: path -> grpclib handler (cardinality, request type...)."""
    mapping: dict[str, Any] = {}
    for service in app.services:
        mapping.update(service.__mapping__())
    return mapping


async def open_call(opened: Channel, path: str, handler: Any, token: str | None) -> None:
    """Start a call of any kind and wait for its first answer from the server."""
    metadata = {"authorization": f"Bearer {token}"} if token is not None else None
    async with opened.request(
        path, handler.cardinality, handler.request_type, handler.reply_type, metadata=metadata, timeout=10
    ) as stream:
        await stream.send_request()
        await stream.recv_initial_metadata()


def error_reason(error: Any) -> str:
    """The reason of the error's ``google.rpc.ErrorInfo`` detail."""
    [info] = [d for d in error.details or [] if isinstance(d, error_details_pb2.ErrorInfo)]
    return str(info.reason)


def test_the_scope_table_covers_every_chat_method(secure_app: App) -> None:
    assert set(chat_methods(secure_app)) == set(METHOD_SCOPES)


@pytest.mark.parametrize(
    ("credential", "status", "reason"),
    [
        ("missing", Status.UNAUTHENTICATED, "CREDENTIALS_MISSING"),
        ("expired", Status.UNAUTHENTICATED, "TOKEN_EXPIRED"),
        ("wrong_audience", Status.UNAUTHENTICATED, "WRONG_AUDIENCE"),
        ("wrong_scope", Status.PERMISSION_DENIED, "MISSING_SCOPE"),
        ("forged", Status.UNAUTHENTICATED, "TOKEN_INVALID"),
        ("unknown_api_token", Status.UNAUTHENTICATED, "TOKEN_INVALID"),
    ],
)
async def test_every_chat_method_refuses_bad_credentials(
    secure_app: App, issuer: Issuer, credential: str, status: Status, reason: str
) -> None:
    tokens: dict[str, str | None] = {
        "missing": None,
        "expired": issuer.token(expires_in=-60),
        "wrong_audience": issuer.token(audience="another-service"),
        "wrong_scope": issuer.token(scopes=["unrelated:scope"]),
        "forged": issuer.token()[:-8] + "AAAAAAAA",
        "unknown_api_token": "chs_not-a-token-this-server-knows",
    }
    async with channel(secure_app.port) as opened:
        for path, handler in chat_methods(secure_app).items():
            error = await expect_status(open_call(opened, path, handler, tokens[credential]), status)
            assert error_reason(error) == reason, path


async def test_a_token_with_other_scopes_is_refused_only_where_they_fall_short(
    secure_app: App, issuer: Issuer
) -> None:
    reader = issuer.token(scopes=["messages:read"])
    async with channel(secure_app.port) as opened:
        for path, handler in chat_methods(secure_app).items():
            if METHOD_SCOPES[path] <= {"messages:read"}:
                continue
            error = await expect_status(open_call(opened, path, handler, reader), Status.PERMISSION_DENIED)
            assert error_reason(error) == "MISSING_SCOPE"


async def test_a_valid_token_reaches_the_handler(secure_app: App, issuer: Issuer) -> None:
    token = issuer.token(scopes=ALL_SCOPES)
    async with channel(secure_app.port) as opened:
        stub = MessageServiceStub(opened)
        request = message_service_pb2.GetMessageRequest(message_id="m-none")
        await expect_status(
            stub.GetMessage(request, metadata={"authorization": f"Bearer {token}"}), Status.NOT_FOUND
        )


async def test_a_service_token_gets_its_own_scopes_only(secure_app: App) -> None:
    metadata = {"authorization": f"Bearer {SERVICE_TOKEN}"}
    async with channel(secure_app.port) as opened:
        stub = MessageServiceStub(opened)
        request = message_service_pb2.GetMessageRequest(message_id="m-none")
        error = await expect_status(stub.GetMessage(request, metadata=metadata), Status.PERMISSION_DENIED)
        assert error_reason(error) == "MISSING_SCOPE"


async def test_health_stays_open_without_credentials(secure_app: App) -> None:
    async with channel(secure_app.port) as opened:
        reply = await HealthStub(opened).Check(
            health_pb2.HealthCheckRequest(service="chat.v1.MessageService")
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
