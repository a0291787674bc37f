"""Rate budget: K real `FinetuningJobTrigger` waits against an emulator enforcing 100 req/s.

    .venv/bin/python benchmarks/rate_budget.py          # K=1,000 off and on, 10,000 on
    .venv/bin/python benchmarks/rate_budget.py --quick  # K=500 off and on, 3,000 on
    .venv/bin/python benchmarks/rate_budget.py --ks 10000 --limit 100 --budget 150 --interval 20

The emulator runs in a process of its own and limits the tenant to `--limit` requests/s
(its `--rate-limit`: a token bucket answering 429 with `Retry-After` and `x-ratelimit-*`).
The waits run in this process, in one event loop, as the triggerer runs them: the trigger's
own `run()`, the async connection lookup, the per-loop shared HTTP client, the retry policy.

Scenarios (each on fresh jobs, the emulator reset, and fresh request budgets):
- `off`, K = `--baseline-k` (1,000) polling every `--baseline-interval` (5 s): 200 req/s
  asked of 100, with the connection's `max_requests_per_second` 0, so nothing paces the
  waits. The baseline, short.
- `on`, the same K and interval, with the connection's budget `--budget` req/s: set above
  the tenant's limit on purpose, so the figures include learning the limit from the first
  429s. (At or below the limit a 429 never comes.)
- `on`, K = `--ks` (10,000) polling every `--interval` (20 s): 500 req/s asked of 100.

Every wait polls its own job (first poll after min(interval, 5) plus jitter, as the
operators defer). The jobs train until `--train` seconds after the
waits start (spread by how long creating them took), then complete, so every wait has
something to wait for and ends on its own.

Measured: the 429s the waits got (every attempt, retries included, counted where the client
sends), and of those the ones sent after the first 429 came back (what a budget should
prevent), beside the emulator's own count; the waits that completed (a `success` event);
the effective interval between one wait's polls (p50/p95), against the one configured; the
wall time. Prints figures; asserts nothing. Not run by `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

from _emulator_process import Emulator, profile

TOKEN = "pb_rate_budget_benchmark"
JOBS_PER_REPO = 50
TRAIN_LONG = 3_600.0  # the profile's training: long, then the clock is moved (see below)
PROFILE = profile("rate-budget", TRAIN_LONG)


def create_jobs(url: str, count: int) -> tuple[list[str], float]:
    """A fresh emulator state with `count` jobs training; returns their ids and when the
    first was created (time.monotonic())."""
    import httpx

    from airflow_predibase.client import ClientSettings, PredibaseClient
    from airflow_predibase.client.models import RepoRequest
    from airflow_predibase.emulator.admin_client import AdminClient

    admin = AdminClient(url, TOKEN)
    admin.reset()
    admin.set_profile(PROFILE)
    admin.close()
    rows = "".join(
        json.dumps({"prompt": f"Ticket {i}: it is broken", "completion": "technical"}) + "\n"
        for i in range(40)
    ).encode()
    settings = ClientSettings(token=TOKEN, base_url=f"{url}/v2", dialect="spec")
    with PredibaseClient(settings) as client:
        client.upload_dataset("budget", rows, "budget.jsonl")
        deadline = time.monotonic() + 10
        while client.get_dataset("budget").status != "connected":
            if time.monotonic() > deadline:
                raise SystemExit("the benchmark dataset did not connect")
            time.sleep(0.02)
        for n in range(-(-count // JOBS_PER_REPO)):
            client.create_repo(RepoRequest(name=f"budget-{n}"))
    first = time.monotonic()

    async def create_all() -> list[str]:
        limit = asyncio.Semaphore(8)
        async with httpx.AsyncClient(
            base_url=f"{url}/v2", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as http:

            async def one(n: int) -> str:
                body = {
                    "base_model": "qwen3-8b",
                    "dataset": "budget",
                    "repo": f"budget-{n // JOBS_PER_REPO}",
                }
                async with limit:
                    response = await http.post("/finetuning/jobs", json=body)
                response.raise_for_status()
                return str(response.json()["id"])

            return list(await asyncio.gather(*(one(n) for n in range(count))))

    return asyncio.run(create_all()), first


class Exchanges:
    """What `httpx.AsyncClient.send` sees (every attempt): when sent, when answered, status."""

    log: list[tuple[float, float, int]] = []

    @classmethod
    def install(cls) -> None:
        import httpx

        send = httpx.AsyncClient.send

        async def recorded(self: Any, request: Any, **kwargs: Any) -> Any:
            sent = time.monotonic()
            response = await send(self, request, **kwargs)
            if "/finetuning/jobs/" in request.url.path:
                cls.log.append((sent, time.monotonic(), response.status_code))
            return response

        httpx.AsyncClient.send = recorded  # type: ignore[method-assign]

    @classmethod
    def limited(cls) -> tuple[int, int]:
        hits = [(sent, back) for sent, back, status in cls.log if status == 429]
        if not hits:
            return 0, 0
        first_back = min(back for _, back in hits)
        return len(hits), sum(1 for sent, _ in hits if sent > first_back)


class Polls:
    """When each wait polled successfully (wraps `Waiter.on_resource`; measurement only)."""

    times: dict[int, list[float]] = {}

    @classmethod
    def install(cls) -> None:
        from airflow_predibase.waiting.waiter import Waiter

        on_resource = Waiter.on_resource

        def counted(self: Waiter, resource: Any, now: float) -> Any:
            cls.times.setdefault(id(self), []).append(time.monotonic())
            return on_resource(self, resource, now)

        Waiter.on_resource = counted  # type: ignore[method-assign]

    @classmethod
    def gaps(cls) -> list[float]:
        return [b - a for times in cls.times.values() for a, b in pairwise(times)]


class BudgetLog(logging.Handler):
    """Prints the budget's own lines (they are once per budget or per 429 storm) to the real
    stdout; counts the rest of the client's warnings (one per retried attempt)."""

    retries = 0
    out = sys.stdout

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "request budget" in message:
            print(f"    log: {message}", file=BudgetLog.out, flush=True)
        else:
            BudgetLog.retries += 1

    @classmethod
    def install(cls) -> None:
        client = logging.getLogger("airflow_predibase.client")
        client.addHandler(cls())
        client.propagate = False
        client.setLevel(logging.WARNING)


