"""The HTTP API: durable acceptance, auth on every endpoint, and hostile input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from baton.clock import to_ms
from baton.engine.batcher import Batcher
from baton.engine.runtime import Engine
from baton.model import Event
from baton.settings import load_settings
from baton.store.db import Database
from baton.store.schema import events
from baton.web.app import create_app
from baton.web.auth import create_token
from tests.conftest import START

LIMIT = 64 * 1024


@pytest.fixture
def tokens(db: Database) -> dict[str, str]:
    with db.writer.begin() as conn:
        return {
            role: create_token(conn, role=role, name=role, now_ms=0) for role in ("viewer", "ingest", "admin")
        }


@pytest.fixture
def client(engine: Engine, db: Database, tmp_path: Path) -> Iterator[TestClient]:
    settings = load_settings({}, workspace=tmp_path, max_body_bytes=LIMIT)
    app = create_app(settings=settings, db=db, batcher=Batcher(engine, max_batch=50, wait_seconds=0.001))
    with TestClient(app) as c:
        yield c


def body(n: int | str = 1, **over: object) -> dict[str, object]:
    data: dict[str, object] = {
        "source": "zendesk",
        "event_id": str(n),
        "type": "ticket.created",
        "occurred_at": START.isoformat(),
        "external": {"system": "zendesk", "id": str(n)},
        "fields": {"subject": "Printer on fire", "priority": "high"},
    }
    data.update(over)
    return data


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stored(db: Database) -> int:
    with db.reader.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def test_accepted_means_committed_and_redelivery_is_200(
    client: TestClient, db: Database, tokens: dict[str, str]
) -> None:
    r = client.post("/v1/events", json=body(), headers=auth(tokens["ingest"]))
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "accepted"
    assert stored(db) == 1  # visible to another connection the moment the answer arrives
    again = client.post("/v1/events", json=body(), headers=auth(tokens["ingest"]))
    assert again.status_code == 200 and again.json() == {
        **r.json(),
        "status": "duplicate",
        "decision_id": None,
    }
    assert stored(db) == 1


def test_ticket_and_timeline_endpoints(client: TestClient, tokens: dict[str, str]) -> None:
    ticket_id = client.post("/v1/events", json=body(), headers=auth(tokens["ingest"])).json()["ticket_id"]
    viewer = auth(tokens["viewer"])
    listed = client.get("/v1/tickets", headers=viewer).json()["tickets"]
    assert [t["id"] for t in listed] == [ticket_id]
    ticket = client.get(f"/v1/tickets/{ticket_id}", headers=viewer).json()
    assert ticket["priority"] == "high" and ticket["owner"]["role"] == "l1"
    kinds = [
        i["kind"] for i in client.get(f"/v1/tickets/{ticket_id}/timeline", headers=viewer).json()["items"]
    ]
    assert kinds == ["event.received", "decision", "action.queued"]
    assert client.get("/v1/tickets/nope", headers=viewer).status_code == 404
    page = client.get(f"/tickets/{ticket_id}", headers=viewer)
    assert page.status_code == 200 and "Printer on fire" in page.text and "decision" in page.text


@pytest.mark.parametrize(
    ("method", "path", "role", "status"),
    [
        ("post", "/v1/events", None, 401),
        ("post", "/v1/events", "viewer", 403),
        ("get", "/v1/tickets", None, 401),
        ("get", "/v1/tickets", "ingest", 403),
        ("get", "/v1/tickets/x", None, 401),
        ("get", "/v1/tickets/x/timeline", None, 401),
        ("get", "/v1/stats", None, 401),
        ("get", "/v1/audit/verify", "viewer", 403),
        ("get", "/v1/audit/verify", None, 401),
        ("get", "/", None, 401),
        ("get", "/tickets/x", None, 401),
    ],
)
def test_every_endpoint_checks_the_role(
    client: TestClient, tokens: dict[str, str], method: str, path: str, role: str | None, status: int
) -> None:
    headers = auth(tokens[role]) if role else {}
    r = client.request(method, path, headers=headers, json=body() if method == "post" else None)
    assert r.status_code == status


@pytest.mark.parametrize(
    "token", [b"", b"bt_", b"bt_" + b"x" * 40, b"Bearer", b"x" * 5000, "bt_\u00e9\u00e9".encode()]
)
def test_bad_tokens_are_refused(client: TestClient, token: bytes) -> None:
    r = client.get("/v1/tickets", headers={"Authorization": b"Bearer " + token})
    assert r.status_code == 401


def test_healthz_is_open_and_openapi_publishes_the_event_schema(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    schema = resolve(spec, body["$ref"])
    assert schema["title"] == "Event" and "event_id" in schema["required"]
    assert resolve(spec, schema["properties"]["fields"]["$ref"])["title"] == "TicketFields"
    refs = list(refs_in(spec))
    assert len(refs) > 20
    for ref in refs:  # every reference in the document resolves inside it (ReDoc refuses one that does not)
        resolve(spec, ref)


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def resolve(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    assert isinstance(node, dict)
    return node


def deep(n: int) -> str:
    return '{"a":' * n + "1" + "}" * n


@pytest.mark.parametrize(
    ("raw", "status", "fragment"),
    [
        (b"", 422, "malformed JSON"),
        (b"{", 422, "malformed JSON"),
        (b"[1, 2]", 422, "JSON object"),
        (b'"event"', 422, "JSON object"),
        (b"\xff\xfe garbage", 422, "malformed JSON"),
        (json.dumps(body(type="ticket.exploded")).encode(), 422, "type"),
        (json.dumps(body(occurred_at="yesterday")).encode(), 422, "occurred_at"),
        (json.dumps(body(occurred_at="2026-03-02T09:00:00")).encode(), 422, "timezone"),
        (json.dumps(body(event_id="")).encode(), 422, "event_id"),
        (json.dumps(body(source="Bad Source!")).encode(), 422, "source"),
        (json.dumps(body(surprise=1)).encode(), 422, "Extra inputs"),
        (json.dumps(body(fields={"subject": 5})).encode(), 422, "subject"),
        (json.dumps(body(fields={"priority": "whenever"})).encode(), 422, "priority"),
        (json.dumps(body(fields={"tags": ["x"] * 101})).encode(), 422, "tags"),
        (json.dumps(body(fields={"subject": "s" * 1001})).encode(), 422, "subject"),
        (json.dumps(body(data={"x": json.loads(deep(40))})).encode(), 400, "deeper"),
        (('{"source":"x","event_id":"1","data":' + deep(5000) + "}").encode(), 400, "deeper"),
        (('{"source":"x","event_id":"1","data":' + deep(20000) + "}").encode(), 413, ""),
        (b'{"source": NaN}', 422, ""),
    ],
)
def test_malformed_events_get_clear_errors_and_store_nothing(
    client: TestClient, db: Database, tokens: dict[str, str], raw: bytes, status: int, fragment: str
) -> None:
    r = client.post(
        "/v1/events", content=raw, headers={**auth(tokens["ingest"]), "content-type": "application/json"}
    )
    assert r.status_code == status, r.text
    if status != 413:  # a body over the limit may be refused by size before it is parsed
        assert fragment in r.json()["error"]["message"]
    assert stored(db) == 0


def test_oversized_bodies_are_refused_with_413(
    client: TestClient, db: Database, tokens: dict[str, str]
) -> None:
    huge = json.dumps(body(fields={"body": "x" * (LIMIT + 10)})).encode()
    r = client.post(
        "/v1/events", content=huge, headers={**auth(tokens["ingest"]), "content-type": "application/json"}
    )
    assert r.status_code == 413 and "larger" in r.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(LIMIT // 1024 + 2):
            yield b" " * 1024

    streamed = client.post(
        "/v1/events", content=chunks(), headers={**auth(tokens["ingest"]), "content-type": "application/json"}
    )
    assert streamed.status_code == 413
    bad_length = client.post(
        "/v1/events",
        content=b"{}",
        headers={**auth(tokens["ingest"]), "content-type": "application/json", "content-length": "abc"},
    )
    assert bad_length.status_code == 400
    assert stored(db) == 0


def test_wrong_media_type_is_415(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.post(
        "/v1/events", content=b"a=b", headers={**auth(tokens["ingest"]), "content-type": "text/plain"}
    )
    assert r.status_code == 415


def test_concurrent_requests_share_batches_and_all_land(
    client: TestClient, db: Database, tokens: dict[str, str]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(
                lambda i: client.post("/v1/events", json=body(i), headers=auth(tokens["ingest"])).status_code,
                range(120),
            )
        )
    assert codes == [202] * 120
    assert stored(db) == 120


def test_login_sets_a_cookie_for_the_dashboard(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.get(f"/login?token={tokens['viewer']}", follow_redirects=False)
    assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
    page = client.get("/")
    assert page.status_code == 200 and "Tickets" in page.text
    assert client.get("/login?token=bt_nope", follow_redirects=False).status_code == 401


def test_the_event_schema_round_trips(tokens: dict[str, str]) -> None:
    ev = Event.model_validate(body())
    assert Event.model_validate_json(ev.model_dump_json()) == ev
    assert to_ms(ev.occurred_at) == to_ms(START)
