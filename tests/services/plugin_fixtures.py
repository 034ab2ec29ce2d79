"""Plugins that misbehave on purpose, run by the plugin worker in tests."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping

from chat_services.plugin.api import PluginOutput, PluginSpec


def _crash(arguments: Mapping[str, str]) -> PluginOutput:
    sys.stderr.write("about to crash\n")
    sys.stderr.flush()
    os._exit(3)


def _raise(arguments: Mapping[str, str]) -> PluginOutput:
    raise ValueError("the plugin's own bug")


def _hang(arguments: Mapping[str, str]) -> PluginOutput:
    time.sleep(3600)
    return PluginOutput("never")


def _garble(arguments: Mapping[str, str]) -> PluginOutput:
    sys.stdout.write("this is not JSON")
    sys.stdout.flush()
    os._exit(0)


def _echo(arguments: Mapping[str, str]) -> PluginOutput:
    return PluginOutput(output=arguments.get("text", ""), data={"pid": str(os.getpid())})


def _spec(name: str, run: object, *arguments: str) -> PluginSpec:
    return PluginSpec(name, name.title(), f"test plugin {name}", "0.0.1", run, arguments)  # type: ignore[arg-type]


CRASHER = _spec("crasher", _crash)
RAISER = _spec("raiser", _raise)
HANGER = _spec("hanger", _hang)
GARBLER = _spec("garbler", _garble)
ECHO = _spec("echo", _echo, "text")
