"""Flags are spelt out: an abbreviation is refused, not read as the flag it happens to start."""

from __future__ import annotations

import pytest

from chat_gateway.cli import parser as gateway_parser
from chat_services.cli import main as services_main


def test_the_services_refuse_an_abbreviated_flag(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse's default would read this as --max-inflight-bytes=1, silently.
    with pytest.raises(SystemExit) as exit_:
        services_main(["serve", "--max-inflight=1"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --max-inflight=1" in capsys.readouterr().err


def test_the_gateway_refuses_an_abbreviated_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        gateway_parser().parse_args(["serve", "--body-lim=1"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --body-lim=1" in capsys.readouterr().err
