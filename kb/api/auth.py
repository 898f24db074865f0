"""Bearer API keys with roles, each bound to tenants; every /v1 call resolves to exactly one tenant.

A key bound to several tenants picks one per request with the `X-KB-Tenant` header."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Header, HTTPException, Request

from kb.settings import Settings

Role = Literal["reader", "admin"]


@dataclass(frozen=True)
class Principal:
    role: Role
    tenant: str


def resolve(settings: Settings, authorization: str | None, x_kb_tenant: str | None) -> Principal:
    """The principal of a request from its headers alone (the body is never needed, so it is never read
    for a request that fails here: see kb.api.guard)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "missing bearer API key", headers={"WWW-Authenticate": "Bearer"})
    match = None
    for k in settings.api_keys:  # constant-time compare against every key
        if hmac.compare_digest(k.key.get_secret_value().encode(), token.strip().encode("utf-8", "replace")):
            match = k
    if match is None:
        raise HTTPException(401, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
    if x_kb_tenant is None:
        if len(match.tenants) != 1:
            raise HTTPException(400, "this key serves several tenants: name one with the X-KB-Tenant header")
        return Principal(match.role, match.tenants[0])
    if x_kb_tenant not in match.tenants:
        raise HTTPException(403, "this key may not use that tenant")
    return Principal(match.role, x_kb_tenant)


def require_admin(principal: Principal) -> Principal:
    if principal.role != "admin":
        raise HTTPException(403, "this needs an admin API key")
    return principal


def reader(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_kb_tenant: Annotated[str | None, Header()] = None,
) -> Principal:
    done = getattr(request.state, "principal", None)  # resolved by the guard before the body was read
    if isinstance(done, Principal):
        return done
    return resolve(request.app.state.kb.settings, authorization, x_kb_tenant)


def admin(principal: Annotated[Principal, Depends(reader)]) -> Principal:
    return require_admin(principal)


Reader = Annotated[Principal, Depends(reader)]
Admin = Annotated[Principal, Depends(admin)]
