"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright, against the
real ``baton serve`` on loopback.

What a support lead does with it: signs in with a token link, sees the tickets with their owners,
filters by stage, opens a ticket and reads its timeline, opens the API docs. Along the way the
browser must load nothing from anywhere but the Baton server (no CDN, no fonts, no validator
badge), log no console error, and run no script that came in with a ticket.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request

from tests.e2e._procs import Proc, free_port, healthy, run_baton, running, wait_until

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def _post(port: int, token: str, event: dict[str, Any]) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/events",
        data=json.dumps(event).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- loopback only
        return int(response.status)


def _events(now: datetime) -> list[dict[str, Any]]:
    """Two tickets: an outage on an enterprise account, and one whose subject is an attack. They
    start 20 minutes ago, so no SLA threshold (the earliest: half of a 1 h first response) comes
    due while they are posted: a timer firing between the posts would be a fifth event."""
    at = now - timedelta(minutes=20)

    def ev(n: str, kind: str, ticket: str, minutes: int, **fields: Any) -> dict[str, Any]:
        return {
            "source": "zendesk",
            "event_id": n,
            "type": kind,
            "occurred_at": (at + timedelta(minutes=minutes)).isoformat(),
            "external": {"system": "zendesk", "id": ticket},
            "fields": fields,
        }

    return [
        ev("1", "ticket.created", "501", 0, subject="API down for all users", body="Every call returns 503",
           account_id="acme", priority="urgent", requester="ops@acme.example"),
        ev("2", "customer.replied", "501", 5, body="Still down, please hurry"),
        ev("3", "agent.replied", "501", 9, body="We are on it"),
        ev("4", "ticket.created", "502", 12, subject=HOSTILE, body=HOSTILE, requester="x@example.com"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """``baton serve`` on a fresh workspace with the example policy and two tickets in it; the
    port and a viewer token."""
    tmp = tmp_path_factory.mktemp("dashboard")
    ws = tmp / "ws"
    run_baton("init", "--workspace", str(ws), "--policy", str(ROOT / "examples" / "policy"))
    admin = run_baton("token", "create", "--role", "admin", "--workspace", str(ws)).strip().splitlines()[-1]
    viewer = run_baton("token", "create", "--role", "viewer", "--workspace", str(ws)).strip().splitlines()[-1]
    port = free_port()
    env = {"BATON_WORKSPACE": str(ws), "BATON_LOG_LEVEL": "WARNING"}
    proc = Proc(["serve", "--workspace", str(ws), "--port", str(port)], env=env, log=tmp / "serve.log")
    with running([proc]):
        proc.start()
        wait_until("the server to answer", lambda: healthy(port), timeout=60)
        for event in _events(datetime.now(UTC)):
            assert _post(port, admin, event) in (200, 201, 202)
        yield port, viewer


class Watched:
    """A page whose every request, console error and dialog is kept for the test to check."""

    def __init__(self, browser: Browser, port: int) -> None:
        self.origin = f"http://127.0.0.1:{port}"
        self.context = browser.new_context()
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        # Anything bound elsewhere is refused, so a page that needs the internet fails here too.
        self.page.route("**/*", self._only_local)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _only_local(self, route: Any, request: Request) -> None:
        if request.url.startswith(self.origin + "/"):
            route.continue_()
        else:
            route.abort()

    def foreign(self) -> list[str]:
        return [url for url in self.requests if not url.startswith(self.origin + "/")]

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: Browser, server: tuple[int, str]) -> Iterator[Watched]:
    w = Watched(browser, server[0])
    yield w
    w.close()


def test_without_a_token_the_dashboard_asks_to_sign_in(watched: Watched) -> None:
    response = watched.page.goto(watched.origin + "/")
    assert response is not None and response.status == 401
    assert watched.page.locator("h2").inner_text() == "Sign in"
    assert "baton token create" in watched.page.content()


def test_a_lead_signs_in_sees_the_tickets_and_reads_a_timeline(
    watched: Watched, server: tuple[int, str]
) -> None:
    page = watched.page
    _, viewer = server
    response = page.goto(f"{watched.origin}/login?token={viewer}")
    assert page.url == watched.origin + "/"  # redirected home with the session cookie
    assert response is not None and response.status == 200
    assert response.headers["content-security-policy"].startswith("default-src 'none'; style-src 'self'")
    # The stylesheet is the one thing the policy lets in, and it is applied.
    urgent = page.locator(".pill.p-urgent").first
    assert urgent.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 227, 227)"
    rows = page.locator("tbody tr")
    assert rows.count() == 2
    outage = rows.filter(has_text="API down for all users")
    assert outage.count() == 1
    cells = outage.locator("td")
    assert cells.nth(3).inner_text() == "urgent"
    assert cells.nth(7).inner_text() == "acme"
    owner = cells.nth(6).inner_text()
    assert owner.strip() and "(" in owner  # a person and the role they hold
    cards = {
        c.locator("span").text_content(): c.locator("b").text_content() for c in page.locator(".card").all()
    }
    assert cards["events"] == "4"

    page.locator("nav a", has_text="Solved").click()
    assert "stage=solved" in page.url
    assert page.locator("tbody tr td.muted").inner_text() == "No tickets yet."
    page.locator("nav a", has_text="All").click()

    page.locator("tbody tr", has_text="API down for all users").locator("a").click()
    assert page.url.startswith(watched.origin + "/tickets/T-")
    assert page.locator("h2").inner_text() == "API down for all users"
    facts = page.locator("dl.facts").inner_text()
    assert "urgent" in facts and "zendesk:501" in facts and owner.split(" (")[0] in facts
    kinds = page.locator("ol.timeline li b").all_inner_texts()
    assert kinds.count("event.received") == 3  # created, customer reply, agent reply
    assert "decision" in kinds
    assert "Still down, please hurry" in page.locator("ol.timeline").inner_text()

    assert watched.foreign() == []
    assert watched.errors == []


def test_a_hostile_subject_is_shown_as_text_and_never_runs(watched: Watched, server: tuple[int, str]) -> None:
    page = watched.page
    page.goto(f"{watched.origin}/login?token={server[1]}")
    row = page.locator("tbody tr", has_text="window.__pwned")
    assert row.count() == 1
    assert row.locator("td").nth(1).inner_text() == HOSTILE
    row.locator("a").click()
    assert page.locator("h2").inner_text() == HOSTILE
    assert page.evaluate("window.__pwned === undefined")
    assert watched.dialogs == []
    assert watched.errors == []


def test_the_api_docs_render_offline(watched: Watched) -> None:
    page = watched.page
    page.goto(watched.origin + "/docs")
    title = page.locator(".swagger-ui .info .title").first
    title.wait_for(timeout=30_000)
    assert "Baton" in title.inner_text()
    page.locator(".opblock-summary-path", has_text="/v1/events").first.wait_for()
    assert any(url.endswith("/openapi.json") for url in watched.requests)
    assert watched.foreign() == []  # Swagger UI and ReDoc come from the server itself
    assert watched.errors == []
