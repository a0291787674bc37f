"""Trigger capacity: K real `FinetuningJobTrigger`s in one asyncio loop against the emulator.

    .venv/bin/python benchmarks/trigger_capacity.py            # K = 1,000, 5,000, 10,000 (~3 min)
    .venv/bin/python benchmarks/trigger_capacity.py --quick    # K = 1,000 only (~1 min)
    .venv/bin/python benchmarks/trigger_capacity.py --ks 10000 --latency-ms 50

The triggerer runs every trigger of a process in one event loop, so capacity is a question
of memory per wait, CPU per poll and how many polls per second that one loop can serve.
Each scenario runs in a fresh interpreter (clean memory figures) with
`AIRFLOW_CONN_PREDIBASE_DEFAULT` pointing at an emulator that runs in a process of its own,
so the CPU figures are the trigger loop's alone. The scenarios:

- `shared`: K `FinetuningJobTrigger(...).run()` generators, exactly as the triggerer drives
  them: async connection lookup, the per-loop shared HTTP client and its semaphore, the
  client's retry policy, typed models, `Waiter`, the trigger's own logging.
- `naive` (K = 1,000 only): one `httpx.AsyncClient()` per trigger polling
  `GET /v2/finetuning/jobs/{id}` at the same interval and jitter, the way most providers
  write it (dict parsing, no retries). At larger K it would need gigabytes.

Every trigger waits on a job of its own, created in the emulator before the runs (K jobs,
on a profile where training lasts a day, so every job stays `training`), with the kwargs the
operators pass (`first_poll_delay=min(interval, 5)`). All K waits start together, as after
a triggerer restart. A scenario stops by itself once every trigger has polled `--polls`
times (or after a time bound), then cancels the triggers.

`--latency-ms` makes the emulator hold every job GET that long (its `slow` fault), as a
stand-in for the round trip to the real API: on loopback a request is back in well under a
millisecond, which hides any limit on requests in flight.

Interval: the offered steady load is K / interval polls per second (jitter moves single
polls, not the mean). One loop here peaks around 800 requests/s, so the interval is chosen
as max(5 s, K / `--rate`) with `--rate` 500 by default: 5 s at K = 1,000 (200 req/s), 10 s at
5,000 and 20 s at 10,000 (500 req/s), leaving room for the start-up burst to drain, for
retries and for the rest of a triggerer's work. The trigger's own jitter (+-20 %) keeps
waits from synchronising after that burst.

Measured, per scenario:
- memory per trigger: VmRSS (/proc/self/status) once every trigger has polled, minus VmRSS
  before the first trigger was created (after a warm-up run in a throwaway loop, so imports
  are not counted; the loop's shared client is), divided by K;
- CPU per 1,000 polls: `time.process_time()` over the steady window (every trigger has
  polled once -> the end) and over the whole run (including creating the triggers, the
  connection lookups and the start-up burst);
- failed polls: `Waiter.on_error` calls, plus HTTP errors and exceptions seen by
  `httpx.AsyncClient.send` (which also catches attempts the client retried by itself);
- the time until every trigger has polled once; the largest event-loop lag (the triggerer
  warns when its loop is blocked for more than 0.2 s); full garbage collections, which
  stop the loop.
Polls are counted by wrapping `Waiter.on_resource` (measurement only; the trigger code is
unchanged). Prints figures; asserts nothing. Not run by `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOKEN = "pb_trigger_capacity_benchmark"
BASE_MODEL = "qwen3-8b"
JOBS_PER_REPO = 50  # a repo document holds its versions: keep each one small
JITTER = 0.2  # the trigger's (PollPolicy.jitter); the naive baseline copies it
#: Training lasts a day, everything before it is near-instant: every job sits in `training`.
PROFILE = {
    "name": "trigger-capacity",
    "dataset_connecting": 0.01,
    "finetuning_queued": 0.01,
    "finetuning_training": 86_400.0,
    "finetuning_stopping": 1.0,
    "deployment_pending": 1.0,
    "deployment_initializing": 1.0,
    "deployment_updating": 1.0,
    "deployment_deleting": 1.0,
    "deployment_cold_start": 0.0,
    "batch_queued": 1.0,
    "batch_running": 1.0,
}
TARGET_KB_PER_WAIT = 15.0
LOOP_CEILING = 800  # requests/s one loop serves on this machine (AIRFLOW_NOTES.md)


def rss_kb() -> int:
    return _status_kb("VmRSS")


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


# -- the trigger process ----------------------------------------------------------------------


class Stats:
    """Poll counts per trigger, and the moments every trigger reached 1 and N polls."""

    def __init__(self, k: int, polls: int) -> None:
        self.k, self.polls = k, polls
        self.total = self.failed = self.ended = 0
        self.reached_one = self.reached_n = 0
        self.all_once = asyncio.Event()
        self.all_n = asyncio.Event()

    def polled(self, holder: Any) -> None:
        count = getattr(holder, "_bench_polls", 0) + 1
        holder._bench_polls = count
        self.total += 1
        if count == 1:
            self.reached_one += 1
            if self.reached_one == self.k:
                self.all_once.set()
        if count == self.polls:
            self.reached_n += 1
            if self.reached_n == self.k:
                self.all_n.set()


class Transport:
    """Counts what `httpx.AsyncClient.send` sees: requests, HTTP errors, exceptions."""

    requests = http_errors = exceptions = 0

    @classmethod
    def install(cls) -> None:
        import httpx

        send = httpx.AsyncClient.send

        async def counted(self: Any, request: Any, **kwargs: Any) -> Any:
            cls.requests += 1
            try:
                response = await send(self, request, **kwargs)
            except Exception:
                cls.exceptions += 1
                raise
            if response.status_code >= 400:
                cls.http_errors += 1
            return response

        httpx.AsyncClient.send = counted  # type: ignore[method-assign]


_STATS: Stats | None = None


class FullCollections:
    """CPU spent in full (generation 2) garbage collections: they stop the whole loop."""

    count = 0
    seconds = longest = 0.0
    _started = 0.0

    @classmethod
    def install(cls) -> None:
        import gc

        def track(phase: str, info: dict[str, int]) -> None:
            if info["generation"] != 2:
                return
            if phase == "start":
                cls._started = time.process_time()
                return
            spent = time.process_time() - cls._started
            cls.count += 1
            cls.seconds += spent
            cls.longest = max(cls.longest, spent)

        gc.callbacks.append(track)

    @classmethod
    def reset(cls) -> None:
        cls.count, cls.seconds, cls.longest = 0, 0.0, 0.0


def _install_waiter_counters() -> None:
    from airflow_predibase.waiting.waiter import Waiter

    on_resource, on_error = Waiter.on_resource, Waiter.on_error

    def counted_resource(self: Waiter, resource: Any, now: float) -> Any:
        if _STATS is not None:
            _STATS.polled(self)
        return on_resource(self, resource, now)

    def counted_error(self: Waiter, error: Any, now: float) -> Any:
        if _STATS is not None:
            _STATS.failed += 1
        return on_error(self, error, now)

    Waiter.on_resource = counted_resource  # type: ignore[method-assign]
    Waiter.on_error = counted_error  # type: ignore[method-assign]


def _first_poll_delay(interval: float) -> float:
    """What the operators and the sensor pass when they defer."""
    return min(interval, 5.0)


def _first_delay(interval: float, rng: random.Random) -> float:
    # Waiter.first_delay, with the operators' first_poll_delay.
    return _first_poll_delay(interval) + rng.uniform(0, min(interval, 5.0) * JITTER)


async def naive_trigger(base_url: str, token: str, job_id: str, interval: float) -> None:
    """The baseline: a client per trigger, as most providers' triggers are written."""
    import httpx

    stats, rng = _STATS, random.Random()
    assert stats is not None
    holder = type("Holder", (), {})()
    async with httpx.AsyncClient(timeout=30.0) as client:
        await asyncio.sleep(_first_delay(interval, rng))
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
        assert _STATS is not None
        _STATS.ended += 1  # a wait that ended: the job is training, so this is a failure
        return


