"""TLS and mutual TLS: a verified client certificate is a service identity; anything else is refused."""

from __future__ import annotations

import ssl

import pytest
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.encoding.proto import ProtoStatusDetailsCodec
from grpclib.exceptions import GRPCError, StreamTerminatedError

from chat.v1 import message_service_pb2
from chat.v1.message_service_grpc import MessageServiceStub
from chat_services.server import App

from ..clients import expect_status
from .conftest import Certificates

# What a client sees when the handshake is refused: the connection fails or is reset.
CONNECTION_FAILURES = (ssl.SSLError, ConnectionError, StreamTerminatedError, OSError, GRPCError)


async def get_message(port: int, context: ssl.SSLContext | None) -> None:
    """One GetMessage to ``localhost:port`` with ``context`` (plaintext if None)."""
    async with Channel(
        "localhost", port, ssl=context, status_details_codec=ProtoStatusDetailsCodec()
    ) as opened:
        request = message_service_pb2.GetMessageRequest(message_id="m-none")
        await MessageServiceStub(opened).GetMessage(request, timeout=10)


async def test_a_client_certificate_from_the_ca_is_a_service_identity(
    mtls_app: App, certificates: Certificates
) -> None:
    # svc-reader holds messages:read, so the call reaches the handler: NOT_FOUND, not a refusal.
    await expect_status(
        get_message(mtls_app.port, certificates.client_context(certificates.client)), Status.NOT_FOUND
    )


async def test_a_client_certificate_from_a_foreign_ca_is_refused(
    mtls_app: App, certificates: Certificates
) -> None:
    with pytest.raises(CONNECTION_FAILURES) as raised:
        await get_message(mtls_app.port, certificates.client_context(certificates.foreign_client))
    assert not (isinstance(raised.value, GRPCError) and raised.value.status is Status.NOT_FOUND)


async def test_a_client_without_a_certificate_is_refused(mtls_app: App, certificates: Certificates) -> None:
    with pytest.raises(CONNECTION_FAILURES) as raised:
        await get_message(mtls_app.port, certificates.client_context(None))
    assert not (isinstance(raised.value, GRPCError) and raised.value.status is Status.NOT_FOUND)


async def test_a_plaintext_client_is_refused(mtls_app: App) -> None:
    with pytest.raises(CONNECTION_FAILURES) as raised:
        await get_message(mtls_app.port, None)
    assert not (isinstance(raised.value, GRPCError) and raised.value.status is Status.NOT_FOUND)
