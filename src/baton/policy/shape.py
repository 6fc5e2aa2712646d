"""Shape checks of the policy documents that do not stop at the first bad part.

A document is validated against its model (:mod:`baton.policy.schema`) and every shape problem is
reported at ``file:line:col``. Then, so that the rest of the policy can still be checked (its
references, expressions, templates), the parts that held a problem are taken out and the document
is validated again without them. A part is the smallest named thing around a problem: a routing
or escalation rule, an SLA policy, a team member, a role, a team, a schedule, a calendar, an
out-of-office entry, or a top-level field. The names of the parts taken out are kept as *broken*:
they exist, so a reference to one must not be reported as unknown, since the one mistake has been
reported already. When even the pruned document does not validate (a required field is missing, a
list is left empty), the document is given up on as a whole and everything it defines counts as
unknown (:attr:`Checked.unknown`): references to those kinds are not checked at all.

List items taken out leave gaps, so a :class:`Document` maps the index of a kept item back to
where it was written (:meth:`Document.path`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from baton.policy.source import Locator

__all__ = ["PARTS", "Checked", "Document", "Problems", "check_shape"]

D = TypeVar("D", bound=BaseModel)
Loc = tuple[str | int, ...]

# Per file, the parts a shape problem can take out, most specific first: a path pattern ("*" is
# any key or index) and the kind of name the part defines (None: it defines no name).
PARTS: Mapping[str, tuple[tuple[tuple[str, ...], str | None], ...]] = {
    "baton.yaml": (),
    "teams.yaml": (
        (("teams", "*", "members", "*"), "member"),
        (("teams", "*"), "team"),
        (("roles", "*"), "role"),
    ),
    "schedules.yaml": ((("schedules", "*"), "schedule"), (("out_of_office", "*"), None)),
    "calendars.yaml": ((("calendars", "*"), "calendar"),),
    "sla.yaml": ((("sla", "*"), "sla"),),
    "routing.yaml": ((("routing", "*"), "routing"),),
    "escalation.yaml": ((("escalations", "*"), "escalation"),),
}
# What each file defines: when a file is given up on, references to these kinds are not checked.
DEFINES: Mapping[str, tuple[str, ...]] = {
    "baton.yaml": ("tier", "connector"),
    "teams.yaml": ("team", "member", "role"),
    "schedules.yaml": ("schedule",),
    "calendars.yaml": ("calendar",),
    "sla.yaml": ("sla",),
    "routing.yaml": ("routing",),
    "escalation.yaml": ("escalation",),
}
_GONE = object()
_NAME_RULE = "letters, digits, '.', '_' or '-', up to 64"


@dataclass
class Problems:
    """Every problem found, as ``file:line:col: message``."""

    items: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")


@dataclass
class Document:
    """A policy file: its display name, where each path was written, and for each top-level list
    whose items were taken out, the written index of each kept item."""

    name: str
    locator: Locator
    kept: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def path(self, list_name: str, index: int, *rest: str | int) -> list[str | int]:
        """The written path of item ``index`` of the validated list ``list_name``, then ``rest``."""
        kept = self.kept.get(list_name)
        return [list_name, kept[index] if kept is not None else index, *rest]


@dataclass(frozen=True)
class Checked(Generic[D]):
    """A validated document (None if given up on), the names of its parts taken out, by kind, and
    the kinds it defines that are unknown because the document was given up on."""

    doc: D | None
    broken: Mapping[str, frozenset[str]] = field(default_factory=dict)
    unknown: frozenset[str] = frozenset()


def check_shape(
    model: type[D], data: Any, document: Document, problems: Problems, *, file: str
) -> Checked[D]:
    """Validate ``data`` as ``model``, report every shape problem, and return what is left to check.

    ``file`` is the document's file name in the folder (``routing.yaml``), which says what its parts
    are (:data:`PARTS`)."""
    try:
        return Checked(model.model_validate(data if data is not None else {}))
    except ValidationError as exc:
        errors = exc.errors()
    _report(errors, document, problems)
    locs = [_data_path(tuple(e["loc"])) for e in errors]
    if not isinstance(data, dict) or any(not loc for loc in locs):
        return Checked(None, unknown=frozenset(DEFINES[file]))
    pruned, broken, kept = _prune(data, locs, PARTS[file])
    try:
        doc = model.model_validate(pruned)
    except ValidationError:
        return Checked(None, broken=broken, unknown=frozenset(DEFINES[file]))
    document.kept.update(kept)
    return Checked(doc, broken=broken)


def _branch(part: str | int) -> bool:
    """A part of a Pydantic error location that names no data: "[key]", a union branch..."""
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _data_path(loc: Loc) -> Loc:
    """The data path an error location starts with (up to its first part that is no data)."""
    out: list[str | int] = []
    for part in loc:
        if _branch(part):
            break
        out.append(part)
    return tuple(out)


def _matches(loc: Loc, pattern: tuple[str, ...]) -> bool:
    return len(loc) >= len(pattern) and all(p in ("*", part) for p, part in zip(pattern, loc, strict=False))


def _prune(
    data: dict[str, Any], locs: Sequence[Loc], parts: Sequence[tuple[tuple[str, ...], str | None]]
) -> tuple[dict[str, Any], dict[str, frozenset[str]], dict[str, tuple[int, ...]]]:
    """``data`` without the part around each location; the names of the parts taken out by kind;
    and for each top-level list that lost items, the written index of each item kept."""
    pruned = copy.deepcopy(data)
    broken: dict[str, set[str]] = {}
    for loc in locs:
        target, kind = loc[:1], None
        for pattern, part_kind in parts:
            if _matches(loc, pattern):
                target, kind = loc[: len(pattern)], part_kind
                break
        container: Any = pruned
        for key in target[:-1]:
            container = _child(container, key)
        key = target[-1]
        item = _child(container, key)
        if item is _GONE or (item is None and not _has(container, key)):
            continue
        if kind is not None:
            name = item.get("name") if isinstance(container, list) and isinstance(item, dict) else key
            if isinstance(name, str):
                broken.setdefault(kind, set()).add(name)
            if kind == "team" and isinstance(item, dict) and isinstance(item.get("members"), dict):
                broken.setdefault("member", set()).update(str(m) for m in item["members"])
        container[key] = _GONE
    kept: dict[str, tuple[int, ...]] = {}
    for name, value in list(pruned.items()):
        if value is _GONE:
            del pruned[name]
        elif isinstance(value, list) and any(item is _GONE for item in value):
            kept[name] = tuple(i for i, item in enumerate(value) if item is not _GONE)
            pruned[name] = [item for item in value if item is not _GONE]
        elif isinstance(value, dict):
            pruned[name] = _without_gone(value)
    return pruned, {k: frozenset(v) for k, v in broken.items()}, kept


def _without_gone(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_gone(v) for k, v in value.items() if v is not _GONE}
    return value


def _has(container: Any, key: str | int) -> bool:
    if isinstance(container, dict):
        return key in container
    return isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container)


def _child(container: Any, key: str | int) -> Any:
    return container[key] if _has(container, key) else None


def _report(errors: Sequence[Any], document: Document, problems: Problems) -> None:
    located = [tuple(e["loc"]) for e in errors]

    def noise(error: Any) -> bool:
        loc = tuple(error["loc"])
        # "at least 1 item" about a list whose items failed; a union branch the input is not.
        if error["type"] == "too_short" and any(len(o) > len(loc) and o[: len(loc)] == loc for o in located):
            return True
        if error["type"].endswith("_type") and loc and isinstance(loc[-1], str):
            parent = loc[:-1]
            return any(o[: len(parent)] == parent and o != loc and len(o) > len(parent) for o in located)
        return False

    for error in errors:
        if noise(error):
            continue
        loc = [p for p in error["loc"] if not _branch(p)]
        message = error["msg"].removeprefix("Value error, ")  # a validator's own words, as written
        if error["type"] == "string_pattern_mismatch":
            message = f"{error['input']!r} is not valid here: {message}"
            if "A-Za-z0-9" in str(error.get("ctx", {}).get("pattern", "")):
                message = f"{error['input']!r} is not a valid name ({_NAME_RULE})"
        elif error["type"] == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}" if loc else message
        elif error["type"] == "missing":
            message = f"missing field {loc[-1]!r}" if loc else message
        problems.add(document.locator.where(loc), message)
