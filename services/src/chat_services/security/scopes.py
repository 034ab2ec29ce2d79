"""The authorization table: for each method, the scopes it needs and the data rule that applies.

Deny by default: a method missing here is refused to everyone. The scopes are checked
by the guard before the handler runs; the data rules are decided by
:mod:`chat_services.security.access` where the handler knows which data a call touches.
An admin scope lifts a data rule, and only for a service account (never for a user's JWT).
``python -m chat_services.security.scopes`` prints this table as Markdown (the README's).
"""

from __future__ import annotations

from dataclasses import dataclass

MESSAGES_READ = "messages:read"
MESSAGES_WRITE = "messages:write"
MESSAGES_ADMIN = "messages:admin"
AI_COMPLETE = "ai:complete"
DOCUMENTS_READ = "documents:read"
DOCUMENTS_WRITE = "documents:write"
DOCUMENTS_ADMIN = "documents:admin"
PLUGINS_READ = "plugins:read"
PLUGINS_INVOKE = "plugins:invoke"
PLUGINS_ADMIN = "plugins:admin"

_MESSAGE = "/chat.v1.MessageService/"
_CONVERSATION = "/chat.v1.ConversationService/"
_AI = "/chat.v1.AIService/"
_RAG = "/chat.v1.RAGService/"
_PLUGIN = "/chat.v1.PluginService/"

_MEMBER = "caller is a member of the conversation"
_HIDDEN = "; others get NOT_FOUND, as for a conversation that does not exist"


@dataclass(frozen=True)
class MethodPolicy:
    """Who may call a method: every scope in ``scopes``, then ``data_rule`` on what it touches."""

    scopes: frozenset[str]
    data_rule: str
    admin_scope: str | None = None  # the scope that lifts ``data_rule`` for a service account


def _policy(scopes: set[str], data_rule: str, admin_scope: str | None = None) -> MethodPolicy:
    return MethodPolicy(frozenset(scopes), data_rule, admin_scope)


METHOD_POLICY: dict[str, MethodPolicy] = {
    _MESSAGE + "GetMessage": _policy({MESSAGES_READ}, _MEMBER + _HIDDEN, MESSAGES_ADMIN),
    _MESSAGE + "ListMessages": _policy({MESSAGES_READ}, _MEMBER + _HIDDEN, MESSAGES_ADMIN),
    _MESSAGE + "StreamMessages": _policy({MESSAGES_READ}, _MEMBER + _HIDDEN, MESSAGES_ADMIN),
    _MESSAGE + "SendMessages": _policy(
        {MESSAGES_WRITE},
        "author is the caller (or a service with messages:impersonate) and a member;"
        " a conversation nobody made yet is made, owned by the author" + _HIDDEN,
        MESSAGES_ADMIN,
    ),
    _MESSAGE + "EditMessage": _policy(
        {MESSAGES_WRITE}, "editor is the message's author and a member" + _HIDDEN, MESSAGES_ADMIN
    ),
    _MESSAGE + "ChatStream": _policy(
        {MESSAGES_READ, MESSAGES_WRITE},
        "join, send and typing as the caller, a member (joining a conversation nobody made yet"
        " makes it); at most 100 conversations joined per stream" + _HIDDEN,
        MESSAGES_ADMIN,
    ),
    _CONVERSATION + "CreateConversation": _policy({MESSAGES_WRITE}, "a user: the caller becomes the owner"),
    _CONVERSATION + "AddMember": _policy({MESSAGES_WRITE}, _MEMBER + _HIDDEN, MESSAGES_ADMIN),
    _CONVERSATION + "RemoveMember": _policy(
        {MESSAGES_WRITE},
        "the owner removes anyone but themselves; members remove themselves" + _HIDDEN,
        MESSAGES_ADMIN,
    ),
    _CONVERSATION + "ListMembers": _policy({MESSAGES_READ}, _MEMBER + _HIDDEN, MESSAGES_ADMIN),
    _AI + "Complete": _policy(
        {AI_COMPLETE},
        "with conversation_id also messages:read and membership; with use_retrieval also"
        " documents:read, and only documents the caller may read are cited",
        MESSAGES_ADMIN,
    ),
    _AI + "StreamCompletion": _policy(
        {AI_COMPLETE},
        "with conversation_id also messages:read and membership; with use_retrieval also"
        " documents:read, and only documents the caller may read are cited",
        MESSAGES_ADMIN,
    ),
    _RAG + "IngestDocument": _policy(
        {DOCUMENTS_WRITE},
        "the caller owns the new document; a document_id another caller owns is PERMISSION_DENIED",
        DOCUMENTS_ADMIN,
    ),
    _RAG + "DeleteDocument": _policy(
        {DOCUMENTS_WRITE},
        "only the owner; a private document of another owner is NOT_FOUND, a shared one PERMISSION_DENIED",
        DOCUMENTS_ADMIN,
    ),
    _RAG + "SearchDocuments": _policy(
        {DOCUMENTS_READ}, "only the caller's own documents and shared ones are searched", DOCUMENTS_ADMIN
    ),
    _PLUGIN + "ListPlugins": _policy({PLUGINS_READ}, "none: the installed plugins are public"),
    _PLUGIN + "StreamPluginEvents": _policy(
        {PLUGINS_READ}, "only events of the caller's own invocations", PLUGINS_ADMIN
    ),
    _PLUGIN + "InvokePlugin": _policy({PLUGINS_INVOKE}, "none: every caller with the scope may invoke"),
}

# Every scope listed for a method is required. A method missing here is refused to everyone.
METHOD_SCOPES: dict[str, frozenset[str]] = {method: policy.scopes for method, policy in METHOD_POLICY.items()}

# Methods anyone may call without credentials: health checks and reflection, by prefix.
DEFAULT_OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


def missing_scopes(method: str, granted: frozenset[str]) -> frozenset[str] | None:
    """The scopes ``method`` needs beyond ``granted``; None when the method is not in the table."""
    needed = METHOD_SCOPES.get(method)
    if needed is None:
        return None
    return needed - granted


def policy_rows() -> list[dict[str, str]]:
    """The table's rows: method, scopes, data rule and admin scope, as plain strings."""
    return [
        {
            "method": method.strip("/"),
            "scopes": " ".join(sorted(policy.scopes)),
            "data_rule": policy.data_rule,
            "admin_scope": policy.admin_scope or "",
        }
        for method, policy in METHOD_POLICY.items()
    ]


def policy_table() -> str:
    """The table as Markdown: method, scopes, data rule, admin scope (the README's)."""
    lines = [
        "| method | scopes | data rule | admin scope (service accounts only) |",
        "| --- | --- | --- | --- |",
    ]
    for row in policy_rows():
        scopes = ", ".join(f"`{scope}`" for scope in row["scopes"].split())
        admin = f"`{row['admin_scope']}`" if row["admin_scope"] else "—"
        lines.append(f"| `{row['method']}` | {scopes} | {row['data_rule']} | {admin} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    # `--json` writes docs/authorization.json, which the docs site renders.
    print(json.dumps(policy_rows(), indent=2) if "--json" in sys.argv[1:] else policy_table())
