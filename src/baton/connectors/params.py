"""Reading action params, which come from policy files and templates: any JSON value may be there."""

from __future__ import annotations

__all__ = ["param_list", "param_str"]


def param_str(value: object) -> str:
    """The value as trimmed text; ``""`` for a missing one."""
    return str(value).strip() if value is not None else ""


def param_list(value: object) -> list[str]:
    """A list of non-empty trimmed strings from a list, a comma-separated string or one value."""
    if value is None:
        return []
    items = (
        value.split(",") if isinstance(value, str) else value if isinstance(value, list | tuple) else [value]
    )
    return [s for s in (str(v).strip() for v in items) if s]
