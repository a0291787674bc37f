"""Lists follow their pages: the contract the platform's list routes and the emulator speak.

The first request is sent as it is; a paged answer carries `next_offset` (null on the last
page) or only `total`, beside `data` or inside it, and the next page is asked for with
`?limit=<the page size the server chose>&offset=<next_offset>`. An answer with neither is
the whole list. Both clients run the same operation, so each case runs on both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from predibase_fakes import Script, async_client, outcome, reply, sync_client

from airflow_predibase.client.models import RepoRequest


def job(n: int) -> dict[str, Any]:
    return {"id": f"job-{n}", "status": "training"}


def paged(items: list[dict[str, Any]], size: int, *, nest: str | None = None) -> Script:
    """A fake server serving `items` in pages of `size` by `?offset=`, as the emulator does."""

    def step(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params.get("offset", 0))
        limit = int(request.url.params.get("limit", size))
        page = items[offset : offset + limit]
        end = offset + len(page)
        paging = {"total": len(items), "offset": offset, "limit": limit}
        paging["next_offset"] = end if end < len(items) else None
        data: Any = page if nest is None else {nest: page, **paging}
        return httpx.Response(200, json={"data": data, **({} if nest else paging)})

    return Script(*[step] * (len(items) // size + 2))


CLIENTS = [pytest.param(sync_client, id="sync"), pytest.param(async_client, id="async")]


@pytest.mark.parametrize("make", CLIENTS)
@pytest.mark.parametrize("nest", [None, "jobs"], ids=["flat", "nested"])
def test_every_page_is_read(make: Callable[..., Any], nest: str | None) -> None:
    items = [job(n) for n in range(7)]
    script = paged(items, 3, nest=nest)
    status, result = outcome(lambda: make(script).list_finetuning_jobs())
    assert status == "ok"
    assert [j["id"] for j in result] == [f"job-{n}" for n in range(7)]
    assert [str(r.url).split("/v2")[-1] for r in script.requests] == [
        "/finetuning/jobs",
        "/finetuning/jobs?limit=3&offset=3",
        "/finetuning/jobs?limit=3&offset=6",
    ]


@pytest.mark.parametrize("make", CLIENTS)
def test_a_total_without_next_offset_still_pages(make: Callable[..., Any]) -> None:
    script = Script(
        reply(200, {"data": [job(0), job(1)], "total": 3}),
        reply(200, {"data": [job(2)], "total": 3}),
    )
    status, result = outcome(lambda: make(script).list_batch_inference_jobs())
    assert (status, len(result)) == ("ok", 3)
    assert script.requests[1].url.params["offset"] == "2"


@pytest.mark.parametrize("make", CLIENTS)
def test_an_unpaged_answer_is_the_whole_list(make: Callable[..., Any]) -> None:
    script = Script(reply(200, {"data": {"jobs": [job(0), job(1)]}}))
    status, result = outcome(lambda: make(script).list_finetuning_jobs())
    assert (status, len(result), len(script.requests)) == ("ok", 2, 1)


@pytest.mark.parametrize("make", CLIENTS)
def test_a_next_offset_that_does_not_advance_is_a_broken_answer(make: Callable[..., Any]) -> None:
    script = Script(
        reply(200, {"data": [job(0)], "next_offset": 1}),
        reply(200, {"data": [job(1)], "next_offset": 1}),
    )
    status, (name, message) = outcome(lambda: make(script).list_finetuning_jobs())
    assert (status, name) == ("error", "ResponseValidationError")
    assert "does not move past offset 1" in message


def test_the_emulator_pages_and_the_client_reads_them_all(emulator: Any, client: Any) -> None:
    from airflow_predibase.hooks.predibase import PredibaseHook

    for n in range(5):
        client.create_repo(RepoRequest(name=f"repo-{n}"))
    emulator.admin.set_page_size(2)
    expected = [f"repo-{n}" for n in range(5)]
    assert [r.name for r in client.list_repos()] == expected

    async def async_names() -> list[str]:
        async_client = await PredibaseHook().get_async_client()
        return [r.name for r in await async_client.list_repos()]

    import asyncio

    assert asyncio.run(async_names()) == expected
