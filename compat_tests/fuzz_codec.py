"""Fuzz the SDK's C codec against its Python path: ``python -m compat_tests.fuzz_codec --budget 300``.

Seeds are the golden-fixture cases of every message type of the current schema (every
field at its extremes, repeated, nested). Each round takes a seed and corrupts it
(a byte changed, cut short, a byte added or dropped, its tail repeated, two seeds
spliced, random bytes), parses every candidate with the shipped codec (C first) and
with the Python path over upb, and compares the outcomes exactly; each path is also
judged against upb's raw outcome (refused, or the same message: see
``codec_differential.upb_disagreement``). Every message that parses is then written
by both and compared again. ``nox -s fuzz_codec`` runs it; the suite runs a bounded
slice of the same comparison, and a short sanitized run (``test_native_codec``).

``--sanitize`` compiles the C codec with AddressSanitizer and UBSan (gcc) and fuzzes
that build in a child process, so a memory error stops the run with the sanitizer's
report.

Prints candidates tried per second and how many parsed; on the first disagreement
prints the message type, the input in hex and both outcomes, and exits 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

SANITIZED = "CHAT_FASTWIRE_SANITIZED"


def _use_the_sanitized_codec() -> None:
    """Load ``$CHAT_FASTWIRE_SANITIZED`` (a build with AddressSanitizer) as ``chat_sdk._fastwire``.

    ``--sanitize`` compiles it and preloads the sanitizer runtimes (:func:`sanitized`),
    so an out-of-bounds read or a use after free in the C codec stops the run with a report.
    """
    path = os.environ.get(SANITIZED)
    if not path:
        return
    spec = importlib.util.spec_from_file_location("chat_sdk._fastwire", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{SANITIZED}={path}: not a loadable extension module")
    module = importlib.util.module_from_spec(spec)
    sys.modules["chat_sdk._fastwire"] = module
    spec.loader.exec_module(module)


_use_the_sanitized_codec()  # before chat_sdk.v1 installs the codec

import chat_sdk.schema  # noqa: E402 (after the sanitized codec is in place)
import chat_sdk.v1  # noqa: E402 (registers the dataclasses and installs their codec)
from chat_sdk import _wire  # noqa: E402
from compat_tests.codec_differential import (  # noqa: E402
    mutations,
    parse_outcomes,
    serialize_outcomes,
    upb_disagreement,
)
from compat_tests.current import dataclass_class  # noqa: E402
from registry.fixtures import cases, chat_messages  # noqa: E402


def seeds() -> list[tuple[type[Any], bytes]]:
    """(dataclass, bytes) of every golden-fixture case of the current schema."""
    found = []
    image, pool = chat_sdk.schema.file_descriptor_set(), chat_sdk.schema.descriptor_pool()
    for descriptor in chat_messages(image, pool):
        dataclass = dataclass_class(descriptor.full_name)
        found += [(dataclass, message.SerializeToString()) for _, message in cases(descriptor)]
    return found


def candidates(data: bytes, other: bytes, rng: random.Random) -> list[bytes]:
    """Corruptions of ``data``, a splice with ``other``, and random bytes."""
    cut = rng.randrange(len(data) + 1)
    random_bytes = bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
    spliced = data[:cut] + other[rng.randrange(len(other) + 1) :]
    return [*mutations(data, rng.randrange), spliced, random_bytes]


def run(budget: float, seed: int, rounds: int | None = None) -> int:
    """Fuzz for ``budget`` seconds (or ``rounds`` seeds); 0 when the two paths never disagreed, else 1."""
    rng = random.Random(seed)
    corpus = seeds()
    tried = parsed = done = 0
    started = time.monotonic()
    while time.monotonic() - started < budget and (rounds is None or done < rounds):
        done += 1
        dataclass, data = rng.choice(corpus)
        for candidate in candidates(data, rng.choice(corpus)[1], rng):
            tried += 1
            shipped, python_path = parse_outcomes(dataclass, candidate)
            if shipped != python_path:
                return _report(dataclass, candidate, shipped, python_path)
            for path, parse in (("shipped", _wire.PARSERS), ("Python path", _wire.UPB_PARSERS)):
                found = upb_disagreement(dataclass, candidate, parse[dataclass])
                if found is not None:
                    name = dataclass.__qualname__
                    print(f"{name}: the {path} codec and upb disagree on {candidate.hex()}", file=sys.stderr)
                    print(f"  {found[:2000]}", file=sys.stderr)
                    return 1
            if shipped[0] == "ok":
                parsed += 1
                message = dataclass.parse(candidate)
                written, python_written = serialize_outcomes(message)
                if written != python_written:
                    return _report(dataclass, candidate, written, python_written)
    elapsed = max(time.monotonic() - started, 1e-9)
    rate = tried / elapsed
    codec = "sanitized C codec" if os.environ.get(SANITIZED) else "C codec"
    agree = f"the {codec} and the Python path agree, with each other and with upb"
    print(f"{tried} inputs in {elapsed:.0f} s ({rate:.0f}/s), {parsed} parsed: {agree}")
    return 0


def _report(dataclass: type[Any], data: bytes, shipped: Any, python_path: Any) -> int:
    name = dataclass.__qualname__
    print(f"{name}: the C codec and the Python path disagree on {data.hex()}", file=sys.stderr)
    print(f"  shipped:     {shipped!r}", file=sys.stderr)
    print(f"  Python path: {python_path!r}", file=sys.stderr)
    return 1


def sanitized(scratch: Path) -> dict[str, str]:
    """Compile the C codec with AddressSanitizer and UBSan into ``scratch``; the environment that runs it."""
    source = Path(__file__).parent.parent / "sdk" / "python" / "src" / "chat_sdk" / "_fastwire.c"
    built = scratch / "_fastwire_sanitized.so"
    flags = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-shared", "-fPIC"]
    include = sysconfig.get_paths()["include"]
    subprocess.run(["gcc", *flags, f"-I{include}", str(source), "-o", str(built)], check=True)
    runtimes = [
        subprocess.run(
            ["gcc", f"-print-file-name={name}"], check=True, capture_output=True, text=True
        ).stdout.strip()
        for name in ("libasan.so", "libubsan.so")
    ]
    return {
        SANITIZED: str(built),
        "LD_PRELOAD": " ".join(runtimes),  # the sanitizers' runtimes, ahead of the interpreter's allocator
        "ASAN_OPTIONS": "detect_leaks=0",  # CPython's own allocations at exit are not the codec's
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=120.0, help="seconds to fuzz (default 120)")
    parser.add_argument("--seed", type=int, default=0, help="the random seed (default 0)")
    parser.add_argument("--sanitize", action="store_true", help="fuzz an ASan and UBSan build")
    arguments = parser.parse_args()
    if arguments.sanitize:
        with tempfile.TemporaryDirectory(prefix="chat-fastwire-sanitized-") as scratch:
            command = [sys.executable, "-m", "compat_tests.fuzz_codec", "--budget", str(arguments.budget)]
            child = subprocess.run(
                [*command, "--seed", str(arguments.seed)], env={**os.environ, **sanitized(Path(scratch))}
            )
        sys.exit(child.returncode)
    sys.exit(run(arguments.budget, arguments.seed))


if __name__ == "__main__":
    main()
