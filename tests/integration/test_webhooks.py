"""``POST /v1/webhooks/<source>`` over real HTTP: a uvicorn server on loopback, httpx as the vendor.

The verdict matrix signs real fixture bodies the way each vendor does and spoils them one way at a
time; redelivery and concurrency run on both databases; limits and configuration on SQLite.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from baton.clock import FakeClock
from baton.engine.batcher import Batcher
from baton.engine.runtime import Engine
from baton.errors import ConfigError
from baton.policy.loader import load_policy
from baton.settings import load_settings
from baton.signals import webhooks
from baton.signals.signatures import (
    HUB_SIGNATURE,
    PAGERDUTY_SIGNATURE,
    ZENDESK_SIGNATURE,
    ZENDESK_TIMESTAMP,
    sign_intercom,
    sign_jira,
    sign_pagerduty,
    sign_token,
    sign_zendesk,
)
from baton.signals.webhooks import TokenBucket, load_webhooks_config
from baton.store import read
from baton.store.db import Database, open_database
from baton.store.schema import events
from baton.web.app import create_app
from baton.web.auth import create_token
from tests.conftest import START, TEST_POLICY

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
NEW = "new-secret-5f0c2a9e71d4"
OLD = "old-secret-0b8d3c61e2a7"
WRONG = "wrong-secret-9a7e6d5c4b3a"
LIMIT = 64 * 1024

CONFIG: dict[str, Any] = {
    "sources": {
        "zendesk": {"secrets": [NEW, OLD]},
        "pagerduty": {"secrets": [NEW, OLD]},
        "jira": {"secrets": [NEW, OLD]},
        "intercom": {"secrets": [NEW, OLD]},
        "freshdesk": {"secrets": [f"baton:{NEW}", f"baton:{OLD}"], "scheme": "Basic"},
        "alertmanager": {"secrets": [NEW, OLD]},
        "servicenow": {"secrets": [NEW, OLD], "header": "X-Baton-Token"},
        "generic": {"secrets": [NEW, OLD]},
    }
}


# --- a real server ---------------------------------------------------------------------------------


@dataclass
class Server:
    url: str
    db: Database
    clock: FakeClock
    config: Path
    engine: Engine

    def post(self, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/webhooks/{source}",
            content=body,
            headers={"content-type": "application/json", **headers},
            timeout=30,
        )

    def stored(self) -> int:
        with self.db.reader.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(json.dumps(config))  # JSON is YAML
    path.chmod(0o600)
    return path


@contextmanager
def serve(
    db: Database, workspace: Path, config: dict[str, Any] | None, *, policy: Path = TEST_POLICY
) -> Iterator[Server]:
    clock = FakeClock(START)
    engine = Engine(db=db, policy=load_policy(policy), clock=clock)
    path = workspace / "webhooks.yaml"
    if config is not None:
        write_config(path, config)
    settings = load_settings({}, workspace=workspace, max_body_bytes=LIMIT)
    app = create_app(
        settings=settings, db=db, batcher=Batcher(engine, max_batch=50, wait_seconds=0.005), clock=clock
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield Server(f"http://127.0.0.1:{sock.getsockname()[1]}", db, clock, path, engine)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def serve_sqlite(workspace: Path, config: dict[str, Any]) -> Iterator[Server]:
    """:func:`serve` on a fresh SQLite database in ``workspace``, closed afterwards."""
    db = open_database(f"sqlite:///{workspace / 'baton.db'}")
    db.migrate()
    try:
        with serve(db, workspace, config) as server:
            yield server
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One SQLite-backed server for the verdict matrix and the limits: every case sends its own body."""
    with serve_sqlite(tmp_path_factory.mktemp("webhooks"), CONFIG) as server:
        yield server


@pytest.fixture
def server(db: Database, tmp_path: Path) -> Iterator[Server]:
    """A server on the parametrised database (SQLite and PostgreSQL)."""
    with serve(db, tmp_path, CONFIG) as running:
        yield running


