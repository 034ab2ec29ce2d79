"""A generic client with no chat SDK: discovers every service by reflection and resolves each method.

Run in a virtual environment holding only grpcio, grpcio-reflection and protobuf:
``python reflection_client.py PORT`` prints JSON ``{service: {method: [input, output]}}``
with the outcome of one unary call per service, built from the reflected descriptors.
"""

from __future__ import annotations

import json
import sys

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor_pool import DescriptorPool
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def main(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = DescriptorPool(database)
        found = {}
        for name in database.get_services():
            service = pool.FindServiceByName(name)
            found[name] = {m.name: [m.input_type.full_name, m.output_type.full_name] for m in service.methods}
        calls = {name: _call(channel, pool, name, request) for name, request in CALLS.items()}
    print(json.dumps({"services": found, "calls": calls}))


# One unary call per service, requests written as ProtoJSON against the reflected types.
CALLS: dict[str, dict[str, object]] = {
    "chat.v1.MessageService.GetMessage": {"messageId": "no-such-message"},
    "chat.v1.AIService.Complete": {"prompt": "What is reflection?", "maxTokens": 5},
    "chat.v1.RAGService.SearchDocuments": {"text": "reflection"},
    "chat.v1.PluginService.ListPlugins": {},
}


def _call(
    channel: grpc.Channel, pool: DescriptorPool, name: str, request: dict[str, object]
) -> dict[str, object]:
    """Call a method known only by reflection; the status and the reply as ProtoJSON."""
    method = pool.FindMethodByName(name)
    request_class = GetMessageClass(method.input_type)
    response_class = GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{method.containing_service.full_name}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    try:
        reply = call(json_format.ParseDict(request, request_class()), timeout=10)
    except grpc.RpcError as error:
        return {"status": error.code().name}
    return {"status": "OK", "reply": json_format.MessageToDict(reply)}


if __name__ == "__main__":
    main(int(sys.argv[1]))