def _start(mode: str, job_id: str, interval: float, conn: dict[str, Any]) -> Any:
    if mode == "naive":
        return naive_trigger(conn["host"], conn["password"], job_id, interval)
    return shared_trigger(job_id, interval)


async def _warm_up(mode: str, job_id: str, conn: dict[str, Any]) -> None:
    """One trigger to its first poll, so imports and lazy set-up are not counted per trigger."""
    global _STATS
    _STATS = Stats(1, 1)
    task = asyncio.create_task(_start(mode, job_id, 1.0, conn))
    await asyncio.wait_for(_STATS.all_once.wait(), 30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _loop_lag(tick: float, worst: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(tick)
        worst[0] = max(worst[0], loop.time() - before - tick)


async def _scenario(
    mode: str, job_ids: list[str], interval: float, polls: int, conn: dict[str, Any]
) -> dict[str, Any]:
    global _STATS
    import gc

    k = len(job_ids)
    stats = _STATS = Stats(k, polls)
    Transport.requests = Transport.http_errors = Transport.exceptions = 0
    gc.collect()
    FullCollections.reset()
    rss0 = rss_kb()
    lag = [0.0]
    lag_task = asyncio.create_task(_loop_lag(0.05, lag))
    t0, cpu0 = time.monotonic(), time.process_time()
    tasks = [asyncio.create_task(_start(mode, job_id, interval, conn)) for job_id in job_ids]
    first_bound = 60.0 + k / 100  # generous: the naive clients alone take ~21 ms each
    result: dict[str, Any] = {"mode": mode, "k": k, "interval": interval, "polls_wanted": polls}
    try:
        await asyncio.wait_for(stats.all_once.wait(), first_bound)
    except asyncio.TimeoutError:
        result["incomplete"] = f"{stats.reached_one}/{k} polled once in {first_bound:.0f} s"
    t1, cpu1, polls1 = time.monotonic(), time.process_time(), stats.total
    rss1 = rss_kb()
    if "incomplete" not in result:
        bound = (polls - 1) * interval * (1 + JITTER) + 30.0
        try:
            await asyncio.wait_for(stats.all_n.wait(), bound)
        except asyncio.TimeoutError:
            result["incomplete"] = f"{stats.reached_n}/{k} polled {polls} times"
    t2, cpu2, polls2 = time.monotonic(), time.process_time(), stats.total
    rss2 = rss_kb()
    for task in tasks:
        task.cancel()
    lag_task.cancel()
    await asyncio.gather(*tasks, lag_task, return_exceptions=True)
    steady_polls = polls2 - polls1
    result.update(
        rss0_kb=rss0,
        rss_once_kb=rss1,
        rss_end_kb=rss2,
        hwm_kb=_status_kb("VmHWM"),
        kb_per_trigger=(rss1 - rss0) / k,
        kb_per_trigger_end=(rss2 - rss0) / k,
        all_once_s=t1 - t0,
        run_s=t2 - t0,
        polls=polls2,
        steady_polls=steady_polls,
        steady_s=t2 - t1,
        steady_rate=steady_polls / (t2 - t1) if t2 > t1 else 0.0,
        cpu_steady_per_1k=(cpu2 - cpu1) / steady_polls * 1000 if steady_polls else None,
        cpu_total_per_1k=(cpu2 - cpu0) / polls2 * 1000 if polls2 else None,
        cpu_total_s=cpu2 - cpu0,
        failed_polls=stats.failed,
        ended_waits=stats.ended,
        requests=Transport.requests,
        http_errors=Transport.http_errors,
        exceptions=Transport.exceptions,
        max_loop_lag_s=lag[0],
        gc_full=FullCollections.count,
        gc_full_s=FullCollections.seconds,
        gc_full_longest_s=FullCollections.longest,
    )
    return result


def worker(args: argparse.Namespace) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_PREDIBASE_DEFAULT"])
    job_ids = Path(args.jobs_file).read_text().split()
    Transport.install()
    FullCollections.install()
    _install_waiter_counters()
    # Warm up in a throwaway loop; drop that loop's shared client now, so the measured loop
    # builds (and is charged for) its own.
    asyncio.run(_warm_up(args.worker, job_ids[-1], conn))
    from airflow_predibase.client import _pool

    for loop in [loop for loop in _pool._shared if loop.is_closed()]:
        del _pool._shared[loop]
    result = asyncio.run(_scenario(args.worker, job_ids[: args.k], args.interval, args.polls, conn))
    Path(args.result_file).write_text(json.dumps(result))


# -- the orchestrating process ------------------------------------------------------------------


class Emulator:
    """`python -m airflow_predibase.emulator` in a process of its own."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "airflow_predibase.emulator", "--port", "0", "--token", TOKEN],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("Predibase emulator listening on "):
                self.url = line.rsplit(" ", 1)[1].strip()
                break
        else:
            raise SystemExit("the emulator did not start")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


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
        repos = -(-count // JOBS_PER_REPO)
        for n in range(repos):
            client.create_repo(RepoRequest(name=f"capacity-{n}"))

    async def create_all() -> list[str]:
        limit = asyncio.Semaphore(8)
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
    mode: str, k: int, interval: float, polls: int, emulator: Emulator, jobs_file: Path, work: Path
) -> dict[str, Any]:
    from airflow_predibase.emulator.server import connection_dict

    home = work / f"airflow-{mode}-{k}"
    home.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_PREDIBASE_DEFAULT": json.dumps(
            connection_dict(emulator.url, TOKEN, "emulator")
        ),
    }
    result_file = work / f"result-{mode}-{k}.json"
    log_file = work / f"log-{mode}-{k}.txt"
    command = [sys.executable, __file__, "--worker", mode, "--k", str(k)]
    command += ["--interval", str(interval), "--polls", str(polls)]
    command += ["--jobs-file", str(jobs_file), "--result-file", str(result_file)]
    emulator_cpu = emulator.cpu_seconds()
    started = time.monotonic()
    bound = 120 + k / 100 + polls * interval * 1.5
    with log_file.open("w") as log:  # the triggers' own log lines go here
        done = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=bound)
    wall = time.monotonic() - started
    log_text = log_file.read_text()
    if done.returncode != 0 or not result_file.exists():
        tail = "\n".join(log_text.splitlines()[-15:])
        raise SystemExit(f"{mode} K={k} failed (exit {done.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(result_file.read_text())
    result["emulator_cpu_s"] = emulator.cpu_seconds() - emulator_cpu
    result["process_s"] = wall
    result["logged_poll_failures"] = sum(
        1 for line in log_text.splitlines() if "poll of" in line and "failed" in line
    )
    return result


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(results: list[dict[str, Any]]) -> None:
    head = (
        f"{'scenario':<9} {'K':>6} {'every':>6} {'offered':>8} {'KB/wait':>8} "
        f"{'all polled':>10} {'polls':>7} {'failed':>6} {'CPU s/1k polls':>15} "
        f"{'steady':>7} {'max lag':>7}"
    )
    sub = (
        f"{'':<9} {'':>6} {'s':>6} {'req/s':>8} {'':>8} "
        f"{'once, s':>10} {'':>7} {'':>6} {'steady / all':>15} "
        f"{'req/s':>7} {'s':>7}"
    )
    print(head)
    print(sub)
    for r in results:
        failed = r["failed_polls"] + r["http_errors"] + r["exceptions"] + r["ended_waits"]
        cpu = f"{_fmt(r['cpu_steady_per_1k'], '.3f')} / {_fmt(r['cpu_total_per_1k'], '.3f')}"
        print(
            f"{r['mode']:<9} {r['k']:>6,} {r['interval']:>6g} {r['k'] / r['interval']:>8.0f} "
            f"{r['kb_per_trigger']:>8.1f} {r['all_once_s']:>10.1f} {r['polls']:>7,} "
            f"{failed:>6} {cpu:>15} {r['steady_rate']:>7.0f} {r['max_loop_lag_s']:>7.2f}"
        )


def print_details(results: list[dict[str, Any]]) -> None:
    for r in results:
        mb = 1024
        print(
            f"  {r['mode']} K={r['k']:,}: RSS {r['rss0_kb'] / mb:.0f} -> "
            f"{r['rss_once_kb'] / mb:.0f} MB after the first polls, {r['rss_end_kb'] / mb:.0f} MB "
            f"at the end ({r['kb_per_trigger_end']:.1f} KB/wait), peak {r['hwm_kb'] / mb:.0f} MB; "
            f"trigger CPU {r['cpu_total_s']:.1f} s in {r['run_s']:.0f} s; emulator CPU "
            f"{r['emulator_cpu_s']:.1f} s; {r['requests']:,} requests, "
            f"{r['http_errors']} HTTP errors, {r['exceptions']} transport exceptions, "
            f"{r['failed_polls']} failed polls ({r['logged_poll_failures']} logged), "
            f"{r['ended_waits']} waits ended; {r['gc_full']} full GCs, "
            f"{r['gc_full_s']:.1f} s CPU (longest {r['gc_full_longest_s']:.2f} s)"
        )
        if "incomplete" in r:
            print(f"    INCOMPLETE: {r['incomplete']}")


def print_verdict(results: list[dict[str, Any]]) -> None:
    naive = next((r for r in results if r["mode"] == "naive"), None)
    shared = [r for r in results if r["mode"] == "shared"]
    if naive:
        ours = next((r for r in shared if r["k"] == naive["k"]), None)
        if ours:
            print(
                f"baseline / ours at K={naive['k']:,}: memory per wait "
                f"{naive['kb_per_trigger'] / ours['kb_per_trigger']:.0f}x "
                f"({naive['kb_per_trigger']:.0f} / {ours['kb_per_trigger']:.1f} KB); "
                "CPU per 1,000 polls "
                f"{naive['cpu_steady_per_1k'] / ours['cpu_steady_per_1k']:.2f}x steady, "
                f"{naive['cpu_total_per_1k'] / ours['cpu_total_per_1k']:.2f}x whole run; "
                f"all polled once after {naive['all_once_s']:.1f} / {ours['all_once_s']:.1f} s"
            )
    if not shared:
        return
    biggest = max(shared, key=lambda r: r["k"])
    failed = sum(
        r["failed_polls"] + r["http_errors"] + r["exceptions"] + r["ended_waits"] for r in shared
    )
    worst_kb = max(r["kb_per_trigger"] for r in shared)
    held = "incomplete" not in biggest and biggest["ended_waits"] == 0
    print("targets:")
    print(
        f"  10,000 concurrent waits in one process: {biggest['k']:,} ran"
        + (f", each polled >= {biggest['polls_wanted']} times" if held else ", NOT all completed")
    )
    print(f"  zero failed polls: {failed} failed across the shared runs")
    print(
        f"  <= {TARGET_KB_PER_WAIT:g} KB per wait: {worst_kb:.1f} KB at worst "
        + "("
        + ", ".join(f"{r['kb_per_trigger']:.1f} at K={r['k']:,}" for r in shared)
        + ")"
    )
    loads = [
        f"{r['steady_rate']:.0f} req/s at K={r['k']:,} "
        f"({r['cpu_steady_per_1k'] * r['steady_rate'] / 10:.0f}% of a core)"
        for r in shared
    ]
    print(f"  poll load within one loop's capacity (~{LOOP_CEILING} req/s): " + ", ".join(loads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="K = 1,000 only (smoke check)")
    parser.add_argument(
        "--ks", default="1000,5000,10000", help="trigger counts (default 1000,5000,10000)"
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="emulated round trip per job GET (default 0: loopback)",
    )
    parser.add_argument("--polls", type=int, default=3, help="polls per trigger (default 3)")
    parser.add_argument(
        "--rate", type=float, default=500, help="offered polls/s that sets the interval"
    )
    parser.add_argument("--worker", choices=["naive", "shared"], help=argparse.SUPPRESS)
    parser.add_argument("--k", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--jobs-file", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    ks = [1000] if args.quick else [int(k) for k in args.ks.split(",")]
    plan = [("naive", 1000)] if 1000 in ks else []
    plan += [("shared", k) for k in ks]
    started = time.monotonic()
    emulator = Emulator()
    try:
        with tempfile.TemporaryDirectory(prefix="trigger-capacity-") as tmp:
            work = Path(tmp)
            count = max(k for _, k in plan)
            ids = create_jobs(emulator.url, count, args.latency_ms)
            jobs_file = work / "jobs.txt"
            jobs_file.write_text("\n".join(ids))
            print(
                f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; emulator in its own "
                f"process at {emulator.url}; {count:,} jobs (one per trigger) created and "
                f"training in {time.monotonic() - started:.0f} s; {args.polls} polls per "
                f"trigger; interval max(5, K/{args.rate:g}) s, jitter +-{JITTER:.0%}; "
                + (f"{args.latency_ms:g} ms added to each poll" if args.latency_ms else "loopback"),
                flush=True,
            )
            results = []
            for mode, k in plan:
                interval = max(5.0, k / args.rate)
                results.append(
                    run_scenario(mode, k, interval, args.polls, emulator, jobs_file, work)
                )
                print(f"  ran {mode} K={k:,} in {results[-1]['process_s']:.0f} s", flush=True)
    finally:
        emulator.stop()
    print()
    print_table(results)
    print_details(results)
    print_verdict(results)
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
