"""``make demo`` as a user runs it: ``baton demo`` builds a fresh workspace from nothing but the
repository (example policy, sample accounts, a realistic stream through the real engine), then
serves the dashboard and the API with the token it prints. Run twice in the same folder, it starts
over instead of piling a second stream on the first."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

from tests.e2e._procs import Proc, free_port, healthy, run_baton, running, wait_until

TICKETS = 30


def _get(port: int, path: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- loopback only
        return int(response.status), response.read()


def _demo(workspace: Path, log: Path) -> tuple[int, str, Proc]:
    port = free_port()
    proc = Proc(
        ["demo", "--workspace", str(workspace), "--tickets", str(TICKETS), "--port", str(port)],
        env={},
        log=log,
    )
    proc.start()
    wait_until("the demo to serve", lambda: healthy(port) or not proc.alive(), timeout=180, every=0.2)
    assert proc.alive(), proc.output()
    found = re.search(r"/login\?token=(\S+)", proc.output())
    assert found, proc.output()
    return port, found.group(1), proc


def test_the_demo_builds_a_workspace_plays_a_stream_and_serves_it(tmp_path: Path) -> None:
    workspace = tmp_path / ".baton"
    port, token, proc = _demo(workspace, tmp_path / "demo.log")
    with running([proc]):
        summary = re.search(r"demo: (\d+) tickets, (\d+) events and (\d+) SLA timers", proc.output())
        assert summary, proc.output()
        assert int(summary.group(1)) == TICKETS and int(summary.group(2)) > TICKETS
        status, body = _get(port, "/v1/tickets?limit=500", token)
        tickets: list[dict[str, Any]] = json.loads(body)["tickets"]
        assert status == 200 and len(tickets) == TICKETS
        assert all(t["owner"] for t in tickets), "every ticket has an owner of record"
        assert {t["stage"] for t in tickets} - {"open", "new"}, "time passed: some tickets moved on"
        status, body = _get(port, f"/v1/tickets/{tickets[0]['id']}/timeline", token)
        assert status == 200 and json.loads(body)["items"]
        status, page = _get(port, "/", token)
        assert status == 200 and tickets[0]["id"].encode() in page
        status, body = _get(port, "/v1/audit/verify", token)
        assert json.loads(body)["ok"] is True
    assert (workspace / "policy" / "baton.yaml").exists() and (workspace / "accounts.csv").exists()
    assert run_baton("policy", "check", str(workspace / "policy")).strip()
    assert run_baton("audit", "verify", "--workspace", str(workspace)).startswith("ok:")

    # Again, in the same folder: a fresh workspace, not a second stream on top of the first.
    port, token, proc = _demo(workspace, tmp_path / "demo2.log")
    with running([proc]):
        status, body = _get(port, "/v1/tickets?limit=500", token)
        assert len(json.loads(body)["tickets"]) == TICKETS
