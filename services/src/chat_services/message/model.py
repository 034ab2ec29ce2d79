"""The message domain: what is stored, independent of the wire types."""

from __future__ import annotations

from dataclasses import dataclass, field

from chat_services.errors import InvalidArgument


@dataclass(frozen=True)
class Attachment:
    """A file attached to a message, as the client described it."""

    file_id: str
    name: str = ""
    media_type: str = ""
    size_bytes: int = 0
    url: str = ""
    sha256: str = ""


@dataclass(frozen=True)
class Draft:
    """A message a client asks to store.

    Field limits (lengths, counts, required IDs) are the schema's buf.validate rules,
    enforced at the boundary; only the rule across fields is checked here.
    """

    idempotency_key: str
    conversation_id: str
    author_id: str
    content: str
    files: tuple[Attachment, ...] = ()

    def __post_init__(self) -> None:
        if not self.content and not self.files:
            raise InvalidArgument("a message needs content or at least one file", field="message.content")


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
