"""Adapting the message store to what the AI provider reads: a conversation's recent turns."""

from __future__ import annotations

from chat_services.ai.provider import ConversationTurn
from chat_services.message.store import MessageStore


class StoredConversations:
    """The AI provider's ``ConversationSource``, over the stored messages."""

    def __init__(self, store: MessageStore) -> None:
        self.store = store

    async def recent_messages(self, conversation_id: str, limit: int) -> list[ConversationTurn]:
        """The last ``limit`` messages of the conversation, oldest first; empty if it has none."""
        messages = await self.store.recent(conversation_id, limit)
        return [ConversationTurn(author_id=m.author_id, content=m.content) for m in messages]
