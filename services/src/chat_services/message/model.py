"""The message domain: what is stored, independent of the wire types."""

from __future__ import annotations

from dataclasses import dataclass, field

from chat_services.errors import InvalidArgument
from chat_services.validation import required_id

IDEMPOTENCY_KEY_MAX_CHARS = 128
CONTENT_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Attachment:
    """A file attached to a message, as the client described it."""

    file_id: str
    name: str = ""
    media_type: str = ""
    size_bytes: int = 0
    url: str = ""
    sha256: str = ""


def check_content_size(content: str, field: str) -> None:
    """Refuse content over the 64 KiB limit (counted in UTF-8 bytes)."""
    size = len(content.encode())
    if size > CONTENT_MAX_BYTES:
        raise InvalidArgument(f"content is {size} bytes; the limit is {CONTENT_MAX_BYTES}", field=field)


@dataclass(frozen=True)
class Draft:
    """A message a client asks to store, already validated."""

    idempotency_key: str
    conversation_id: str
    author_id: str
    content: str
    files: tuple[Attachment, ...] = ()

    def __post_init__(self) -> None:
        if not self.idempotency_key:
            raise InvalidArgument("idempotency_key is required", field="message.idempotency_key")
        if len(self.idempotency_key) > IDEMPOTENCY_KEY_MAX_CHARS:
            raise InvalidArgument(
                f"idempotency_key is {len(self.idempotency_key)} characters;"
                f" the limit is {IDEMPOTENCY_KEY_MAX_CHARS}",
                field="message.idempotency_key",
            )
        required_id(self.conversation_id, "message.conversation_id")
        required_id(self.author_id, "message.author_id")
        check_content_size(self.content, "message.content")
        if not self.content and not self.files:
            raise InvalidArgument("a message needs content or at least one file", field="message.content")
        for index, attachment in enumerate(self.files):
            required_id(attachment.file_id, f"message.files[{index}].file_id")
            if attachment.size_bytes < 0:
                raise InvalidArgument(
                    "size_bytes must not be negative", field=f"message.files[{index}].size_bytes"
                )


@dataclass(frozen=True)
class StoredMessage:
    """A message as stored: the draft plus what the server assigned."""

    id: str
    conversation_id: str
    sequence: int
    author_id: str
    content: str
    idempotency_key: str
    created_at_ns: int
    files: tuple[Attachment, ...] = field(default=())
    edited_at_ns: int | None = None

    def matches(self, draft: Draft) -> bool:
        """Whether ``draft`` is a retry of this message (same key, same payload).

        Once the message was edited its content differs from the draft's, so only
        the conversation, author and files are compared then.
        """
        return (
            draft.conversation_id == self.conversation_id
            and draft.author_id == self.author_id
            and (self.edited_at_ns is not None or draft.content == self.content)
            and draft.files == self.files
        )


@dataclass(frozen=True)
class Profile:
    """A user's public profile; users without a stored profile show their ID as name."""

    user_id: str
    display_name: str
    avatar_url: str = ""
