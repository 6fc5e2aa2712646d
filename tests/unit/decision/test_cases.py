"""The decision policy's own YAML cases (tests/fixtures/decision/tests), through the same
``run_case`` as ``baton policy test``: every case must be readable and pass."""

from __future__ import annotations

from baton.policy.model import Policy
from baton.policy.testing import load_cases, run_case
from tests.unit.decision.conftest import DECISION


def test_every_case_of_the_decision_policy_passes(decision_policy: Policy) -> None:
    cases = list(load_cases(DECISION))
    assert len(cases) >= 2
    failed = []
    for where, case in cases:
        if isinstance(case, str):
            failed.append(f"{where}: {case}")
            continue
        result = run_case(decision_policy, case, where=where)
        failed.extend(f"{where} {case.name}: {problem}" for problem in result.failures)
    assert not failed, "\n".join(failed)
