"""The HTTP API and the minimal dashboard (FastAPI).

Every endpoint but ``/healthz`` checks a token and a permission. ``POST /v1/events`` answers
only after the event is committed (through the micro-batcher), so a 2xx is a durable promise.
"""

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, StringConstraints
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baton import audit
from baton.clock import Clock, SystemClock
from baton.engine.approvals import decide_approval, pending_approvals
from baton.engine.batcher import Batcher
from baton.errors import AuthError, InputError, NotFoundError, StoreError, TooLargeError
from baton.model import Event, dump
from baton.settings import Settings
from baton.signals.canonical import parse_event
from baton.signals.webhooks import webhook_router
from baton.store import read
from baton.store.db import Database
from baton.web.auth import Principal, authenticate
from baton.web.metrics import metrics_router
from baton.web.operations import ActionId, operations_router

__all__ = ["create_app"]

_log = logging.getLogger("baton.web")
_TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
COOKIE = "baton_token"


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413 before reading them whole, whether or not the
    client sent a Content-Length (chunked bodies are counted as they stream)."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_error(send, 400, "bad_request", "Content-Length is not a number")
                    return
                if declared > self.limit:
                    await _send_error(send, 413, "too_large", f"body is larger than {self.limit} bytes")
                    return
        seen = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise TooLargeError(f"body is larger than {self.limit} bytes")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except TooLargeError as exc:
            if not response_started:
                await _send_error(send, 413, "too_large", str(exc))


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class VerdictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(min_length=1, max_length=1_000, strip_whitespace=True)]