# --- the verdict matrix -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    source: str
    fixture: str
    header: str
    sign: Callable[[bytes, str, datetime], dict[str, str]]
    timestamp_header: str | None = None


SIGNED = [
    Signed(
        "zendesk",
        "zendesk/customer_replied",
        ZENDESK_SIGNATURE,
        lambda b, s, t: sign_zendesk(body=b, secret=s, timestamp=t),
        ZENDESK_TIMESTAMP,
    ),
    Signed(
        "pagerduty",
        "pagerduty/triggered",
        PAGERDUTY_SIGNATURE,
        lambda b, s, t: sign_pagerduty(body=b, secrets=[s]),
    ),
    Signed("jira", "jira/comment_customer", HUB_SIGNATURE, lambda b, s, t: sign_jira(body=b, secret=s)),
    Signed(
        "intercom", "intercom/user_replied", HUB_SIGNATURE, lambda b, s, t: sign_intercom(body=b, secret=s)
    ),
]


def unique_body(source: str, fixture: str, tag: str) -> bytes:
    """The fixture as a distinct delivery: its vendor delivery id (or, failing one, its bytes) is new."""
    data = json.loads((FIXTURES / f"{fixture}.json").read_bytes())
    if source == "pagerduty":
        data["event"]["id"] = tag
    elif source == "intercom":
        data["id"] = tag
    elif source == "generic":
        data["event_id"] = tag
    elif source == "servicenow":
        data["sys_mod_count"] = tag
    else:
        data["test_case"] = tag
    return json.dumps(data, ensure_ascii=False).encode()


