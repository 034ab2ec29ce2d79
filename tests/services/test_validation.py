"""The schema's buf.validate limits, enforced at the boundary over real sockets.

Every chat.v1 method refuses a request that breaks a declared rule with
INVALID_ARGUMENT and a ``google.rpc.BadRequest`` naming the field; values exactly at
a limit pass and one past it do not; hypothesis breaks each declared rule in turn,
with violations derived from the descriptors, so a new rule is covered unaided.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from buf.validate import validate_pb2
from google.protobuf import duration_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.v1 import (
    ai_service_pb2,
    common_pb2,
    conversation_service_pb2,
    message_service_pb2,
    plugin_service_pb2,
    rag_service_pb2,
)
from chat_services.server import build_app
from chat_services.validation import RequestValidator

from ..sdk.samples import chat_files, pb2_module_name
from .clients import channel, expect_status, violated_fields
from .conftest import make_config

M, P, R, A = message_service_pb2, plugin_service_pb2, rag_service_pb2, ai_service_pb2
C = conversation_service_pb2


def _stubs() -> dict[str, tuple[Any, str]]:
    """Input type full name → (stub class, method name), for every RPC of the schema."""
    found: dict[str, tuple[Any, str]] = {}
    for file in chat_files():
        module = importlib.import_module(pb2_module_name(file.name))
        grpc_module = importlib.import_module(pb2_module_name(file.name).removesuffix("_pb2") + "_grpc")
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found[method.input_type.full_name] = (
                    getattr(grpc_module, f"{service.name}Stub"),
                    method.name,
                )
    return found


STUBS = _stubs()


async def send_one(port: int, request: Message) -> Message | None:
    """Send ``request`` to the RPC that takes its type, close the sending side, read one answer."""
    stub_class, method = STUBS[request.DESCRIPTOR.full_name]
    async with channel(port) as opened, getattr(stub_class(opened), method).open(timeout=30) as stream:
        await stream.send_message(request, end=True)
        answer: Message | None = await stream.recv_message()
        return answer


# One violating request per method: (request, the field its BadRequest names).
PER_METHOD = [
    pytest.param(M.GetMessageRequest(message_id=""), "message_id", id="GetMessage"),
    pytest.param(
        M.ListMessagesRequest(conversation_id="c", page=common_pb2.PageRequest(page_size=-1)),
        "page.page_size",
        id="ListMessages",
    ),
    pytest.param(M.StreamMessagesRequest(conversation_id="c" * 65), "conversation_id", id="StreamMessages"),
    pytest.param(M.SendMessagesRequest(), "message", id="SendMessages"),
    pytest.param(
        M.ChatStreamRequest(typing=M.ChatTyping(conversation_id="c", user_id="u" * 100_000)),
        "typing.user_id",
        id="ChatStream-long-typing-user",  # issue #8 finding 1: echoed, never length-checked
    ),
    pytest.param(
        M.EditMessageRequest(message_id="m", editor_id="u", content="x" * 65_537), "content", id="EditMessage"
    ),
    pytest.param(A.StreamCompletionRequest(prompt="hi", model="m" * 65), "model", id="StreamCompletion"),
    pytest.param(
        A.CompleteRequest(prompt="hi", model="m" * 1_000_000), "model", id="Complete-megabyte-model"
    ),
    pytest.param(
        R.IngestDocumentRequest(
            header=R.DocumentHeader(metadata={f"k{i}": "v" for i in range(65)}), text="t"
        ),
        "header.metadata",
        id="IngestDocument",
    ),
    pytest.param(R.DeleteDocumentRequest(), "document_id", id="DeleteDocument"),
    pytest.param(
        C.CreateConversationRequest(member_ids=["u-1", ""]), "member_ids[1]", id="CreateConversation"
    ),
    pytest.param(C.AddMemberRequest(conversation_id="c-1"), "user_id", id="AddMember"),
    pytest.param(C.RemoveMemberRequest(user_id="u-1"), "conversation_id", id="RemoveMember"),
    pytest.param(C.ListMembersRequest(conversation_id="c" * 65), "conversation_id", id="ListMembers"),
    pytest.param(R.SearchDocumentsRequest(top_k=3), "query", id="SearchDocuments"),
    pytest.param(
        P.ListPluginsRequest(page=common_pb2.PageRequest(page_token="t" * 1025)),
        "page.page_token",
        id="ListPlugins",
    ),
    pytest.param(
        P.InvokePluginRequest(plugin_name="word_count", timeout=duration_pb2.Duration(seconds=61)),
        "timeout",
        id="InvokePlugin",
    ),
    pytest.param(
        P.StreamPluginEventsRequest(types=[P.PLUGIN_EVENT_TYPE_UNSPECIFIED]),
        "types[0]",
        id="StreamPluginEvents",
    ),
]


def test_the_table_covers_every_method() -> None:
    covered = {param.values[0].DESCRIPTOR.full_name for param in PER_METHOD}  # type: ignore[union-attr]
    assert covered == set(STUBS)


@pytest.mark.parametrize(("request_message", "field"), PER_METHOD)
async def test_each_method_refuses_a_request_breaking_a_rule(
    app: Any, request_message: Message, field: str
) -> None:
    error = await expect_status(send_one(app.port, request_message), Status.INVALID_ARGUMENT, field)
    assert len(error.message or "") < 1000, "no client value reaches the status message unbounded"


def _message(content: str = "hi", files: int = 0, key: str = "k-1") -> M.SendMessagesRequest:
    attached = [common_pb2.File(file_id=f"f-{i}") for i in range(files)]
    new = M.NewMessage(
        idempotency_key=key, conversation_id="c", author_id="u", content=content, files=attached
    )
    return M.SendMessagesRequest(message=new)


@pytest.mark.parametrize(
    ("at_limit", "over_limit", "field"),
    [
        pytest.param(_message(files=10), _message(files=11), "message.files", id="attachment-count"),
        pytest.param(
            _message("é" * 32_768), _message("é" * 32_768 + "x"), "message.content", id="content-bytes"
        ),
        pytest.param(
            _message(key="k" * 128), _message(key="k" * 129), "message.idempotency_key", id="key-chars"
        ),
    ],
)
async def test_a_value_at_the_limit_passes_and_one_past_it_is_refused(
    app: Any, at_limit: Message, over_limit: Message, field: str
) -> None:
    stored = await send_one(app.port, at_limit)
    assert isinstance(stored, M.SendMessagesResponse) and stored.created_count == 1
    await expect_status(send_one(app.port, over_limit), Status.INVALID_ARGUMENT, field)


async def test_an_identifier_at_the_limit_reaches_the_handler(app: Any) -> None:
    await expect_status(send_one(app.port, M.GetMessageRequest(message_id="m" * 64)), Status.NOT_FOUND)
    await expect_status(
        send_one(app.port, M.GetMessageRequest(message_id="m" * 65)), Status.INVALID_ARGUMENT, "message_id"
    )


async def test_a_flood_of_attachments_is_refused_whole(app: Any) -> None:
    # Issue #8 finding 5: one 4 MiB SendMessages with 838,041 file entries was accepted.
    flood = _message()
    flood.message.files.extend(common_pb2.File() for _ in range(838_041))
    assert len(flood.SerializeToString()) <= 4 * 1024 * 1024
    error = await expect_status(send_one(app.port, flood), Status.INVALID_ARGUMENT)
    fields = violated_fields(error)
    assert fields[0] == "message.files" and len(fields) <= 10, fields


def test_attachment_file_names_are_bounded_in_length() -> None:
    long_name = _message(files=1)
    long_name.message.files[0].name = "n" * 256
    with pytest.raises(GRPCError) as raised:
        RequestValidator().check(long_name)
    assert violated_fields(raised.value) == ["message.files[0].name"]


# --- Violations derived from the descriptors' rules -------------------------------------

Mutate = Callable[[Message, st.DataObject], None]


@dataclass(frozen=True)
class Violation:
    """One way to break one declared rule: where, which rule, and how."""

    request: str  # full name of the request type
    path: tuple[str, ...]  # singular message fields from the request down to the owner of the field
    rule: str
    field: str  # the path the BadRequest must name
    mutate: Mutate

    def __str__(self) -> str:
        return f"{self.request.removeprefix('chat.v1.')}:{self.field}:{self.rule}"


def _string(min_len: int, max_len: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(exclude_categories=["Cs"]), min_size=min_len, max_size=max_len)


def _too_long(rules: validate_pb2.StringRules) -> st.SearchStrategy[str]:
    """A string one to eight characters (or UTF-8 bytes) past the rule's limit."""
    if rules.HasField("max_len"):
        return _string(rules.max_len + 1, rules.max_len + 8)
    # max_bytes: whole characters of 1-4 bytes, enough of them to pass the byte limit.
    return st.sampled_from(["x", "é", "€", "😀"]).map(lambda c: c * (rules.max_bytes // len(c.encode()) + 1))


def _set(name: str, value: Callable[[st.DataObject], Any]) -> Mutate:
    def mutate(message: Message, data: st.DataObject) -> None:
        setattr(message, name, value(data))

    return mutate


def _scalar_violations(name: str, kind: str, rules: Any) -> Iterator[tuple[str, Mutate]]:
    if kind == "string":
        if rules.HasField("max_len") or rules.HasField("max_bytes"):
            yield "too-long", _set(name, lambda d: d.draw(_too_long(rules)))
        if rules.min_len:
            yield "too-short", _set(name, lambda d: "")
    elif kind in ("int32", "int64") and rules.HasField("gte"):
        yield "below", _set(name, lambda d: d.draw(st.integers(-(2**31), rules.gte - 1)))
    elif kind == "float" and rules.finite:
        yield "not-finite", _set(name, lambda d: d.draw(st.sampled_from([math.nan, math.inf, -math.inf])))
    elif kind == "duration":

        def set_duration(seconds: st.SearchStrategy[int]) -> Mutate:
            return lambda m, d: getattr(m, name).CopyFrom(duration_pb2.Duration(seconds=d.draw(seconds)))

        if rules.HasField("gt"):
            yield "not-above", set_duration(st.integers(-1000, rules.gt.seconds))
        if rules.HasField("lte"):
            yield "above", set_duration(st.integers(rules.lte.seconds + 1, 10**6))


def _field_violations(field: FieldDescriptor) -> Iterator[tuple[str, str, Mutate]]:
    """(rule, field path suffix, mutation) for each rule declared on ``field``."""
    rules = field.GetOptions().Extensions[validate_pb2.field]
    name = field.name
    if rules.required:
        yield "required", name, lambda m, d: m.ClearField(name)
    kind = rules.WhichOneof("type")
    if kind == "repeated":
        limits = rules.repeated
        if limits.HasField("max_items"):

            def too_many(m: Message, d: st.DataObject) -> None:
                extra = d.draw(st.integers(1, 5))
                values = getattr(m, name)
                for i in range(limits.max_items + extra - len(values)):
                    if field.message_type is not None:
                        values.add().CopyFrom(valid(field.message_type))
                    elif field.enum_type is not None:
                        values.append(field.enum_type.values[-1].number)
                    else:
                        values.append(0.0 if field.type == field.TYPE_FLOAT else f"v{i}")

            yield "max_items", name, too_many
        if limits.min_items:
            yield "min_items", name, lambda m, d: m.ClearField(name)
        item_kind = limits.items.WhichOneof("type")
        if item_kind == "string":
            yield (
                "item-too-long",
                f"{name}[0]",
                lambda m, d: getattr(m, name).append(d.draw(_too_long(limits.items.string))),
            )
        if item_kind == "enum":
            yield "item-unspecified", f"{name}[0]", lambda m, d: getattr(m, name).append(0)
            yield (
                "item-undefined",
                f"{name}[0]",
                lambda m, d: getattr(m, name).append(d.draw(st.integers(4, 2**31 - 1))),
            )
    elif kind == "map":
        pairs = rules.map
        if pairs.HasField("max_pairs"):

            def too_many_pairs(m: Message, d: st.DataObject) -> None:
                getattr(m, name).update(
                    {f"k{i}": "v" for i in range(pairs.max_pairs + d.draw(st.integers(1, 5)))}
                )

            yield "max_pairs", name, too_many_pairs
        if pairs.keys.string.min_len:
            yield "key-empty", f"{name}['']", lambda m, d: getattr(m, name).update({"": "v"})
        if pairs.keys.string.HasField("max_len"):
            key = "k" * (pairs.keys.string.max_len + 1)
            yield (
                "key-too-long",
                f"{name}[{key[:32] + '…'!r}]",
                lambda m, d: getattr(m, name).update({key: "v"}),
            )
        values = pairs.values.string
        if values.HasField("max_len") or values.HasField("max_bytes"):
            yield (
                "value-too-long",
                f"{name}['k']",
                lambda m, d: getattr(m, name).update({"k": d.draw(_too_long(values))}),
            )
    elif kind is not None:
        for rule, mutate in _scalar_violations(name, kind, getattr(rules, kind)):
            yield rule, name, mutate


def _clear(name: str) -> Mutate:
    return lambda message, data: message.ClearField(name)


def valid(descriptor: Descriptor) -> Message:
    """The smallest message of ``descriptor``'s type that satisfies every rule it declares."""
    module = importlib.import_module(pb2_module_name(descriptor.file.name))
    message: Message = getattr(module, descriptor.name)()
    for oneof in descriptor.oneofs:
        if oneof.GetOptions().Extensions[validate_pb2.oneof].required:
            first = oneof.fields[0]
            if first.message_type is not None:
                getattr(message, first.name).CopyFrom(valid(first.message_type))
            else:
                setattr(message, first.name, "x")
    for field in descriptor.fields:
        rules = field.GetOptions().Extensions[validate_pb2.field]
        if rules.required and field.message_type is not None:
            getattr(message, field.name).CopyFrom(valid(field.message_type))
        elif rules.string.min_len:
            setattr(message, field.name, "x" * rules.string.min_len)
        elif rules.repeated.min_items:
            getattr(message, field.name).extend([0.0] * rules.repeated.min_items)
    return message


def violations() -> Iterator[Violation]:
    """Every declared rule of every request, reached through singular message fields."""

    def walk(request: str, descriptor: Descriptor, path: tuple[str, ...]) -> Iterator[Violation]:
        prefix = "".join(f"{p}." for p in path)
        for oneof in descriptor.oneofs:
            if oneof.GetOptions().Extensions[validate_pb2.oneof].required:
                yield Violation(request, path, "oneof-required", prefix + oneof.name, _clear(oneof.name))
        for field in descriptor.fields:
            for rule, suffix, mutate in _field_violations(field):
                yield Violation(request, path, rule, prefix + suffix, mutate)
            target = field.message_type
            if target is not None and not field.is_repeated and not target.full_name.startswith("google."):
                yield from walk(request, target, (*path, field.name))

    for name in sorted(STUBS):
        request = STUBS_DESCRIPTORS[name]
        yield from walk(name, request, ())


STUBS_DESCRIPTORS = {
    method.input_type.full_name: method.input_type
    for file in chat_files()
    for service in importlib.import_module(pb2_module_name(file.name)).DESCRIPTOR.services_by_name.values()
    for method in service.methods
}
VIOLATIONS = list(violations())


def test_every_request_has_a_valid_base_and_rules_to_break() -> None:
    checker = RequestValidator()
    for descriptor in STUBS_DESCRIPTORS.values():
        checker.check(valid(descriptor))  # raises if the base breaks a rule
    assert {v.request for v in VIOLATIONS} == set(STUBS)
    assert len(VIOLATIONS) > 60


def _broken(violation: Violation, data: st.DataObject) -> Message:
    request = valid(STUBS_DESCRIPTORS[violation.request])
    owner = request
    for name in violation.path:
        owner = getattr(owner, name)
        if not owner.ListFields():
            owner.CopyFrom(valid(owner.DESCRIPTOR))
    violation.mutate(owner, data)
    return request


@pytest.fixture(scope="module")
def server_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One full server on its own thread and loop, shared by every hypothesis example of the module."""
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    state: dict[str, Any] = {}

    async def main() -> None:
        app = await build_app(make_config(Path(tmp_path_factory.mktemp("validation"))))
        await app.start()
        state["app"], state["stop"] = app, asyncio.Event()
        ready.set()
        await state["stop"].wait()
        await app.shutdown()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(60), "the server did not start"
    try:
        yield int(state["app"].port)
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(60)
        loop.close()


@pytest.mark.parametrize("violation", VIOLATIONS, ids=str)
@settings(max_examples=3, deadline=None, database=None)
@given(data=st.data())
def test_breaking_any_declared_rule_is_invalid_argument(
    server_port: int, violation: Violation, data: st.DataObject
) -> None:
    request = _broken(violation, data)
    error = asyncio.run(expect_status(send_one(server_port, request), Status.INVALID_ARGUMENT))
    assert violated_fields(error) == [violation.field], (str(violation), error.message)
