"""The gateway's public surface is exactly what ``chat_gateway.__all__`` names."""

from __future__ import annotations

import types

import chat_gateway


def test_the_public_surface_is_the_app_factory_and_its_configuration() -> None:
    assert sorted(chat_gateway.__all__) == [
        "GatewayConfig",
        "UpstreamAddress",
        "UpstreamPool",
        "UpstreamTls",
        "app_factory",
    ]
    public = {
        name
        for name, value in vars(chat_gateway).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(chat_gateway.__all__)
