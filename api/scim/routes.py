"""SCIM 2.0 (RFC 7643/7644) at /scim/v2: an identity provider provisions the workspace's members.

Users are the workspace's members (active or suspended; `id` = the user's `usr_` id, `userName` = email).
Provisioning creates the user if needed and adds the membership; `active: false` or DELETE suspends it;
`active: true` reactivates it. Groups are the roles: one group per role, `id` = `displayName` = the role
key; adding a user to a group gives them that role, removing them sets `viewer`. Name, email and
externalId changes are accepted and not applied (a user's identity is their own, keyed by email).
Every answer uses `application/scim+json`; errors use the SCIM error schema.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, FromQuery

from adapters.postgres import tenant_transaction
from adapters.tokens import Principal
from api.core.client_ip import client_ip
from api.core.consistency import settle
from api.core.request_id import request_id
from api.scim import protocol, schemas
from api.scim.auth import SCIM_REQUIREMENT, scim_token
from api.scim.errors import scim_exception_handlers
from api.scim.protocol import ScimError
from api.scim.schemas import MEDIA_TYPE
from commands.caller import Caller
from commands.scim import DEFAULT_ROLE
from domain.events import Actor, ActorKind
from domain.identity.roles import Role
from domain.ids import WorkspaceId, canonical, render
from projections.identity import scim as reads
from projections.identity.scim import ScimMember

PREFIX = "/scim/v2"
IDENTITY_PROJECTION = "identity"
USER_FILTERS = {"username": "userName"}
GROUP_FILTERS = {"displayname": "displayName"}
T = TypeVar("T")
NewUser = Annotated[schemas.NewUser, Body(media_type=MEDIA_TYPE, examples=[
    Example(summary="Okta", value={"schemas": [protocol.USER_SCHEMA], "userName": "ada@example.com",
                                   "name": {"givenName": "Ada", "familyName": "Lovelace"},
                                   "emails": [{"primary": True, "value": "ada@example.com", "type": "work"}],
                                   "active": True, "externalId": "00u1abcd"})])]
NewGroup = Annotated[schemas.NewGroup, Body(media_type=MEDIA_TYPE, examples=[
    Example(summary="Give a role", value={"schemas": [protocol.GROUP_SCHEMA], "displayName": "analyst",
                                          "members": []})])]
UserPatch = Annotated[schemas.PatchRequest, Body(media_type=MEDIA_TYPE, examples=[
    Example(summary="Okta", value={"schemas": [protocol.PATCH_SCHEMA],
                                   "Operations": [{"op": "replace", "value": {"active": False}}]}),
    Example(summary="Entra ID", value={"schemas": [protocol.PATCH_SCHEMA],
                                       "Operations": [{"op": "Replace", "path": "active", "value": "True"}]})])]
GroupPatch = Annotated[schemas.PatchRequest, Body(media_type=MEDIA_TYPE, examples=[
    Example(summary="Add members", value={"schemas": [protocol.PATCH_SCHEMA], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": "usr_01J0000000000000000000000A"}]}]})])]
"""SCIM request bodies: identity providers send `application/scim+json` (plain JSON is read as well)."""

ERRORS = schemas.errors(e400="invalidValue, invalidSyntax, invalidFilter, invalidPath, mutability",
                        e401="no SCIM token, or one that is revoked or expired")
USER_ERRORS = {**ERRORS, **schemas.errors(e404="no such member in this workspace")}
GROUP_ERRORS = {**ERRORS, **schemas.errors(e404="not a role key")}
WRITE_ERRORS = schemas.errors(e403="the change would grant a role SCIM may not give (owner)",
                              e409="uniqueness: already a member, or a concurrent change; retry",
                              e413="the body is over MAX_BODY_BYTES")


def scim(body: T, status: int = 200, headers: dict[str, str] | None = None) -> Response[T]:
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _principal(request: Request[Any, Any, Any]) -> Principal:
    principal = request.scope.get("user")
    assert isinstance(principal, Principal), "the scim_token guard sets it"
    return principal


def _caller(request: Request[Any, Any, Any]) -> Caller:
    """Events caused by the identity provider: a system actor named by the SCIM token's id."""
    principal = _principal(request)
    return Caller(workspace_id=WorkspaceId(principal.workspace_id),
                  actor=Actor(kind=ActorKind.SYSTEM, id=f"scim:{principal.token_id}"),
                  correlation_id=request_id(request.scope), client_ip=client_ip(request.scope))



