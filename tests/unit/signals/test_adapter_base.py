"""The adapter contract: registration, purity, delivery identity, JSON limits and shared helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from baton.errors import ConfigError, InputError, TooLargeError
from baton.model import EventType, ExternalLink
from baton.signals.adapters import GROUP, SignalAdapter, available, load_adapters
from baton.signals.adapters.base import (
    Delivery,
    Draft,
    build_events,
    clip_id,
    content_id,
    event_ids,
    header,
    html_text,
    load_json,
    parse_time,
    tags,
    text,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks"
RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
BUILT_IN = [
    "alertmanager",
    "freshdesk",
    "generic",
    "intercom",
    "jira",
    "linear",
    "pagerduty",
    "servicenow",
    "zendesk",
]


def test_every_built_in_adapter_is_registered_under_its_source_name() -> None:
    assert GROUP == "baton.signals"
    assert set(BUILT_IN) <= set(available())
    adapters = load_adapters(BUILT_IN)
    for name, adapter in adapters.items():
        assert isinstance(adapter, SignalAdapter)
        assert adapter.source == name


def test_an_adapter_that_is_not_installed_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no signal adapter 'acme'"):
        load_adapters(["acme"])


def fixture_files() -> list[tuple[str, Path]]:
    return [(path.parent.name, path) for path in sorted(FIXTURES.glob("*/*.json"))]


@pytest.mark.parametrize(
    ("source", "path"), fixture_files(), ids=lambda v: v if isinstance(v, str) else v.stem
)
def test_parsing_is_pure_the_same_delivery_gives_the_same_events(source: str, path: Path) -> None:
    adapter = load_adapters([source])[source]
    delivery = Delivery.from_bytes(path.read_bytes(), received_at=RECEIVED)
    first, second = adapter.parse(delivery), adapter.parse(delivery)
    assert first == second
    assert len({e.event_id for e in first}) == len(first)  # several events: distinct ids
    for event in first:
        assert event.occurred_at.utcoffset() is not None


@pytest.mark.parametrize("source", BUILT_IN)
def test_every_adapter_refuses_a_body_that_is_not_an_object_it_knows(source: str) -> None:
    adapter = load_adapters([source])[source]
    with pytest.raises(InputError):
        adapter.parse(Delivery.from_bytes(b'"hello"', received_at=RECEIVED))


# --- delivery identity --------------------------------------------------------------------------


def test_event_ids_number_every_event_after_the_first() -> None:
    assert event_ids("d-1", 1) == ["d-1"]
    assert event_ids("d-1", 3) == ["d-1", "d-1#1", "d-1#2"]


def test_content_id_changes_with_any_byte() -> None:
    assert content_id(b'{"a":1}') == content_id(b'{"a":1}')
    assert content_id(b'{"a":1}') != content_id(b'{"a": 1}')


@pytest.mark.parametrize(
    ("value", "hashed"), [("abc", False), ("x" * 248, False), ("x" * 249, True), ("", True)]
)
def test_clip_id_hashes_what_would_not_fit_with_an_index(value: str, hashed: bool) -> None:
    clipped = clip_id(value)
    assert clipped.startswith("sha256:") is hashed
    assert len(clipped + "#99") <= 256


# --- JSON limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error", "fragment"),
    [
        (b"{", InputError, "malformed JSON"),
        (b"", InputError, "malformed JSON"),
        (b"\xff", InputError, "malformed JSON"),
        (b"NaN", InputError, "malformed JSON"),
        (b'{"a":' * 5 + b"1" + b"}" * 5, TooLargeError, "deeper than 4"),
        (b"[" * 3000 + b"]" * 3000, TooLargeError, "deeper than 4"),
        (json.dumps({"a": list(range(11))}).encode(), TooLargeError, "longer than 10"),
    ],
)
def test_load_json_limits(body: bytes, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment) as caught:
        load_json(body, max_depth=4, max_array=10)
    if isinstance(caught.value, TooLargeError):
        assert caught.value.limit in ("depth", "array")


def test_load_json_accepts_what_is_within_the_limits() -> None:
    assert load_json(b'{"a": {"b": [1, 2, 3]}}', max_depth=4, max_array=3) == {"a": {"b": [1, 2, 3]}}


def test_a_delivery_needs_an_aware_time_of_receipt() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Delivery.from_bytes(b"{}", received_at=datetime(2026, 3, 2, 12, 0))


# --- helpers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-03-02T09:00:00Z", datetime(2026, 3, 2, 9, tzinfo=UTC)),
        ("2026-03-02T10:00:00.000+0100", datetime(2026, 3, 2, 9, tzinfo=UTC)),
        ("2018-08-03T09:52:26.739266876+02:00", datetime(2018, 8, 3, 7, 52, 26, 739266, tzinfo=UTC)),
        ("2013-12-12T05:35Z", datetime(2013, 12, 12, 5, 35, tzinfo=UTC)),
        (1772442000, datetime(2026, 3, 2, 9, tzinfo=UTC)),
        (1772442000000, datetime(2026, 3, 2, 9, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
        (True, None),
    ],
)
def test_parse_time(value: Any, expected: datetime | None) -> None:
    assert parse_time(value) == expected


def test_parse_time_keeps_the_offset_and_refuses_naive_text_unless_told() -> None:
    when = parse_time("2026-03-02T10:00:00+01:00")
    assert when is not None and when.utcoffset() == timedelta(hours=1)
    assert when.tzinfo == timezone(timedelta(hours=1))
    with pytest.raises(InputError, match="UTC offset"):
        parse_time("2026-03-02 09:00:00")
    assert parse_time("2026-03-02 09:00:00", assume_utc=True) == datetime(2026, 3, 2, 9, tzinfo=UTC)
    with pytest.raises(InputError, match="ISO 8601"):
        parse_time("yesterday")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("billing vip  eu", ("billing", "vip", "eu")),
        ("a,b, a", ("a", "b")),
        (["x", {"name": "y"}, 3, None, ""], ("x", "y", "3")),
        (["t" * 80], ("t" * 64,)),
        ([str(i) for i in range(150)], tuple(str(i) for i in range(100))),
        (None, None),
        (7, None),
    ],
)
def test_tags(value: Any, expected: tuple[str, ...] | None) -> None:
    assert tags(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<p>Hello</p><p>World &amp; you</p>", "Hello\nWorld & you"),
        ("line<br>break", "line\nbreak"),
        ("<p> </p>", None),
        (None, None),
    ],
)
def test_html_text(value: str | None, expected: str | None) -> None:
    assert html_text(value) == expected


def test_text_and_header_read_leniently() -> None:
    assert text({"a": {"b": 5}}, "a", "b") == "5"
    assert text({"a": "  x "}, "a") == "x"
    assert text({"a": []}, "a") is None and text({"a": True}, "a") is None and text("x", "a") is None
    assert header({"X-Thing": " v "}, "x-thing") == "v"
    assert header({"X-Thing": " "}, "x-thing") is None


def test_build_events_cuts_long_text_and_reports_what_the_model_refuses() -> None:
    link = ExternalLink(system="zendesk", id="1")
    [event] = build_events(
        source="zendesk",
        delivery_id="d",
        external=link,
        drafts=[
            Draft(
                type=EventType.TICKET_CREATED,
                occurred_at=RECEIVED,
                fields={"subject": "s" * 2000, "channel": "c" * 80},
            )
        ],
    )
    assert event.fields.subject == "s" * 1000 and event.fields.channel == "c" * 64
    with pytest.raises(InputError, match=r"zendesk delivery: fields\.priority"):
        build_events(
            source="zendesk",
            delivery_id="d",
            external=link,
            drafts=[
                Draft(type=EventType.TICKET_CREATED, occurred_at=RECEIVED, fields={"priority": "whenever"})
            ],
        )
