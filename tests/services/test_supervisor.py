"""What each worker of `serve --workers N` is given: the shared port, reused, and a metrics port of its own.

The processes themselves (sharing the port, draining together, a dead worker stopping
the rest) are tested in test_scale_out.py.
"""

from __future__ import annotations

import pytest

from chat_services.config import ServiceConfig, parse_config
from chat_services.supervisor import worker_config


@pytest.mark.parametrize(
    ("metrics_port", "expected"), [(9464, [9464, 9465, 9466]), (0, [0, 0, 0]), (None, [None] * 3)]
)
def test_worker_i_serves_metrics_on_the_metrics_port_plus_i(
    metrics_port: int | None, expected: list[int | None]
) -> None:
    config = ServiceConfig(workers=3, metrics_port=metrics_port)
    assert [worker_config(config, index, 50051).metrics_port for index in range(3)] == expected


def test_every_worker_binds_the_one_port_with_reuse_and_serves_alone() -> None:
    worker = worker_config(ServiceConfig(port=0, workers=2), 1, 41234)
    assert (worker.port, worker.reuse_port, worker.workers) == (41234, True, 1)


def test_workers_is_a_flag_and_an_environment_variable() -> None:
    assert parse_config(["--workers", "4"]).workers == 4
    assert parse_config([], {"CHAT_SERVICES_WORKERS": "2"}).workers == 2
    with pytest.raises(ValueError, match="at least 1"):
        parse_config(["--workers", "0"])
