"""The generic adapter: canonical events over a webhook, validated as POST /v1/events validates them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from baton.errors import InputError
from baton.signals.adapters.base import Delivery
from baton.signals.adapters.generic import GenericAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "webhooks" / "generic"
RECEIVED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ADAPTER = GenericAdapter()


def parse_bytes(body: bytes) -> list[object]:
    return list(ADAPTER.parse(Delivery.from_bytes(body, received_at=RECEIVED)))


@pytest.mark.parametrize(
    ("name", "ids"),
    [("one_event", ["inv-9001-overdue"]), ("two_events", ["inv-9001-overdue", "inv-9001-paid"])],
)
def test_one_event_or_an_array_of_them(name: str, ids: list[str]) -> None:
    events = ADAPTER.parse(
        Delivery.from_bytes((FIXTURES / f"{name}.json").read_bytes(), received_at=RECEIVED)
    )
    assert [e.event_id for e in events] == ids
    assert {e.source for e in events} == {"billing"}  # events keep the source they name


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'"x"', "JSON object"),
        (b"[1]", "event 0"),
        (json.dumps({"source": "billing"}).encode(), "event_id"),
        (
            json.dumps([json.loads((FIXTURES / "one_event.json").read_bytes()), {"type": "nope"}]).encode(),
            "event 1",
        ),
    ],
)
def test_invalid_events_are_refused_with_their_index(body: bytes, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        parse_bytes(body)