def _user_id(value: str) -> str:
    public = canonical("usr", value)
    if public is None:
        raise ScimError(404, f"User {value} not found")
    return public


def user_resource(member: ScimMember) -> schemas.User:
    given, _, family = member.name.partition(" ")
    return schemas.User(
        schemas=[protocol.USER_SCHEMA], id=member.id, userName=member.email,
        name=schemas.Name(formatted=member.name, givenName=given, familyName=family), displayName=member.name,
        emails=[schemas.Email(value=member.email, type="work", primary=True)], active=member.status == "active",
        groups=[schemas.Reference(value=member.role, display=member.role, ref=f"{PREFIX}/Groups/{member.role}")],
        meta=schemas.Meta(resourceType="User", created=member.created_at, lastModified=member.updated_at,
                          location=f"{PREFIX}/Users/{member.id}", version=f'W/"{member.version}"'))


def group_resource(role: Role, members: list[ScimMember] | None) -> schemas.Group:
    return schemas.Group(
        schemas=[protocol.GROUP_SCHEMA], id=role.value, displayName=role.value,
        meta=schemas.Meta(resourceType="Group", location=f"{PREFIX}/Groups/{role.value}"),
        members=None if members is None else [
            schemas.Reference(value=m.id, display=m.email, ref=f"{PREFIX}/Users/{m.id}") for m in members])


def list_response(resources: list[T], total: int, start: int) -> schemas.ListResponse[T]:
    return schemas.ListResponse(schemas=[protocol.LIST_SCHEMA], totalResults=total, startIndex=start,
                                itemsPerPage=len(resources), Resources=resources)


def _role(group_id: str) -> Role:
    try:
        return Role(group_id)
    except ValueError:
        raise ScimError(404, f"Group {group_id} not found") from None


def _display_name(user: schemas.NewUser) -> str | None:
    if user.displayName and user.displayName.strip():
        return user.displayName
    name = user.name or {}
    if isinstance(name.get("formatted"), str) and name["formatted"].strip():
        return str(name["formatted"])
    parts = [name.get("givenName"), name.get("familyName")]
    joined = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return joined or None


def _email(user: schemas.NewUser) -> str:
    if "@" in user.userName:
        return user.userName
    for item in user.emails or []:
        if isinstance(item, dict) and isinstance(item.get("value"), str) and (item.get("primary") or True):
            return str(item["value"])
    raise ScimError(400, "userName must be the user's email address", "invalidValue")


