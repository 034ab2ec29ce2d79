"""grpcio-health-checking's client, asking a server about each named service.

Run in its own process (``python health_client.py PORT SERVICE...``): grpclib's
health module and grpcio's define the same protobuf symbols, so the two cannot
share a process. Prints ``{service: status name}`` as JSON; a service the server
does not know reads as the status code's name (``NOT_FOUND``).
"""

from __future__ import annotations

import json
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main() -> int:
    port, *services = sys.argv[1:]
    answers: dict[str, str] = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in services:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            except grpc.RpcError as error:
                answers[service] = error.code().name
            else:
                answers[service] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    json.dump(answers, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
