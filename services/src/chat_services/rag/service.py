"""RAGService handlers: stream in a document, delete it, search passages."""

from __future__ import annotations

from grpclib.server import Stream

from chat.v1 import rag_service_grpc, rag_service_pb2
from chat.v1.rag_service_pb2 import (
    DeleteDocumentRequest,
    DeleteDocumentResponse,
    IngestDocumentRequest,
    IngestDocumentResponse,
    SearchDocumentsRequest,
    SearchDocumentsResponse,
)
from chat_services.errors import InvalidArgument, ResourceExhausted, grpc_status
from chat_services.framing import one_request
from chat_services.rag.store import DocumentInfo, DocumentStore, StoredDocument, Visibility
from chat_services.security.access import document_owner, document_reader
from chat_services.security.meter import charge
from chat_services.security.ratelimit import Work
from chat_services.timestamps import timestamp

DOCUMENT_MAX_BYTES = 16 * 1024 * 1024
# UNSPECIFIED reads as private; the schema refuses values it does not define.
_VISIBILITY_BY_WIRE = {
    rag_service_pb2.DOCUMENT_VISIBILITY_PRIVATE: Visibility.PRIVATE,
    rag_service_pb2.DOCUMENT_VISIBILITY_SHARED: Visibility.SHARED,
}
DEFAULT_TOP_K = 5
MAX_TOP_K = 100


class RagService(rag_service_grpc.RAGServiceBase):
    """Documents in ``store``; search is exact over every stored passage."""

    def __init__(self, store: DocumentStore, *, max_document_bytes: int = DOCUMENT_MAX_BYTES) -> None:
        self.store = store
        self.max_document_bytes = max_document_bytes

    async def IngestDocument(self, stream: Stream[IngestDocumentRequest, IngestDocumentResponse]) -> None:
        with grpc_status():
            info: DocumentInfo | None = None
            parts: list[str] = []
            size = 0
            async for request in stream:
                if info is None:
                    if not request.HasField("header"):
                        raise InvalidArgument(
                            "the first request must carry the document header", field="header"
                        )
                    info = _info(request.header)
                elif request.HasField("header"):
                    raise InvalidArgument("only the first request may carry a header", field="header")
                chunk_bytes = len(request.text.encode())
                await charge(Work.DOCUMENT_BYTES, chunk_bytes)
                size += chunk_bytes
                if size > self.max_document_bytes:
                    raise ResourceExhausted(
                        f"the document exceeds {self.max_document_bytes} bytes of text", field="text"
                    )
                parts.append(request.text)
            if info is None:
                raise InvalidArgument("no request was sent; send the header first", field="header")
            text = "".join(parts)
            if not text.strip():
                raise InvalidArgument("the document has no text to index", field="text")
            document = await self.store.ingest(info, text, replacer=document_reader())
        await stream.send_message(IngestDocumentResponse(document=_document(document)))

    async def DeleteDocument(self, stream: Stream[DeleteDocumentRequest, DeleteDocumentResponse]) -> None:
        request = await one_request(stream)
        with grpc_status():
            removed = await self.store.delete(request.document_id, owner=document_reader())
        await stream.send_message(DeleteDocumentResponse(deleted_chunk_count=removed))

    async def SearchDocuments(self, stream: Stream[SearchDocumentsRequest, SearchDocumentsResponse]) -> None:
        request = await one_request(stream)
        with grpc_status():
            top_k = min(request.top_k or DEFAULT_TOP_K, MAX_TOP_K)
            query = request.WhichOneof("query")
            if query == "text":
                if not request.text.strip():
                    raise InvalidArgument("text must not be empty", field="text")
                vector = await self.store.embed_query(request.text)
                if not any(vector):
                    raise InvalidArgument("text has no words to search for", field="text")
            else:  # the schema requires one of text and vector
                vector = list(request.vector.values)
            passages = await self.store.search(
                vector, top_k, request.min_score, request.document_ids, reader=document_reader()
            )
        await stream.send_message(
            SearchDocumentsResponse(
                passages=[
                    rag_service_pb2.ScoredPassage(
                        document_id=p.document_id, chunk_index=p.chunk_index, text=p.text, score=p.score
                    )
                    for p in passages
                ]
            )
        )


def _info(header: rag_service_pb2.DocumentHeader) -> DocumentInfo:
    return DocumentInfo(
        document_id=header.document_id,
        title=header.title,
        source_uri=header.source_uri,
        media_type=header.media_type,
        metadata=dict(header.metadata),
        visibility=_VISIBILITY_BY_WIRE.get(header.visibility, Visibility.PRIVATE),
        owner_id=document_owner(),
    )


def _document(document: StoredDocument) -> rag_service_pb2.Document:
    info = document.info
    return rag_service_pb2.Document(
        document_id=info.document_id,
        title=info.title,
        source_uri=info.source_uri,
        media_type=info.media_type,
        metadata=dict(info.metadata),
        chunk_count=document.chunk_count,
        size_bytes=document.size_bytes,
        created_at=timestamp(document.created_at_ns),
        owner_id=info.owner_id,
        visibility=rag_service_pb2.DocumentVisibility.Value(f"DOCUMENT_VISIBILITY_{info.visibility.name}"),
    )
