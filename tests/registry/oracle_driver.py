"""Run in a subprocess beside one side's generated ``_pb2`` modules: write, read and describe messages.

Each side of a schema change needs a process of its own: both define the same full
names, which one descriptor pool cannot hold twice. The program comes as JSON on
stdin, the results go as JSON to stdout; ``sys.argv[1]`` is the directory holding the
generated modules and ``sys.argv[2]`` the module to import (``demo.v1.demo_pb2``).
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message


def _class(module: Any, name: str) -> Any:
    found = module
    for part in name.split("."):
        found = getattr(found, part)
    return found


def _view(message: Message) -> dict[str, Any]:
    """``number:name`` -> the value the generated class reads (an unset field reads its default)."""
    view: dict[str, Any] = {}
    for fd in message.DESCRIPTOR.fields:
        value = getattr(message, fd.name)
        if fd.is_repeated:
            value = list(value) if fd.message_type is None else len(value)
        elif fd.message_type is not None:
            value = value.SerializeToString(deterministic=True).hex()
        elif isinstance(value, bytes):
            value = value.hex()
        view[f"{fd.number}:{fd.name}"] = value
    return view


def _api(module: Any, message_names: list[str], enum_names: list[str]) -> dict[str, Any]:
    """What code generated from this side can use: names, HasField, field numbers, enum names."""
    api: dict[str, Any] = {"names": sorted(name for name in vars(module) if not name.startswith("_"))}
    for name in message_names:
        cls = _class(module, name)
        message = cls()
        for fd in cls.DESCRIPTOR.fields:
            try:
                message.HasField(fd.name)
                has = "answers"
            except ValueError:
                has = "raises"
            number = getattr(cls, f"{fd.name.upper()}_FIELD_NUMBER")
            api[f"{name}.{fd.name}"] = {"has_field": has, "number": number}
    for name in enum_names:
        enum = _class(module, name)
        api[name] = {str(number): enum.Name(number) for number in sorted(set(enum.values()))}
    return api


def _write(cls: Any, fields: dict[str, Any]) -> dict[str, Any]:
    message = cls()
    try:
        for name, value in fields.items():
            if isinstance(value, list):
                getattr(message, name).extend(value)
            else:
                setattr(message, name, value)
    except (AttributeError, ValueError, TypeError) as error:
        return {"refused": type(error).__name__}
    data = message.SerializeToString()
    return {
        "binary": base64.b64encode(data).decode(),
        "json": json_format.MessageToJson(message),
        "view": _view(cls.FromString(data)),
    }


def _read(cls: Any, binary: str | None, text: str | None) -> dict[str, Any]:
    try:
        if binary is not None:
            return {"view": _view(cls.FromString(base64.b64decode(binary)))}
        return {"view": _view(json_format.Parse(text or "", cls()))}
    except (DecodeError, json_format.ParseError) as error:
        return {"error": type(error).__name__}


def main() -> None:
    sys.path.insert(0, sys.argv[1])
    module = importlib.import_module(sys.argv[2])
    program = json.load(sys.stdin)
    results: list[dict[str, Any]] = []
    for op in program:
        if op["op"] == "api":
            results.append(_api(module, op["messages"], op["enums"]))
        elif op["op"] == "write":
            results.append(_write(_class(module, op["message"]), op["fields"]))
        else:
            results.append(_read(_class(module, op["message"]), op.get("binary"), op.get("json")))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
