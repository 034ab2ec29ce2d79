"""Standard protobuf target of the chat platform schema: ``from chat.v1 import message_service_pb2``."""

# An editable install (`pip install -e sdk/python`, as `nox -s check` does) places this file in
# site-packages while the generated modules stay in sdk/python/pb2: find them there too.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
