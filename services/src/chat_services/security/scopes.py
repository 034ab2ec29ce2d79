"""Which scopes each method needs: one declarative table, deny by default."""

from __future__ import annotations

MESSAGES_READ = "messages:read"
MESSAGES_WRITE = "messages:write"
AI_COMPLETE = "ai:complete"
DOCUMENTS_READ = "documents:read"
DOCUMENTS_WRITE = "documents:write"
PLUGINS_READ = "plugins:read"
PLUGINS_INVOKE = "plugins:invoke"

_MESSAGE = "/chat.v1.MessageService/"
_AI = "/chat.v1.AIService/"
_RAG = "/chat.v1.RAGService/"
_PLUGIN = "/chat.v1.PluginService/"

# Every scope listed for a method is required. A method missing here is refused to everyone.
METHOD_SCOPES: dict[str, frozenset[str]] = {
    _MESSAGE + "GetMessage": frozenset({MESSAGES_READ}),
    _MESSAGE + "ListMessages": frozenset({MESSAGES_READ}),
    _MESSAGE + "StreamMessages": frozenset({MESSAGES_READ}),
    _MESSAGE + "SendMessages": frozenset({MESSAGES_WRITE}),
    _MESSAGE + "EditMessage": frozenset({MESSAGES_WRITE}),
    _MESSAGE + "ChatStream": frozenset({MESSAGES_READ, MESSAGES_WRITE}),
    _AI + "Complete": frozenset({AI_COMPLETE}),
    _AI + "StreamCompletion": frozenset({AI_COMPLETE}),
    _RAG + "IngestDocument": frozenset({DOCUMENTS_WRITE}),
    _RAG + "DeleteDocument": frozenset({DOCUMENTS_WRITE}),
    _RAG + "SearchDocuments": frozenset({DOCUMENTS_READ}),
    _PLUGIN + "ListPlugins": frozenset({PLUGINS_READ}),
    _PLUGIN + "StreamPluginEvents": frozenset({PLUGINS_READ}),
    _PLUGIN + "InvokePlugin": frozenset({PLUGINS_INVOKE}),
}

# Methods anyone may call without credentials: health checks and reflection, by prefix.
DEFAULT_OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


def missing_scopes(method: str, granted: frozenset[str]) -> frozenset[str] | None:
    """The scopes ``method`` needs beyond ``granted``; None when the method is not in the table."""
    needed = METHOD_SCOPES.get(method)
    if needed is None:
        return None
    return needed - granted
