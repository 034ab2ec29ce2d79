"""Test-only plugins that misbehave on purpose, each run by the plugin worker in its own process.

The worker imports them as ``tests.services.plugins_for_tests:NAME`` (the runner passes the
test process's ``sys.path`` on as ``PYTHONPATH``). Plugins that take a ``pid_file`` argument
write their process ID there first, so a test can tell whether that worker is still alive.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from chat_services.plugin.api import PluginArgumentError, PluginOutput, PluginSpec

MODULE = __name__
CRASH_EXIT_CODE = 3
CRASH_LAST_WORDS = "about to crash on purpose"
RAISED_TEXT = "boom: the plugin's own bug"
GARBAGE = "DEBUG: not the worker protocol <<<\x00>>>"


def _write_pid(arguments: Mapping[str, str]) -> None:
    if pid_file := arguments.get("pid_file"):
        Path(pid_file).write_text(str(os.getpid()))


def _crash(arguments: Mapping[str, str]) -> PluginOutput:
    _write_pid(arguments)
    sys.stderr.write(f"{CRASH_LAST_WORDS}\n")
    sys.stderr.flush()
    os._exit(CRASH_EXIT_CODE)  # no cleanup, no result: the process just ends


def _raise(arguments: Mapping[str, str]) -> PluginOutput:
    raise RuntimeError(RAISED_TEXT)


def _sleep_forever(arguments: Mapping[str, str]) -> PluginOutput:
    _write_pid(arguments)
    while True:
        time.sleep(60)


def _print_garbage(arguments: Mapping[str, str]) -> PluginOutput:
    # A plugin that prints: the worker sends print() to stderr, so the result is intact.
    print(GARBAGE)
    return PluginOutput(output="fine, apart from the printing")


def _flood(arguments: Mapping[str, str]) -> PluginOutput:
    # Far more than the runner's 1 MiB result limit, at a pace a test machine shrugs off,
    # written to file descriptor 1 itself (print() and sys.stdout go to stderr in a worker).
    chunk = b"x" * 65536
    while True:
        os.write(1, chunk)
        time.sleep(0.005)


def _double(arguments: Mapping[str, str]) -> PluginOutput:
    raw = arguments.get("n", "")
    if raw == "whole":
        raise PluginArgumentError("the arguments disagree with each other")  # no single argument at fault
    try:
        number = int(raw)
    except ValueError:
        raise PluginArgumentError(f"n must be a whole number, got {raw!r}", argument="n") from None
    note = arguments.get("note", "")
    return PluginOutput(
        output=f"{number} doubled is {number * 2}{f' ({note})' if note else ''}",
        data={"doubled": str(number * 2), "pid": str(os.getpid())},
    )


def _spec(name: str, run: Callable[[Mapping[str, str]], PluginOutput], *arguments: str) -> PluginSpec:
    return PluginSpec(
        name=name,
        display_name=name.replace("_", " ").capitalize(),
        description=f"Test plugin {name}.",
        version="0.0.1",
        run=run,
        argument_names=arguments,
    )


CRASHER = _spec("crasher", _crash, "pid_file")
RAISER = _spec("raiser", _raise)
SLEEPER = _spec("sleeper", _sleep_forever, "pid_file")
GARBLER = _spec("garbler", _print_garbage)
FLOODER = _spec("flooder", _flood)
DOUBLER = _spec("doubler", _double, "n", "note")

ALL = {
    "CRASHER": CRASHER,
    "RAISER": RAISER,
    "SLEEPER": SLEEPER,
    "GARBLER": GARBLER,
    "FLOODER": FLOODER,
    "DOUBLER": DOUBLER,
}
