"""chat.v1 as protobuf ``_pb2`` modules, mypy-protobuf stubs and grpclib ``_grpc`` stubs."""
