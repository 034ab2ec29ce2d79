"""Call examples for the API reference: one per method, in Python (the dataclass target) and TypeScript.

Names follow the generators: betterproto2 writes ``AiServiceStub.stream_completion`` for
``AIService.StreamCompletion``; protoc-gen-es keeps ``AIService`` and calls the method
``streamCompletion``. Required scalar fields of the request get placeholder values.
"""

from __future__ import annotations

import re

from registry.docs_model import Message, Method, Service, StreamingKind

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z]|[0-9]|$)|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_PLACEHOLDERS = {"string": ('"..."', '"..."'), "bool": ("True", "true")}


def python_class(name: str) -> str:
    """betterproto2's class name for a proto name: ``AIService`` becomes ``AiService``."""
    return "".join(word.capitalize() for word in _WORDS.findall(name))


def snake_case(name: str) -> str:
    """``StreamCompletion`` becomes ``stream_completion``."""
    return "_".join(word.lower() for word in _WORDS.findall(name))


def lower_camel(name: str) -> str:
    """protoc-gen-es' method name: ``StreamCompletion`` becomes ``streamCompletion``."""
    return name[:1].lower() + name[1:]


def _short(full_name: str) -> str:
    return full_name.rsplit(".", 1)[-1]


def _required_fields(request: Message | None, python: bool) -> str:
    if request is None:
        return ""
    parts = []
    for field in request.fields:
        if field.behaviour != "Required." or field.type_name not in _PLACEHOLDERS or field.oneof:
            continue
        python_value, ts_value = _PLACEHOLDERS[field.type_name]
        parts.append(f"{field.name}={python_value}" if python else f"{field.json_name}: {ts_value}")
    return ", ".join(parts)


def python_example(service: Service, method: Method, request: Message | None) -> str:
    """A complete async snippet calling ``method`` with the Python SDK's dataclass target."""
    stub = f"{python_class(service.name)}Stub"
    request_class = python_class(_short(method.input))
    call = f"stub.{snake_case(method.name)}"
    build = f"{request_class}({_required_fields(request, python=True)})"
    lines = [
        "from chat_sdk import connect",
        f"from chat_sdk.v1 import {request_class}, {stub}",
        "",
        'async with connect("127.0.0.1:50051") as channel:',
        f"    stub = {stub}(channel, timeout=5.0)",
    ]
    if method.kind is StreamingKind.UNARY:
        lines.append(f"    reply = await {call}({build})")
    elif method.kind is StreamingKind.SERVER:
        lines += [f"    async for reply in {call}({build}):", "        print(reply)"]
    elif method.kind is StreamingKind.CLIENT:
        lines.append(f"    reply = await {call}([{build}])  # any iterable or async iterable")
    else:
        lines += [
            f"    async for reply in {call}([{build}]):  # requests: an async iterable to keep sending",
            "        print(reply)",
        ]
    return "\n".join(lines)


def typescript_example(service: Service, method: Method, request: Message | None) -> str:
    """A snippet calling ``method`` with the TypeScript package's gRPC client."""
    call = f"client.{lower_camel(method.name)}"
    fields = _required_fields(request, python=False)
    build = f"{{ {fields} }}" if fields else "{}"
    lines = [
        'import { createClient } from "@connectrpc/connect";',
        f'import {{ connect, {service.name} }} from "@chat-platform/sdk";',
        "",
        "const chat = connect({ port: 50051, timeoutMs: 5000 });",
        f"const client = createClient({service.name}, chat.transport);",
    ]
    if method.kind is StreamingKind.UNARY:
        lines.append(f"const reply = await {call}({build});")
    elif method.kind is StreamingKind.SERVER:
        lines.append(f"for await (const reply of {call}({build})) console.log(reply);")
    else:
        lines += [
            "async function* requests() {",
            f"  yield {build};",
            "}",
            (
                f"const reply = await {call}(requests());"
                if method.kind is StreamingKind.CLIENT
                else f"for await (const reply of {call}(requests())) console.log(reply);"
            ),
        ]
    lines.append("chat.close();")
    return "\n".join(lines)
