"""chat.v1 as typed dataclasses (betterproto2) with grpclib client stubs and server bases.

Every message, enum, ``<Service>Stub`` and ``<Service>Base`` of the ``chat.v1``
package, re-exported from the generated code under ``chat_sdk._generated``::

    from chat_sdk.v1 import GetMessageRequest, MessageServiceStub

The messages encode and parse with upb, the protobuf runtime's C code, through their
``_pb2`` twins (``chat_sdk._wire``): same classes, same fields, two orders of
magnitude faster than betterproto2's pure-Python codec.
"""

from chat_sdk import _wire
from chat_sdk._generated.chat import v1 as _generated
from chat_sdk._generated.chat.v1 import *  # noqa: F403
from chat_sdk._generated.chat.v1 import __all__ as __all__

_wire.install(vars(_generated).values())
