"""Scratch schemas compiled with the real buf: the helpers the review-engine tests share."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping

import pytest
from google.protobuf import descriptor_pb2 as dpb

from registry.buf import run_buf

DEMO = "demo/v1/demo.proto"
BUF_YAML = "version: v2\nmodules:\n  - path: proto\n"

Compile = Callable[[Mapping[str, str]], dpb.FileDescriptorSet]


def make_compiler(tmp_path_factory: pytest.TempPathFactory) -> Compile:
    """A compiler of {path below proto/: source} with buf, compiling each distinct input once."""
    cache: dict[tuple[tuple[str, str], ...], bytes] = {}

    def compile_(files: Mapping[str, str]) -> dpb.FileDescriptorSet:
        key = tuple(sorted(files.items()))
        if key not in cache:
            root = tmp_path_factory.mktemp("module")
            (root / "buf.yaml").write_text(BUF_YAML)
            for path, text in files.items():
                target = root / "proto" / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            out = root / "out.binpb"
            run_buf(["build", "--as-file-descriptor-set", "-o", str(out)], cwd=root)
            cache[key] = out.read_bytes()
        return dpb.FileDescriptorSet.FromString(cache[key])

    return compile_


def proto(body: str) -> str:
    """A proto3 file of package ``demo.v1`` holding ``body`` (dedented)."""
    return f'syntax = "proto3";\n\npackage demo.v1;\n\n{textwrap.dedent(body).strip()}\n'