def flip_bit(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def spoil_signature(value: str) -> str:
    """One bit of the signature itself flipped (in its decoded bytes, re-encoded as the vendor would)."""
    prefix, sep, digest = value.rpartition("=") if "=" in value[:8] else ("", "", value)
    if sep:  # hex after "v1=" / "sha256=" / "sha1="
        raw = flip_bit(bytes.fromhex(digest), 0)
        return f"{prefix}={raw.hex()}"
    raw = flip_bit(base64.b64decode(value), 0)
    return base64.b64encode(raw).decode()


SIGNED_CASES = [
    ("valid", 202),
    ("rotated: signed with the old secret", 202),
    ("timestamp 299 s old", 202),
    ("one body bit flipped", 401),
    ("one signature bit flipped", 401),
    ("wrong secret", 401),
    ("signature header missing", 401),
    ("timestamp header missing", 401),
    ("timestamp 301 s old", 401),
    ("timestamp 301 s ahead", 401),
    ("body re-serialised", 401),
    ("a Baton API token instead", 401),
]


# Every case for every signed source; the timestamp cases only where the vendor signs a timestamp.
SIGNED_MATRIX = [
    pytest.param(scheme, case, expected, id=f"{scheme.source}: {case}")
    for scheme in SIGNED
    for case, expected in SIGNED_CASES
    if scheme.timestamp_header or "timestamp" not in case
]


@pytest.mark.parametrize(("scheme", "case", "expected"), SIGNED_MATRIX)
def test_signed_source_verdicts(
    shared: Server, scheme: Signed, case: str, expected: int, caplog: pytest.LogCaptureFixture
) -> None:
    tag = f"{scheme.source}-{case}"
    body = unique_body(scheme.source, scheme.fixture, tag)
    now = shared.clock.now()
    secret = OLD if case.startswith("rotated") else WRONG if case == "wrong secret" else NEW
    at = {"timestamp 299 s old": -299, "timestamp 301 s old": -301, "timestamp 301 s ahead": 301}.get(case, 0)
    headers = scheme.sign(body, secret, now + timedelta(seconds=at))
    sent = body
    if case == "one body bit flipped":
        sent = flip_bit(body, len(body) // 2)
    elif case == "one signature bit flipped":
        headers[scheme.header] = spoil_signature(headers[scheme.header])
    elif case == "signature header missing":
        del headers[scheme.header]
    elif case == "timestamp header missing":
        assert scheme.timestamp_header is not None
        del headers[scheme.timestamp_header]
    elif case == "body re-serialised":
        sent = json.dumps(json.loads(body), indent=2, sort_keys=True).encode()
        assert sent != body and json.loads(sent) == json.loads(body)
    elif case == "a Baton API token instead":
        with shared.db.writer.begin() as conn:
            token = create_token(conn, role="ingest", name="ingest", now_ms=0)
        headers = {"Authorization": f"Bearer {token}"}
    before = shared.stored()
    with caplog.at_level(logging.INFO):
        response = shared.post(scheme.source, sent, headers)
    assert response.status_code == expected, response.text
    if expected == 401:
        assert response.json()["error"]["code"] == "unauthorized"
        assert shared.stored() == before
    else:
        assert response.json()["status"] == "accepted"
        assert shared.stored() > before
    for secret_value in (NEW, OLD, WRONG):
        assert secret_value not in response.text and secret_value not in caplog.text


@dataclass(frozen=True)
class Token:
    source: str
    fixture: str
    header: str
    scheme: str | None
    secret: Callable[[str], str]


TOKENS = [
    Token("freshdesk", "freshdesk/customer_replied", "Authorization", "Basic", lambda s: f"baton:{s}"),
    Token("alertmanager", "alertmanager/firing", "Authorization", "Bearer", lambda s: s),
    Token("servicenow", "servicenow/customer_comment", "X-Baton-Token", None, lambda s: s),
    Token("generic", "generic/one_event", "Authorization", "Bearer", lambda s: s),
]
TOKEN_CASES = [
    ("valid", 202),
    ("rotated: the old token", 202),
    ("wrong token", 401),
    ("header missing", 401),
    ("another scheme", 401),
    ("a Baton API token instead", 401),
]


@pytest.mark.parametrize(("case", "expected"), TOKEN_CASES, ids=[c for c, _ in TOKEN_CASES])
@pytest.mark.parametrize("source", TOKENS, ids=[t.source for t in TOKENS])
def test_token_source_verdicts(shared: Server, source: Token, case: str, expected: int) -> None:
    body = unique_body(source.source, source.fixture, f"{source.source}-{case}")
    if source.source == "alertmanager":  # alert ids are the alerts' states: make them new
        data = json.loads(body)
        for alert in data["alerts"]:
            alert["fingerprint"] += case.replace(" ", "")
        body = json.dumps(data).encode()
    secret = OLD if case.startswith("rotated") else WRONG if case == "wrong token" else NEW
    scheme: Any = source.scheme
    headers = sign_token(token=source.secret(secret), header=source.header, scheme=scheme)
    if case == "header missing":
        headers = {}
    elif case == "another scheme":
        other: Any = "Bearer" if source.scheme != "Bearer" else "Basic"
        headers = sign_token(token=source.secret(NEW), header=source.header, scheme=other)
    elif case == "a Baton API token instead":
        with shared.db.writer.begin() as conn:
            token = create_token(conn, role="admin", name="admin", now_ms=0)
        headers = {"Authorization": f"Bearer {token}"}
    before = shared.stored()
    response = shared.post(source.source, body, headers)
    assert response.status_code == expected, response.text
    assert (shared.stored() > before) is (expected == 202)
    assert NEW not in response.text and OLD not in response.text


def zendesk_post(server: Server, body: bytes, *, invocation: str | None = None) -> httpx.Response:
    headers = sign_zendesk(body=body, secret=NEW, timestamp=server.clock.now())
    if invocation is not None:
        headers |= {
            "x-zendesk-webhook-id": "01F1KRFQ6BG29CNWFR60NK5FNY",
            "x-zendesk-webhook-invocation-id": invocation,
        }
    return server.post("zendesk", body, headers)


# --- redelivery and concurrency, on both databases --------------------------------------------------


def test_a_redelivery_is_accepted_and_stored_once(server: Server) -> None:
    body = (FIXTURES / "zendesk" / "ticket_created.json").read_bytes()
    first = zendesk_post(server, body, invocation="8350205582")
    assert first.status_code == 202, first.text
    assert first.json()["events"][0]["event_id"] == "01F1KRFQ6BG29CNWFR60NK5FNY:8350205582"
    assert server.stored() == 1  # committed before the answer
    again = zendesk_post(server, body, invocation="8350205582")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["events"][0]["ticket_id"] == first.json()["events"][0]["ticket_id"]
    assert server.stored() == 1


@pytest.mark.parametrize(
    ("fixture", "source", "events_per_delivery"),
    [("zendesk/customer_replied", "zendesk", 1), ("servicenow/update_multi", "servicenow", 4)],
)
def test_concurrent_duplicates_are_stored_once(
    server: Server, fixture: str, source: str, events_per_delivery: int
) -> None:
    body = (FIXTURES / f"{fixture}.json").read_bytes()
    if source == "zendesk":
        headers = sign_zendesk(body=body, secret=NEW, timestamp=server.clock.now())
    else:
        headers = sign_token(token=NEW, header="X-Baton-Token", scheme=None)
    with ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: server.post(source, body, headers), range(12)))
    assert {r.status_code for r in responses} <= {200, 202}, [r.text for r in responses]
    assert server.stored() == events_per_delivery
    ids = {tuple(e["event_id"] for e in r.json()["events"]) for r in responses}
    assert len(ids) == 1  # every answer names the same events
    # Each event was accepted by exactly one request; every other request heard "duplicate".
    for event_id in ids.pop():
        verdicts = [e["status"] for r in responses for e in r.json()["events"] if e["event_id"] == event_id]
        assert sorted(verdicts) == ["accepted"] + ["duplicate"] * 11


