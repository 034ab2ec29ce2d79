"""Client spans and W3C ``traceparent`` propagation, when OpenTelemetry is installed (extra ``[otel]``)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from grpclib.const import Status
from grpclib.exceptions import GRPCError


def tracer_from(provider: Any | None) -> Any | None:
    """A tracer from ``provider`` (or the global one); None when ``opentelemetry-api`` is absent."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return (provider or trace.get_tracer_provider()).get_tracer("chat_sdk")


def start_client_span(tracer: Any, method: str, metadata: list[tuple[str, str]]) -> Any:
    """Start the client span of ``/pkg.Service/Method`` and add its ``traceparent`` to ``metadata``."""
    from opentelemetry import propagate, trace

    service, _, name = method.lstrip("/").partition("/")
    span = tracer.start_span(
        f"{service}/{name}",
        kind=trace.SpanKind.CLIENT,
        attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
    )
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    metadata.extend(carrier.items())
    return span


def end_client_span(span: Any, error: BaseException | None) -> None:
    """Record the call's status on ``span`` and end it."""
    from opentelemetry import trace

    if error is None:
        status = Status.OK
    elif isinstance(error, GRPCError):
        status = error.status
    else:
        status = Status.CANCELLED if isinstance(error, GeneratorExit) else Status.UNKNOWN
    span.set_attribute("rpc.grpc.status_code", status.value)
    if status is not Status.OK:
        span.set_status(trace.StatusCode.ERROR, status.name)
    span.end()


class TracedStream:
    """A grpclib client stream whose ``async with`` also ends its client span."""

    def __init__(self, stream: Any, span: Any) -> None:
        self._stream = stream
        self._span = span

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    async def __aenter__(self) -> Any:
        try:
            return await self._stream.__aenter__()
        except BaseException as error:
            end_client_span(self._span, error)
            raise

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> bool | None:
        try:
            result: bool | None = await self._stream.__aexit__(kind, error, traceback)
        except BaseException as raised:
            end_client_span(self._span, raised)
            raise
        end_client_span(self._span, error)
        return result
