"""buf.validate as protobuf ``_pb2`` modules: the rule annotations protovalidate reads at run time."""
