"""The example policy's own YAML cases (examples/policy/tests) run in the suite, one test each."""

from __future__ import annotations

import pytest

from baton.policy.loader import load_policy
from baton.policy.testing import TestCase, load_cases, run_case
from tests.conftest import EXAMPLE_POLICY

CASES = list(load_cases(EXAMPLE_POLICY))


def test_the_example_policy_has_cases() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize(
    ("where", "case"), CASES, ids=[c.name if isinstance(c, TestCase) else w for w, c in CASES]
)
def test_example_case(where: str, case: TestCase | str) -> None:
    assert not isinstance(case, str), f"{where}: {case}"
    result = run_case(load_policy(EXAMPLE_POLICY), case, where=where)
    assert result.ok, f"{where}: " + "; ".join(result.failures)
