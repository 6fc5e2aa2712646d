"""A throw-away certificate for HTTPS stand-ins, made with the ``openssl`` command line tool."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["self_signed"]


def self_signed(directory: Path, hostname: str) -> tuple[Path, Path]:
    """``(cert, key)`` PEM files for ``hostname`` only (a DNS SAN, no IP SAN), valid two days.
    Skips the test when ``openssl`` is not installed."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command line tool is not installed")
    cert, key = directory / f"{hostname}.crt", directory / f"{hostname}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", f"/CN={hostname}",
            "-addext", f"subjectAltName=DNS:{hostname}",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key
