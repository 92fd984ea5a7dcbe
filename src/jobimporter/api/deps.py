"""Dependencies of the routes, as ``Annotated`` aliases: the shared state, the store, the import
context, the settings, the dead letters, paging, and the admin bearer check for mutations."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jobimporter.api.state import ApiState
from jobimporter.config import Settings
from jobimporter.context import ImportContext
from jobimporter.deadletters import DeadLetters
from jobimporter.store.base import JobStore

MAX_PAGE_SIZE = 200
UNPROCESSABLE = 422  # starlette renamed its constant (…_ENTITY → …_CONTENT); the number stays


def get_state(request: Request) -> ApiState:
    return cast(ApiState, request.app.state.api)


StateDep = Annotated[ApiState, Depends(get_state)]


def get_ctx(state: StateDep) -> ImportContext:
    return state.runtime.ctx


def get_store(state: StateDep) -> JobStore:
    return state.runtime.ctx.store


def get_settings(state: StateDep) -> Settings:
    return state.settings


def get_dead_letters(state: StateDep) -> DeadLetters:
    return state.dead_letters


CtxDep = Annotated[ImportContext, Depends(get_ctx)]
StoreDep = Annotated[JobStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DeadLettersDep = Annotated[DeadLetters, Depends(get_dead_letters)]


@dataclass(frozen=True, slots=True)
class Paging:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def get_paging(
    page: Annotated[int, Query(ge=1, description="1-based page number.")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")] = 20,
) -> Paging:
    return Paging(page=page, page_size=page_size)


PagingDep = Annotated[Paging, Depends(get_paging)]

_bearer = HTTPBearer(auto_error=False, description="JOBIMPORTER_ADMIN_TOKEN, when it is set.")


def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Mutations need ``Authorization: Bearer <JOBIMPORTER_ADMIN_TOKEN>`` when that setting is set."""
    token = settings.admin_token
    if token is None:
        return
    given = credentials.credentials.encode() if credentials else b""
    if not secrets.compare_digest(given, token.get_secret_value().encode()):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="admin token required: send Authorization: Bearer <JOBIMPORTER_ADMIN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminDep = Annotated[None, Depends(require_admin)]
