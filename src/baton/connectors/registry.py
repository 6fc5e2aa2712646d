"""Finding connectors: each is registered under the ``baton.connectors`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from baton.connectors.base import Connector
from baton.connectors.fake import FakeConnector
from baton.errors import ConfigError
from baton.settings import Settings

__all__ = ["available", "build_connectors"]

GROUP = "baton.connectors"


def available() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def build_connectors(settings: Settings) -> dict[str, Connector]:
    """Instantiate the connectors named in ``settings.connectors``."""
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
        built[name] = factory()
    return built
