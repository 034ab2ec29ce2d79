"""``chat-services serve --workers N``: N server processes on one port, supervised by this one.

Each worker is a full server (its own event loop, database connections and
notification listener) bound to the same port with ``SO_REUSEPORT``, so the kernel
spreads new connections across them. With ``--port 0`` the parent picks the port once
and holds it (bound, not listening) for the workers' life, so no other program takes it.

The parent forwards SIGTERM and SIGINT to every worker, each drains as a single server
does, and the parent exits once all have ended: 0 when they all exited cleanly. A
worker that ends on its own (a crash, an OOM kill, a start failure) is reported, the
others are told to drain, and the parent exits 1: restarting is left to what started
the parent (systemd's ``Restart=``, a Kubernetes pod), which sees the failure instead
of a server quietly running with fewer workers than asked.

Metrics: worker ``i`` serves ``/metrics`` on ``--metrics-port`` + ``i`` (each picks its
own with ``--metrics-port 0``), so every worker is one scrape target.

Only on PostgreSQL: workers share the database through it, and the notifications of
:mod:`chat_services.instances` carry live fan-out between them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
from dataclasses import replace
from multiprocessing.connection import wait
from types import FrameType

from chat_services.config import ServiceConfig
from chat_services.logs import configure_logging

log = logging.getLogger("chat_services.supervisor")


def worker_config(config: ServiceConfig, index: int, port: int) -> ServiceConfig:
    """Worker ``index``'s configuration: the shared port, reused, and its own metrics port."""
    metrics_port = config.metrics_port
    if metrics_port:
        metrics_port += index
    return replace(config, port=port, reuse_port=True, workers=1, metrics_port=metrics_port)


def run_workers(config: ServiceConfig) -> int:
    """Start ``config.workers`` workers, supervise them until they end; the exit code."""
    reserved = _reserve_port(config) if config.port == 0 else None
    port = reserved.getsockname()[1] if reserved is not None else config.port
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=_work,
            args=(worker_config(config, index, port), index),
            name=f"chat-services-worker-{index}",
        )
        for index in range(config.workers)
    ]
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.pid is not None and worker.exitcode is None:
                os.kill(worker.pid, signum)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGINT)}
    failed = False
    try:
        for worker in workers:
            worker.start()
        log.info(
            "workers started",
            extra={"port": port, "workers": config.workers, "pids": ",".join(str(w.pid) for w in workers)},
        )
        running = list(workers)
        while running:
            for sentinel in wait([worker.sentinel for worker in running]):
                worker = next(w for w in running if w.sentinel == sentinel)
                worker.join()
                running.remove(worker)
                if stopping and worker.exitcode == 0:
                    log.info("worker stopped", extra={"pid": worker.pid})
                    continue
                failed = True
                log.error(
                    "worker ended" + ("" if stopping else "; stopping the others"),
                    extra={"pid": worker.pid, "exit_code": worker.exitcode},
                )
                if not stopping:
                    forward(signal.SIGTERM, None)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if reserved is not None:
            reserved.close()
    log.info("workers stopped", extra={"failed": failed})
    return 1 if failed else 0


def _reserve_port(config: ServiceConfig) -> socket.socket:
    """A socket bound to a free port with SO_REUSEPORT, so the workers can bind it too."""
    family, kind, _, _, address = socket.getaddrinfo(
        config.host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    reserved = socket.socket(family, kind)
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    reserved.bind(address)
    return reserved


def _work(config: ServiceConfig, index: int) -> None:
    """A worker process: one server, its exit code the process's."""
    from chat_services.cli import run_server  # the parent's module, loaded again in this process

    configure_logging(config.log_level, config.log_format)
    log.info("worker", extra={"index": index, "pid": os.getpid()})
    sys.exit(run_server(config))