def test_one_delivery_of_several_events_lands_in_order_on_one_ticket(server: Server) -> None:
    jira = [(FIXTURES / "jira" / f"{name}.json").read_bytes() for name in ("issue_created", "multi_change")]
    answers = [server.post("jira", body, sign_jira(body=body, secret=NEW)).json() for body in jira]
    ticket_ids = {e["ticket_id"] for answer in answers for e in answer["events"]}
    assert len(ticket_ids) == 1 and [len(a["events"]) for a in answers] == [1, 3]
    with server.db.reader.connect() as conn:
        ticket = read.get_ticket(conn, ticket_ids.pop())
    assert ticket is not None
    assert ticket.subject == "Checkout down: card_declined for every card"
    assert (
        ticket.priority == "urgent" and ticket.owner is not None and ticket.owner.person == "jo@acme.example"
    )
    assert [(link.system, link.id) for link in ticket.external_links] == [("jira", "10042")]


# --- limits, routing and content ------------------------------------------------------------------


def signed_jira(shared: Server, body: bytes) -> httpx.Response:
    return shared.post("jira", body, sign_jira(body=body, secret=NEW))


def _long_issue_id() -> bytes:
    body = json.loads((FIXTURES / "jira" / "issue_created.json").read_bytes())
    body["issue"]["id"] = "9" * 300
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"a":' * 40 + b"1" + b"}" * 40, 400, "too_depth"),
        (json.dumps({"webhookEvent": "x", "items": list(range(1001))}).encode(), 400, "too_array"),
        (b"{not json", 422, "invalid"),
        (json.dumps({"webhookEvent": "jira:issue_created", "issue": {}}).encode(), 422, "invalid"),
        (_long_issue_id(), 422, "invalid"),  # a field no canonical event can hold
    ],
)
def test_authentic_but_unacceptable_bodies(shared: Server, body: bytes, status: int, code: str) -> None:
    before = shared.stored()
    response = signed_jira(shared, body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert shared.stored() == before


def test_a_body_over_the_size_limit_is_413_before_anything_else(shared: Server) -> None:
    body = json.dumps({"pad": "x" * (LIMIT + 1)}).encode()
    assert signed_jira(shared, body).status_code == 413
    assert shared.post("nope", body, {}).status_code == 413


def test_topics_baton_does_not_follow_are_acknowledged(shared: Server) -> None:
    body = (FIXTURES / "intercom" / "contact_created.json").read_bytes()
    response = shared.post("intercom", body, sign_intercom(body=body, secret=NEW))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "source": "intercom", "events": []}


