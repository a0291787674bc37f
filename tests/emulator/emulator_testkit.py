"""Builders for the emulator tests: walk resources through the real HTTP API, with time
moving only when a test says so (a manual clock)."""

from __future__ import annotations

import json
from typing import Any

import httpx

from airflow_predibase.emulator import EmulatorServer, ManualClock

BASE_MODEL = "qwen3-8b"


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


class Emu:
    """A running emulator plus clients and builders; time moves only via `advance`."""

    def __init__(self, server: EmulatorServer, clock: ManualClock) -> None:
        self.server = server
        self.clock = clock
        self.admin = server.admin
        self.auth = {"Authorization": f"Bearer {server.token}"}
        self.control = httpx.Client(base_url=server.control_url, headers=self.auth, timeout=10)
        self._serving: dict[str, httpx.Client] = {}

    def close(self) -> None:
        self.control.close()
        for client in self._serving.values():
            client.close()

    def serving(self, deployment: str) -> httpx.Client:
        if deployment not in self._serving:
            self._serving[deployment] = httpx.Client(
                base_url=self.server.deployment_url(deployment), headers=self.auth, timeout=10
            )
        return self._serving[deployment]

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def ok(self, response: httpx.Response) -> Any:
        assert response.status_code == 200, response.text
        return response.json()

    # -- builders ---------------------------------------------------------------------------

    def upload(self, name: str, data: bytes, file_name: str = "train.jsonl") -> dict[str, Any]:
        """The four-step upload; returns the dataset as step 3 answers (connecting)."""
        target = self.ok(
            self.control.post(
                "/datasets/upload", json={"fileName": file_name, "mimeType": "application/jsonl"}
            )
        )
        put = httpx.put(target["presignedUrl"], content=data)  # no auth header, as on S3
        assert put.status_code == 200, put.text
        return self.ok(
            self.control.put(
                "/datasets/upload", json={"name": name, "uploadToken": target["uploadToken"]}
            )
        )

    def dataset(self, name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        self.upload(name, jsonl(rows))
        self.advance(1)
        dataset = self.ok(self.control.get(f"/datasets/{name}"))
        assert dataset["status"] == "connected", dataset
        return dataset

    def repo(self, name: str) -> dict[str, Any]:
        return self.ok(self.control.post("/repos", json={"name": name}))

    def job(self, repo: str, dataset: str, base_model: str = BASE_MODEL, **extra: Any) -> Any:
        body = {"base_model": base_model, "dataset": dataset, "repo": repo, **extra}
        return self.ok(self.control.post("/finetuning/jobs", json=body))

    def adapter(self, repo: str, rows: list[dict[str, Any]], base_model: str = BASE_MODEL) -> str:
        """Dataset, repo and a completed fine-tune: the adapter ID."""
        self.dataset(f"{repo}-data", rows)
        self.repo(repo)
        job = self.job(repo, f"{repo}-data", base_model)
        self.advance(10)
        job = self.ok(self.control.get(f"/finetuning/jobs/{job['id']}"))
        assert job["status"] == "completed", job
        return f"{repo}/{job['adapter_version']}"

    def deployment(self, name: str, base_model: str = BASE_MODEL, **config: Any) -> Any:
        body = {"name": name, "base_model": base_model, **config}
        self.ok(self.control.post("/deployments", json=body))
        self.advance(5)
        deployment = self.ok(self.control.get(f"/deployments/{name}"))
        assert deployment["status"] == "ready", deployment
        return deployment


def sentiment_rows(count: int = 40) -> list[dict[str, Any]]:
    """A toy classification set: the label is carried by the words of the review."""
    good = ["great", "wonderful", "excellent", "loved", "superb"]
    bad = ["terrible", "awful", "boring", "hated", "dreadful"]
    rows = []
    for i in range(count):
        positive = i % 2 == 0
        word = (good if positive else bad)[i // 2 % 5]
        rows.append(
            {
                "prompt": f"Review: the film was {word} and the cast {word} too. Sentiment:",
                "completion": "positive" if positive else "negative",
                "split": "evaluation" if i % 5 == 4 else "train",
            }
        )
    return rows
