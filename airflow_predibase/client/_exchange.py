"""The building blocks every operation is made of. No I/O happens here.

`one`, `many` and `nothing` are the common exchange patterns; `dialect` lets an operation
ask the sender which API dialect the server speaks (the sender answers from settings, from
its cache, or by probing once, see `_dialect`); `per_dialect` picks one of two operations
by that answer.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, replace
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel

from airflow_predibase.client._base import (
    ApiRequest,
    decode,
    invalid_response,
    parse_list,
    parse_model,
)
from airflow_predibase.client._sse import EventStream
from airflow_predibase.client.errors import ResponseValidationError

Dialect = Literal["spec", "platform"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class AskDialect:
    """What an operation yields to learn which dialect the server speaks (see `dialect`)."""

    def __repr__(self) -> str:
        return "ASK_DIALECT"


ASK_DIALECT = AskDialect()

#: An operation: yields the exchanges it needs (or ASK_DIALECT), receives each answer (an
#: `httpx.Response`, or the `DialectChoice` for ASK_DIALECT), returns its result.
Op = Generator[ApiRequest | AskDialect, Any, T]


@dataclass(frozen=True)
class StreamOp(Generic[M]):
    """A streaming operation: send `request`, parse each SSE event into `model`."""

    request: ApiRequest
    model: type[M]

    def events(self) -> EventStream[M]:
        return EventStream(self.model, method=self.request.method, path=self.request.shown_path)


def one(call: ApiRequest, model: type[M]) -> Op[M]:
    response = yield call
    return parse_model(call, response, model)


#: A list longer than this many pages is answered as broken rather than read for ever.
MAX_PAGES = 10_000


def _page_call(call: ApiRequest, offset: int, limit: int | None) -> ApiRequest:
    """The request for the page at `offset`: the first as given; the next ones ask for the
    page size the server chose (replacing any query the first one had)."""
    if not offset:
        return call
    query = ({"limit": limit} if limit else {}) | {"offset": offset}
    return replace(call, path=f"{call.path.partition('?')[0]}?{urlencode(query)}")


def _paging(body: Any) -> list[dict[str, Any]]:
    """Where a list answer may keep its paging fields: the body, or its `data` object."""
    holders = [body] if isinstance(body, dict) else []
    if holders and isinstance(body.get("data"), dict):
        holders.append(body["data"])
    return holders


def _next_offset(call: ApiRequest, response: httpx.Response, offset: int, count: int) -> int | None:
    """Where the next page starts, or None after the last page.

    Offset paging, as the emulator answers (`?limit=&offset=`): the body (or its `data`
    object) names `next_offset` (null on the last page), or only `total`. An answer with
    neither is the whole list.
    """
    holders = _paging(decode(call, response))
    for holder in holders:
        for name in ("next_offset", "nextOffset"):
            if name in holder:
                following = holder[name]
                if following is None:
                    return None
                if not isinstance(following, int) or following <= offset:
                    why = f"{name} {following!r} does not move past offset {offset}"
                    raise invalid_response(call, response, why)
                return following
    for holder in holders:
        total = holder.get("total")
        if isinstance(total, int) and not isinstance(total, bool):
            return offset + count if count and offset + count < total else None
    return None


def _page_limit(call: ApiRequest, response: httpx.Response) -> int | None:
    for holder in _paging(decode(call, response)):
        limit = holder.get("limit")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            return limit
    return None


def many(call: ApiRequest, model: type[M], key: str) -> Op[list[M]]:
    """Every item of a list, page after page (see `_next_offset`).

    An item created or deleted while the pages are read can shift the pages: a caller that
    looks for one item must not rely on a single read (the operators also remember IDs).
    """
    items: list[M] = []
    offset, limit = 0, None
    for _ in range(MAX_PAGES):
        page_call = _page_call(call, offset, limit)
        response = yield page_call
        page = parse_list(page_call, response, model, key)
        items.extend(page)
        following = _next_offset(page_call, response, offset, len(page))
        if following is None:
            return items
        offset, limit = following, limit or _page_limit(page_call, response)
    raise invalid_response(page_call, response, f"more than {MAX_PAGES} pages")


def nothing(call: ApiRequest) -> Op[None]:
    yield call


def serving(deployment: str, path: str, body: dict[str, Any], **kw: Any) -> ApiRequest:
    # Serving calls change no state, so repeating one after a timeout or 503 is safe.
    return ApiRequest(
        "POST", path, plane="serving", deployment=deployment, json=body, idempotent=True, **kw
    )


def dialect() -> Generator[AskDialect, Any, Dialect]:
    """The dialect this client speaks, as the sender resolves it (it sends back the
    `_dialect.DialectChoice`)."""
    choice = yield ASK_DIALECT
    chosen: Dialect = choice.dialect
    return chosen


def per_dialect(spec: Callable[[], Op[T]], platform: Callable[[], Op[T]]) -> Op[T]:
    """Run `spec()` or `platform()`, whichever the server's dialect asks for."""
    chosen = yield from dialect()
    return (yield from (platform if chosen == "platform" else spec)())


def one_or(call: ApiRequest, model: type[M], fallback: Callable[[], Op[M]]) -> Op[M]:
    """The reply to `call` as a `model`; or, when the reply is not one (production answers
    some writes with an empty or other body), what `fallback` reads afterwards."""
    response = yield call
    try:
        return parse_model(call, response, model)
    except ResponseValidationError:
        return (yield from fallback())
