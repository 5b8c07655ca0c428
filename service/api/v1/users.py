"""/v1/users: the users of the tenant, their counts and profiles."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from service.api.deps import ProfilesDep, StateDep, TenantDep, UsersDep
from service.api.params import Cursor, PageLimit
from service.api.routing import resource_router
from service.schemas.common import Page
from service.schemas.users import Profile, ProfileUpdate, User
from service.schemas.validators import ID_PATTERN

router = resource_router("users", "/users")

UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN, description="The user's id.")]


@router.get("", response_model=Page[User])
async def list_users(
    users: UsersDep, tenant: TenantDep, state: StateDep, cursor: Cursor = None, limit: PageLimit = 50
) -> Page[User]:
    """List the users of your tenant in id order, with their counts."""
    page = await users.list(tenant, cursor, min(limit, state.settings.max_page_size))
    return Page[User](items=[User.model_validate(u) for u in page.items], next_cursor=page.next_cursor)


@router.get("/{user_id}", response_model=User)
async def get_user(user_id: UserId, users: UsersDep, tenant: TenantDep) -> User:
    """Read one user's counts and first and last activity."""
    return User.model_validate(await users.get(tenant, user_id))


@router.get("/{user_id}/profile", response_model=Profile)
async def get_profile(user_id: UserId, profiles: ProfilesDep, tenant: TenantDep) -> Profile:
    """Read a user's profile: your fields, and the facts and topics derived from their memories."""
    return Profile.model_validate(await profiles.get(tenant, user_id), from_attributes=True)


@router.patch("/{user_id}/profile", response_model=Profile)
async def update_profile(user_id: UserId, body: ProfileUpdate, profiles: ProfilesDep, tenant: TenantDep) -> Profile:
    """Change a user's profile fields with a JSON merge patch (a user with no records yet is made)."""
    profile = await profiles.patch_fields(tenant, user_id, body.fields)
    return Profile.model_validate(profile, from_attributes=True)
