"""``chat-load``: call one chat.v1 method under load and report latency, statuses, errors and bytes.

    chat-load 127.0.0.1:50051 --call chat.v1.MessageService/GetMessage \\
        -d '{"messageId": "m-{{.RequestNumber}}"}' -z 30s -c 50

The flags are ghz's where ghz has one (``-n``, ``-z``, ``-c``, ``--connections``,
``--rps``, ``-t``, ``-m``, ``-O``, ``--cacert``, ``--cert``, ``--key``, ``--cname``,
``--insecure``); unlike ghz, a run is plaintext unless a TLS flag is given.

Only loopback targets are accepted unless ``--allow-remote`` is given: a load test
against someone else's server is an outage, not a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import re
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from ssl import SSLContext

from tqdm import tqdm

from chat_bench.durations import parse_duration
from chat_bench.engine import MAX_STREAM_COUNT, CallPlan, LoadPlan, Progress, run_load
from chat_bench.methods import resolve
from chat_bench.templates import RequestTemplate
from chat_sdk import parse_target, tls_context

MAX_DATA_BYTES = 1 << 20
MAX_METADATA_TEXT = 64 * 1024
MAX_METADATA_PAIRS = 32
MAX_METADATA_VALUE = 4096
_METADATA_KEY = re.compile(r"[0-9a-z_.-]{1,64}")
# Set by grpclib itself on every call, or binary (``-bin`` values are bytes, not text).
_RESERVED_KEYS = frozenset({"content-type", "te", "user-agent"})


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def duration(text: str) -> float:
    """argparse's type for ``-z`` and ``-t``: seconds from ``30s``, ``2m``, ``500ms`` or a number."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``chat-load``."""
    parser = argparse.ArgumentParser(
        prog="chat-load", description="Load-test one chat.v1 method (ghz for this API)."
    )
    parser.add_argument("target", help="host:port of the server (loopback unless --allow-remote)")
    parser.add_argument("--call", required=True, help="full method name: chat.v1.MessageService/GetMessage")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("-d", "--data", help="ProtoJSON request (an array for streams), templated per call")
    data.add_argument("-D", "--data-file", type=Path, help="read the request data from a file")
    parser.add_argument("-n", "--total", type=int, help="number of calls (default 200 without -z)")
    parser.add_argument(
        "-z", "--duration", type=duration, help="run this long: 30s, 2m, 1m30s, 500ms (a number: seconds)"
    )
    parser.add_argument("-c", "--concurrency", type=int, default=50, help="calls in flight (default 50)")
    parser.add_argument("--connections", type=int, default=1, help="HTTP/2 connections shared by the calls")
    parser.add_argument("--rps", type=float, help="start at most this many calls per second")
    parser.add_argument(
        "--stream-count",
        type=int,
        default=1,
        help=f"messages each client or bidi stream sends (1 to {MAX_STREAM_COUNT}; default 1)",
    )
    parser.add_argument(
        "-t", "--timeout", type=duration, default=20.0, help="deadline of each call (default 20s)"
    )
    parser.add_argument(
        "-O",
        "--format",
        choices=("summary", "json", "csv"),
        default="summary",
        help="summary (for people, with a histogram), json, or csv (one row per call)",
    )
    parser.add_argument(
        "--allow-remote", action="store_true", help="permit a target that is not a loopback address"
    )
    auth = parser.add_argument_group("metadata and token")
    auth.add_argument("-m", "--metadata", help='sent with every call, a JSON object: {"key": "value"}')
    auth.add_argument("--token", help="sent with every call as authorization: Bearer <token>")
    tls = parser.add_argument_group("TLS (plaintext unless --cacert, --cert or --cname is given)")
    tls.add_argument("--insecure", action="store_true", help="plaintext HTTP/2, no TLS (the default)")
    tls.add_argument("--cacert", type=Path, help="PEM bundle of the CAs to trust (else the system's)")
    tls.add_argument("--cert", type=Path, help="client certificate (PEM), for mutual TLS")
    tls.add_argument("--key", type=Path, help="the client certificate's private key (PEM)")
    tls.add_argument(
        "--cname",
        "--servername",
        dest="server_name",
        help="the name the server's certificate must carry, when it is not the target's host",
    )
    return parser


def tls_from(args: argparse.Namespace) -> SSLContext | None:
    """The client TLS context the flags ask for; None for plaintext."""
    wanted = [flag for flag in ("cacert", "cert", "key", "server_name") if getattr(args, flag) is not None]
    if args.insecure and wanted:
        raise ValueError("--insecure is plaintext: leave out --cacert, --cert, --key and --cname")
    if args.key is not None and args.cert is None:
        raise ValueError("--key needs --cert")
    if not wanted:
        return None
    return tls_context(args.cacert, args.cert, args.key)


