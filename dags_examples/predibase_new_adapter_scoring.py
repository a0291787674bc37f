"""Score every new adapter version of a repository, whoever trained it.

An `AssetWatcher` runs `NewAdapterVersionTrigger` in the triggerer: it polls the repository
and fires once for each version that becomes ready, trained by a DAG, a notebook or the
console alike. Each firing is an event of the `new_versions` Asset, and this DAG is
scheduled on it. A run scores each version its events name (several may land before it
runs) on a few held-out tickets, through a deployment that lives as long as the run:

    new_adapters, held_out -> deploy (setup) -> score (one mapped task per adapter,
        on the prompts of held_out) -+-> report
                                     +-> delete_deployment (teardown of deploy)

By hand, conf ``{"adapter_id": "support-router/3"}`` scores that version; with nothing, the
newest ready one.

The DAG is created paused: unpause it once the `predibase_default` connection exists.
Settings come from the environment so the same file runs against Predibase and the local
emulator: PREDIBASE_BASE_MODEL, PREDIBASE_POLL_INTERVAL (seconds between the waits' polls),
PREDIBASE_WATCH_INTERVAL (seconds between the watcher's polls of the repository).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Asset, AssetWatcher, dag, task

from airflow_predibase.operators import (
    DeleteDeploymentOperator,
    DeployOperator,
    PredibaseGenerateOperator,
)
from airflow_predibase.triggers.adapter_versions import NewAdapterVersionTrigger

DATA = Path(__file__).parent / "data" / "support_tickets.jsonl"
BASE_MODEL = os.environ.get("PREDIBASE_BASE_MODEL", "qwen3-8b")
POLL = float(os.environ.get("PREDIBASE_POLL_INTERVAL", "30"))
WATCH = float(os.environ.get("PREDIBASE_WATCH_INTERVAL", "60"))
REPO = "support-router"
DEPLOYMENT = "support-router-scoring"

new_versions = Asset(
    name=f"predibase-adapter-versions/{REPO}",
    uri=f"predibase://adapter-versions/{REPO}",
    watchers=[
        AssetWatcher(
            name=f"new-{REPO}-versions",
            trigger=NewAdapterVersionTrigger(repo=REPO, poll_interval=WATCH),
        )
    ],
)


@dag(
    schedule=[new_versions],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["predibase", "example"],
    params={"adapter_id": None},
    is_paused_upon_creation=True,
)
def predibase_new_adapter_scoring() -> None:
    @task
    def new_adapters(**context: Any) -> list[str]:
        """Conf, else every version the triggering events name, else the newest ready one."""
        from airflow_predibase.hooks.predibase import PredibaseHook

        if context["params"].get("adapter_id"):
            return [str(context["params"]["adapter_id"])]
        named: dict[int, str] = {}
        for events in (context.get("triggering_asset_events") or {}).values():
            for event in events:
                payload = event.extra.get("payload") or {}
                if payload.get("adapter_id"):
                    named[int(payload["version"])] = str(payload["adapter_id"])
        if named:
            return [named[version] for version in sorted(named)]
        repo = PredibaseHook().get_client().get_repo(REPO)
        ready = [v for v in repo.versions if v.status.is_success and not v.archived]
        if not ready:
            raise ValueError(f"repository {REPO} has no ready adapter version to score")
        return [f"{REPO}/{max(v.version for v in ready)}"]

    @task
    def held_out(count: int = 5) -> list[dict[str, str]]:
        """A few held-out tickets with their expected category."""
        from airflow_predibase.evaluation import read_jsonl

        rows = [r for r in read_jsonl(DATA) if r.get("split") == "evaluation"][:count]
        return [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]

    @task
    def prompts(tickets: list[dict[str, str]]) -> list[str]:
        return [ticket["prompt"] for ticket in tickets]

    deploy = DeployOperator(
        task_id="deploy",
        name=DEPLOYMENT,
        base_model=BASE_MODEL,
        accelerator="a10_24gb_100",
        min_replicas=0,
        max_replicas=1,
        cooldown_time=600,
        poll_interval=POLL,
        deferrable=True,
    )

    adapters = new_adapters()
    tickets = held_out()
    score = PredibaseGenerateOperator.partial(
        task_id="score",
        deployment=DEPLOYMENT,
        prompts=prompts(tickets),
        max_new_tokens=8,
        temperature=0.0,
    ).expand(adapter_id=adapters)

    @task
    def report(scored: list[list[dict[str, Any]]], tickets: list[dict[str, str]]) -> dict:
        """Exact-match accuracy of each new adapter on the held-out tickets."""
        expected = {t["prompt"]: t["completion"].strip() for t in tickets}
        accuracy = {}
        for results in scored:
            hits = sum(r["text"].strip() == expected[r["prompt"]] for r in results)
            accuracy[results[0]["adapter_id"]] = hits / len(results)
        print(f"accuracy on {len(tickets)} held-out tickets: {accuracy}")
        return accuracy

    delete_deployment = DeleteDeploymentOperator(task_id="delete_deployment", name=DEPLOYMENT)

    [adapters, tickets] >> deploy >> score
    report(score.output, tickets)
    score >> delete_deployment.as_teardown(setups=deploy)


predibase_new_adapter_scoring()
