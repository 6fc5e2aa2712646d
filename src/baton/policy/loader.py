"""Loading a policy folder (the public entry point; see :mod:`baton.policy.compiler`)."""

from __future__ import annotations

from pathlib import Path

from baton.policy.compiler import compile_policy, policy_files, policy_version
from baton.policy.model import Policy

__all__ = ["load_policy", "policy_files", "policy_version"]


def load_policy(directory: Path) -> Policy:
    """Load and compile the policy in ``directory``; raises ``PolicyError`` with every problem."""
    return compile_policy(directory)
