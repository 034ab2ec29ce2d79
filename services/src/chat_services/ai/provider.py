"""What a completion provider is: the seam where a real model plugs in.

A provider turns a :class:`CompletionRequest` into an async stream of
:class:`TextPiece` items ending with one :class:`Finished`. The service handles
validation, wire types, deadlines and cancellation: when the client goes away the
provider's generator is closed at its next ``await``, so a provider should await
between pieces (a network read or ``asyncio.sleep(0)``) and release its resources
in ``finally``. When the server drains, ``stop`` is set: finish the answer early
with ``FinishReason.CANCELLED`` and the usage so far.

To use a hosted model, write a class with ``models``, ``default_model`` and
``stream`` that calls the model's streaming API, map its token counts into
:class:`Usage`, and pass it to ``AiService`` in ``chat_services.server.build_app``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol


class FinishReason(Enum):
    """Why generation stopped."""

    STOP = 1
    LENGTH = 2
    CANCELLED = 3


@dataclass(frozen=True)
class ConversationTurn:
    """One earlier message of the conversation, as context."""

    author_id: str
    content: str


@dataclass(frozen=True)
class Passage:
    """A retrieved document passage and its similarity to the query (cosine, -1 to 1)."""

    document_id: str
    chunk_index: int
    text: str
    score: float


@dataclass(frozen=True)
class Usage:
    """Tokens read and generated."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class CompletionRequest:
    """A validated request: ``max_tokens`` and ``model`` already resolved to real values."""

    prompt: str
    conversation_id: str
    max_tokens: int
    model: str
    use_retrieval: bool
    reader: str | None = None  # whose private documents retrieval may cite; None: every document


@dataclass(frozen=True)
class TextPiece:
    """The next piece of generated text (never splits a character)."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The end of a completion."""

    reason: FinishReason
    usage: Usage
    citations: Sequence[Passage] = field(default=())


class ConversationSource(Protocol):
    """Where a provider reads a conversation's recent messages."""

    async def recent_messages(self, conversation_id: str, limit: int) -> list[ConversationTurn]: ...


class PassageSource(Protocol):
    """Where a provider retrieves passages relevant to a text."""

    async def search_text(
        self, text: str, top_k: int, min_score: float, *, reader: str | None = None
    ) -> list[Passage]: ...


class CompletionProvider(Protocol):
    """A language model behind AIService."""

    models: Sequence[str]
    default_model: str

    def stream(self, request: CompletionRequest, stop: asyncio.Event) -> AsyncIterator[TextPiece | Finished]:
        """Generate; once ``stop`` is set, end soon with ``Finished(FinishReason.CANCELLED, ...)``."""
        ...
