"""API for operating the engine: manual overrides (X2), the outbox and its dead-letter queue,
and connector circuits (X1). Each change carries the caller (from the token) and a reason."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from baton.clock import Clock
from baton.engine import operations as ops
from baton.engine.batcher import Batcher
from baton.engine.breaker import circuit_states
from baton.errors import StoreError
from baton.store.db import Database
from baton.web.auth import Principal

# An outbox row id as the database can hold it: a larger number is a 422, never a 500.
ActionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The outbox action's id.")]

__all__ = ["operations_router"]

Reason = Annotated[str, StringConstraints(min_length=1, max_length=1_000, strip_whitespace=True)]


class OverrideBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["reassign", "tier", "priority", "pause_sla", "resume_sla"]
    reason: Reason
    person: str | None = None
    role: str | None = None
    tier: str | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


def operations_router(
    *,
    db: Database,
    batcher: Batcher | None,
    clock: Clock,
    principal: Callable[[str], Callable[[Request], Awaitable[Principal]]],
) -> APIRouter:
    router = APIRouter()
    Reader = Annotated[Principal, Depends(principal("read"))]
    Actor = Annotated[Principal, Depends(principal("act"))]

    @router.post("/v1/tickets/{ticket_id}/overrides", tags=["tickets"], status_code=202)
    async def override(ticket_id: str, body: OverrideBody, who: Actor) -> dict[str, Any]:
        if batcher is None:
            raise StoreError("this server does not accept changes")
        values = body.model_dump(exclude={"action", "reason"}, exclude_none=True)
        event = ops.override_event(
            ticket_id, action=body.action, actor=who.name, reason=body.reason, at=clock.now(), **values
        )
        result = await batcher.ingest(event)
        return {"status": result.status, "ticket_id": result.ticket_id, "decision_id": result.decision_id}

    @router.get("/v1/outbox", tags=["outbox"])
    def list_outbox(
        _who: Reader, status: str = "dead", limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> dict[str, Any]:
        with db.reader.connect() as conn:
            return {"actions": ops.list_actions(conn, status=status, limit=limit)}

    @router.get("/v1/outbox/{action_id}", tags=["outbox"])
    def show_outbox(action_id: ActionId, _who: Reader) -> dict[str, Any]:
        with db.reader.connect() as conn:
            return ops.show_action(conn, action_id)

    def change(action_id: int, body: ReasonBody, who: Principal, which: str) -> dict[str, Any]:
        function = {"retry": ops.retry_action, "drop": ops.drop_action, "cancel": ops.cancel_action}[which]
        with db.write() as conn:
            return function(
                conn,
                action_id,
                actor=who.name,
                reason=body.reason,
                at=clock.now(),
                is_postgres=db.is_postgres,
            )

    @router.post("/v1/outbox/{action_id}/retry", tags=["outbox"])
    def retry(action_id: ActionId, body: ReasonBody, who: Actor) -> dict[str, Any]:
        return change(action_id, body, who, "retry")

    @router.post("/v1/outbox/{action_id}/drop", tags=["outbox"])
    def drop(action_id: ActionId, body: ReasonBody, who: Actor) -> dict[str, Any]:
        return change(action_id, body, who, "drop")

    @router.post("/v1/outbox/{action_id}/cancel", tags=["outbox"])
    def cancel(action_id: ActionId, body: ReasonBody, who: Actor) -> dict[str, Any]:
        return change(action_id, body, who, "cancel")

    @router.get("/v1/connectors", tags=["outbox"])
    def connectors(_who: Reader) -> dict[str, Any]:
        with db.reader.connect() as conn:
            return {"circuits": circuit_states(conn, now=clock.now())}

    return router
