"""Trigger capacity: K real `FinetuningJobTrigger`s in one asyncio loop, polling the
emulator over TLS at an emulated round trip, beside what the same client alone can do.

    .venv/bin/python benchmarks/trigger_capacity.py            # K = 1,000 and 10,000 (~4-5 min)
    .venv/bin/python benchmarks/trigger_capacity.py --quick    # K = 1,000 only (~1.5 min)
    .venv/bin/python benchmarks/trigger_capacity.py --ks 10000 --latency-ms 0 --no-tls

The triggerer runs every trigger of a process in one event loop, so capacity is a question
of memory per wait, CPU per poll and how many polls per second that one loop can serve.
The emulator runs in a process of its own, over HTTPS with a certificate this script makes
(the clients trust it through SSL_CERT_FILE: certifi's CAs plus this one, as a user trusts a
private CA), and holds every job GET `--latency-ms` (its `slow` fault) as a stand-in for the
round trip to the real API.
Each scenario runs in a fresh interpreter with `AIRFLOW_CONN_PREDIBASE_DEFAULT` pointing at
the emulator:

- `ceiling`: the client alone. `2 x MAX_IN_FLIGHT` coroutines call
  `get_finetuning_job` back to back through `PredibaseHook().get_async_client()`, the same
  shared pool the triggers use: the most polls per second this loop can make.
- `shared`: K `FinetuningJobTrigger(...).run()` generators, as the triggerer drives them
  (created one per loop step, as its `create_triggers` does): async connection lookup, the
  loop's shared pool, retries, typed models, `Waiter`, the trigger's own logging.
- `shared+freeze`: the same with the opt-in `[predibase] triggerer_gc_freeze` switch on.
- `naive` (K = 1,000 only): one `httpx.AsyncClient()` per trigger polling the job at the
  same interval, the same jitter and the same first-poll spreading
  (`first_poll_delay + uniform(0, interval)`), the way most providers write it.

Every trigger waits on a job of its own (training for a day), with the kwargs the operators
pass (`first_poll_delay=min(interval, 5)`); all K start together, as after a triggerer
restart. A scenario ends once every trigger has polled `--polls` times (or at a time bound).
The interval is max(5 s, K / `--rate`): 5 s at K = 1,000, 20 s at 10,000.

Measured per scenario (see `_capacity_measure.py`): KB per wait (VmRSS once all have
polled, minus before the first trigger, after a warm-up), CPU ms per poll (steady: from
every trigger having polled once to the end; all: the whole run), steady polls/s and its
share of the ceiling, the interval p50/p95 from each job's consecutive polls against the
configured one, failed polls (waiter errors, HTTP errors, transport exceptions, waits that
ended), the worst loop lag (50 ms ticker) and full garbage collections.
Prints figures; asserts nothing. Not run by `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _capacity_measure as measure
from _emulator_process import Emulator, profile

from airflow_predibase.emulator.tls import self_signed_cert

TOKEN = "pb_trigger_capacity_benchmark"
BASE_MODEL = "qwen3-8b"
JOBS_PER_REPO = 50  # a repo document holds its versions: keep each one small
JITTER = 0.2  # the trigger's (PollPolicy.jitter); the naive baseline copies it
FREEZE_ENV = "AIRFLOW__PREDIBASE__TRIGGERER_GC_FREEZE"
#: Training lasts a day, everything before it is near-instant: every job sits in `training`.
PROFILE = profile("trigger-capacity", 86_400.0)
#: What the issue asks at K = 10,000 (printed beside the figures, never asserted).
TARGETS = {"ceiling_share": 0.55, "p50": 1.2, "p95": 1.5, "lag_s": 0.3, "kb": 10.0}


# -- the scenario process ---------------------------------------------------------------------


def _first_poll_delay(interval: float) -> float:
    """What the operators and the sensor pass when they defer."""
    return min(interval, 5.0)


async def naive_trigger(base_url: str, token: str, job_id: str, interval: float) -> None:
    """The baseline: a client per trigger, as most providers' triggers are written."""
    import httpx

    stats, rng = measure.current(), random.Random()
    assert stats is not None
    holder = object()
    async with httpx.AsyncClient(timeout=30.0) as client:
        # Waiter.first_delay: first_poll_delay plus a random share of one interval.
        await asyncio.sleep(_first_poll_delay(interval) + rng.uniform(0, interval))
        while True:
            try:
                response = await client.get(
                    f"{base_url}/finetuning/jobs/{job_id}",
                    headers={"Authorization": f"Bearer {token}"},
                )
                response.raise_for_status()
                status = response.json()["status"]
            except httpx.HTTPError:
                stats.failed += 1
            else:
                stats.polled(holder)
                if status in ("completed", "errored", "canceled", "stopped"):
                    return
            await asyncio.sleep(interval * (1 + rng.uniform(-JITTER, JITTER)))


