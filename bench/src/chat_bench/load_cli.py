"""``chat-load``: call one chat.v1 method under load and report latency, statuses and bytes.

    chat-load 127.0.0.1:50051 --call chat.v1.MessageService/GetMessage \\
        -d '{"messageId": "m-{{.RequestNumber}}"}' -n 2000 -c 50

Only loopback targets are accepted unless ``--allow-remote`` is given: a load test
against someone else's server is an outage, not a measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from chat_bench.engine import MAX_STREAM_COUNT, CallPlan, LoadPlan, Progress, run_load
from chat_bench.methods import resolve
from chat_bench.templates import RequestTemplate
from chat_sdk import parse_target

MAX_DATA_BYTES = 1 << 20


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
    parser.add_argument("-z", "--duration", type=float, help="run for this many seconds")
    parser.add_argument("-c", "--concurrency", type=int, default=50, help="calls in flight (default 50)")
    parser.add_argument("--connections", type=int, default=1, help="HTTP/2 connections shared by the calls")
    parser.add_argument("--rps", type=float, help="start at most this many calls per second")
    parser.add_argument(
        "--stream-count",
        type=int,
        default=1,
        help=f"messages each client or bidi stream sends (1 to {MAX_STREAM_COUNT}; default 1)",
    )
    parser.add_argument("--timeout", type=float, default=20.0, help="deadline of each call, seconds")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument(
        "--allow-remote", action="store_true", help="permit a target that is not a loopback address"
    )
    return parser


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
    else:
        print(result.to_text())
    return 0 if result.success_rate == 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
