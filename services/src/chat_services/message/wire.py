"""Between the message domain and the `_pb2` wire types."""

from __future__ import annotations

from collections.abc import Mapping

from chat.v1 import common_pb2, message_service_pb2
from chat_services.message.hub import Presence, PresenceChange, Typing
from chat_services.message.model import Attachment, Draft, Profile, StoredMessage
from chat_services.timestamps import timestamp


def draft(new: message_service_pb2.NewMessage) -> Draft:
    """The validated draft of a ``NewMessage``; INVALID_ARGUMENT names the field at fault."""
    return Draft(
        idempotency_key=new.idempotency_key,
        conversation_id=new.conversation_id,
        author_id=new.author_id,
        content=new.content,
        files=tuple(
            Attachment(f.file_id, f.name, f.media_type, f.size_bytes, f.url, f.sha256) for f in new.files
        ),
    )


def message(
    stored: StoredMessage, *, profiles: Mapping[str, Profile] | None = None, include_files: bool = False
) -> message_service_pb2.Message:
    """The wire ``Message``; ``author`` only when ``profiles`` is given, files only when asked."""
    wire = message_service_pb2.Message(
        id=stored.id,
        conversation_id=stored.conversation_id,
        content=stored.content,
        created_at=timestamp(stored.created_at_ns),
        author_id=stored.author_id,
        sequence=stored.sequence,
        idempotency_key=stored.idempotency_key,
    )
    if stored.edited_at_ns is not None:
        wire.edited_at.CopyFrom(timestamp(stored.edited_at_ns))
    if profiles is not None:
        profile = profiles[stored.author_id]
        wire.author.CopyFrom(
            common_pb2.User(
                user_id=profile.user_id, display_name=profile.display_name, avatar_url=profile.avatar_url
            )
        )
    if include_files:
        wire.files.extend(
            common_pb2.File(
                file_id=f.file_id,
                name=f.name,
                media_type=f.media_type,
                size_bytes=f.size_bytes,
                url=f.url,
                sha256=f.sha256,
            )
            for f in stored.files
        )
    return wire


def chat_event(event: StoredMessage | Typing | PresenceChange) -> message_service_pb2.ChatStreamResponse:
    """The ChatStream event for a hub event."""
    if isinstance(event, StoredMessage):
        return message_service_pb2.ChatStreamResponse(message=message(event))
    if isinstance(event, Typing):
        return message_service_pb2.ChatStreamResponse(
            typing=message_service_pb2.ChatTyping(
                conversation_id=event.conversation_id, user_id=event.user_id, typing=event.typing
            )
        )
    state = (
        message_service_pb2.PRESENCE_STATE_JOINED
        if event.state is Presence.JOINED
        else message_service_pb2.PRESENCE_STATE_LEFT
    )
    return message_service_pb2.ChatStreamResponse(
        presence=message_service_pb2.ChatPresence(
            conversation_id=event.conversation_id, user_id=event.user_id, state=state
        )
    )
