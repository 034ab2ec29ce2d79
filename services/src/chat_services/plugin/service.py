"""PluginService handlers: list, invoke with a timeout in a worker, stream invocation events."""

from __future__ import annotations

import time
import uuid

from google.protobuf.duration_pb2 import Duration
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from grpclib.server import Stream

from chat.v1 import plugin_service_grpc, plugin_service_pb2
from chat.v1.plugin_service_pb2 import (
    InvokePluginRequest,
    InvokePluginResponse,
    ListPluginsRequest,
    ListPluginsResponse,
    StreamPluginEventsRequest,
    StreamPluginEventsResponse,
)
from chat_services.errors import InvalidArgument, NotFound, echo, grpc_status
from chat_services.framing import one_request
from chat_services.lifecycle import Lifecycle
from chat_services.pagination import decode_token, encode_token, page_size
from chat_services.plugin.events import EventType, PluginEvent, PluginEventHub, Subscription
from chat_services.plugin.registry import InstalledPlugin, PluginRegistry
from chat_services.plugin.runner import PluginRunner
from chat_services.security.access import caller_principal, event_audience
from chat_services.timestamps import timestamp

_EVENT_TYPES = {
    EventType.STARTED: plugin_service_pb2.PLUGIN_EVENT_TYPE_INVOCATION_STARTED,
    EventType.SUCCEEDED: plugin_service_pb2.PLUGIN_EVENT_TYPE_INVOCATION_SUCCEEDED,
    EventType.FAILED: plugin_service_pb2.PLUGIN_EVENT_TYPE_INVOCATION_FAILED,
}
_EVENT_TYPES_BY_WIRE = {wire: domain for domain, wire in _EVENT_TYPES.items()}


