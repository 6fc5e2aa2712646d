"""A replay's outputs in one folder: ``decisions.jsonl``, ``kpis.json`` and ``report.html``.

Deterministic: the same history, mapping, policies, accounts, limit and gate give byte-identical
files. Keys are sorted, rows are in simulated-time order, examples are chosen by id, and nothing
about the run itself (when, where, how long) is written; the history is named by file name and
content hash, not by path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from baton.errors import ConfigError, InputError
from baton.model import Account
from baton.policy.model import Policy
from baton.replay.compare import compare_kpis, compare_tickets
from baton.replay.gate import Gate, evaluate_gate
from baton.replay.report import render_report
from baton.replay.run import Replayed, RunResult, replay_history
from baton.signals.history_mapping import HistoryMapping

__all__ = ["BASELINE_DECISIONS", "DECISIONS", "KPIS", "REPORT", "ReplayOutput", "file_sha256", "write_replay"]

DECISIONS = "decisions.jsonl"
BASELINE_DECISIONS = "decisions.baseline.jsonl"
KPIS = "kpis.json"
REPORT = "report.html"


@dataclass(frozen=True)
class ReplayOutput:
    """The kpis.json document, the replay behind it, and whether the gate (if any) passed."""

    document: dict[str, Any]
    replayed: Replayed
    passed: bool


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _side(result: RunResult) -> dict[str, Any]:
    return {
        "decisions": result.decisions,
        "kpis": result.report.kpis,
        "policy": {"name": result.policy.name, "version": result.policy.version},
        "timers_fired": result.timers_fired,
    }


def write_replay(
    out: Path,
    *,
    history: Path,
    mapping: HistoryMapping,
    policy: Policy,
    baseline: Policy | None = None,
    accounts: dict[str, Account] | None = None,
    limit: int | None = None,
    gate: Gate | None = None,
    on_error: Callable[[int, str], None] | None = None,
    on_event: Callable[[int], None] | None = None,
) -> ReplayOutput:
    """Replay ``history`` through ``policy`` (and ``baseline``) and write the outputs to ``out``.

    Raises :class:`~baton.errors.ConfigError` for a gate that cannot be evaluated: at once for
    delta limits without a baseline, after the replay for a name that matches no KPI (the names
    depend on what the history holds). Raises :class:`~baton.errors.InputError` for an output
    folder that cannot be written, and for a history without one usable event: a replay of
    nothing must not pass a gate.
    """
    if gate is not None and baseline is None and gate.needs_baseline:
        raise ConfigError("\n".join(gate.needs_baseline))
    with ExitStack() as stack:
        try:
            out.mkdir(parents=True, exist_ok=True)
            sink: IO[bytes] = stack.enter_context((out / DECISIONS).open("wb"))
            base_sink: IO[bytes] | None = None
            if baseline is not None:
                base_sink = stack.enter_context((out / BASELINE_DECISIONS).open("wb"))
        except OSError as exc:
            raise InputError(
                f"{out}: cannot write the replay's outputs here: {exc.strerror or exc}"
            ) from None
        replayed = replay_history(
            history,
            mapping,
            policy=policy,
            baseline=baseline,
            accounts=accounts,
            limit=limit,
            decisions=sink,
            baseline_decisions=base_sink,
            on_error=on_error,
            on_event=on_event,
        )
    if replayed.events == 0:
        raise InputError(
            f"{history}: no usable event in {replayed.rows:,} row(s) ({replayed.errors:,} unusable): "
            "nothing to replay"
        )
    result = replayed.result
    doc: dict[str, Any] = {
        **_side(result),
        "as_of": result.as_of.isoformat() if result.as_of else None,
        "errors": replayed.errors,
        "events": replayed.events,
        "history": {
            "file": history.name,
            "limit": limit,
            "mapping": mapping.name,
            "rows": replayed.rows,
            "sha256": file_sha256(history),
        },
        "tickets": replayed.tickets,
    }
    reports = [(f"policy: {policy.name}", result.report)]
    if replayed.baseline is not None:
        doc["baseline"] = _side(replayed.baseline)
        doc["compare"] = {
            "kpis": compare_kpis(result.report.kpis, replayed.baseline.report.kpis),
            "tickets": compare_tickets(result, replayed.baseline),
        }
        reports.insert(0, (f"baseline: {replayed.baseline.policy.name}", replayed.baseline.report))
    passed = True
    if gate is not None:
        results = evaluate_gate(
            gate, result.report.kpis, replayed.baseline.report.kpis if replayed.baseline else None
        )
        passed = all(r.status != "fail" for r in results)
        doc["gate"] = {"passed": passed, "results": [r.document() for r in results]}
    (out / KPIS).write_bytes(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n")
    (out / REPORT).write_text(render_report(doc, reports), encoding="utf-8")
    return ReplayOutput(document=doc, replayed=replayed, passed=passed)
