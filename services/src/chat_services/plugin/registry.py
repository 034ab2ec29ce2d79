"""Which plugins this server offers: discovered through the ``chat_services.plugins`` entry points."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points

from chat_services.plugin.api import PluginSpec

ENTRY_POINT_GROUP = "chat_services.plugins"
log = logging.getLogger("chat_services.plugins")


@dataclass(frozen=True)
class InstalledPlugin:
    """A plugin and where its worker process imports it from (``module:attribute``)."""

    spec: PluginSpec
    target: str


class PluginRegistry:
    """The installed plugins by name, ordered by name."""

    def __init__(self, plugins: Iterable[InstalledPlugin] = ()) -> None:
        self._plugins: dict[str, InstalledPlugin] = {}
        for plugin in plugins:
            self.add(plugin)

    def add(self, plugin: InstalledPlugin) -> None:
        name = plugin.spec.name
        if name in self._plugins:
            raise ValueError(
                f"two plugins are named {name!r}: {self._plugins[name].target} and {plugin.target}"
            )
        self._plugins[name] = plugin

    @classmethod
    def discover(cls, group: str = ENTRY_POINT_GROUP) -> PluginRegistry:
        """Load every entry point of ``group``; a broken or duplicate one is logged and skipped."""
        registry = cls()
        for entry_point in sorted(entry_points(group=group), key=lambda e: e.name):
            try:
                spec = entry_point.load()
                if not isinstance(spec, PluginSpec):
                    raise TypeError(f"{entry_point.value} is a {type(spec).__name__}, not a PluginSpec")
                registry.add(InstalledPlugin(spec, entry_point.value))
            except Exception:
                log.exception("skipping plugin entry point %s = %s", entry_point.name, entry_point.value)
        return registry

    def get(self, name: str) -> InstalledPlugin | None:
        return self._plugins.get(name)

    def names(self) -> list[str]:
        return sorted(self._plugins)

    def __len__(self) -> int:
        return len(self._plugins)
