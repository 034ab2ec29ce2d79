"""What a plugin is. Third-party plugins import only this module.

A plugin is a :class:`PluginSpec` object exposed through the ``chat_services.plugins``
entry point group, for example in the plugin distribution's ``pyproject.toml``::

    [project.entry-points."chat_services.plugins"]
    translate = "my_plugins.translate:TRANSLATE"

``run`` receives the request's arguments (only names from ``argument_names``) and
returns a :class:`PluginOutput`. It runs in a separate worker process, so it may
block, crash or hang without harming the server; it is killed at its timeout.
Raise :class:`PluginArgumentError` for bad input: the caller gets INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PluginOutput:
    """A plugin's result: text for people, ``data`` for programs."""

    output: str
    data: Mapping[str, str] = field(default_factory=dict)


class PluginArgumentError(ValueError):
    """The arguments are wrong; the message says which and why."""

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


@dataclass(frozen=True)
class PluginSpec:
    """A plugin's description and the function that runs it."""

    name: str
    display_name: str
    description: str
    version: str
    run: Callable[[Mapping[str, str]], PluginOutput]
    argument_names: tuple[str, ...] = ()
