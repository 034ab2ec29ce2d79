"""chat.v1 as typed dataclasses (betterproto2) with grpclib client stubs and server bases.

Every message, enum, ``<Service>Stub`` and ``<Service>Base`` of the ``chat.v1``
package, re-exported from the generated code under ``chat_sdk._generated``::

    from chat_sdk.v1 import GetMessageRequest, MessageServiceStub
"""

from chat_sdk._generated.chat.v1 import *  # noqa: F403
from chat_sdk._generated.chat.v1 import __all__ as __all__