# The dashboard's pages run no script and load nothing but its own stylesheet: a browser that
# is told so refuses anything a ticket's text might smuggle in, and no other site may frame them.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _page(response: HTMLResponse) -> HTMLResponse:
    response.headers.update(_PAGE_HEADERS)
    return response


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(
    *,
    settings: Settings,
    db: Database,
    batcher: Batcher | None,
    approvers: Callable[[], frozenset[str] | None] = lambda: None,
    clock: Clock | None = None,
) -> FastAPI:
    """Build the app. ``batcher`` is None for a read-only API (no ingest); ``approvers`` names who
    may approve actions under the active policy (None: anyone with an approver token); ``clock``
    is what webhook signature windows and rate limits are measured by (default: system time)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if batcher is not None:
            batcher.start()
        try:
            yield
        finally:
            if batcher is not None:
                batcher.stop()

    # The API docs (/docs, /redoc) serve Swagger UI and ReDoc from the installed package, not a
    # CDN: the dashboard and its docs work offline and load nothing from the internet.
    app = FastAPIOffline(
        title="Baton",
        version="0.1.0",
        description="The execution layer for support escalations.",
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from validator.swagger.io
        redoc_url=None,  # ReDoc always loads its logo from cdn.redoc.ly; Swagger UI at /docs suffices
    )
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> Response:
        forbidden = exc.forbidden
        if request.url.path.startswith("/v1/") or forbidden:
            return _error(403 if forbidden else 401, "forbidden" if forbidden else "unauthorized", str(exc))
        return _page(
            HTMLResponse(_TEMPLATES.get_template("login.html").render(message=str(exc)), status_code=401)
        )

    @app.exception_handler(TooLargeError)
    async def _too_large(_request: Request, exc: TooLargeError) -> Response:
        if exc.limit == "bytes":
            return _error(413, "too_large", str(exc))
        return _error(400, f"too_{exc.limit}", str(exc))

    @app.exception_handler(InputError)
    async def _input_error(_request: Request, exc: InputError) -> Response:
        return _error(422, "invalid", str(exc))

    @app.exception_handler(NotFoundError)
    async def _not_found(_request: Request, exc: NotFoundError) -> Response:
        return _error(404, "not_found", str(exc))

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> Response:
        return _error(503, "unavailable", "the event was not stored; retry later")

    def principal(permission: str) -> Callable[[Request], Awaitable[Principal]]:
        async def check(request: Request) -> Principal:
            header = request.headers.get("authorization", "")
            token = (
                header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
            )
            with db.reader.connect() as conn:
                who = authenticate(conn, token)
            who.require(permission)
            return who

        return check

    Reader = Annotated[Principal, Depends(principal("read"))]
    Ingester = Annotated[Principal, Depends(principal("ingest"))]

    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's document, plus the canonical event (the body of ``POST /v1/events`` is read
        by hand, not by a typed parameter) with its nested types, all under components."""
        if app.openapi_schema is None:
            doc = plain_openapi()
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            event = Event.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(event.pop("$defs", {}))
            schemas["Event"] = event
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(
        "/v1/events",
        tags=["events"],
        status_code=202,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Event"}}},
            }
        },
        responses={
            200: {"description": "A redelivery of an event already stored; nothing new happened."},
            202: {"description": "Stored and decided (committed before this answer)."},
            413: {"description": "Body too large"},
            422: {"description": "Malformed or invalid event"},
        },
    )
    async def post_event(request: Request, _who: Ingester) -> JSONResponse:
        if batcher is None:
            return _error(503, "read_only", "this server does not accept events")
        if "json" not in request.headers.get("content-type", "application/json"):
            return _error(415, "unsupported_media_type", "send application/json")
        event = parse_event(await request.body(), max_depth=settings.max_json_depth)
        result = await batcher.ingest(event)
        return JSONResponse(
            {"status": result.status, "ticket_id": result.ticket_id, "decision_id": result.decision_id},
            status_code=202 if result.status == "accepted" else 200,
        )

    @app.get("/v1/tickets", tags=["tickets"])
    def list_tickets(
        _who: Reader,
        stage: str | None = None,
        owner: str | None = None,
        queue: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        before_ms: int | None = None,
    ) -> dict[str, Any]:
        with db.reader.connect() as conn:
            rows = read.list_tickets(
                conn, stage=stage, owner=owner, queue=queue, limit=limit, before_ms=before_ms
            )
        return {"tickets": rows, "next_before_ms": rows[-1]["updated_ms"] if len(rows) == limit else None}

    @app.get("/v1/tickets/{ticket_id}", tags=["tickets"])
    def get_ticket(ticket_id: str, _who: Reader) -> dict[str, Any]:
        with db.reader.connect() as conn:
            ticket = read.get_ticket(conn, ticket_id)
        if ticket is None:
            raise NotFoundError(f"no ticket {ticket_id!r}")
        result: dict[str, Any] = dump(ticket)
        return result

    @app.get("/v1/tickets/{ticket_id}/timeline", tags=["tickets"])
    def get_timeline(ticket_id: str, _who: Reader) -> dict[str, Any]:
        with db.reader.connect() as conn:
            items = read.timeline(conn, ticket_id)
        if not items:
            raise NotFoundError(f"no ticket {ticket_id!r}")
        return {"ticket_id": ticket_id, "items": items}

    @app.get("/v1/stats", tags=["ops"])
    def get_stats(_who: Reader) -> dict[str, Any]:
        with db.reader.connect() as conn:
            return read.stats(conn)

    @app.get("/v1/kpis", tags=["ops"])
    def get_kpis(_who: Reader) -> dict[str, Any]:
        """Every KPI of the store as of now, with ticket and event counts (docs/kpis.md)."""
        from baton.analytics.live import live_kpis

        with db.reader.connect() as conn:
            return live_kpis(conn, now=(clock or SystemClock()).now()).document()

    @app.get("/v1/audit/verify", tags=["audit"])
    def verify_audit(_who: Annotated[Principal, Depends(principal("admin"))]) -> dict[str, Any]:
        with db.reader.connect() as conn:
            report = audit.verify(conn)
        return {
            "ok": report.ok,
            "length": report.length,
            "head": report.head,
            "problems": [p.__dict__ for p in report.problems],
        }

    Approver = Annotated[Principal, Depends(principal("approve"))]

    @app.get("/v1/approvals", tags=["approvals"])
    def list_approvals(_who: Approver, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
        with db.reader.connect() as conn:
            return {"approvals": pending_approvals(conn, limit=limit)}

    def verdict(action_id: int, body: VerdictBody, who: Principal, *, approve: bool) -> dict[str, Any]:
        with db.write() as conn:
            result = decide_approval(
                conn,
                action_id=action_id,
                approve=approve,
                actor=who.name,
                reason=body.reason,
                at=(clock or SystemClock()).now(),
                is_postgres=db.is_postgres,
                approvers=approvers(),
            )
        return {"id": result.id, "status": result.status, "ticket_id": result.ticket_id}

    @app.post("/v1/approvals/{action_id}/approve", tags=["approvals"])
    def approve(action_id: ActionId, body: VerdictBody, who: Approver) -> dict[str, Any]:
        return verdict(action_id, body, who, approve=True)

    @app.post("/v1/approvals/{action_id}/reject", tags=["approvals"])
    def reject(action_id: ActionId, body: VerdictBody, who: Approver) -> dict[str, Any]:
        return verdict(action_id, body, who, approve=False)

    # -- dashboard -------------------------------------------------------------------------

    @app.get("/login", include_in_schema=False)
    def login(token: str) -> Response:
        with db.reader.connect() as conn:
            who = authenticate(conn, token)
        who.require("read")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=7 * 24 * 3600)
        return response

    @app.get("/", include_in_schema=False)
    def index(request: Request, _who: Reader, stage: str | None = None) -> HTMLResponse:
        with db.reader.connect() as conn:
            rows = read.list_tickets(conn, stage=stage, limit=200)
            summary = read.stats(conn)
        return _page(
            _TEMPLATES.TemplateResponse(
                request, "index.html", {"tickets": rows, "stats": summary, "stage": stage}
            )
        )

    @app.get("/tickets/{ticket_id}", include_in_schema=False)
    def ticket_page(request: Request, ticket_id: str, _who: Reader) -> HTMLResponse:
        with db.reader.connect() as conn:
            ticket = read.get_ticket(conn, ticket_id)
            items = read.timeline(conn, ticket_id)
        if ticket is None:
            raise NotFoundError(f"no ticket {ticket_id!r}")
        return _page(_TEMPLATES.TemplateResponse(request, "ticket.html", {"ticket": ticket, "items": items}))

    # Vendor webhooks authenticate by signature or shared token, not by Baton API tokens.
    app.include_router(webhook_router(settings=settings, batcher=batcher, clock=clock or SystemClock()))
    app.include_router(
        operations_router(db=db, batcher=batcher, clock=clock or SystemClock(), principal=principal)
    )
    app.include_router(metrics_router(db=db, now=(clock or SystemClock()).now, reader=principal("read")))
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
