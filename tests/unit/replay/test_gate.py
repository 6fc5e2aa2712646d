"""Gates: limits on KPIs, against a baseline or absolute, table-driven."""

from __future__ import annotations

from pathlib import Path

import pytest

from baton.analytics.kpis import Value
from baton.errors import ConfigError
from baton.replay.gate import evaluate_gate, load_gate

POLICY = {
    "escalation_rate": 0.21,
    "sla_compliance.sla_policy.gold": 0.9,
    "mttr_hours": 10.0,
    "fcr_rate": None,
}
BASELINE = {
    "escalation_rate": 0.20,
    "sla_compliance.sla_policy.gold": 0.95,
    "mttr_hours": 0.0,
    "fcr_rate": 0.5,
}


def gate(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "status", "observed"),
    [
        ("escalation_rate: {max_relative_increase: 0.05}", "pass", 0.05),  # exactly at the limit
        ("escalation_rate: {max_relative_increase: 0.04}", "fail", 0.05),
        ("escalation_rate: {max_delta: 0.02}", "pass", 0.01),
        ("escalation_rate: {min: 0.3}", "fail", 0.21),
        ("escalation_rate: {max: 0.3}", "pass", 0.21),
        ("sla_compliance.gold: {min_delta: 0}", "fail", -0.05),  # the short name
        ("sla_compliance.gold: {max_relative_decrease: 0.1}", "pass", 0.052632),
        ("mttr_hours: {max_relative_increase: 0.5}", "fail", None),  # from 0 to 10: infinitely more
        ("fcr_rate: {min: 0}", "fail", None),  # the baseline measured it, the policy cannot
    ],
)
def test_limits(tmp_path: Path, text: str, status: str, observed: float | None) -> None:
    [result] = evaluate_gate(load_gate(gate(tmp_path, text)), POLICY, BASELINE)
    assert result.status == status
    doc = result.document()
    assert doc["observed"] == (pytest.approx(observed, abs=1e-6) if observed is not None else None)


def test_no_value_on_either_side_is_no_data(tmp_path: Path) -> None:
    empty: dict[str, Value] = {"fcr_rate": None}
    [result] = evaluate_gate(load_gate(gate(tmp_path, "fcr_rate: {min: 0.5}")), empty, empty)
    assert result.status == "no data"


def test_an_ambiguous_short_name_is_an_error(tmp_path: Path) -> None:
    kpis: dict[str, Value] = {"sla_compliance.tier.x": 1.0, "sla_compliance.sla_policy.x": 1.0}
    with pytest.raises(ConfigError, match="ambiguous"):
        evaluate_gate(load_gate(gate(tmp_path, "sla_compliance.x: {min: 0}")), kpis, None)


def test_delta_limits_need_a_baseline(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"gate.yaml:1:1: escalation_rate: min_delta compares with a baseline"
    ):
        evaluate_gate(load_gate(gate(tmp_path, "escalation_rate: {min_delta: 0}")), POLICY, None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- a\n", "gate.yaml:1:1: a gate file maps KPI names to limits"),
        ("a: {min: x}\n", "gate.yaml:1:5: Input should be a valid number"),
        ("a: 3\n", "gate.yaml:1:1: Input should be a valid dictionary"),
    ],
)
def test_a_malformed_gate_file_is_located(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_gate(gate(tmp_path, text))
    assert problem in str(caught.value)