@contextlib.contextmanager
def quiet(path: Path) -> Iterator[None]:
    """The triggers' own lines (a progress line per poll, a warning per failed poll) go to
    `path`, not the terminal: stdout and stderr are redirected at the descriptor."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    BudgetLog.out = os.fdopen(os.dup(saved[0]), "w")
    with path.open("a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            BudgetLog.out.close()
            BudgetLog.out = sys.stdout


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def _wait_all(job_ids: list[str], interval: float) -> dict[str, int]:
    from airflow_predibase.triggers.base import FinetuningJobTrigger

    outcomes: dict[str, int] = {}

    async def one(job_id: str) -> None:
        trigger = FinetuningJobTrigger(
            resource_id=job_id, poll_interval=interval, first_poll_delay=min(interval, 5.0)
        )
        async for event in trigger.run():
            status = str(event.payload["status"])
            outcomes[status] = outcomes.get(status, 0) + 1

    await asyncio.gather(*(one(job_id) for job_id in job_ids))
    return outcomes


def run_scenario(
    emulator: Emulator, mode: str, k: int, interval: float, args: argparse.Namespace
) -> dict[str, Any]:
    from airflow_predibase.client._budget import BUDGETS
    from airflow_predibase.emulator.admin_client import AdminClient
    from airflow_predibase.emulator.server import connection_dict

    ids, first = create_jobs(emulator.url, k)
    budget = args.budget if mode == "on" else 0
    conn = connection_dict(emulator.url, TOKEN, "emulator")
    conn["extra"]["max_requests_per_second"] = budget
    os.environ["AIRFLOW_CONN_PREDIBASE_DEFAULT"] = json.dumps(conn)
    BUDGETS.clear()
    Exchanges.log.clear()
    Polls.times.clear()
    BudgetLog.retries = 0
    admin = AdminClient(emulator.url, TOKEN)
    # Every job finishes `--train` s from now, give or take how long creating them took.
    admin.advance_clock(max(0.0, TRAIN_LONG - args.train - (time.monotonic() - first)))
    admin.set_rate_limit(args.limit)  # from here on, the tenant is limited (counts from 0)
    started = time.monotonic()
    with quiet(args.log):
        outcomes = asyncio.run(_wait_all(ids, interval))
    wall = time.monotonic() - started
    counted = admin.rate_limit()
    admin.set_rate_limit(None)
    admin.close()
    total, late = Exchanges.limited()
    gaps = Polls.gaps()
    return {
        "mode": mode,
        "k": k,
        "interval": interval,
        "budget": budget,
        "wall_s": wall,
        "requests": len(Exchanges.log),
        "http_429": total,
        "late_429": late,
        "emulator_429": counted["limited"],
        "emulator_allowed": counted["allowed"],
        "completed": outcomes.get("success", 0),
        "outcomes": outcomes,
        "gap_p50": percentile(gaps, 50),
        "gap_p95": percentile(gaps, 95),
        "gaps": len(gaps),
        "retry_warnings": BudgetLog.retries,
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"{'budget':<7} {'K':>6} {'every':>6} {'asked':>6} {'requests':>8} {'429s':>6} "
        f"{'after 1st':>9} {'emu 429':>7} {'completed':>13} {'interval p50/p95':>17} "
        f"{'wall':>5}"
    )
    print(
        f"{'req/s':<7} {'':>6} {'s':>6} {'req/s':>6} {'':>8} {'':>6} {'':>9} {'':>7} {'':>13} "
        f"{'s':>17} {'s':>5}"
    )
    for r in results:
        budget = "off" if r["mode"] == "off" else f"{r['budget']:g}"
        done = f"{r['completed']:,}/{r['k']:,}"
        gaps = f"{_fmt(r['gap_p50'], '.1f')} / {_fmt(r['gap_p95'], '.1f')}"
        print(
            f"{budget:<7} {r['k']:>6,} {r['interval']:>6g} {r['k'] / r['interval']:>6.0f} "
            f"{r['requests']:>8,} {r['http_429']:>6,} {r['late_429']:>9,} "
            f"{r['emulator_429']:>7,} {done:>13} {gaps:>17} {r['wall_s']:>5.0f}"
        )
        others = {s: n for s, n in r["outcomes"].items() if s != "success"}
        if others:
            print(f"        K={r['k']:,} {r['mode']}: waits that ended otherwise: {others}")
    print(
        f"tenant limit {args.limit:g} req/s; 'asked': K / interval; '429s': every attempt the "
        "waits sent that got 429 (retries included); 'after 1st': of those, sent after the "
        "first 429 came back; 'emu 429': the emulator's own count"
    )
    off = next((r for r in results if r["mode"] == "off"), None)
    on = next((r for r in results if r["mode"] == "on" and off and r["k"] == off["k"]), None)
    if off and on:
        print(
            f"at K={off['k']:,} every {off['interval']:g} s, budget off / on: 429s "
            f"{off['http_429']:,} / {on['http_429']:,} "
            f"({off['http_429'] / max(on['http_429'], 1):.0f}x); 429s after the first "
            f"{off['late_429']:,} / {on['late_429']:,}; requests {off['requests']:,} / "
            f"{on['requests']:,} ({off['requests'] / max(on['requests'], 1):.1f}x); completed "
            f"{off['completed']:,} / {on['completed']:,}; wall {off['wall_s']:.0f} / "
            f"{on['wall_s']:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="K = 500, then 3,000 (smoke run)")
    parser.add_argument("--ks", default="10000", help="K with the budget on (default 10000)")
    parser.add_argument("--baseline-k", type=int, default=1000, help="K, off and on alike")
    parser.add_argument("--baseline-interval", type=float, default=5.0, help="its interval, s")
    parser.add_argument("--limit", type=float, default=100.0, help="tenant limit, req/s")
    parser.add_argument("--budget", type=float, default=150.0, help="connection budget, req/s")
    parser.add_argument("--interval", type=float, default=20.0, help="poll interval, s")
    parser.add_argument("--train", type=float, default=60.0, help="jobs train ~this long, s")
    parser.add_argument(
        "--log",
        type=Path,
        default=Path(tempfile.gettempdir()) / "rate_budget.log",
        help="where the triggers' own log lines go",
    )
    args = parser.parse_args()
    if args.quick:
        ks, base_k, base_every = [3000], 500, 2.5
    else:
        ks, base_k, base_every = [int(k) for k in args.ks.split(",")], args.baseline_k, 0.0
        base_every = args.baseline_interval
    plan = [("off", base_k, base_every), ("on", base_k, base_every)]
    plan += [("on", k, args.interval) for k in ks]
    home = tempfile.mkdtemp(prefix="rate-budget-")
    os.environ.setdefault("AIRFLOW_HOME", home)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    Exchanges.install()
    Polls.install()
    BudgetLog.install()
    started = time.monotonic()
    emulator = Emulator(TOKEN)
    results = []
    try:
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; emulator in its own process "
            f"at {emulator.url} limiting the tenant to {args.limit:g} req/s; connection budget "
            f"{args.budget:g} req/s when on; jobs train ~{args.train:g} s; trigger logs in "
            f"{args.log}",
            flush=True,
        )
        for mode, k, every in plan:
            results.append(run_scenario(emulator, mode, k, every, args))
            print(
                f"  ran budget {mode} K={k:,} every {every:g} s in {results[-1]['wall_s']:.0f} s",
                flush=True,
            )
    finally:
        emulator.stop()
    print()
    report(results, args)
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
