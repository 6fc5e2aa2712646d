"""Mappings for history imports: which column of an exported log is which ticket field.

A mapping is a small YAML file (``docs/import.md`` describes every field)::

    source: servicenow                 # the system the log comes from (Event.source)
    id: number                         # the ticket's id in that system
    time: {column: sys_updated_at, format: "%d/%m/%Y %H:%M", timezone: UTC, created: opened_at}
    empty: ["?"]                       # values that mean "no value" (besides the empty string)
    status: {column: incident_state, map: {New: open, Resolved: solved, Closed: closed}}
    priority: {column: priority, map: {"1 - Critical": urgent, "3 - Moderate": normal}}
    team: assignment_group             # a change of team is a handoff
    tier: {column: ST Level, map: {L1: L1, L2: L2}}   # or a plain column name
    assignee: assigned_to
    subject: [category, subcategory]   # joined with " / "

Built-in mappings (``servicenow``, ``bpic2013``) live next to this module in ``mappings/``.
Every problem in a mapping file is reported as ``file:line:col: message``; so is a column the
mapping names that the file being imported does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from baton.errors import ConfigError
from baton.model import Priority, Stage
from baton.policy.source import Locator, SourceError, read_yaml

__all__ = [
    "BUILTIN_MAPPINGS",
    "HistoryMapping",
    "MappingDoc",
    "PriorityMap",
    "StatusMap",
    "TierMap",
    "TimeSpec",
    "load_mapping",
]

MAPPINGS_DIR = Path(__file__).parent / "mappings"
BUILTIN_MAPPINGS = ("bpic2013", "servicenow")

Column = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TimeSpec(_Doc):
    """When each row happened; ``created`` optionally names when the ticket was opened."""

    column: Column
    format: Annotated[str, StringConstraints(min_length=1, max_length=64)] = Field(
        default="iso", description='"iso" (ISO 8601) or a strptime pattern such as "%d/%m/%Y %H:%M".'
    )
    timezone: str = Field(default="UTC", description="Zone of times written without an offset.")
    created: Column | None = None

    @field_validator("format")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if value == "iso":
            return value
        if "%" not in value:
            raise ValueError(f'{value!r} is neither "iso" nor a strptime pattern (such as "%d/%m/%Y %H:%M")')
        sample = datetime(2016, 2, 29, 13, 45, 30)
        try:
            datetime.strptime(sample.strftime(value), value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a usable strptime pattern: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value.upper() == "UTC":
            return "UTC"
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class StatusMap(_Doc):
    column: Column
    map: dict[str, Stage | None] = Field(description="Source value -> Baton stage (null: not stated).")


class PriorityMap(_Doc):
    column: Column
    map: dict[str, Priority | None] = Field(description="Source value -> Baton priority (null: not stated).")


class TierMap(_Doc):
    column: Column
    map: dict[str, Annotated[str, StringConstraints(min_length=1, max_length=64)] | None] | None = Field(
        default=None, description="Source value -> Baton tier, lowest first (null: not stated)."
    )


class MappingDoc(_Doc):
    """The mapping file, validated."""

    source: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    description: str = ""
    format: Literal["auto", "csv", "jsonl"] = "auto"
    delimiter: Annotated[str, StringConstraints(min_length=1, max_length=1)] = ","
    empty: tuple[str, ...] = ()
    id: Column
    time: TimeSpec
    status: StatusMap | None = None
    priority: PriorityMap | None = None
    team: Column | None = None
    tier: TierMap | None = Field(default=None, description="A column name, or {column, map}.")
    assignee: Column | None = None
    requester: Column | None = None
    account: Column | None = None
    category: Column | None = None
    channel: Column | None = None
    subject: tuple[Column, ...] = ()
    body: tuple[Column, ...] = ()
    keep: tuple[Column, ...] = Field(default=(), description="Columns copied into the event's data.")

    @field_validator("subject", "body", "keep", "empty", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("tier", mode="before")
    @classmethod
    def _column_only(cls, value: Any) -> Any:
        return {"column": value} if isinstance(value, str) else value


@dataclass(frozen=True)
class HistoryMapping:
    """A validated mapping, with where each of its parts was written (for located errors)."""

    doc: MappingDoc
    name: str
    locator: Locator

    @property
    def source(self) -> str:
        return self.doc.source

    @property
    def zone(self) -> tzinfo:
        return UTC if self.doc.time.timezone == "UTC" else ZoneInfo(self.doc.time.timezone)

    @property
    def tiers(self) -> tuple[str, ...]:
        """The mapped tiers, lowest first (the order of the tier map), when the mapping maps them."""
        tier = self.doc.tier
        if tier is None or tier.map is None:
            return ()
        return tuple(dict.fromkeys(v for v in tier.map.values() if v is not None))

    def columns(self) -> dict[str, tuple[str | int, ...]]:
        """Every column the mapping reads, with the path in the mapping file that names it."""
        d = self.doc
        found: dict[str, tuple[str | int, ...]] = {d.id: ("id",), d.time.column: ("time", "column")}
        if d.time.created:
            found.setdefault(d.time.created, ("time", "created"))
        for name in ("status", "priority", "tier"):
            spec = getattr(d, name)
            if spec is not None:
                found.setdefault(spec.column, (name, "column"))
        for name in ("team", "assignee", "requester", "account", "category", "channel"):
            value = getattr(d, name)
            if value is not None:
                found.setdefault(value, (name,))
        for name in ("subject", "body", "keep"):
            for i, value in enumerate(getattr(d, name)):
                found.setdefault(value, (name, i))
        return found

    def check_header(self, header: list[str]) -> list[str]:
        """``file:line:col`` problems for columns the mapping names but the file lacks."""
        have = set(header)
        return [
            f"{self.locator.where(path)}: column {column!r} is not in the file "
            f"(its columns: {', '.join(header[:12])}{', ...' if len(header) > 12 else ''})"
            for column, path in self.columns().items()
            if column not in have
        ]


def load_mapping(name_or_path: str) -> HistoryMapping:
    """A built-in mapping by name (``servicenow``, ``bpic2013``) or a mapping YAML file.

    Raises :class:`ConfigError` listing every problem as ``file:line:col: message``.
    """
    path = Path(name_or_path)
    if name_or_path in BUILTIN_MAPPINGS and not path.exists():
        path, display = MAPPINGS_DIR / f"{name_or_path}.yaml", f"<mapping {name_or_path}>"
    elif path.suffix.lower() in (".yaml", ".yml") or path.exists():
        display = str(path)
    else:
        raise ConfigError(
            f"unknown mapping {name_or_path!r}: use {', '.join(BUILTIN_MAPPINGS)} or a YAML file"
        )
    try:
        located = read_yaml(path, display=display)
    except SourceError as exc:
        raise ConfigError(str(exc)) from None
    data = located.data if located.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{located.locator.where(())}: a mapping is a YAML mapping (key: value)")
    try:
        doc = MappingDoc.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(_problems(exc, located.locator))) from None
    return HistoryMapping(
        doc=doc, name=path.stem if display == str(path) else name_or_path, locator=located.locator
    )


def _problems(exc: ValidationError, locator: Locator) -> list[str]:
    problems: dict[str, None] = {}
    for error in exc.errors():
        # Union members and validator wrappers show up in the location; they are not in the file.
        loc = [
            p for p in error["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-")))
        ]
        kind, message = error["type"], error["msg"]
        if kind == "extra_forbidden" and loc:
            message = f"unknown field {loc[-1]!r}"
        elif kind == "missing" and loc:
            message = f"missing field {loc[-1]!r}"
        elif kind == "enum":
            message = f"{error['input']!r} is not one of: {error.get('ctx', {}).get('expected', '')}"
        elif kind == "string_pattern_mismatch":
            message = (
                f"{error['input']!r} is not a valid source name (lower-case letters, digits, '.', '_', '-')"
            )
        elif kind.startswith("value_error"):
            message = message.removeprefix("Value error, ")
        problems[f"{locator.where(loc)}: {message}"] = None
    return list(problems)
