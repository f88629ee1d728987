"""A throwaway Litestar app wired only with the API conventions, plus token helpers."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio.to_thread
import jwt
import msgspec
import pytest
from litestar import Litestar, Request, Response, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody, RawBody
from litestar.testing import AsyncTestClient

from adapters.settings import Settings
from adapters.tokens import AUDIENCE, ISSUER, mint_access_token
from api.core.auth import PUBLIC, CurrentPrincipal, authenticated, requires
from api.core.conditional import etag_for, expected_version
from api.core.conventions import convention_config, openapi_json
from api.core.errors import not_found
from api.core.input_policy import RequestBody
from api.core.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, SortParam, decode_cursor, page_of, parse_sort
from commands.errors import StaleVersion
from domain.errors import InvalidTransition, InvalidValue
from tests.conftest import new_workspace_id

READ = "issues:read"
WRITE = "issues:write"
ITEMS = [{"id": f"itm_{n:02d}", "n": n} for n in range(1, 8)]
THING_VERSION = 3


class Meta(RequestBody):
    level: int


class ThingIn(RequestBody, kw_only=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    count: int = 0
    meta: Meta | None = None


class ThingOut(msgspec.Struct, kw_only=True):
    id: str
    title: str
    workspace_id: str
    call: int


class Item(msgspec.Struct):
    id: str
    n: int


class Calls:
    """How often each path's handler really ran, and gates to hold one request in flight."""

    def __init__(self) -> None:
        self.by_path: Counter[str] = Counter()
        self.entered = threading.Event()
        self.release = threading.Event()


@post(["/v1/things", "/v1/gadgets"], guards=[requires(WRITE)], status_code=201)
async def create_thing(data: JSONBody[ThingIn], principal: CurrentPrincipal, state: State,
                       request: Request[Any, Any, Any]) -> Response[ThingOut]:
    """Create a thing; some titles misbehave on purpose."""
    calls: Calls = state.calls
    calls.by_path[request.url.path] += 1
    if data.title == "slow":
        calls.entered.set()
        await anyio.to_thread.run_sync(calls.release.wait, 10)
    if data.title == "illegal":
        raise InvalidTransition("A closed thing cannot do that", thing_id="thg_1")
    if data.title == "invalid":
        raise InvalidValue("title", "must not be 'invalid'")
    if data.title == "missing":
        raise not_found("Thing", "thg_missing")
    if data.title == "boom":
        raise RuntimeError("secret internals")
    thing_id = f"thg_{uuid.uuid4().hex[:8]}"
    body = ThingOut(id=thing_id, title=data.title, workspace_id=principal.workspace_id,
                    call=calls.by_path[request.url.path])
    return Response(body, status_code=201, headers={"Location": f"/v1/things/{thing_id}",
                                                    "ETag": etag_for(1), "X-Other": "not replayed"})


@post("/v1/raw-things", guards=[requires(WRITE)], status_code=201)
async def create_raw_thing(body: RawBody) -> dict[str, str]:
    """Decodes its own body, so msgspec's errors reach the exception handler unwrapped."""
    return {"title": msgspec.json.decode(body, type=ThingIn).title}


@patch("/v1/things/{thing_id:str}", guards=[requires(WRITE)])
async def rename_thing(thing_id: FromPath[str], data: JSONBody[ThingIn],
                       request: Request[Any, Any, Any]) -> Response[dict[str, object]]:
    if (expected := expected_version(request)) is not None and expected != THING_VERSION:
        raise StaleVersion(expected, THING_VERSION)  # what a command raises: the one error mapper answers 412
    return Response({"id": thing_id, "title": data.title}, headers={"ETag": etag_for(THING_VERSION + 1)})


@get("/v1/items", guards=[requires(READ)])
async def list_items(state: State, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
                     sort: SortParam = None) -> Page[Item]:
    """A keyset-paginated list over a fixed set."""
    field, descending = parse_sort(sort, {"n"}, "-n")
    spec = f"-{field}" if descending else field
    rows = sorted(ITEMS, key=lambda i: int(str(i["n"])), reverse=descending)
    if cursor:
        after = int(str(decode_cursor(state.cursor_key, cursor, spec)["v"]))
        rows = [r for r in rows if (int(str(r["n"])) < after if descending else int(str(r["n"])) > after)]
    items = [Item(id=str(r["id"]), n=int(str(r["n"]))) for r in rows[:limit + 1]]
    return page_of(items, limit=limit, total=len(ITEMS), key=state.cursor_key, sort=spec,
                   position=lambda item: {"v": item.n})


@get("/v1/me", guards=[authenticated])
async def me(principal: CurrentPrincipal) -> dict[str, object]:
    return {"subject": principal.subject, "scopes": sorted(principal.scopes)}


@post("/v1/public/echo", opt=PUBLIC, status_code=200)
async def public_echo(data: JSONBody[ThingIn]) -> dict[str, str]:
    return {"title": data.title}


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def build_app(settings: Settings, lifespan: Sequence[Lifespan] = (), **options: Any) -> Litestar:
    state = State({"calls": Calls(), "cursor_key": settings.signing_key_for_cursors})
    return Litestar(
        route_handlers=[create_thing, create_raw_thing, rename_thing, list_items, me, public_echo, health,
                        openapi_json],
        state=state, lifespan=list(lifespan),
        logging_config=None,  # Litestar's default logging config would replace pytest's log capture
        **convention_config(settings, **options),
    )


def token_for(settings: Settings, *, scopes: frozenset[str] = frozenset({READ, WRITE}),
              workspace_id: str | None = None, subject: str | None = None, now: datetime | None = None) -> str:
    return mint_access_token(settings, subject=subject or f"usr_{uuid.uuid4().hex[:12]}",
                             workspace_id=workspace_id or new_workspace_id(), role="analyst", scopes=scopes, now=now)


def signed_claims(secret: str, algorithm: str = "HS256", **overrides: object) -> str:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": "usr_x", "ws": "ws_x", "role": "analyst", "scope": READ,
        "jti": uuid.uuid4().hex, "iat": int(now.timestamp()), "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    claims.update(overrides)
    return jwt.encode(claims, secret if algorithm != "none" else "", algorithm=algorithm)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]
AppClient = AsyncTestClient[Litestar]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AppClient]:
    async with AsyncTestClient(app=build_app(settings)) as client:
        yield client


@pytest.fixture
def auth(settings: Settings) -> dict[str, str]:
    """Headers of a caller holding issues:read and issues:write in a fresh workspace."""
    return bearer(token_for(settings))


ClientFactory = Callable[..., AsyncTestClient[Litestar]]
