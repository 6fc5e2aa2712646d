"""The decision policy (tests/fixtures/decision) and a way to check a changed copy of it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from baton.errors import PolicyError
from baton.policy.compiler import compile_policy
from baton.policy.loader import load_policy
from baton.policy.model import Policy
from tests.conftest import ROOT

DECISION = ROOT / "tests" / "fixtures" / "decision"


@pytest.fixture(scope="session")
def decision_policy() -> Policy:
    return load_policy(DECISION)


Problems = Callable[[str, str, str], tuple[list[str], Path, int]]


@pytest.fixture
def problems_after(tmp_path: Path) -> Problems:
    """Copy the decision policy, replace ``old`` by ``new`` in ``name``, compile it, and return
    the problems reported, the changed file and the line (1-based) the replacement starts on."""

    def run(name: str, old: str, new: str) -> tuple[list[str], Path, int]:
        folder = tmp_path / f"policy-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(DECISION, folder)
        path = folder / name
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} is not in {name}"
        line = text[: text.index(old)].count("\n") + 1
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        try:
            compile_policy(folder)
        except PolicyError as exc:
            return list(exc.problems), path, line
        return [], path, line

    return run
