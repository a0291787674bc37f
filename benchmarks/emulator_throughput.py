"""Emulator throughput: job polls and non-streaming generates, N concurrent clients on loopback.

    .venv/bin/python benchmarks/emulator_throughput.py [--seconds 3] [--clients 1,8,32]

The emulator runs as its own process (`python -m airflow_predibase.emulator`), exactly as a
system test or the demo runs it, so it does not share a GIL with the load generator. The
load generator is a minimal keep-alive HTTP/1.1 client on asyncio streams: an httpx client
costs more CPU per request than the server does, and would measure itself. Each client is
one connection sending requests back to back. Every run is bounded by time and by count.

Prints figures; asserts nothing. Target: >= 1,000 job polls per second on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

TOKEN = "pb_benchmark"
BASE_MODEL = "qwen3-8b"


@dataclass
class Result:
    name: str
    clients: int
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def row(self) -> str:
        ordered = sorted(self.latencies) or [0.0]
        p50 = ordered[len(ordered) // 2] * 1000
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
        return (
            f"{self.name:<34} {self.clients:>7} {self.requests:>9} {self.seconds:>7.2f} "
            f"{self.rate:>9.0f} {p50:>8.2f} {p99:>8.2f} {self.errors:>6}"
        )


def _request(method: str, host: str, path: str, body: bytes | None) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        f"Host: {host}",
        f"Authorization: Bearer {TOKEN}",
        "Connection: keep-alive",
    ]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


async def _one_client(
    address: tuple[str, int],
    raw: bytes,
    deadline: float,
    budget: list[int],
    latencies: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(*address)
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            started = time.perf_counter()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors[0] += 1
    finally:
        writer.close()


async def _run(
    name: str,
    url: str,
    method: str,
    path: str,
    body: bytes | None,
    clients: int,
    args: argparse.Namespace,
) -> Result:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    raw = _request(method, parts.netloc, path, body)
    address = (parts.hostname, parts.port)
    # Warm-up: connections, caches, the adapter's index.
    await asyncio.gather(
        *(
            _one_client(address, raw, time.perf_counter() + 0.3, [50], [], [0])
            for _ in range(clients)
        )
    )
    latencies: list[float] = []
    errors = [0]
    budget = [args.max_requests]
    started = time.perf_counter()
    deadline = started + args.seconds
    await asyncio.gather(
        *(_one_client(address, raw, deadline, budget, latencies, errors) for _ in range(clients))
    )
    return Result(
        name, clients, len(latencies), time.perf_counter() - started, latencies, errors[0]
    )


def _start_emulator(state_file: str | None) -> tuple[subprocess.Popen[str], str]:
    extra = [] if state_file is None else ["--state-file", state_file]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_predibase.emulator",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--profile",
            "realistic",
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Predibase emulator listening on "):
            return process, line.rsplit(" ", 1)[1].strip()
    raise SystemExit("the emulator did not start")


def _prepare(url: str) -> tuple[str, str]:  # (job ID to poll, adapter ID to generate with)
    """A job in training (polled) and a deployment with a ready adapter (generated)."""
    http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    rows = [
        {
            "prompt": f"Review {i}: the film was {'great' if i % 2 else 'awful'}.",
            "completion": "positive" if i % 2 else "negative",
        }
        for i in range(2000)
    ]
    target = http.post(
        "/v2/datasets/upload", json={"fileName": "t.jsonl", "mimeType": "application/jsonl"}
    ).json()
    httpx.put(target["presignedUrl"], content="".join(json.dumps(r) + "\n" for r in rows).encode())
    http.put("/v2/datasets/upload", json={"name": "bench", "uploadToken": target["uploadToken"]})
    http.post("/__emulator__/resources/datasets/bench/force", json={"status": "connected"})
    http.post("/v2/repos", json={"name": "bench"})
    job = {"base_model": BASE_MODEL, "dataset": "bench", "repo": "bench"}
    trained = http.post("/v2/finetuning/jobs", json=job).json()
    http.post(
        f"/__emulator__/resources/finetuning/{trained['id']}/force", json={"status": "completed"}
    )
    polled = http.post("/v2/finetuning/jobs", json=job).json()
    http.post(
        f"/__emulator__/resources/finetuning/{polled['id']}/force", json={"status": "training"}
    )
    http.post(
        "/v2/deployments", json={"name": "bench", "base_model": BASE_MODEL, "min_replicas": 1}
    )
    http.post("/__emulator__/resources/deployments/bench/force", json={"status": "ready"})
    check = http.get(f"/v2/finetuning/jobs/{polled['id']}").json()
    assert check["status"] == "training", check
    version = http.get(f"/v2/finetuning/jobs/{trained['id']}").json()["adapter_version"]
    http.close()
    return polled["id"], f"bench/{version}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per run (default 3)")
    parser.add_argument("--max-requests", type=int, default=30_000, help="per run cap")
    parser.add_argument("--clients", default="1,8,32", help="concurrency levels")
    parser.add_argument("--state-file", default=None, help="run the emulator on SQLite")
    args = parser.parse_args()
    levels = [int(n) for n in args.clients.split(",")]

    process, url = _start_emulator(args.state_file)
    try:
        job_id, adapter = _prepare(url)
        generate = json.dumps(
            {
                "inputs": "Review 7: the film was great.",
                "parameters": {"adapter_id": adapter, "max_new_tokens": 20},
            }
        ).encode()
        runs = [
            ("GET /v2/finetuning/jobs/{id}", "GET", f"/v2/finetuning/jobs/{job_id}", None),
            (
                "POST .../generate (adapter)",
                "POST",
                "/emulator/deployments/v2/llms/bench/generate",
                generate,
            ),
        ]
        store = f"SQLite {args.state_file}" if args.state_file else "in memory"
        print(f"emulator at {url} ({store}), {os.cpu_count()} CPUs, {args.seconds:g} s per run")
        print(
            f"{'endpoint':<34} {'clients':>7} {'requests':>9} {'seconds':>7} "
            f"{'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
        )
        for name, method, path, body in runs:
            for clients in levels:
                result = asyncio.run(_run(name, url, method, path, body, clients, args))
                print(result.row(), flush=True)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    main()