@pytest.mark.parametrize("source", ["nope", "slack", "email-ish"])
def test_unknown_sources_are_404(shared: Server, source: str) -> None:
    response = shared.post(source, b"{}", sign_token(token=NEW))
    assert response.status_code == 404


def test_the_generic_source_may_not_speak_for_a_vendor(shared: Server) -> None:
    data = json.loads((FIXTURES / "generic" / "one_event.json").read_bytes())
    data |= {"source": "zendesk", "event_id": "forged-1"}
    response = shared.post("generic", json.dumps(data).encode(), sign_token(token=NEW))
    assert response.status_code == 422 and "may not claim source 'zendesk'" in response.text


def test_the_openapi_document_lists_the_webhook_endpoint(shared: Server) -> None:
    spec = httpx.get(f"{shared.url}/openapi.json").json()
    assert "/v1/webhooks/{source}" in spec["paths"]


def test_rate_limit_per_source_counts_only_authentic_requests(db: Database, tmp_path: Path) -> None:
    config = {"sources": {"jira": {"secrets": [NEW], "rate": 0.5, "burst": 2}, "zendesk": {"secrets": [NEW]}}}
    with serve(db, tmp_path, config) as running:
        bodies = [unique_body("jira", "jira/comment_public", f"rate-{i}") for i in range(4)]
        for _ in range(5):  # forged requests do not spend the vendor's budget
            assert running.post("jira", bodies[0], sign_jira(body=bodies[0], secret=WRONG)).status_code == 401
        codes = [running.post("jira", b, sign_jira(body=b, secret=NEW)).status_code for b in bodies[:3]]
        assert codes == [202, 202, 429]
        limited = running.post("jira", bodies[2], sign_jira(body=bodies[2], secret=NEW))
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
        body = (FIXTURES / "zendesk" / "solved.json").read_bytes()
        assert zendesk_post(running, body).status_code == 202  # another source has its own bucket
        running.clock.advance(timedelta(seconds=2))
        assert running.post("jira", bodies[3], sign_jira(body=bodies[3], secret=NEW)).status_code == 202


def test_a_source_without_secrets_is_never_accepted(db: Database, tmp_path: Path) -> None:
    with serve(db, tmp_path, {"sources": {"zendesk": {"secrets": [NEW]}}}) as running:
        body = (FIXTURES / "jira" / "issue_created.json").read_bytes()
        response = running.post("jira", body, sign_jira(body=body, secret=NEW))
        assert response.status_code == 503 and response.json()["error"]["code"] == "not_configured"
        assert running.stored() == 0


def test_without_a_webhooks_file_every_source_is_unconfigured(db: Database, tmp_path: Path) -> None:
    with serve(db, tmp_path, None) as running:
        body = (FIXTURES / "zendesk" / "solved.json").read_bytes()
        assert zendesk_post(running, body).status_code == 503


