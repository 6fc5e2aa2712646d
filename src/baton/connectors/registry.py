"""Finding connectors: each is registered under the ``baton.connectors`` entry-point group.

An entry point names a class. A class with a ``from_settings(settings, *, clock=...)`` class method
(:class:`SettingsFactory`) builds itself from the settings, reading its URL, secrets and HTTP limits
there and raising :class:`~baton.errors.ConfigError` when something is missing or invalid; any other
class is called with no arguments.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

from baton.clock import Clock
from baton.connectors.base import Connector
from baton.connectors.fake import FakeConnector
from baton.errors import ConfigError
from baton.settings import Settings

__all__ = ["SettingsFactory", "available", "build_connectors"]

GROUP = "baton.connectors"


@runtime_checkable
class SettingsFactory(Protocol):
    """A connector class that configures itself from :class:`~baton.settings.Settings`."""

    def from_settings(self, settings: Settings, *, clock: Clock | None = None) -> Connector: ...


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def build_connectors(settings: Settings, *, clock: Clock | None = None) -> dict[str, Connector]:
    """Instantiate the connectors named in ``settings.connectors``; ``clock`` is handed to those
    that read time (webhook timestamps, Retry-After dates)."""
    names = [n.strip() for n in settings.connectors.split(",") if n.strip()]
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    built: dict[str, Connector] = {}
    for name in names:
        if name not in found:
            raise ConfigError(f"unknown connector {name!r}; available: {', '.join(sorted(found)) or 'none'}")
        if name == "fake":
            path = settings.fake_connector_path
            built[name] = FakeConnector(path=path)
            continue
        factory = found[name].load()
        if isinstance(factory, SettingsFactory):
            built[name] = factory.from_settings(settings, clock=clock)
        else:
            built[name] = factory()
    return built
