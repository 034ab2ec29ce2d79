"""A generic client with no chat SDK: discovers every service by reflection and resolves each method.

Run in a virtual environment holding only grpcio, grpcio-reflection and protobuf:
``python reflection_client.py PORT`` prints JSON ``{service: {method: [input, output]}}``
and then calls ``chat.v1.MessageService/GetMessage`` built from the reflected descriptors.
"""

from __future__ import annotations

import json
import sys

import grpc
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
        method = pool.FindMethodByName("chat.v1.MessageService.GetMessage")
        request_class = GetMessageClass(method.input_type)
        response_class = GetMessageClass(method.output_type)
        call = channel.unary_unary(
            "/chat.v1.MessageService/GetMessage",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        try:
            call(request_class(message_id="no-such-message"), timeout=10)
            outcome = "OK"
        except grpc.RpcError as error:
            outcome = error.code().name
    print(json.dumps({"services": found, "get_message": outcome}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
