"""AIService handlers: validate, run the provider, stream its pieces as chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from grpclib.server import Stream

from chat.v1 import ai_service_grpc, ai_service_pb2
from chat.v1.ai_service_pb2 import (
    CompleteRequest,
    CompleteResponse,
    StreamCompletionRequest,
    StreamCompletionResponse,
)
from chat_services.ai.provider import CompletionProvider, CompletionRequest, Finished, FinishReason, TextPiece
from chat_services.errors import InvalidArgument, echo, grpc_status
from chat_services.framing import one_request
from chat_services.lifecycle import Lifecycle
from chat_services.security.access import ConversationAccess, document_reader, require_scope
from chat_services.security.scopes import DOCUMENTS_READ, MESSAGES_READ

DEFAULT_MAX_TOKENS = 512
MAX_TOKENS_LIMIT = 8192

_FINISH_REASONS = {
    FinishReason.STOP: ai_service_pb2.FINISH_REASON_STOP,
    FinishReason.LENGTH: ai_service_pb2.FINISH_REASON_LENGTH,
    FinishReason.CANCELLED: ai_service_pb2.FINISH_REASON_CANCELLED,
}


class AiService(ai_service_grpc.AIServiceBase):
    """Completions from ``provider``; a draining server ends streams with FINISH_REASON_CANCELLED."""

    def __init__(
        self, provider: CompletionProvider, lifecycle: Lifecycle, access: ConversationAccess | None = None
    ) -> None:
        self.provider = provider
        self.lifecycle = lifecycle
        self.access = access  # None: no membership rules (the handler's own tests)

    async def StreamCompletion(
        self, stream: Stream[StreamCompletionRequest, StreamCompletionResponse]
    ) -> None:
        request = await one_request(stream)
        with grpc_status():
            completion = await self._admit(self._validate(request))
        await stream.send_initial_metadata()  # accepted: headers before the model's first piece
        index = 0
        async for item in self._generate(completion):
            if isinstance(item, TextPiece):
                chunk = ai_service_pb2.CompletionChunk(text=item.text, index=index)
                await stream.send_message(StreamCompletionResponse(chunk=chunk))
                index += 1
            else:
                await stream.send_message(StreamCompletionResponse(done=_done(item)))

    async def Complete(self, stream: Stream[CompleteRequest, CompleteResponse]) -> None:
        request = await one_request(stream)
        with grpc_status():
            completion = await self._admit(self._validate(request))
        text: list[str] = []
        async for item in self._generate(completion):
            if isinstance(item, TextPiece):
                text.append(item.text)
            else:
                done = _done(item)
                await stream.send_message(
                    CompleteResponse(
                        text="".join(text),
                        finish_reason=done.finish_reason,
                        usage=done.usage,
                        citations=done.citations,
                    )
                )

    def _generate(self, request: CompletionRequest) -> AsyncIterator[TextPiece | Finished]:
        return self.provider.stream(request, self.lifecycle.stopping)

    async def _admit(self, completion: CompletionRequest) -> CompletionRequest:
        """The data rules: a conversation's history and the documents retrieval may cite."""
        if completion.conversation_id:
            require_scope(MESSAGES_READ, field="conversation_id", why="reading the conversation's messages")
            if self.access is not None:
                await self.access.require_member(completion.conversation_id)
        if completion.use_retrieval:
            require_scope(DOCUMENTS_READ, field="use_retrieval", why="retrieving documents")
        return replace(completion, reader=document_reader())

    def _validate(self, request: StreamCompletionRequest | CompleteRequest) -> CompletionRequest:
        """What the schema's rules cannot say: a prompt of only whitespace, a model this server lacks."""
        if not request.prompt.strip():
            raise InvalidArgument("prompt is required", field="prompt")
        if request.model and request.model not in self.provider.models:
            known = ", ".join(self.provider.models)
            raise InvalidArgument(
                f"unknown model {echo(request.model)}; this server offers {known}", field="model"
            )
        return CompletionRequest(
            prompt=request.prompt,
            conversation_id=request.conversation_id,
            max_tokens=min(request.max_tokens or DEFAULT_MAX_TOKENS, MAX_TOKENS_LIMIT),
            model=request.model or self.provider.default_model,
            use_retrieval=request.use_retrieval,
        )


def _done(finished: Finished) -> ai_service_pb2.CompletionDone:
    return ai_service_pb2.CompletionDone(
        finish_reason=_FINISH_REASONS[finished.reason],
        usage=ai_service_pb2.Usage(
            prompt_tokens=finished.usage.prompt_tokens,
            completion_tokens=finished.usage.completion_tokens,
            total_tokens=finished.usage.total_tokens,
        ),
        citations=[
            ai_service_pb2.Citation(document_id=p.document_id, chunk_index=p.chunk_index, score=p.score)
            for p in finished.citations
        ],
    )
