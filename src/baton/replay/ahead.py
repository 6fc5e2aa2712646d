"""Reading history in a second process while the simulator runs in this one.

A replay spends about a quarter of its time reading: decompressing, splitting CSV rows, mapping
them to validated canonical events and putting those in time order (:class:`TimeOrdered`). None of
that depends on the simulator, so :class:`ReadAhead` runs it in a child process and passes the
events back in pickled batches, which costs this process about a quarter of what reading them
would. The time order's first pass over the file (:func:`~baton.replay.order.first_pass`) runs in
this process, which has nothing else to do until the first events arrive, while the child starts
mapping rows; the child then receives its result. The simulator itself stays in one process:
tickets share state (open-ticket loads decide who gets the next one), so splitting the decisions
would change them.

The stream is exactly :class:`TimeOrdered`'s: the same events in the same order, the same counts
(``rows``, ``errors``, ``peak``, ``spilled``, ``reordered``) once it ends, the same exceptions
(re-raised here with the child's message). ``on_error`` gets every unusable row in file order,
each batch's before that batch's events. The pipe between the two processes holds a few batches,
so the reader never runs more than that ahead, and closing the iterator early stops the child.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import select
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from baton.errors import InputError
from baton.model import Event, Frozen
from baton.replay.order import SPILL, Bounds, TimeOrdered, first_pass
from baton.signals.history_mapping import HistoryMapping

__all__ = ["BATCH", "MIN_BYTES", "ReadAhead", "worth_reading_ahead"]

BATCH = 512  # events (and unusable rows) a message carries
MIN_BYTES = 256 * 1024  # a smaller file is read in process: starting the child costs more
MIN_TICKETS = 2_000  # likewise a replay limited to fewer tickets
_LENGTH = struct.Struct("<I")  # each message: its length, then the pickle
_SRC = str(Path(__file__).resolve().parents[2])  # where the child imports baton from


def worth_reading_ahead(path: Path, limit: int | None) -> bool:
    """Whether a second process pays for itself: two cores, a large file, no small limit."""
    try:
        size = path.stat().st_size
    except OSError:
        return False  # the reader reports the missing file, in process, with its usual message
    return (os.cpu_count() or 1) > 1 and size >= MIN_BYTES and (limit is None or limit >= MIN_TICKETS)


@dataclass(frozen=True, slots=True)
class _Done:
    rows: int
    errors: int
    peak: int
    spilled: int
    reordered: int


@dataclass(frozen=True, slots=True)
class _Failed:
    error: bytes | None  # the exception, pickled, when it pickles and unpickles
    kind: str
    message: str


_Message = tuple[list[Event], list[tuple[int, str]]] | _Done | _Failed


_set = object.__setattr__


def _rebuilt_model(cls: type[Frozen], values: dict[str, object], given: set[str]) -> Frozen:
    """A domain model as it was pickled: what pydantic's own ``__setstate__`` sets, without the
    state dict it reads it from (only a model with no extra or private parts travels this way)."""
    model = cls.__new__(cls)
    _set(model, "__dict__", values)
    _set(model, "__pydantic_fields_set__", given)
    _set(model, "__pydantic_extra__", None)
    _set(model, "__pydantic_private__", None)
    return model


class _Pickler(pickle.Pickler):
    """Pickles events as pydantic does, in a third less time at each end: a model's fields and
    the names it was given, not a state dict around them. The parent has the time to spare least."""

    def reducer_override(self, obj: object) -> Any:  # a reduce tuple, or NotImplemented
        if isinstance(obj, Frozen) and obj.__pydantic_private__ is None and obj.__pydantic_extra__ is None:
            return _rebuilt_model, (obj.__class__, obj.__dict__, obj.__pydantic_fields_set__)
        return NotImplemented  # anything else as pickle (or pydantic) does it


class _Sender:
    """The child's side: events and unusable rows, sent in batches as they come."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.events: list[Event] = []
        self.errors: list[tuple[int, str]] = []
        self.buffer = io.BytesIO()

    def event(self, event: Event) -> None:
        self.events.append(event)
        if len(self.events) + len(self.errors) >= BATCH:
            self.flush()

    def error(self, row: int, reason: str) -> None:
        self.errors.append((row, reason))
        if len(self.events) + len(self.errors) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.events or self.errors:
            self.send((self.events, self.errors))
            self.events, self.errors = [], []

    def send(self, message: object) -> None:
        self.buffer.seek(0)
        self.buffer.truncate()
        _Pickler(self.buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(message)
        blob = self.buffer.getvalue()
        self.out.write(_LENGTH.pack(len(blob)))
        self.out.write(blob)


def _child() -> None:
    """The child process: read the job from stdin, send the history in time order to stdout."""
    from baton.bootstrap import tune_gc

    tune_gc()
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the stream
    sender = _Sender(out)
    try:
        job = sys.stdin.buffer
        path, mapping, limit, spill = pickle.load(job)  # noqa: S301 -- from our parent
        ordered = TimeOrdered(
            path, mapping, limit=limit, spill=spill, on_error=sender.error, bounds=_FromParent(job)
        )
        for event in ordered:
            sender.event(event)
        sender.flush()
        sender.send(_Done(ordered.rows, ordered.errors, ordered.peak, ordered.spilled, ordered.reordered))
        out.flush()
    except (BrokenPipeError, _ParentStopped):
        pass  # the parent stopped reading, or stopped before sending the first pass: nothing to do
    except BaseException as exc:  # every failure goes back to the parent, whole
        try:
            dumped = pickle.dumps(exc, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.loads(dumped)  # noqa: S301 -- our own bytes; one that cannot be rebuilt travels as text
            blob: bytes | None = dumped
        except Exception:
            blob = None
        with contextlib.suppress(OSError):
            sender.send(_Failed(blob, type(exc).__name__, str(exc)))
            out.flush()


class _FromParent:
    """The child's side of the first pass: its result comes from the parent, after the job."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def ready(self) -> bool:
        return bool(select.select([self.stream], [], [], 0)[0])

    def get(self) -> Bounds:
        try:
            return cast(Bounds, pickle.load(self.stream))  # noqa: S301 -- from our parent
        except EOFError:
            raise _ParentStopped from None  # its own first pass failed, and it says so itself


class _ParentStopped(Exception):
    """The parent closed the job before the first pass's result: it has stopped reading."""


class ReadAhead:
    """:class:`TimeOrdered` read in a child process; iterate for the same events, in order."""

    def __init__(
        self,
        path: Path,
        mapping: HistoryMapping,
        *,
        limit: int | None = None,
        spill: int = SPILL,
        on_error: Callable[[int, str], None] | None = None,
    ) -> None:
        self.path, self.mapping, self.limit, self.spill = path, mapping, limit, spill
        self.on_error = on_error
        self.rows = self.errors = self.peak = self.spilled = self.reordered = 0
        self.pid: int | None = None  # the reader process's, once started

    def __iter__(self) -> Iterator[Event]:
        # A plain child interpreter, not multiprocessing: no fork of a process that may run
        # threads, and no re-import of whatever script is the caller's __main__.
        path = os.pathsep.join(filter(None, (_SRC, os.environ.get("PYTHONPATH"))))
        env = {**os.environ, "PYTHONPATH": path}
        child = subprocess.Popen(
            [sys.executable, "-c", "from baton.replay.ahead import _child; _child()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert child.stdin is not None and child.stdout is not None
        self.pid = child.pid
        stream = child.stdout
        try:
            self._send_job(child.stdin)
            while True:
                message = _receive(stream)
                if message is None:
                    code = child.wait()
                    raise InputError(
                        f"{self.path}: the history reader process stopped without finishing "
                        f"(exit code {code})"
                    )
                if isinstance(message, _Done):
                    self.rows, self.errors, self.peak = message.rows, message.errors, message.peak
                    self.spilled, self.reordered = message.spilled, message.reordered
                    return
                if isinstance(message, _Failed):
                    raise _rebuilt(message)
                events, errors = message
                if self.on_error is not None:
                    for row, reason in errors:
                        self.on_error(row, reason)
                yield from events
        finally:
            stream.close()
            if child.poll() is None:
                child.kill()
            child.wait()

    def _send_job(self, job: IO[bytes]) -> None:
        """The job, then the first pass over the file, run here while the child starts on the rows
        (this process would only wait for it otherwise). A failure of the first pass is raised
        here, as it would be in process; a child that failed already has said why on its output."""
        try:
            pickle.dump((self.path, self.mapping, self.limit, self.spill), job)
            job.flush()
            bounds = first_pass(self.path, self.mapping, self.limit)
            pickle.dump(bounds, job)
        except BrokenPipeError:
            pass
        finally:
            with contextlib.suppress(OSError):
                job.close()


def _receive(stream: IO[bytes]) -> _Message | None:
    """One message from the child, or ``None`` at the end of its output."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    blob = stream.read(size)
    if len(blob) < size:
        return None
    return cast(_Message, pickle.loads(blob))  # noqa: S301 -- the output of our own child process


def _rebuilt(failed: _Failed) -> BaseException:
    if failed.error is not None:
        error = pickle.loads(failed.error)  # noqa: S301 -- likewise
        if isinstance(error, BaseException):
            return error
    return InputError(f"reading the history failed: {failed.kind}: {failed.message}")