def test_a_rotation_in_the_file_applies_without_a_restart(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "RELOAD_CHECK_SECONDS", 0.0)
    with serve(db, tmp_path, {"sources": {"jira": {"secrets": [OLD]}}}) as running:
        body = unique_body("jira", "jira/comment_public", "before")
        assert running.post("jira", body, sign_jira(body=body, secret=NEW)).status_code == 401
        write_config(running.config, {"sources": {"jira": {"secrets": [NEW, OLD]}}})
        for tag, secret in (("during-new", NEW), ("during-old", OLD)):
            body = unique_body("jira", "jira/comment_public", tag)
            assert running.post("jira", body, sign_jira(body=body, secret=secret)).status_code == 202
        write_config(running.config, {"sources": {"jira": {"secrets": [NEW]}}})
        body = unique_body("jira", "jira/comment_public", "after")
        assert running.post("jira", body, sign_jira(body=body, secret=OLD)).status_code == 401
        running.config.write_text("sources: [broken")  # a bad edit keeps the last good configuration
        assert running.post("jira", body, sign_jira(body=body, secret=NEW)).status_code == 202


# --- the webhooks file and the bucket -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("sources: [broken", "not valid YAML"),
        ("sources: {zendesk: {secrets: []}}", "sources.zendesk.secrets"),
        ("sources: {zendesk: {secrets: [a, b, c]}}", "sources.zendesk.secrets"),
        ("sources: {zendesk: {secrets: ['  ']}}", "a secret is empty"),
        ("sources: {zendesk: {secrets: [s], header: X-Token}}", "token sources only"),
        ("sources: {servicenow: {secrets: [s], header: 'bad header'}}", "not a valid HTTP header name"),
        ("sources: {servicenow: {secrets: [s], scheme: Digest}}", "sources.servicenow.scheme"),
        ("sources: {servicenow: {secrets: [s], rate: 0}}", "sources.servicenow.rate"),
        ("sources: {servicenow: {secret: [s]}}", "sources.servicenow.secret"),
        ("zendesk: {secrets: [s]}", "zendesk"),
    ],
)
def test_a_wrong_webhooks_file_is_a_located_config_error(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "webhooks.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=fragment) as caught:
        load_webhooks_config(path)
    assert str(path) in str(caught.value)


def test_a_yaml_error_says_where_without_quoting_the_line(tmp_path: Path) -> None:
    path = tmp_path / "webhooks.yaml"
    path.write_text(f"sources:\n  jira: {{secrets: [{NEW}]\n")
    with pytest.raises(ConfigError, match="line 3") as caught:
        load_webhooks_config(path)
    assert NEW not in str(caught.value)


def test_secrets_do_not_show_in_the_loaded_configuration(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "webhooks.yaml"
    path.write_text(json.dumps({"sources": {"zendesk": {"secrets": [NEW]}}}))
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        config = load_webhooks_config(path)
    assert NEW not in repr(config) and NEW not in str(config.model_dump())
    assert "chmod 600" in caplog.text  # readable by others: said, and still loaded


def test_an_explicit_webhooks_file_must_exist(db: Database, tmp_path: Path) -> None:
    settings = load_settings({"BATON_WEBHOOKS_FILE": str(tmp_path / "missing.yaml")}, workspace=tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        create_app(settings=settings, db=db, batcher=None)


def test_a_webhooks_file_naming_an_adapter_that_is_not_installed_fails_at_startup(
    db: Database, tmp_path: Path
) -> None:
    write_config(tmp_path / "webhooks.yaml", {"sources": {"acme": {"secrets": [NEW]}}})
    with pytest.raises(ConfigError, match="no signal adapter for acme"):
        create_app(settings=load_settings({}, workspace=tmp_path), db=db, batcher=None)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([0, 0, 0], [0.0, 0.0, 2.0]),  # burst 2, then wait for the refill at 0.5/s
        ([0, 0, 1], [0.0, 0.0, 1.0]),
        ([0, 0, 2], [0.0, 0.0, 0.0]),
        ([10, 0, 0], [0.0, 0.0, 2.0]),  # a clock stepping back does not drain the bucket
        ([0, 100, 100, 100], [0.0, 0.0, 0.0, 2.0]),  # never more than the burst banked
    ],
)
def test_token_bucket(steps: list[float], expected: list[float]) -> None:
    bucket = TokenBucket(rate=0.5, burst=2)
    assert [bucket.take(now) for now in steps] == expected
