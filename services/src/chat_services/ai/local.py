"""The default provider: a deterministic, retrieval-grounded answer, with no network and no model.

It answers from what it can read: the passages retrieval finds for the prompt
(cited, best first) and the conversation's recent messages. Tokens are words and
punctuation marks; the same inputs always give the same answer and usage.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence

from chat_services.ai.provider import (
    CompletionRequest,
    ConversationSource,
    ConversationTurn,
    Finished,
    FinishReason,
    Passage,
    PassageSource,
    TextPiece,
    Usage,
)

MODEL = "local-grounded-1"
TOKEN = re.compile(r"\w+|[^\w\s]")
PIECE = re.compile(r"\s*(?:\w+|[^\w\s])")
CONTEXT_MESSAGES = 20
RETRIEVED_PASSAGES = 3
TOKENS_PER_CHUNK = 4


def count_tokens(text: str) -> int:
    """Words and punctuation marks in ``text``."""
    return len(TOKEN.findall(text))


class LocalGroundedProvider:
    """Builds an answer from retrieved passages and conversation context, streamed in chunks."""

    models: Sequence[str] = (MODEL,)
    default_model = MODEL

    def __init__(
        self,
        *,
        conversations: ConversationSource,
        passages: PassageSource,
        chunk_delay: float = 0.0,
    ) -> None:
        self.conversations = conversations
        self.passages = passages
        self.chunk_delay = chunk_delay
        self.pieces_generated = 0  # across all requests; lets tests see generation stop

    async def stream(
        self, request: CompletionRequest, stop: asyncio.Event
    ) -> AsyncIterator[TextPiece | Finished]:
        turns = (
            await self.conversations.recent_messages(request.conversation_id, CONTEXT_MESSAGES)
            if request.conversation_id
            else []
        )
        found = (
            await self.passages.search_text(request.prompt, RETRIEVED_PASSAGES, 0.0, reader=request.reader)
            if request.use_retrieval
            else []
        )
        answer = compose_answer(request.prompt, turns, found)
        prompt_tokens = (
            count_tokens(request.prompt)
            + sum(count_tokens(t.content) for t in turns)
            + sum(count_tokens(p.text) for p in found)
        )
        pieces = PIECE.findall(answer)
        generated = pieces[: request.max_tokens]
        sent = 0
        while sent < len(generated):
            if await _stopped(stop, self.chunk_delay):
                yield Finished(FinishReason.CANCELLED, Usage(prompt_tokens, sent), citations=found)
                return
            chunk = generated[sent : sent + TOKENS_PER_CHUNK]
            sent += len(chunk)
            self.pieces_generated += len(chunk)
            yield TextPiece("".join(chunk))
        reason = FinishReason.LENGTH if len(generated) < len(pieces) else FinishReason.STOP
        yield Finished(reason, Usage(prompt_tokens, sent), citations=found)


async def _stopped(stop: asyncio.Event, delay: float) -> bool:
    """Pause ``delay`` seconds between chunks; True as soon as ``stop`` is set.

    No delay is one turn of the event loop: other calls (and a drain setting ``stop``) still
    run between chunks, without the task and cancellation ``wait_for`` makes per chunk.
    """
    if stop.is_set():
        return True
    if delay <= 0:
        await asyncio.sleep(0)
        return stop.is_set()
    try:
        await asyncio.wait_for(stop.wait(), delay)
    except TimeoutError:
        return False
    return True


def compose_answer(prompt: str, turns: Sequence[ConversationTurn], passages: Sequence[Passage]) -> str:
    """The answer text: what the sources say about the prompt, with numbered citations."""
    question = " ".join(prompt.split())
    parts = [f'About "{question}":']
    if passages:
        for number, passage in enumerate(passages, start=1):
            parts.append(f"{_first_sentence(passage.text)} [{number}]")
    else:
        parts.append("no stored document covers this, so the answer rests on the conversation alone.")
    if turns:
        last = turns[-1]
        parts.append(
            f"The conversation has {len(turns)} recent message{'s' if len(turns) != 1 else ''};"
            f' the latest, from {last.author_id}, says: "{_first_sentence(last.content)}"'
        )
    return " ".join(parts)


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    match = re.match(r"(.+?[.!?])(\s|$)", flat)
    sentence = match.group(1) if match else flat
    return sentence if len(sentence) <= 300 else sentence[:297] + "..."
