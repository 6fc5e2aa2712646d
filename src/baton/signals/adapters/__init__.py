"""Signal adapters: one module per vendor, each found through the ``baton.signals`` entry points.

An adapter maps an authenticated vendor delivery to canonical events (:class:`SignalAdapter`,
:class:`Delivery`); :func:`load_adapters` finds the installed ones. The built-in adapters are
registered in ``pyproject.toml``; another package adds a source by registering its own::

    [project.entry-points."baton.signals"]
    acme = "acme_baton.signals:AcmeAdapter"
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Final

from baton.errors import ConfigError
from baton.signals.adapters.base import Delivery, Draft, SignalAdapter

__all__ = ["GROUP", "Delivery", "Draft", "SignalAdapter", "available", "load_adapters"]

GROUP: Final = "baton.signals"


def available() -> list[str]:
    """Names of every installed signal adapter."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def load_adapters(names: Iterable[str]) -> dict[str, SignalAdapter]:
    """Instantiate the adapters registered under ``names`` (only those are imported).

    A name with no entry point, or an entry point that does not build a :class:`SignalAdapter`
    whose ``source`` is its own name, is a :class:`ConfigError`.
    """
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    adapters: dict[str, SignalAdapter] = {}
    for name in sorted(set(names)):
        if name not in found:
            known = ", ".join(sorted(found)) or "none"
            raise ConfigError(f"no signal adapter {name!r} is installed (installed: {known})")
        factory = found[name].load()
        adapter = factory() if callable(factory) else factory
        if not isinstance(adapter, SignalAdapter) or adapter.source != name:
            raise ConfigError(f"entry point {name!r} in {GROUP} is not a signal adapter for {name!r}")
        adapters[name] = adapter
    return adapters