class ScimController(Controller):
    path = PREFIX
    tags = ("SCIM",)
    guards = [scim_token]  # noqa: RUF012  (Litestar reads this class attribute)
    security = [SCIM_REQUIREMENT]  # noqa: RUF012
    exception_handlers = scim_exception_handlers()

    @get("/ServiceProviderConfig", media_type=MEDIA_TYPE, responses=ERRORS)
    async def scim_service_provider_config(self) -> Response[schemas.ServiceProviderConfig]:
        """What this SCIM service supports (RFC 7643 5)."""
        return scim(schemas.ServiceProviderConfig(
            schemas=["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            patch=schemas.Supported(supported=True),
            bulk=schemas.Bulk(supported=False, maxOperations=0, maxPayloadSize=0),
            filter=schemas.Filter(supported=True, maxResults=protocol.MAX_COUNT),
            changePassword=schemas.Supported(supported=False), sort=schemas.Supported(supported=False),
            etag=schemas.Supported(supported=False),
            authenticationSchemes=[schemas.AuthenticationScheme(
                type="oauthbearertoken", name="SCIM token",
                description="Bearer clp_scim_… from POST /v1/settings/scim-tokens")]))

    # -- Users ----------------------------------------------------------------------------------------------

    @get("/Users", media_type=MEDIA_TYPE, responses=ERRORS)
    async def scim_list_users(self, request: Request[Any, Any, Any], filter: FromQuery[str | None] = None,
                         startIndex: FromQuery[int | None] = None,
                         count: FromQuery[int | None] = None) -> Response[schemas.ListResponse[schemas.User]]:
        """Members of the workspace; `filter=userName eq "…"`, `startIndex` (1-based) and `count`."""
        principal = _principal(request)
        matched = protocol.parse_filter(filter, USER_FILTERS)
        start, size = protocol.page_bounds(startIndex, count)
        async with tenant_transaction(request.app.state.read_pool, principal.workspace_id) as conn:
            rows, total = await reads.members(conn, principal.workspace_id,
                                              email=matched[1] if matched else None, offset=start - 1, limit=size)
        return scim(list_response([user_resource(row) for row in rows], total, start))

    @get("/Users/{user_id:str}", media_type=MEDIA_TYPE, responses=USER_ERRORS)
    async def scim_get_user(self, request: Request[Any, Any, Any], user_id: FromPath[str]) -> Response[schemas.User]:
        """One member as a SCIM User (404 for anyone who is not a member of this workspace)."""
        return scim(user_resource(await self._member(request, _user_id(user_id))))

    @post("/Users", status_code=201, media_type=MEDIA_TYPE, responses={**ERRORS, **WRITE_ERRORS})
    async def scim_create_user(self, request: Request[Any, Any, Any], state: State,
                          data: NewUser) -> Response[schemas.User]:
        """Provision: creates the user if new and adds them as a `viewer` (suspended if `active` is false).
        An existing member is 409 `uniqueness`."""
        active = protocol.as_bool(data.active, "active")
        done = await request.app.state.scim_commands.provision(
            _caller(request), email=_email(data), name=_display_name(data), active=active, role=DEFAULT_ROLE)
        await settle(state, (IDENTITY_PROJECTION, done.position))
        member = await self._member(request, render("usr", done.stream_id))
        return scim(user_resource(member), 201, {"Location": f"{PREFIX}/Users/{member.id}"})

    @patch("/Users/{user_id:str}", media_type=MEDIA_TYPE, responses={**USER_ERRORS, **WRITE_ERRORS})
    async def scim_patch_user(self, request: Request[Any, Any, Any], state: State, user_id: FromPath[str],
                         data: UserPatch) -> Response[schemas.User]:
        """PatchOp: `active` (de)activates the membership (Okta's value object and Entra ID's string booleans
        both work); other attributes are accepted and not applied."""
        public = _user_id(user_id)
        active = protocol.user_active_change(protocol.operations(data))
        await self._set_active(request, state, public, active)
        return scim(user_resource(await self._member(request, public)))

    @put("/Users/{user_id:str}", media_type=MEDIA_TYPE, responses={**USER_ERRORS, **WRITE_ERRORS})
    async def scim_replace_user(self, request: Request[Any, Any, Any], state: State, user_id: FromPath[str],
                           data: NewUser) -> Response[schemas.User]:
        """Replace: only `active` is applied (see PATCH)."""
        public = _user_id(user_id)
        await self._set_active(request, state, public, protocol.as_bool(data.active, "active"))
        return scim(user_resource(await self._member(request, public)))

    @delete("/Users/{user_id:str}", status_code=204, responses={**USER_ERRORS, **WRITE_ERRORS})
    async def scim_delete_user(self, request: Request[Any, Any, Any], state: State, user_id: FromPath[str]) -> None:
        """Deprovision: the membership is suspended (its history and the user stay)."""
        await self._set_active(request, state, _user_id(user_id), False)

    async def _set_active(self, request: Request[Any, Any, Any], state: State, user_id: str,
                          active: bool | None) -> None:
        await self._member(request, user_id)
        if active is None:
            return
        done = await state.scim_commands.set_active(_caller(request), user_id, active)
        await settle(state, (IDENTITY_PROJECTION, done.position))

    async def _member(self, request: Request[Any, Any, Any], user_id: str) -> ScimMember:
        principal = _principal(request)
        async with tenant_transaction(request.app.state.read_pool, principal.workspace_id) as conn:
            member = await reads.member(conn, principal.workspace_id, user_id)
        if member is None:
            raise ScimError(404, f"User {user_id} not found")
        return member

    # -- Groups (= roles) -----------------------------------------------------------------------------------

    @get("/Groups", media_type=MEDIA_TYPE, responses=ERRORS)
    async def scim_list_groups(self, request: Request[Any, Any, Any], filter: FromQuery[str | None] = None,
                          excludedAttributes: FromQuery[str | None] = None,
                          startIndex: FromQuery[int | None] = None,
                          count: FromQuery[int | None] = None) -> Response[schemas.ListResponse[schemas.Group]]:
        """One group per role (`displayName` = the role key), with its members."""
        matched = protocol.parse_filter(filter, GROUP_FILTERS)
        roles = [r for r in Role if matched is None or r.value == matched[1]]
        start, size = protocol.page_bounds(startIndex, count)
        page = roles[start - 1:start - 1 + size]
        with_members = "members" not in (excludedAttributes or "").lower()
        groups = [group_resource(role, await self._members_of(request, role) if with_members else None)
                  for role in page]
        return scim(list_response(groups, len(roles), start))

    @get("/Groups/{group_id:str}", media_type=MEDIA_TYPE, responses=GROUP_ERRORS)
    async def scim_get_group(self, request: Request[Any, Any, Any], group_id: FromPath[str]) -> Response[schemas.Group]:
        role = _role(group_id)
        return scim(group_resource(role, await self._members_of(request, role)))

    @post("/Groups", status_code=201, media_type=MEDIA_TYPE, responses={**USER_ERRORS, **WRITE_ERRORS})
    async def scim_create_group(self, request: Request[Any, Any, Any], state: State,
                           data: NewGroup) -> Response[schemas.Group]:
        """Groups are the fixed roles: "creating" one whose displayName is a role key returns it, with the
        members given added to it; any other name is 400. A member that is not in the workspace is 404."""
        role = data.displayName
        if data.members:
            await self._apply(request, state, role, [member.value for member in data.members], [], None)
        return scim(group_resource(role, await self._members_of(request, role)), 201,
                    {"Location": f"{PREFIX}/Groups/{role.value}"})

    @patch("/Groups/{group_id:str}", media_type=MEDIA_TYPE, responses={**GROUP_ERRORS, **WRITE_ERRORS})
    async def scim_patch_group(self, request: Request[Any, Any, Any], state: State, group_id: FromPath[str],
                          data: GroupPatch) -> Response[schemas.Group]:
        """Members add/remove/replace: a member added gets this role; a member removed gets `viewer`."""
        role = _role(group_id)
        added, removed, replaced = protocol.group_member_changes(protocol.operations(data))
        await self._apply(request, state, role, added, removed, replaced)
        return scim(group_resource(role, await self._members_of(request, role)))

    async def _apply(self, request: Request[Any, Any, Any], state: State, role: Role, added: list[str],
                     removed: list[str], replaced: list[str] | None) -> None:
        current = {m.id for m in await self._members_of(request, role)}
        changes: dict[str, Role] = {}
        if replaced is not None:
            wanted = {_user_id(u) for u in replaced}
            changes |= {u: DEFAULT_ROLE for u in current - wanted}
            changes |= {u: role for u in wanted}
        for user_id in removed:
            public = _user_id(user_id)
            if public in current:
                changes[public] = DEFAULT_ROLE
        for user_id in added:
            changes[_user_id(user_id)] = role
        if changes:
            changed = await state.scim_commands.set_roles(_caller(request), sorted(changes.items()))
            await settle(state, (IDENTITY_PROJECTION, changed.position))

    async def _members_of(self, request: Request[Any, Any, Any], role: Role) -> list[ScimMember]:
        principal = _principal(request)
        async with tenant_transaction(request.app.state.read_pool, principal.workspace_id) as conn:
            rows, _ = await reads.members(conn, principal.workspace_id, role=role.value)
        return rows
