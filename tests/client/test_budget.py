"""Request budgets: fair stretching, pauses on 429, sharing per host and token, the setting.

Nothing sleeps: budgets run on a fake clock that the clients' `sleep` moves forward, and the
fake server is an `httpx.MockTransport`. Assertions count requests and sleeps.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import re

import httpx
import pytest
from predibase_fakes import FakeClock

from airflow_predibase.client import (
    AsyncPredibaseClient,
    ClientSettings,
    PredibaseClient,
    RateLimitError,
    RetryPolicy,
)
from airflow_predibase.client._budget import (
    BudgetKey,
    BudgetRegistry,
    RequestBudget,
    announced_limit,
)

TOKEN = "pb_BUDGET_token_never_logged_7f3a"
HOST = "https://api.app.predibase.com"
ONCE = RetryPolicy(max_attempts=1)


def settings(rate: float, token: str = TOKEN, base_url: str = f"{HOST}/v2") -> ClientSettings:
    return ClientSettings(token=token, base_url=base_url, max_requests_per_second=rate)


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"data": []})


def limited(*headers: tuple[str, str]) -> httpx.MockTransport:
    """429 once (with `headers`), then 200s."""
    answers = [httpx.Response(429, json={"error": "slow down"}, headers=dict(headers))]
    return httpx.MockTransport(lambda request: answers.pop() if answers else ok(request))


def client(
    registry: BudgetRegistry,
    clock: FakeClock,
    rate: float = 10.0,
    transport: httpx.MockTransport | None = None,
    **kwargs: str,
) -> PredibaseClient:
    return PredibaseClient(
        settings(rate, **kwargs),
        http_client=httpx.Client(transport=transport or httpx.MockTransport(ok)),
        retry=ONCE,
        sleep=clock.sleep,
        clock=clock,
        budgets=registry,
    )


def simulate(budget: RequestBudget, clock: FakeClock, waits: int, interval: float, until: float):
    """`waits` pollers, each asking again `interval` after its last request went out."""
    polls = [0] * waits
    queue = [(i * interval / waits, i) for i in range(waits)]
    sent = 0
    while queue:
        when, wait = heapq.heappop(queue)
        if when > until:
            break
        clock.now = when
        went = when + budget.reserve().delay
        if went <= until:
            polls[wait] += 1
            sent += 1
        heapq.heappush(queue, (went + interval, wait))
    return polls, sent


def test_an_overloaded_budget_stretches_every_wait_alike(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    budget = RequestBudget(BudgetKey.of(HOST, TOKEN), 10.0, clock=clock)
    # 50 waits every 1 s ask for 50 requests/s from a budget of 10/s: about 5x longer each.
    with caplog.at_level(logging.WARNING, logger="airflow_predibase.client"):
        polls, sent = simulate(budget, clock, waits=50, interval=1.0, until=100.0)
    assert max(polls) - min(polls) <= 1  # none starved, none favoured
    assert 17 <= min(polls) <= 21  # 100 s / (50 / 10 + 1 s)... at most every ~5 s
    assert sent <= 10 * 100 + budget.burst  # never more than the rate allows
    spent = [r.getMessage() for r in caplog.records if "is spent" in r.getMessage()]
    assert len(spent) == 1, spent  # once per budget, not once per request
    assert HOST in spent[0]
    assert "budget of 10/s" in spent[0]
    assert re.search(r"stretches by roughly [45]\.\dx", spent[0])  # 50/s asked of 10/s
    assert TOKEN not in caplog.text


def test_a_budget_with_room_never_delays_and_never_logs(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    budget = RequestBudget(BudgetKey.of(HOST, TOKEN), 10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="airflow_predibase.client"):
        polls, _ = simulate(budget, clock, waits=5, interval=1.0, until=50.0)
    assert min(polls) >= 49  # every second, as asked
    assert not caplog.records


def test_clients_of_one_connection_share_a_budget_others_do_not() -> None:
    clock = FakeClock()
    registry = BudgetRegistry(clock=clock)
    first, second = client(registry, clock), client(registry, clock)
    for _ in range(10):  # the burst: one second's worth
        first.list_models()
    assert clock.sleeps == []
    second.list_models()
    assert clock.sleeps == [pytest.approx(0.1)]  # the same budget: it waits its turn
    client(registry, clock, token="pb_another_tenant").list_models()
    client(registry, clock, base_url="https://other.example.com/v2").list_models()
    assert len(clock.sleeps) == 1  # another token, another host: budgets of their own


def test_a_429_pauses_every_client_of_the_connection() -> None:
    clock = FakeClock()
    registry = BudgetRegistry(clock=clock)
    throttled = client(registry, clock, transport=limited(("Retry-After", "5")))
    with pytest.raises(RateLimitError):
        throttled.list_models()
    other = client(registry, clock)
    other.list_models()
    # The other client waited out the pause (and the throttled request's slot after it).
    assert clock.sleeps == [pytest.approx(5.0, abs=0.2)]
    client(registry, clock, token="pb_another_tenant").list_models()
    assert len(clock.sleeps) == 1


def test_a_429_pauses_async_clients_too() -> None:
    clock = FakeClock()
    registry = BudgetRegistry(clock=clock)

    def make(transport: httpx.MockTransport) -> AsyncPredibaseClient:
        return AsyncPredibaseClient(
            settings(10.0),
            http_client=httpx.AsyncClient(transport=transport),
            retry=ONCE,
            sleep=clock.asleep,
            clock=clock,
            budgets=registry,
        )

    async def run() -> None:
        with pytest.raises(RateLimitError):
            await make(limited(("Retry-After", "3"))).list_models()
        await make(httpx.MockTransport(ok)).list_models()

    asyncio.run(run())
    assert clock.sleeps == [pytest.approx(3.0, abs=0.2)]


def test_queued_requests_keep_their_order_and_move_past_a_pause() -> None:
    clock = FakeClock()
    budget = RequestBudget(BudgetKey.of(HOST, TOKEN), 1.0, clock=clock)
    tickets = [budget.reserve() for _ in range(4)]  # at 0, 1, 2, 3 s
    assert [t.at for t in tickets] == [0.0, 1.0, 2.0, 3.0]
    clock.now = 0.5
    budget.throttled({"retry-after": "10"}, tickets[0])
    moved = [budget.recheck(t) for t in tickets[1:]]
    assert all(t.at >= 10.5 for t in moved)  # nobody goes during the pause
    assert [t.at for t in moved] == sorted(t.at for t in moved)  # first come, first served
    assert budget.reserve().at > moved[-1].at  # a newcomer queues behind them


def test_a_lower_announced_limit_is_adopted_with_a_margin() -> None:
    clock = FakeClock()
    budget = RequestBudget(BudgetKey.of(HOST, TOKEN), 20.0, clock=clock)
    budget.throttled({"x-ratelimit-limit": "5"}, budget.reserve())
    assert budget.rate == pytest.approx(4.5)


def test_without_an_announced_limit_each_429_storm_lowers_the_rate_once() -> None:
    clock = FakeClock()
    budget = RequestBudget(BudgetKey.of(HOST, TOKEN), 20.0, clock=clock)
    in_flight = [budget.reserve() for _ in range(5)]
    for ticket in in_flight:  # all sent before the first 429 came back
        budget.throttled({}, ticket)
    assert budget.rate == pytest.approx(16.0)
    budget.throttled({}, budget.reserve())  # sent at the lower rate, and still too many
    assert budget.rate == pytest.approx(12.8)
    assert budget.throttles == 6


def test_a_client_learns_the_limit_from_the_429() -> None:
    clock = FakeClock()
    registry = BudgetRegistry(clock=clock)
    transport = limited(("x-ratelimit-limit", "2"), ("Retry-After", "1"))
    with pytest.raises(RateLimitError):
        client(registry, clock, rate=50.0, transport=transport).list_models()
    learned = client(registry, clock)  # a lower setting cannot raise it again
    for _ in range(4):
        learned.list_models()
    # 1 s pause, then the throttled request's slot and four more, one every 1/1.8 s: no
    # burst right after a 429.
    assert sum(clock.sleeps) == pytest.approx(1.0 + 4 / 1.8)


@pytest.mark.parametrize(
    ("header", "limit"),
    [
        ("100", 100.0),
        ("100, 100;w=1", 100.0),
        ("600, 600;w=60", 10.0),
        ("0", None),
        ("", None),
        ("many", None),
    ],
)
def test_announced_limit(header: str, limit: float | None) -> None:
    assert announced_limit(header) == limit


def test_zero_switches_the_budget_off() -> None:
    clock = FakeClock()
    registry = BudgetRegistry(clock=clock)
    off = client(registry, clock, rate=0.0)
    for _ in range(50):
        off.list_models()
    assert clock.sleeps == []
    assert len(registry) == 0
    assert settings(0.0).request_budget is None
    assert ClientSettings(token=TOKEN).request_budget is None  # the bare client: off


def test_requests_without_the_token_draw_on_no_budget() -> None:
    clock = FakeClock()
    registry = BudgetRegistry(clock=clock)
    uploads = client(registry, clock, rate=1.0)
    for _ in range(5):
        uploads.put_upload_bytes("https://s3.example.com/u?sig=1", b"rows")
    assert clock.sleeps == []


@pytest.mark.parametrize("rate", [-1.0, math.nan, math.inf, "20", True])
def test_a_bad_rate_is_refused_naming_the_setting(rate: object) -> None:
    with pytest.raises(ValueError, match="max_requests_per_second"):
        ClientSettings(token=TOKEN, max_requests_per_second=rate)  # type: ignore[arg-type]


def test_the_key_never_shows_the_token() -> None:
    key = BudgetKey.of(HOST, TOKEN)
    budget = RequestBudget(key, 5.0)
    assert TOKEN not in repr(key) + str(key) + repr(budget)
    assert HOST in str(key)


def test_a_pause_alone_is_not_reported_as_a_spent_budget(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    budget = RequestBudget(BudgetKey.of(HOST, TOKEN), 10.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="airflow_predibase.client"):
        budget.throttled({"retry-after": "5"}, budget.reserve())
        assert budget.reserve().delay >= 5.0
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1, messages  # the 429 line only
    assert "pausing every request on it for 5.0 s" in messages[0]
    assert "from 10/s to 8/s" in messages[0]


def test_a_request_queued_for_a_permit_waits_out_a_429_that_came_meanwhile() -> None:
    clock = FakeClock()
    registry = BudgetRegistry(clock=clock)
    seen: list[float] = []

    async def server(request: httpx.Request) -> httpx.Response:
        seen.append(clock.now)
        await asyncio.sleep(0)  # the other request takes its slot and queues for the permit
        if len(seen) == 1:
            return httpx.Response(429, json={"error": "slow down"}, headers={"Retry-After": "5"})
        return ok(request)

    async def run() -> list[object]:
        limiter = asyncio.Semaphore(1)  # one request in flight, as a busy shared pool
        clients = [
            AsyncPredibaseClient(
                settings(10.0),
                http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)),
                retry=ONCE,
                sleep=clock.asleep,
                clock=clock,
                budgets=registry,
                limiter=limiter,
            )
            for _ in range(2)
        ]
        calls = [clients[0].list_models(), clients[1].list_models()]
        return await asyncio.gather(*calls, return_exceptions=True)

    first, second = asyncio.run(run())
    assert isinstance(first, RateLimitError)
    assert second == []
    assert seen[0] == 0.0
    assert seen[1] >= 5.0  # it had its slot before the 429, but went only after the pause
