"""The grpclib code this repository re-implements or reaches into is the code it was written against.

grpclib has no compression and no hooks for framing limits, so a few classes here subclass
its streams and protocol and re-implement some methods, with grpclib's own lines kept
beside ours (``chat_sdk._compressed``, ``chat_services.framing``, ``chat_services.hygiene``,
``chat_services.coalescing``), and the gateway reads the headers of a refused call where
grpclib keeps them. The SDK pins ``grpclib>=0.4.9,<0.5``: a 0.4.x release that changes any
of these functions fails here, naming what to re-read, instead of misbehaving quietly.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect

# grpclib function → (SHA-256 prefix of its source in grpclib 0.4.9, the code here that follows it)
PINNED = {
    "grpclib.client:Stream.__init__": ("b788ffa00cb85a6a", "chat_sdk._compressed (adopt)"),
    "grpclib.client:Stream.send_request": ("49b4a04bf8fe17dd", "chat_sdk._compressed.send_request"),
    "grpclib.client:Stream.send_message": ("adc5fa4acde1b1c6", "chat_sdk._compressed.send_message"),
    "grpclib.client:Stream.recv_initial_metadata": ("2cfaf4cc630d02fd", "chat_sdk._compressed"),
    "grpclib.client:Stream.recv_message": ("8ae2cf8dc288f41f", "chat_sdk._compressed.recv_message"),
    "grpclib.client:Stream._process_grpc_status": (
        "f6e565b650f77f4f",
        "chat_gateway.upstream.answer_headers",
    ),
    "grpclib.client:Channel.__connect__": ("259165e25dc4e522", "chat_sdk.channel._Endpointed.__connect__"),
    "grpclib.server:Stream.__init__": ("78866f62006256a5", "chat_services.framing.FramedStream.adopt"),
    "grpclib.server:Stream.send_initial_metadata": ("0783bddf633978a7", "chat_services.framing"),
    "grpclib.server:Stream.send_message": ("1b0b15d0ce49d271", "chat_services.framing.send_message"),
    "grpclib.server:Stream.recv_message": ("fbfe65d02d8e8b71", "chat_services.framing._next_message"),
    "grpclib.server:Stream.send_trailing_metadata": ("a1cae6b7f4a12255", "chat_services.framing"),
    "grpclib.server:Handler.accept": ("e6124ed435d02f38", "chat_services.hygiene.BudgetedHandler"),
    "grpclib.protocol:EventsProcessor.process": ("5dba9947784c778b", "chat_services.hygiene"),
    "grpclib.protocol:EventsProcessor.process_remote_settings_changed": (
        "23829af221c709ac",
        "chat_services.hygiene",
    ),
    "grpclib.protocol:H2Protocol.connection_made": ("349133fc183764e5", "chat_services.coalescing"),
}


def fingerprint(name: str) -> str:
    """The SHA-256 prefix of ``module:Class.function``'s source as installed."""
    module, _, path = name.partition(":")
    found: object = importlib.import_module(module)
    for part in path.split("."):
        found = getattr(found, part)
    return hashlib.sha256(inspect.getsource(found).encode()).hexdigest()[:16]  # type: ignore[arg-type]


def test_the_grpclib_functions_followed_here_are_unchanged() -> None:
    changed = [
        f"{name} (re-read {ours})"
        for name, (expected, ours) in PINNED.items()
        if fingerprint(name) != expected
    ]
    assert not changed, "grpclib changed code this repository follows:\n" + "\n".join(changed)
