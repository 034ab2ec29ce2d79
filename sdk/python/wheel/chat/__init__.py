"""Standard protobuf target of the chat platform schema: ``from chat.v1 import message_service_pb2``."""
