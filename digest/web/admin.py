"""The admin API: subscribers and editions, behind `Authorization: Bearer
DIGEST_ADMIN_TOKEN`. With no token configured the admin API answers 404, as if it
did not exist."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from digest import store
from digest.web.api import ErrorOut
from digest.web.context import web

bearer = HTTPBearer(auto_error=False, description="DIGEST_ADMIN_TOKEN")


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    expected = web(request).settings.admin_token
    if not expected:
        raise HTTPException(404, "the admin API is disabled (DIGEST_ADMIN_TOKEN is empty)")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})


ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token"},
    404: {"model": ErrorOut, "description": "Admin API disabled"},
}

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=ADMIN_ERRORS,
)


class SubscriberRow(BaseModel):
    id: int
    email: str
    status: str
    keywords: str
    timezone: str
    send_at: str
    frequency: str
    weekday: str | None
    max_papers: int
    bounces: int
    created_at: datetime | None
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None
    last_digest_at: datetime | None


class EditionRow(BaseModel):
    edition: str
    total: int
    statuses: dict[str, int]


class DigestRow(BaseModel):
    id: int
    subscriber_id: int
    recipient: str
    status: str
    subject: str | None
    papers: int
    attempts: int
    created_at: datetime | None
    sent_at: datetime | None
    last_error: str | None


@router.get("/subscribers", response_model=list[SubscriberRow])
async def list_subscribers(
    request: Request,
    status: Literal["pending", "active", "paused", "suspended", "unsubscribed"] | None = None,
) -> Any:
    rows = await run_in_threadpool(store.list_subscribers, web(request).engine, status)
    return [SubscriberRow.model_validate(r, from_attributes=True) for r in rows]


@router.get("/editions", response_model=list[EditionRow])
async def list_editions(request: Request) -> Any:
    """Each edition with how many digests are in each delivery status."""
    return await run_in_threadpool(store.edition_summary, web(request).engine)


@router.get("/editions/{edition}", response_model=list[DigestRow])
async def edition_digests(
    request: Request,
    edition: str,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> Any:
    rows = await run_in_threadpool(store.digests_for_edition, web(request).engine, edition[:32])
    return [
        DigestRow(
            id=r.id or 0,
            subscriber_id=r.subscriber_id,
            recipient=r.recipient,
            status=r.status,
            subject=r.subject,
            papers=len(r.paper_ids or []),
            attempts=r.attempts,
            created_at=r.created_at,
            sent_at=r.sent_at,
            last_error=r.last_error,
        )
        for r in rows[:limit]
    ]
