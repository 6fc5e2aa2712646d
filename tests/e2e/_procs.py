"""Running ``baton`` as real processes for the acceptance tests: free loopback ports, process
groups that can be killed whole, output kept in files (a pipe nobody reads would block the child),
and waits that poll against a deadline instead of sleeping a guessed time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["BATON", "Proc", "free_port", "healthy", "run_baton", "running", "wait_until"]

# The ``baton`` script installed next to the interpreter running the tests (the venv's).
BATON = str(Path(sys.executable).with_name("baton"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def healthy(port: int) -> bool:
    """Whether ``baton serve`` on ``port`` answers its health check."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_until(what: str, check: Callable[[], bool], *, timeout: float, every: float = 0.05) -> None:
    """Poll ``check`` until it is true; fail the test with ``what`` once ``timeout`` has passed."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def _env(extra: Mapping[str, str]) -> dict[str, str]:
    # Start from a clean slate of BATON_* so the developer's own settings cannot leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    env.update(extra)
    return env


def run_baton(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    """Run one ``baton`` command to completion; return its stdout, fail loudly on a non-zero exit."""
    done = subprocess.run(
        [BATON, *args], env=_env(env or {}), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise AssertionError(
            f"baton {' '.join(args)} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done.stdout


class Proc:
    """One long-running ``baton`` command in its own process group, restartable.

    Every start appends to the same log file, with a header line, so a failure can be read back
    across restarts.
    """

    def __init__(self, args: list[str], *, env: Mapping[str, str], log: Path) -> None:
        self.args = args
        self.env = _env(env)
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> None:
        assert self.popen is None or self.popen.poll() is not None, "already running"
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts}: baton {' '.join(self.args)}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                [BATON, *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a kill takes every child with it
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it: no handler runs, nothing is flushed."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with suppress(ProcessLookupError):  # it died between poll() and now
                os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, sig: signal.Signals = signal.SIGTERM, *, grace: float = 15) -> int | None:
        """Ask politely with ``sig``; SIGKILL after ``grace`` seconds. Returns the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextmanager
def running(procs: list[Proc]) -> Iterator[list[Proc]]:
    """Guarantee that every process in ``procs`` is dead when the block ends, however it ends."""
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
