"""The base of every stand-in: a threaded HTTP/1.1 server on 127.0.0.1 with fault injection.

A stand-in subclass implements ``handle(request) -> Reply``; the base records every request
(``requests``), serialises calls to ``handle`` (so vendor state needs no locks of its own), and
applies injected faults first. ``inject(Fault...)`` queues faults; each request takes the first
queued fault whose ``path`` matches it (a fault without a path matches any request):

* ``Fault.status(...)`` / ``Fault.json(...)`` / ``Fault.rate_limited(...)`` / ``Fault.redirect(...)``:
  answer this instead of the vendor behaviour;
* ``Fault.slow(s)``: wait ``s`` seconds, then act and answer normally (slower than the client's
  read timeout, the vendor acts after the client gave up; shorter, just a slow answer);
* ``Fault.late(s)``: act at once, then wait ``s`` seconds before answering (the vendor did the
  work; a client with a shorter read timeout never hears so, the classic lost "200 OK");
* ``Fault.hang(s)``: wait ``s`` seconds and drop the connection without answering (a client with
  a shorter read timeout times out);
* ``Fault.reset()``: reset the TCP connection (RST) without answering;
* ``Fault.close()``: close the connection cleanly without answering;
* ``Fault.drip(s)``: answer normally, but one byte every ``s`` seconds (a slowloris peer: each
  read succeeds within any per-read timeout, the whole answer takes ages).

``fault.matching(b"...")`` applies a fault only to requests whose body contains those bytes (one
poison action among healthy ones), and ``fault.always()`` keeps it queued after use, so the target
behaves so for every matching request until :meth:`StandIn.clear_faults` (a dead target).

With ``tls=(cert, key)`` the server speaks HTTPS and records the SNI name each client sent.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Fault", "Received", "Reply", "StandIn"]


@dataclass(frozen=True)
class Received:
    """One request as the stand-in saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    fault: str | None = None  # the fault applied to it, if any
    at: float = field(default_factory=time.time)  # when it arrived (Unix seconds, as the audit log)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, status: int, data: object, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(data).encode(), {"content-type": "application/json", **(headers or {})})


@dataclass(frozen=True)
class Fault:
    kind: Literal["reply", "slow", "late", "hang", "reset", "close", "drip"]
    reply: Reply | None = None
    seconds: float = 0.0
    path: str | None = None
    body: bytes | None = None  # only requests whose body contains this
    sticky: bool = False  # stays queued after use

    def matching(self, body: bytes) -> Fault:
        return replace(self, body=body)

    def always(self) -> Fault:
        return replace(self, sticky=True)

    def applies(self, path: str, body: bytes) -> bool:
        return (self.path is None or path.endswith(self.path)) and (self.body is None or self.body in body)

    @classmethod
    def status(
        cls,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        *,
        path: str | None = None,
    ) -> Fault:
        return cls("reply", Reply(status, body, headers or {}), path=path)

    @classmethod
    def json(
        cls, status: int, data: object, headers: Mapping[str, str] | None = None, *, path: str | None = None
    ) -> Fault:
        return cls("reply", Reply.of(status, data, headers), path=path)

    @classmethod
    def rate_limited(cls, retry_after: str, data: object = None, *, path: str | None = None) -> Fault:
        return cls.json(
            429,
            data if data is not None else {"error": "rate limited"},
            {"retry-after": retry_after},
            path=path,
        )

    @classmethod
    def redirect(cls, location: str, status: int = 302, *, path: str | None = None) -> Fault:
        return cls.status(status, b"", {"location": location}, path=path)

    @classmethod
    def slow(cls, seconds: float, *, path: str | None = None) -> Fault:
        return cls("slow", seconds=seconds, path=path)

    @classmethod
    def late(cls, seconds: float, *, path: str | None = None) -> Fault:
        return cls("late", seconds=seconds, path=path)

    @classmethod
    def hang(cls, seconds: float, *, path: str | None = None) -> Fault:
        return cls("hang", seconds=seconds, path=path)

    @classmethod
    def reset(cls, *, path: str | None = None) -> Fault:
        return cls("reset", path=path)

    @classmethod
    def close(cls, *, path: str | None = None) -> Fault:
        return cls("close", path=path)

    @classmethod
    def drip(cls, seconds: float, *, path: str | None = None) -> Fault:
        return cls("drip", seconds=seconds, path=path)


class StandIn:
    """Subclasses implement :meth:`handle`. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, *, tls: tuple[Path, Path] | None = None) -> None:
        self.requests: list[Received] = []
        self.sni: list[str | None] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.standin = self
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            context.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in slow/hang faults
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults and records ----------------------------------------------------------------

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear_faults(self) -> int:
        """Drop the faults not yet taken (the vendor recovers); returns how many there were."""
        with self._lock:
            left, self._faults = len(self._faults), []
        return left

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def _take_fault(self, path: str, body: bytes) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.applies(path, body):
                    return fault if fault.sticky else self._faults.pop(i)
        return None

    def _record(self, request: Received) -> None:
        with self._lock:
            self.requests.append(request)

    def _handle(self, request: Received) -> Reply:
        with self._lock:
            return self.handle(request)

    def handle(self, request: Received) -> Reply:
        """The vendor's behaviour; runs under the stand-in's lock."""
        raise NotImplementedError


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    standin: StandIn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without this, Nagle's algorithm holds the body
        # until the client's delayed ACK (~40 ms a request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read records, not stderr
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        standin = self.server.standin
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        split = urlsplit(self.path)
        fault = standin._take_fault(split.path, body)
        request = Received(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            fault=fault.kind if fault else None,
        )
        standin._record(request)
        if fault is not None and fault.kind in ("hang", "reset", "close"):
            if fault.kind == "hang":
                standin._stopping.wait(fault.seconds)
            self._drop(reset=fault.kind == "reset")
            return
        if fault is not None and fault.kind == "slow":
            standin._stopping.wait(fault.seconds)
        reply = fault.reply if fault is not None and fault.reply is not None else standin._handle(request)
        data = self._encode(reply)
        if fault is not None and fault.kind == "late":
            if not standin._stopping.wait(fault.seconds):
                with contextlib.suppress(OSError):  # the client gave up long ago
                    self.wfile.write(data)
            return
        if fault is not None and fault.kind == "drip":
            for i in range(len(data)):
                if standin._stopping.wait(fault.seconds):
                    return
                try:
                    self.wfile.write(data[i : i + 1])
                except OSError:
                    return  # the client gave up, as it should
            return
        self.wfile.write(data)

    def _encode(self, reply: Reply) -> bytes:
        lines = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}"]
        if "date" not in {k.lower() for k in reply.headers}:
            lines.append(f"Date: {formatdate(usegmt=True)}")
        lines += [f"{name}: {value}" for name, value in reply.headers.items()]
        lines.append(f"Content-Length: {len(reply.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body

    def _drop(self, *, reset: bool) -> None:
        self.close_connection = True
        if reset:  # SO_LINGER with a zero timeout makes close() send RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # the connection was dropped on purpose
            super().finish()