class PluginService(plugin_service_grpc.PluginServiceBase):
    """Plugins from ``registry``, run by ``runner``; every invocation is published on ``events``."""

    def __init__(
        self,
        registry: PluginRegistry,
        runner: PluginRunner,
        events: PluginEventHub,
        lifecycle: Lifecycle,
        *,
        default_timeout: float = 10.0,
        max_timeout: float = 60.0,
    ) -> None:
        self.registry = registry
        self.runner = runner
        self.events = events
        self.lifecycle = lifecycle
        self.default_timeout = default_timeout
        self.max_timeout = max_timeout

    async def ListPlugins(self, stream: Stream[ListPluginsRequest, ListPluginsResponse]) -> None:
        request = await one_request(stream)
        with grpc_status():
            size = page_size(request.page.page_size)
            after = ""
            if request.page.page_token:
                after = str(decode_token(request.page.page_token, scope={"list": "plugins"}).get("after", ""))
        names = [name for name in self.registry.names() if name > after]
        installed = [plugin for name in names[:size] if (plugin := self.registry.get(name)) is not None]
        response = ListPluginsResponse(plugins=[_plugin(plugin) for plugin in installed])
        response.page.SetInParent()  # always present, so clients need not check for None
        if len(names) > size:
            response.page.next_page_token = encode_token({"list": "plugins", "after": names[size - 1]})
        await stream.send_message(response)

    async def InvokePlugin(self, stream: Stream[InvokePluginRequest, InvokePluginResponse]) -> None:
        request = await one_request(stream)
        with grpc_status():
            plugin = self._plugin(request)
            timeout = self._timeout(request)
            if stream.deadline is not None:
                timeout = min(timeout, max(stream.deadline.time_remaining(), 0.0))
        invocation_id = uuid.uuid4().hex
        self._publish(plugin, invocation_id, EventType.STARTED)
        started = time.monotonic()
        try:
            with grpc_status():
                result = await self.runner.run(plugin.spec.name, plugin.target, request.arguments, timeout)
        except GRPCError as error:
            self._publish(plugin, invocation_id, EventType.FAILED, error.message or "")
            raise
        except BaseException:
            self._publish(plugin, invocation_id, EventType.FAILED, "the invocation was cancelled")
            raise
        elapsed = Duration()
        elapsed.FromNanoseconds(int((time.monotonic() - started) * 1e9))
        self._publish(
            plugin,
            invocation_id,
            EventType.SUCCEEDED,
            attributes={"elapsed_ms": str(elapsed.ToMilliseconds())},
        )
        await stream.send_message(
            InvokePluginResponse(
                invocation_id=invocation_id, output=result.output, data=result.data, elapsed=elapsed
            )
        )

    async def StreamPluginEvents(
        self, stream: Stream[StreamPluginEventsRequest, StreamPluginEventsResponse]
    ) -> None:
        request = await one_request(stream)
        with grpc_status():
            types = set()
            for index, wire_type in enumerate(request.types):
                # The schema says defined_only, which protovalidate 1.1.2 skips for repeated items.
                if wire_type not in _EVENT_TYPES_BY_WIRE:
                    raise InvalidArgument(
                        f"event type {wire_type} is not a known type", field=f"types[{index}]"
                    )
                types.add(_EVENT_TYPES_BY_WIRE[wire_type])
        subscription = Subscription(set(request.plugin_names), types, audience=event_audience())
        self.events.subscribe(subscription)
        try:
            # Headers now, so the client knows it is subscribed before the first event.
            await stream.send_initial_metadata()
            while True:
                event = await self.lifecycle.until_stopping(subscription.listener.next())
                if event is None:
                    if self.lifecycle.draining:
                        raise GRPCError(
                            Status.UNAVAILABLE, "the server is shutting down; subscribe again elsewhere"
                        )
                    raise GRPCError(
                        Status.RESOURCE_EXHAUSTED, "this subscriber fell too far behind; subscribe again"
                    )
                await stream.send_message(StreamPluginEventsResponse(event=_event(event)))
        finally:
            self.events.unsubscribe(subscription)

    def _plugin(self, request: InvokePluginRequest) -> InstalledPlugin:
        name = request.plugin_name
        plugin = self.registry.get(name)
        if plugin is None:
            raise NotFound(
                f"no plugin is named {echo(name)}; ListPlugins shows the installed ones", field="plugin_name"
            )
        for key in request.arguments:
            if key not in plugin.spec.argument_names:
                accepted = ", ".join(plugin.spec.argument_names) or "none"
                raise InvalidArgument(
                    f"plugin {name!r} takes no argument {echo(key)} (it takes: {accepted})",
                    field=f"arguments[{key}]",
                )
        return plugin

    def _timeout(self, request: InvokePluginRequest) -> float:
        if not request.HasField("timeout"):
            return self.default_timeout
        seconds = request.timeout.ToNanoseconds() / 1e9  # positive and at most 60 s: schema rules
        if seconds > self.max_timeout:
            raise InvalidArgument(f"timeout may be at most {self.max_timeout:g} s", field="timeout")
        return seconds

    def _publish(
        self,
        plugin: InstalledPlugin,
        invocation_id: str,
        kind: EventType,
        message: str = "",
        attributes: dict[str, str] | None = None,
    ) -> None:
        self.events.publish(
            PluginEvent(
                event_id=uuid.uuid4().hex,
                plugin_name=plugin.spec.name,
                type=kind,
                time_ns=time.time_ns(),
                invocation_id=invocation_id,
                message=message,
                attributes=attributes or {},
                invoker=caller_principal(),
            )
        )


def _plugin(plugin: InstalledPlugin) -> plugin_service_pb2.Plugin:
    spec = plugin.spec
    return plugin_service_pb2.Plugin(
        name=spec.name,
        display_name=spec.display_name,
        description=spec.description,
        version=spec.version,
        argument_names=spec.argument_names,
    )


def _event(event: PluginEvent) -> plugin_service_pb2.PluginEvent:
    return plugin_service_pb2.PluginEvent(
        event_id=event.event_id,
        plugin_name=event.plugin_name,
        type=_EVENT_TYPES[event.type],
        time=timestamp(event.time_ns),
        invocation_id=event.invocation_id,
        message=event.message,
        attributes=event.attributes,
    )
