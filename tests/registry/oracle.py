"""The empirical oracle: protoc-generated ``_pb2`` modules of both sides of a change, cross-serialized.

Each side's files are compiled by grpcio-tools' protoc into a directory of their own,
and each runs in a process of its own (:mod:`.oracle_driver`). Sample messages,
holding values the base's types hold, are written by each side that can hold them
and read by the other, in binary and in ProtoJSON; what generated code offers (module
names, ``HasField``, ``*_FIELD_NUMBER``, enum ``Name()``) is compared too. protoc-gen-es
(from PATH, as ``buf generate`` finds it) writes both sides' TypeScript, and every export,
property declaration and enum member of the base's must be in the head's unchanged.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DRIVER = Path(__file__).with_name("oracle_driver.py")


@dataclass(frozen=True)
class Sample:
    """A message to write: its class (dotted, below the module) and the fields to set."""

    message: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Measured:
    """What broke between the generated code of the two sides, and the evidence."""

    wire: bool
    json: bool
    python_api: bool
    typescript_api: bool
    evidence: tuple[str, ...]


_TS_EXPORT = re.compile(r"^export (?:const|type|enum) (\w+)", re.MULTILINE)
_TS_MEMBER = re.compile(r"^  (\w+\??: .+;|\w+ = -?\d+,)$", re.MULTILINE)


def _generate(files: Mapping[str, str], root: Path) -> tuple[Path, Path]:
    """protoc's ``_pb2`` modules and protoc-gen-es's TypeScript of ``files``, in two directories."""
    source, out, ts = root / "src", root / "out", root / "ts"
    for path, text in files.items():
        target = source / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    out.mkdir(parents=True)
    ts.mkdir()
    plugin = shutil.which("protoc-gen-es")
    assert plugin is not None, (
        "protoc-gen-es is not on PATH (nox puts sdk/typescript/node_modules/.bin there)"
    )
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{source}",
        f"--python_out={out}",
        f"--plugin=protoc-gen-es={plugin}",
        f"--es_out={ts}",
        "--es_opt=target=ts",
        *files,
    ]
    result = subprocess.run(command, check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return out, ts


def _typescript_api(ts: Path) -> dict[str, set[str]]:
    """``file:export`` -> its property declarations and enum members, for every generated file."""
    api: dict[str, set[str]] = {}
    for path in sorted(ts.rglob("*_pb.ts")):
        text = path.read_text()
        starts = [(m.start(), m[1]) for m in _TS_EXPORT.finditer(text)] + [(len(text), "")]
        for (start, name), (end, _) in itertools.pairwise(starts):
            members = set(_TS_MEMBER.findall(text[start:end]))
            api[f"{path.relative_to(ts).as_posix()}:{name}"] = members
    return api


def _typescript_breaks(base: dict[str, set[str]], head: dict[str, set[str]]) -> list[str]:
    found = []
    for export, members in base.items():
        if export not in head:
            found.append(f"TypeScript `{export}` is gone")
            continue
        found += [f"TypeScript `{export}`: `{m}` changed" for m in sorted(members - head[export])]
    return found


def _run(out: Path, module: str, program: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, str(_DRIVER), str(out), module],
        input=json.dumps(program),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    results: list[dict[str, Any]] = json.loads(result.stdout)
    return results


def _reads(writes: list[dict[str, Any]], samples: Sequence[Sample]) -> list[dict[str, Any]]:
    program = []
    for write, sample in zip(writes, samples, strict=True):
        if "refused" not in write:
            program.append({"op": "read", "message": sample.message, "binary": write["binary"]})
            program.append({"op": "read", "message": sample.message, "json": write["json"]})
    return program


def _compare(
    direction: str, writes: list[dict[str, Any]], reads: list[dict[str, Any]], samples: Sequence[Sample]
) -> tuple[list[str], list[str]]:
    """Wire and JSON evidence of values the reader does not read as the writer wrote them."""
    wire: list[str] = []
    text: list[str] = []
    it = iter(reads)
    for write, sample in zip(writes, samples, strict=True):
        if "refused" in write:
            continue
        for found, what in ((next(it), wire), (next(it), text)):
            if "error" in found:
                what.append(f"{direction}: {dict(sample.fields)} is refused ({found['error']})")
                continue
            for key, value in write["view"].items():
                other = _counterpart(key, found["view"])
                if other is not None and found["view"][other] != value:
                    read = found["view"][other]
                    what.append(f"{direction}: field {key} written as {value!r} reads {read!r}")
    return wire, text


def _counterpart(key: str, view: Mapping[str, Any]) -> str | None:
    """The reader's field for the writer's ``number:name``: the same name, else the same number."""
    number, name = key.split(":")
    by_name = [k for k in view if k.split(":")[1] == name]
    by_number = [k for k in view if k.split(":")[0] == number]
    found = by_name or by_number
    return found[0] if found else None


def _api_breaks(base: dict[str, Any], head: dict[str, Any]) -> list[str]:
    """What code generated from the base uses and the head no longer offers the same way."""
    found = [f"`{name}` is gone" for name in base["names"] if name not in head["names"]]
    for key, value in base.items():
        if key == "names":
            continue
        after = head.get(key)
        if after is None:
            found.append(f"`{key}` is gone")
        elif "has_field" in value:
            if value["number"] != after["number"]:
                found.append(f"`{key}` number {value['number']} -> {after['number']}")
            if value["has_field"] == "answers" and after["has_field"] == "raises":
                found.append(f"`{key}` HasField now raises")
        else:
            found += [
                f"`{key}`.Name({n}) {name!r} -> {after.get(n)!r}"
                for n, name in value.items()
                if after.get(n) != name
            ]
    return found


def measure(
    root: Path,
    base: Mapping[str, str],
    head: Mapping[str, str],
    *,
    module: str,
    samples: Sequence[Sample],
    messages: Sequence[str] = (),
    enums: Sequence[str] = (),
) -> Measured:
    """Generate both sides into ``root`` and measure what breaks between them."""
    (base_out, base_ts), (head_out, head_ts) = _generate(base, root / "base"), _generate(head, root / "head")
    api = {"op": "api", "messages": list(messages), "enums": list(enums)}
    writes = [{"op": "write", "message": s.message, "fields": dict(s.fields)} for s in samples]
    base_api, *base_writes = _run(base_out, module, [api, *writes])
    assert all("refused" not in w for w in base_writes), f"samples must fit the base: {base_writes}"
    head_results = _run(head_out, module, [api, *writes, *_reads(base_writes, samples)])
    head_api, head_writes = head_results[0], head_results[1 : 1 + len(samples)]
    base_reads = _run(base_out, module, _reads(head_writes, samples))
    forward = _compare("base -> head", base_writes, head_results[1 + len(samples) :], samples)
    backward = _compare("head -> base", head_writes, base_reads, samples)
    api_breaks = _api_breaks(base_api, head_api)
    ts_breaks = _typescript_breaks(_typescript_api(base_ts), _typescript_api(head_ts))
    wire, text = forward[0] + backward[0], forward[1] + backward[1]
    evidence = tuple(wire + text + api_breaks + ts_breaks)
    return Measured(bool(wire), bool(text), bool(api_breaks), bool(ts_breaks), evidence)