def metadata_from(text: str | None, token: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata of every call: ``--metadata`` (a JSON object of strings) and ``--token``."""
    pairs: dict[str, str] = {}
    if text is not None:
        if len(text) > MAX_METADATA_TEXT:
            raise ValueError(f"--metadata is longer than {MAX_METADATA_TEXT} characters")
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"--metadata is not JSON: {error.msg} at character {error.pos}") from None
        if not isinstance(parsed, dict) or not all(isinstance(value, str) for value in parsed.values()):
            raise ValueError('--metadata must be a JSON object of strings: {"key": "value"}')
        pairs = parsed
    if len(pairs) > MAX_METADATA_PAIRS:
        raise ValueError(f"--metadata has more than {MAX_METADATA_PAIRS} keys")
    for key, value in pairs.items():
        if not _METADATA_KEY.fullmatch(key) or key.startswith("grpc-") or key.endswith("-bin"):
            raise ValueError(
                f"metadata key {key[:64]!r} is not allowed: 1-64 of a-z 0-9 - _ . (no grpc- prefix, no -bin)"
            )
        if key in _RESERVED_KEYS:
            raise ValueError(f"metadata key {key!r} is set by the client itself")
        if len(value) > MAX_METADATA_VALUE or not (value.isascii() and value.isprintable()):
            raise ValueError(f"metadata {key!r}: values are printable ASCII, at most {MAX_METADATA_VALUE}")
    if token is not None:
        if "authorization" in pairs:
            raise ValueError("give the token once: --token or authorization in --metadata")
        if not token or len(token) > MAX_METADATA_VALUE or not (token.isascii() and token.isprintable()):
            raise ValueError(f"--token must be printable ASCII, 1 to {MAX_METADATA_VALUE} characters")
        pairs["authorization"] = f"Bearer {token}"
    return tuple(pairs.items())


def plan_from(args: argparse.Namespace) -> LoadPlan:
    """The run the arguments describe; ``ValueError`` says what is wrong."""
    host, port = parse_target(args.target)
    if not args.allow_remote and not is_loopback(host):
        raise ValueError(f"{host[:80]!r} is not a loopback address; pass --allow-remote to load it anyway")
    method = resolve(args.call)
    if args.data_file is not None:
        if args.data_file.stat().st_size > MAX_DATA_BYTES:
            raise ValueError(f"the data file is larger than {MAX_DATA_BYTES} bytes")
        text = args.data_file.read_text(encoding="utf-8")
    else:
        text = args.data if args.data is not None else "{}"
    if len(text) > MAX_DATA_BYTES:
        raise ValueError(f"the request data is larger than {MAX_DATA_BYTES} bytes")
    template = RequestTemplate(text, method.request_type)
    total = args.total if args.total is not None or args.duration is not None else 200
    plan = LoadPlan(
        host=host,
        port=port,
        calls=[CallPlan(method, template, stream_count=args.stream_count)],
        total=total,
        duration=args.duration,
        concurrency=args.concurrency,
        connections=args.connections,
        rps=args.rps,
        timeout=args.timeout,
        ssl=tls_from(args),
        server_name=args.server_name,
        metadata=metadata_from(args.metadata, args.token),
    )
    plan.check()
    return plan


def progress_bar(plan: LoadPlan) -> tuple[Progress | None, tqdm[None] | None]:
    """A bar on stderr when it is a terminal: calls done of ``-n``, or seconds of ``-z``."""
    if not sys.stderr.isatty():
        return None, None
    by_calls = plan.total is not None
    total = plan.total if plan.total is not None else plan.duration
    bar: tqdm[None] = tqdm(total=total, unit="call" if by_calls else "s", delay=1.0, file=sys.stderr)

    def advance(done: int, elapsed: float) -> None:
        target = done if by_calls else min(elapsed, float(total or 0))
        if target > bar.n:
            bar.update(target - bar.n)

    return advance, bar


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; exit 0 when every call was OK, 1 when some failed, 2 on bad usage."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        plan = plan_from(args)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    advance, bar = progress_bar(plan)
    try:
        result = asyncio.run(run_load(plan, advance))
    finally:
        if bar is not None:
            bar.close()
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2))
    elif args.format == "csv":
        result.write_csv(sys.stdout)
    else:
        print(result.to_text())
    return 0 if result.success_rate == 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
