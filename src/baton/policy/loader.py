"""Loading a policy folder: ``policy.yaml`` parsed, validated, and versioned by content hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml
from pydantic import ValidationError

from baton.errors import PolicyError
from baton.policy.model import Policy

__all__ = ["load_policy", "policy_version"]

MAX_POLICY_BYTES = 2_000_000


def policy_version(files: dict[str, bytes]) -> str:
    """A short, stable content hash over every file (name and bytes) of the policy."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()[:16]


def load_policy(directory: Path) -> Policy:
    """Load ``directory/policy.yaml``. Every problem is reported at once in a :class:`PolicyError`."""
    path = directory / "policy.yaml"
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError([f"{path}: cannot read ({exc.strerror})"]) from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError([f"{path}: file is larger than {MAX_POLICY_BYTES} bytes"])
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise PolicyError([f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise PolicyError([f"{path}:1:1: a policy is a mapping at the top level"])
    data = dict(data)
    data["version"] = policy_version({"policy.yaml": raw})
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(
            [f"{path}: {'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()]
        ) from None