async def shared_trigger(job_id: str, interval: float) -> None:
    """Our trigger, driven as the triggerer drives it."""
    from airflow_predibase.triggers.base import FinetuningJobTrigger

    trigger = FinetuningJobTrigger(
        resource_id=job_id, poll_interval=interval, first_poll_delay=_first_poll_delay(interval)
    )
    async for _event in trigger.run():
        stats = measure.current()
        assert stats is not None
        stats.ended += 1  # a wait that ended: the job is training, so this is a failure
        return


def _start(mode: str, job_id: str, interval: float, conn: dict[str, Any]) -> Any:
    if mode == "naive":
        return naive_trigger(conn["host"], conn["password"], job_id, interval)
    return shared_trigger(job_id, interval)


async def _warm_up(mode: str, job_id: str, conn: dict[str, Any]) -> None:
    """One trigger to its first poll, so imports and lazy set-up are not counted per trigger."""
    measure.STATS.append(stats := measure.Stats(1, 1))
    task = asyncio.create_task(_start(mode, job_id, 1.0, conn))
    await asyncio.wait_for(stats.all_once.wait(), 30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _scenario(
    mode: str, job_ids: list[str], interval: float, polls: int, conn: dict[str, Any]
) -> dict[str, Any]:
    import gc

    k = len(job_ids)
    measure.STATS.append(stats := measure.Stats(k, polls))
    measure.Transport.reset()
    gc.collect()
    measure.FullCollections.reset()
    rss0 = measure.rss_kb()
    lag = [0.0, 0.0, 0.0]
    lag_task = asyncio.create_task(measure.loop_lag(0.05, lag))
    t0, cpu0 = time.monotonic(), time.process_time()
    tasks = []
    for job_id in job_ids:  # one per loop step, as the triggerer's create_triggers does
        tasks.append(asyncio.create_task(_start(mode, job_id, interval, conn)))
        await asyncio.sleep(0)
    first_bound = 60.0 + k / 100 + interval  # generous: the naive clients take ~20 ms each
    result: dict[str, Any] = {"k": k, "interval": interval, "polls_wanted": polls}
    try:
        await asyncio.wait_for(stats.all_once.wait(), first_bound)
    except asyncio.TimeoutError:
        result["incomplete"] = f"{stats.reached_one}/{k} polled once in {first_bound:.0f} s"
    t1, cpu1, polls1 = time.monotonic(), time.process_time(), stats.total
    rss1 = measure.rss_kb()
    if "incomplete" not in result:
        bound = (polls - 1) * interval * (1 + JITTER) * 2 + 30.0
        try:
            await asyncio.wait_for(stats.all_n.wait(), bound)
        except asyncio.TimeoutError:
            result["incomplete"] = f"{stats.reached_n}/{k} polled {polls} times"
    t2, cpu2, polls2 = time.monotonic(), time.process_time(), stats.total
    rss2 = measure.rss_kb()
    # The ticker stops first: cancelling K triggers at once is the harness's lag, not theirs.
    lag_task.cancel()
    await asyncio.gather(lag_task, return_exceptions=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    steady_polls = polls2 - polls1
    result.update(
        rss0_kb=rss0,
        rss_end_kb=rss2,
        hwm_kb=measure.status_kb("VmHWM"),
        kb_per_trigger=(rss1 - rss0) / k,
        kb_per_trigger_end=(rss2 - rss0) / k,
        all_once_s=t1 - t0,
        run_s=t2 - t0,
        polls=polls2,
        steady_rate=steady_polls / (t2 - t1) if t2 > t1 else 0.0,
        cpu_steady_ms=(cpu2 - cpu1) / steady_polls * 1000 if steady_polls else None,
        cpu_total_ms=(cpu2 - cpu0) / polls2 * 1000 if polls2 else None,
        cpu_total_s=cpu2 - cpu0,
        interval_p50=measure.percentile(stats.intervals, 0.50),
        interval_p95=measure.percentile(stats.intervals, 0.95),
        failed_polls=stats.failed,
        ended_waits=stats.ended,
        max_loop_lag_s=lag[0],
        max_loop_lag_at_s=lag[1],
        lags_over_200ms=int(lag[2]),
    )
    return result


async def _ceiling(job_ids: list[str], seconds: float) -> dict[str, Any]:
    """The client alone, back to back on the loop's shared pool: the most polls/s it makes."""
    from airflow_predibase.client._pool import MAX_IN_FLIGHT
    from airflow_predibase.hooks.predibase import PredibaseHook

    client = await PredibaseHook().get_async_client()
    done = [0]
    running = True

    async def poller(n: int) -> None:
        while running:
            await client.get_finetuning_job(job_ids[n % len(job_ids)])
            done[0] += 1
            n += 2 * MAX_IN_FLIGHT

    lag = [0.0, 0.0, 0.0]
    tasks = [asyncio.create_task(poller(n)) for n in range(2 * MAX_IN_FLIGHT)]
    await asyncio.sleep(2.0)  # connections open, TLS handshakes done
    lag_task = asyncio.create_task(measure.loop_lag(0.05, lag))
    measure.Transport.reset()
    measure.FullCollections.reset()
    polls0, t0, cpu0 = done[0], time.monotonic(), time.process_time()
    await asyncio.sleep(seconds)
    polls, wall, cpu = done[0] - polls0, time.monotonic() - t0, time.process_time() - cpu0
    running = False
    await asyncio.gather(*tasks, return_exceptions=True)
    lag_task.cancel()
    return {
        "k": 2 * MAX_IN_FLIGHT,
        "polls": polls,
        "steady_rate": polls / wall,
        "cpu_steady_ms": cpu / polls * 1000 if polls else None,
        "cpu_total_ms": cpu / polls * 1000 if polls else None,
        "cpu_total_s": cpu,
        "run_s": wall,
        "max_loop_lag_s": lag[0],
        "max_loop_lag_at_s": lag[1],
        "lags_over_200ms": int(lag[2]),
        "failed_polls": 0,
        "ended_waits": 0,
    }


def worker(args: argparse.Namespace) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_PREDIBASE_DEFAULT"])
    job_ids = Path(args.jobs_file).read_text().split()
    measure.Transport.install()
    measure.FullCollections.install()
    measure.install_waiter_counters()
    if args.worker == "ceiling":
        result = asyncio.run(_ceiling(job_ids, args.seconds))
    else:
        # Warm up in a throwaway loop; drop that loop's shared pool now, so the measured
        # loop builds (and is charged for) its own.
        asyncio.run(_warm_up(args.worker, job_ids[-1], conn))
        from airflow_predibase.client import _pool

        for loop in [loop for loop in _pool._shared if loop.is_closed()]:
            del _pool._shared[loop]
        scenario = _scenario(args.worker, job_ids[: args.k], args.interval, args.polls, conn)
        result = asyncio.run(scenario)
    result.update(
        requests=measure.Transport.requests,
        http_errors=measure.Transport.http_errors,
        exceptions=measure.Transport.exceptions,
        gc_full=measure.FullCollections.count,
        gc_full_s=measure.FullCollections.seconds,
        gc_full_longest_s=measure.FullCollections.longest,
    )
    Path(args.result_file).write_text(json.dumps(result))


# -- the orchestrating process ------------------------------------------------------------------


def tls_args(tls: tuple[Path, Path] | None) -> list[str]:
    """The emulator's flags to serve HTTPS with `tls` (certificate, key); none for HTTP."""
    return ["--ssl-certfile", str(tls[0]), "--ssl-keyfile", str(tls[1])] if tls else []


def create_jobs(url: str, count: int, latency_ms: float) -> list[str]:
    """A connected dataset, repos, and `count` fine-tuning jobs, all staying `training`.

    With `latency_ms`, every later job GET waits that long in the emulator first: a stand-in
    for the round trip to the real API, which loopback does not have.
    """
    import httpx

    from airflow_predibase.client import ClientSettings, PredibaseClient
    from airflow_predibase.client.models import RepoRequest
    from airflow_predibase.emulator.admin_client import AdminClient

    admin = AdminClient(url, TOKEN)
    admin.set_profile(PROFILE)
    rows = "".join(
        json.dumps({"prompt": f"Ticket {i}: it is broken", "completion": "technical"}) + "\n"
        for i in range(40)
    ).encode()
    with PredibaseClient(ClientSettings(token=TOKEN, base_url=f"{url}/v2")) as client:
        client.upload_dataset("capacity", rows, "capacity.jsonl")
        deadline = time.monotonic() + 10
        while client.get_dataset("capacity").status != "connected":
            if time.monotonic() > deadline:
                raise SystemExit("the benchmark dataset did not connect")
            time.sleep(0.02)
        for n in range(-(-count // JOBS_PER_REPO)):
            client.create_repo(RepoRequest(name=f"capacity-{n}"))

    async def create_all() -> list[str]:
        limit = asyncio.Semaphore(32)
        async with httpx.AsyncClient(
            base_url=f"{url}/v2", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as http:

            async def one(n: int) -> str:
                body = {
                    "base_model": BASE_MODEL,
                    "dataset": "capacity",
                    "repo": f"capacity-{n // JOBS_PER_REPO}",
                }
                async with limit:
                    response = await http.post("/finetuning/jobs", json=body)
                response.raise_for_status()
                return str(response.json()["id"])

            return list(await asyncio.gather(*(one(n) for n in range(count))))

    ids = asyncio.run(create_all())
    time.sleep(0.1)  # past the 10 ms queue
    check = httpx.get(
        f"{url}/v2/finetuning/jobs/{ids[0]}", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    if check["status"] != "training":
        raise SystemExit(f"a benchmark job is {check['status']}, not training")
    if latency_ms:
        admin.add_fault(
            "slow",
            method="GET",
            path="/v2/finetuning/jobs/*",
            count=1_000_000,
            delay=latency_ms / 1000,
        )
    admin.close()
    return ids


def run_scenario(
    label: str, k: int, interval: float, args: argparse.Namespace, emulator: Emulator, work: Path
) -> dict[str, Any]:
    from airflow_predibase.emulator.server import connection_dict

    mode = label.split("+")[0]
    home = work / f"airflow-{label}-{k}"
    home.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_PREDIBASE_DEFAULT": json.dumps(
            connection_dict(emulator.url, TOKEN, "emulator")
        ),
        FREEZE_ENV: str(label.endswith("+freeze")),
    }
    result_file = work / f"result-{label}-{k}.json"
    log_file = work / f"log-{label}-{k}.txt"
    command = [sys.executable, __file__, "--worker", mode, "--k", str(k)]
    command += ["--interval", str(interval), "--polls", str(args.polls)]
    command += ["--seconds", str(args.ceiling_seconds)]
    command += ["--jobs-file", str(work / "jobs.txt"), "--result-file", str(result_file)]
    emulator_cpu = emulator.cpu_seconds()
    started = time.monotonic()
    bound = 180 + k / 100 + args.polls * interval * 3
    with log_file.open("w") as log:  # the triggers' own log lines go here
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=bound)
    log_text = log_file.read_text()
    if done.returncode != 0 or not result_file.exists():
        tail = "\n".join(log_text.splitlines()[-15:])
        raise SystemExit(f"{label} K={k} failed (exit {done.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(result_file.read_text())
    result.update(
        label=label,
        emulator_cpu_s=emulator.cpu_seconds() - emulator_cpu,
        process_s=time.monotonic() - started,
        logged_poll_failures=sum(
            1 for line in log_text.splitlines() if "poll of" in line and "failed" in line
        ),
    )
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _failed(r: dict[str, Any]) -> int:
    return int(r["failed_polls"] + r["http_errors"] + r["exceptions"] + r["ended_waits"])


def print_table(results: list[dict[str, Any]], ceiling: dict[str, Any] | None) -> None:
    top = ceiling["steady_rate"] if ceiling else None
    print(
        f"{'scenario':<14} {'K':>6} {'every':>5} {'offered':>7} {'KB/wait':>7} {'all once':>8} "
        f"{'polls':>7} {'failed':>6} {'CPU ms/poll':>13} {'steady':>6} {'of':>5} "
        f"{'interval p50/p95':>16} {'x every':>11} {'max lag':>7} {'full GCs':>10}"
    )
    print(
        f"{'':<14} {'':>6} {'s':>5} {'req/s':>7} {'':>7} {'s':>8} {'':>7} {'':>6} "
        f"{'steady / all':>13} {'req/s':>6} {'ceil.':>5} {'s':>16} {'':>11} {'s':>7} "
        f"{'n, CPU s':>10}"
    )
    for r in results:
        cpu = f"{_fmt(r['cpu_steady_ms'], '.2f')} / {_fmt(r['cpu_total_ms'], '.2f')}"
        share = f"{r['steady_rate'] / top:.2f}" if top else "-"
        gcs = f"{r['gc_full']}, {r['gc_full_s']:.1f}"
        if r["label"] == "ceiling":
            print(
                f"{'ceiling':<14} {r['k']:>6,} {'-':>5} {'-':>7} {'-':>7} {'-':>8} "
                f"{r['polls']:>7,} {_failed(r):>6} {cpu:>13} {r['steady_rate']:>6.0f} "
                f"{'1.00':>5} {'-':>16} {'-':>11} {r['max_loop_lag_s']:>7.2f} {gcs:>10}"
            )
            continue
        every = r["interval"]
        p50, p95 = r["interval_p50"], r["interval_p95"]
        spread = f"{_fmt(p50, '.1f')} / {_fmt(p95, '.1f')}"
        ratio = f"{p50 / every:.2f} / {p95 / every:.2f}" if p50 and p95 else "-"
        print(
            f"{r['label']:<14} {r['k']:>6,} {every:>5g} {r['k'] / every:>7.0f} "
            f"{r['kb_per_trigger']:>7.1f} {r['all_once_s']:>8.1f} {r['polls']:>7,} "
            f"{_failed(r):>6} {cpu:>13} {r['steady_rate']:>6.0f} {share:>5} {spread:>16} "
            f"{ratio:>11} {r['max_loop_lag_s']:>7.2f} {gcs:>10}"
        )


def print_details(results: list[dict[str, Any]]) -> None:
    for r in results:
        extra = ""
        if r["label"] != "ceiling":
            mb = 1024
            extra = (
                f"RSS {r['rss0_kb'] / mb:.0f} -> {r['rss_end_kb'] / mb:.0f} MB at the end "
                f"({r['kb_per_trigger_end']:.1f} KB/wait), peak {r['hwm_kb'] / mb:.0f} MB; "
                f"{r['failed_polls']} failed polls ({r['logged_poll_failures']} logged), "
                f"{r['ended_waits']} waits ended; "
            )
        print(
            f"  {r['label']} K={r['k']:,}: {extra}CPU {r['cpu_total_s']:.1f} s in "
            f"{r['run_s']:.0f} s; emulator CPU {r['emulator_cpu_s']:.1f} s; "
            f"{r['requests']:,} requests, {r['http_errors']} HTTP errors, "
            f"{r['exceptions']} transport exceptions; longest full GC "
            f"{r['gc_full_longest_s']:.2f} s; max lag at {r['max_loop_lag_at_s']:.0f} s, "
            f"{r['lags_over_200ms']} lags over 0.2 s"
            + (f"\n    INCOMPLETE: {r['incomplete']}" if "incomplete" in r else "")
        )


def print_verdict(results: list[dict[str, Any]], ceiling: dict[str, Any] | None) -> None:
    naive = next((r for r in results if r["label"] == "naive"), None)
    ours = next(
        (r for r in results if naive and r["label"] == "shared" and r["k"] == naive["k"]), None
    )
    if naive and ours:
        print(
            f"naive / ours at K={naive['k']:,}: memory per wait "
            f"{naive['kb_per_trigger'] / ours['kb_per_trigger']:.0f}x; CPU per poll "
            f"{naive['cpu_steady_ms'] / ours['cpu_steady_ms']:.2f}x steady, "
            f"{naive['cpu_total_ms'] / ours['cpu_total_ms']:.2f}x whole run; steady polls/s "
            f"{naive['steady_rate']:.0f} / {ours['steady_rate']:.0f}; max lag "
            f"{naive['max_loop_lag_s']:.2f} / {ours['max_loop_lag_s']:.2f} s"
        )
    big = max((r["k"] for r in results if r["label"].startswith("shared")), default=None)
    for r in results:
        if r["k"] != big or not r["label"].startswith("shared") or not r["interval_p50"]:
            continue
        share = r["steady_rate"] / ceiling["steady_rate"] if ceiling else float("nan")
        asked = r["k"] / r["interval"]
        # The loop cannot poll more than it is asked to: `asked / ceiling` caps the share.
        cap = asked / ceiling["steady_rate"] if ceiling else float("nan")
        checks = [
            f"throughput {share:.2f} of the ceiling (>= {TARGETS['ceiling_share']}; the "
            f"{asked:.0f}/s asked is {cap:.2f} of it, {r['steady_rate'] / asked:.0%} served)",
            f"interval p50 {r['interval_p50'] / r['interval']:.2f}x (<= {TARGETS['p50']})",
            f"p95 {r['interval_p95'] / r['interval']:.2f}x (<= {TARGETS['p95']})",
            f"max lag {r['max_loop_lag_s'] * 1000:.0f} ms (< {TARGETS['lag_s'] * 1000:.0f})",
            f"{r['kb_per_trigger']:.1f} KB/wait (<= {TARGETS['kb']:g})",
            f"{_failed(r)} failed (0)",
        ]
        print(f"targets, {r['label']} K={r['k']:,}: " + "; ".join(checks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="K = 1,000 only (smoke check)")
    parser.add_argument("--ks", default="1000,10000", help="trigger counts (default 1000,10000)")
    parser.add_argument(
        "--latency-ms", type=float, default=50.0, help="emulated round trip per job GET (50)"
    )
    parser.add_argument("--no-tls", action="store_true", help="plain HTTP (default: TLS)")
    parser.add_argument("--polls", type=int, default=3, help="polls per trigger (default 3)")
    parser.add_argument(
        "--rate", type=float, default=500, help="offered polls/s that sets the interval"
    )
    parser.add_argument(
        "--ceiling-seconds", type=float, default=10.0, help="length of the ceiling run (10)"
    )
    parser.add_argument("--worker", choices=["naive", "shared", "ceiling"], help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--jobs-file", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    ks = [1000] if args.quick else sorted(int(k) for k in args.ks.split(","))
    if args.quick:
        args.ceiling_seconds = min(args.ceiling_seconds, 5.0)
    plan = [("naive", 1000)] if 1000 in ks else []
    plan += [("shared", k) for k in ks] + [("shared+freeze", ks[-1])]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="trigger-capacity-") as tmp:
        work = Path(tmp)
        tls = None if args.no_tls else self_signed_cert(work)
        if tls:  # every client here and in the scenarios trusts it as a private CA, added
            # to the public ones as a real bundle would be (so a naive client's SSL context
            # costs what it costs against the real API)
            import certifi

            bundle = work / "bundle.pem"
            bundle.write_text(Path(certifi.where()).read_text() + tls[0].read_text())
            os.environ["SSL_CERT_FILE"] = str(bundle)
        emulator = Emulator(TOKEN, *tls_args(tls))
        try:
            count = max(k for _, k in plan)
            ids = create_jobs(emulator.url, count, args.latency_ms)
            (work / "jobs.txt").write_text("\n".join(ids))
            print(
                f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; emulator in its own "
                f"process at {emulator.url}; {count:,} jobs created and training in "
                f"{time.monotonic() - started:.0f} s; {args.polls} polls per trigger; interval "
                f"max(5, K/{args.rate:g}) s, jitter +-{JITTER:.0%}; "
                + (f"{args.latency_ms:g} ms added to each poll" if args.latency_ms else "loopback")
                + ("" if tls else "; plain HTTP"),
                flush=True,
            )
            ceiling = run_scenario("ceiling", 0, 0.0, args, emulator, work)
            print(f"  ran ceiling in {ceiling['process_s']:.0f} s", flush=True)
            results = []
            for label, k in plan:
                interval = max(5.0, k / args.rate)
                results.append(run_scenario(label, k, interval, args, emulator, work))
                print(f"  ran {label} K={k:,} in {results[-1]['process_s']:.0f} s", flush=True)
        finally:
            emulator.stop()
    print()
    print_table([*results, ceiling], ceiling)
    print_details([*results, ceiling])
    print_verdict(results, ceiling)
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
