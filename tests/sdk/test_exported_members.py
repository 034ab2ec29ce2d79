"""The SDK's public surface is exactly what the schema defines, and nothing by accident."""

from __future__ import annotations

from betterproto2.casing import pascal_case

import chat_sdk
import chat_sdk.schema
import chat_sdk.v1

from .samples import chat_files


def test_chat_sdk_exports_the_client_layer_and_version() -> None:
    assert set(chat_sdk.__all__) == {
        "ChatChannel",
        "FastCodec",
        "RetryPolicy",
        "TokenProvider",
        "__version__",
        "call_with_retry",
        "connect",
        "default_timeouts",
        "is_retry_safe",
        "parse_target",
        "retry_delay",
        "tls_context",
    }
    assert isinstance(chat_sdk.__version__, str)


def test_v1_exports_every_message_enum_stub_and_base_of_the_schema() -> None:
    expected: set[str] = set()
    for file in chat_files():
        expected |= {message.name for message in file.message_type}
        expected |= {enum.name for enum in file.enum_type}
        # betterproto2 normalises service names: AIService -> AiServiceStub.
        expected |= {f"{pascal_case(s.name)}{suffix}" for s in file.service for suffix in ("Stub", "Base")}
    assert set(chat_sdk.v1.__all__) == expected
    for name in expected:
        assert getattr(chat_sdk.v1, name).__module__ == "chat_sdk._generated.chat.v1"


def test_schema_image_resolves_every_service_method() -> None:
    pool = chat_sdk.schema.descriptor_pool()
    for file in chat_files():
        for service in file.service:
            found = pool.FindServiceByName(f"{file.package}.{service.name}")
            assert [m.name for m in found.methods] == [m.name for m in service.method]
