"""The loop's shared, sharded HTTP pool over real HTTP: one per loop, load spread over the
shards, and certificates and proxies taken from the environment as httpx's default does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_predibase.client import AsyncPredibaseClient, ClientSettings, RetryPolicy
from airflow_predibase.client._pool import MAX_IN_FLIGHT, ShardedAsyncClient, shared_async_http
from airflow_predibase.client.errors import APIConnectionError
from airflow_predibase.emulator.server import EmulatorServer
from airflow_predibase.emulator.tls import self_signed_cert

ENV_NAMES = ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(scope="module")
def tls_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmulatorServer, Path]]:
    cert, key = self_signed_cert(tmp_path_factory.mktemp("tls"))
    server = EmulatorServer(ssl_certfile=str(cert), ssl_keyfile=str(key)).start()
    try:
        yield server, cert
    finally:
        server.stop()


@pytest.fixture(scope="module")
def plain_emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer().start()
    try:
        yield server
    finally:
        server.stop()


def _client(server: EmulatorServer) -> AsyncPredibaseClient:
    """A client on the loop's shared pool, as the hook wires it; one attempt only."""
    http, limiter = shared_async_http()
    settings = ClientSettings(token=server.token, base_url=server.control_url, dialect="spec")
    return AsyncPredibaseClient(
        settings, http_client=http, limiter=limiter, retry=RetryPolicy(max_attempts=1)
    )


def test_one_pool_per_loop() -> None:
    async def pool() -> tuple[Any, Any]:
        first = shared_async_http()
        assert shared_async_http() is first
        return first

    one, other = asyncio.run(pool()), asyncio.run(pool())
    assert one[0] is not other[0]
    assert one[1] is not other[1]
    assert isinstance(one[0], ShardedAsyncClient)


async def test_requests_in_flight_spread_over_the_shards(plain_emulator: EmulatorServer) -> None:
    plain_emulator.admin.add_fault("slow", method="GET", path="/v2/models", delay=0.5, count=8)
    pool = ShardedAsyncClient(shards=4, connections=2)
    url = f"{plain_emulator.control_url}/models"
    headers = {"Authorization": f"Bearer {plain_emulator.token}"}
    try:
        sends = [
            asyncio.ensure_future(pool.send(httpx.Request("GET", url, headers=headers)))
            for _ in range(8)
        ]
        await asyncio.sleep(0)  # every send has picked its shard
        assert pool.busy == [2, 2, 2, 2]
        answers = await asyncio.gather(*sends)
    finally:
        await pool.aclose()
    assert [answer.status_code for answer in answers] == [200] * 8
    assert pool.busy == [0, 0, 0, 0]


async def test_a_light_load_stays_on_the_first_shard(plain_emulator: EmulatorServer) -> None:
    pool = ShardedAsyncClient(shards=4, connections=2)
    url = f"{plain_emulator.control_url}/models"
    headers = {"Authorization": f"Bearer {plain_emulator.token}"}
    try:
        for _ in range(3):
            await pool.send(httpx.Request("GET", url, headers=headers))
        opened = [len(shard._transport._pool.connections) for shard in pool.shards]  # type: ignore[attr-defined]
    finally:
        await pool.aclose()
    assert opened == [1, 0, 0, 0]  # one warm connection, reused


async def test_a_private_ca_from_ssl_cert_file_is_trusted(
    tls_emulator: tuple[EmulatorServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert = tls_emulator
    assert server.url.startswith("https://")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    models = await _client(server).list_models()
    assert isinstance(models, list)


async def test_without_the_ca_the_certificate_is_refused(
    tls_emulator: tuple[EmulatorServer, Path],
) -> None:
    server, _ = tls_emulator
    with pytest.raises(APIConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await _client(server).list_models()


class _FakeProxy:
    """An HTTP proxy that answers every request itself, and remembers its request lines."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        self.seen.append(head.split(b"\r\n", 1)[0].decode())
        body = b"[]"
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-answered-by: proxy\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()


async def test_a_proxy_from_the_environment_is_used(
    plain_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = _FakeProxy()
    async with proxy as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        pool = ShardedAsyncClient()
        try:
            url = f"{plain_emulator.control_url}/models"
            answer = await pool.send(httpx.Request("GET", url))
        finally:
            await pool.aclose()
    assert answer.headers.get("x-answered-by") == "proxy"
    assert proxy.seen == [f"GET {url} HTTP/1.1"]


async def test_no_proxy_bypasses_the_proxy(
    plain_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = _FakeProxy()
    async with proxy as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        pool = ShardedAsyncClient()
        try:
            answer = await pool.send(
                httpx.Request(
                    "GET",
                    f"{plain_emulator.control_url}/models",
                    headers={"Authorization": f"Bearer {plain_emulator.token}"},
                )
            )
        finally:
            await pool.aclose()
    assert answer.status_code == 200
    assert "x-answered-by" not in answer.headers
    assert proxy.seen == []


def test_the_limiter_admits_as_many_requests_as_the_shards_have_connections() -> None:
    """More permits than connections would queue requests inside httpcore again."""

    async def permits_and_connections() -> tuple[int, int]:
        pool, limiter = shared_async_http()
        assert isinstance(pool, ShardedAsyncClient)
        permits = 0
        while not limiter.locked():
            await limiter.acquire()
            permits += 1
        pools = [shard._transport._pool for shard in pool.shards]  # type: ignore[attr-defined]
        return permits, sum(p._max_connections for p in pools)

    permits, connections = asyncio.run(permits_and_connections())
    assert permits == connections == MAX_IN_FLIGHT


async def test_closing_the_pool_closes_every_shard(plain_emulator: EmulatorServer) -> None:
    async with ShardedAsyncClient(shards=2, connections=1) as pool:
        answer = await pool.send(httpx.Request("GET", f"{plain_emulator.control_url}/models"))
    assert answer.status_code == 401  # no token: answered all the same
    assert [shard.is_closed for shard in pool.shards] == [True, True]
