"""Calls every RPC kind of a chat server with whatever chat-sdk version is installed.

Run as a script in a release's own virtual environment (``python client.py PORT
[--all]``) or imported by the suite with the current SDK. Prints one JSON object:
which calls ran and the SDK version; exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpclib.client

import chat_sdk
from chat_sdk import v1

TIMEOUT = 20.0


async def message_calls(channel: grpclib.client.Channel) -> list[str]:
    """Unary, server-streaming, client-streaming and bidirectional calls of MessageService."""
    stub = v1.MessageServiceStub(channel, timeout=TIMEOUT)
    conversation = f"compat-{uuid.uuid4().hex[:8]}"
    new = [
        v1.NewMessage(
            idempotency_key=f"{conversation}-{i}",
            conversation_id=conversation,
            author_id="u-1",
            content=f"m{i}",
        )
        for i in range(3)
    ]
    sent = await stub.send_messages([v1.SendMessagesRequest(message=m) for m in new])
    assert [m.content for m in sent.messages] == ["m0", "m1", "m2"], sent
    again = await stub.send_messages([v1.SendMessagesRequest(message=new[0])])
    assert again.messages[0].id == sent.messages[0].id, "a retried key must not store twice"

    got = await stub.get_message(v1.GetMessageRequest(message_id=sent.messages[1].id))
    assert got.message is not None and got.message.content == "m1", got

    replay = [
        r.message.content if r.message else None
        async for r in stub.stream_messages(v1.StreamMessagesRequest(conversation_id=conversation))
    ]
    assert replay == ["m0", "m1", "m2"], replay

    outgoing: asyncio.Queue[v1.ChatStreamRequest | None] = asyncio.Queue()

    async def requests() -> AsyncIterator[v1.ChatStreamRequest]:
        while (item := await outgoing.get()) is not None:
            yield item

    await outgoing.put(v1.ChatStreamRequest(join=v1.ChatJoin(conversation_id=conversation, user_id="u-1")))
    await outgoing.put(
        v1.ChatStreamRequest(
            send=v1.NewMessage(
                idempotency_key=f"{conversation}-live",
                conversation_id=conversation,
                author_id="u-1",
                content="live",
            )
        )
    )
    live = None
    async for event in stub.chat_stream(requests()):
        if event.message is not None:
            live = event.message.content
            await outgoing.put(None)
            break
    assert live == "live", live
    return ["unary", "server-streaming", "client-streaming", "bidirectional"]


async def other_calls(channel: grpclib.client.Channel) -> list[str]:
    """A call of each kind on the RAG, AI and plugin services."""
    rag = v1.RagServiceStub(channel, timeout=TIMEOUT)
    doc = f"doc-{uuid.uuid4().hex[:8]}"
    ingested = await rag.ingest_document(
        [
            v1.IngestDocumentRequest(
                header=v1.DocumentHeader(document_id=doc, title="Backoff"), text="Retries back off. "
            ),
            v1.IngestDocumentRequest(text="Deadlines bound every call."),
        ]
    )
    assert ingested.document is not None and ingested.document.document_id == doc
    found = await rag.search_documents(v1.SearchDocumentsRequest(text="retries back off", document_ids=[doc]))
    assert found.passages and found.passages[0].document_id == doc

    ai = v1.AiServiceStub(channel, timeout=TIMEOUT)
    events = [
        e async for e in ai.stream_completion(v1.StreamCompletionRequest(conversation_id="c", prompt="hello"))
    ]
    assert events and events[-1].done is not None

    plugins = v1.PluginServiceStub(channel, timeout=TIMEOUT)
    listed = await plugins.list_plugins(v1.ListPluginsRequest())
    assert any(p.name == "word_count" for p in listed.plugins)
    counted = await plugins.invoke_plugin(
        v1.InvokePluginRequest(plugin_name="word_count", arguments={"text": "a b c"})
    )
    assert "3" in counted.output
    await rag.delete_document(v1.DeleteDocumentRequest(document_id=doc))
    return ["rag", "ai", "plugin"]


async def edit_call(channel: grpclib.client.Channel) -> str:
    """EditMessage (added in 1.1.0): the author edits, and the edit is stamped."""
    stub = v1.MessageServiceStub(channel, timeout=TIMEOUT)
    key = f"edit-{uuid.uuid4().hex[:8]}"
    new = v1.NewMessage(idempotency_key=key, conversation_id=key, author_id="u-1", content="draft")
    sent = await stub.send_messages([v1.SendMessagesRequest(message=new)])
    edited = await stub.edit_message(
        v1.EditMessageRequest(message_id=sent.messages[0].id, editor_id="u-1", content="final")
    )
    assert edited.message is not None and edited.message.content == "final", edited
    assert edited.message.edited_at is not None, "an edited message carries edited_at"
    return "edit"


def has_edits() -> bool:
    """Whether the installed SDK has EditMessage (1.1.0 and later)."""
    return hasattr(v1, "EditMessageRequest")


async def run(port: int, everything: bool, *, edit: bool = False) -> dict[str, Any]:
    """Make the calls against 127.0.0.1:``port``: MessageService's, every service's, EditMessage."""
    async with grpclib.client.Channel("127.0.0.1", port) as channel:
        calls = await message_calls(channel)
        if everything:
            calls += await other_calls(channel)
        if edit:
            calls.append(await edit_call(channel))
    return {"sdk_version": chat_sdk.__version__, "calls": calls}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--all", action="store_true", help="call every service and every RPC this SDK knows")
    args = parser.parse_args()
    result = asyncio.run(run(args.port, args.all, edit=args.all and has_edits()))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
