"""chat-gateway: the external edge of the chat platform, generated from the chat.v1 schema.

``app_factory(UpstreamAddress("127.0.0.1", 50051))`` returns the ASGI application
(REST/JSON, SSE, WebSocket, GraphQL, OpenAPI and the chat page) in front of running
chat-services; ``chat-gateway serve`` runs it with uvicorn.
"""

from chat_gateway.app import app_factory
from chat_gateway.config import GatewayConfig, UpstreamAddress, UpstreamPool, UpstreamTls

__all__ = ["GatewayConfig", "UpstreamAddress", "UpstreamPool", "UpstreamTls", "app_factory"]
