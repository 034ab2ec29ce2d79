"""grpcio as a second, independent client of a secured server: TLS (or mTLS) plus a bearer token.

Run in its own process: ``python secure_client.py CONFIG_JSON``, where the JSON names
``port``, ``ca`` (PEM file), ``token``, ``other_token`` (another user's) and
optionally ``client_cert``/``client_key``. Prints ``{call: outcome}`` as JSON, the
outcome being ``OK`` or the status code's name.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from chat.v1 import message_service_pb2

SERVICE = "/chat.v1.MessageService/"


def outcome(call: Callable[[], Any]) -> str:
    """``OK`` or the code of the ``RpcError`` the call raised."""
    try:
        call()
    except grpc.RpcError as error:
        return str(error.code().name)
    return "OK"


def main() -> int:
    config = json.loads(sys.argv[1])
    optional = {
        "private_key": Path(config["client_key"]).read_bytes() if config.get("client_key") else None,
        "certificate_chain": Path(config["client_cert"]).read_bytes() if config.get("client_cert") else None,
    }
    credentials = grpc.ssl_channel_credentials(root_certificates=Path(config["ca"]).read_bytes(), **optional)
    with grpc.secure_channel(f"localhost:{config['port']}", credentials) as channel:
        send = channel.stream_unary(
            SERVICE + "SendMessages",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message_service_pb2.SendMessagesResponse.FromString,
        )
        get = channel.unary_unary(
            SERVICE + "GetMessage",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message_service_pb2.GetMessageResponse.FromString,
        )
        edit = channel.unary_unary(
            SERVICE + "EditMessage",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message_service_pb2.EditMessageResponse.FromString,
        )
        mine = [("authorization", f"Bearer {config['token']}")]
        theirs = [("authorization", f"Bearer {config['other_token']}")]
        new = message_service_pb2.NewMessage(
            idempotency_key="k-1", conversation_id="c-1", author_id="alice", content="hi"
        )
        sent = send(iter([message_service_pb2.SendMessagesRequest(message=new)]), metadata=mine, timeout=10)
        message_id = sent.messages[0].id
        read = message_service_pb2.GetMessageRequest(message_id=message_id)
        change = message_service_pb2.EditMessageRequest(message_id=message_id, content="changed")
        results = {
            "send": "OK",
            "get": outcome(lambda: get(read, metadata=mine, timeout=10)),
            "get_without_token": outcome(lambda: get(read, timeout=10)),
            "edit_by_another_user": outcome(lambda: edit(change, metadata=theirs, timeout=10)),
            "edit_by_author": outcome(lambda: edit(change, metadata=mine, timeout=10)),
        }
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
