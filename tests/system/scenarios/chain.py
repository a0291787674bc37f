"""predibase_retraining end to end: clean, then again with faults on every route."""

from __future__ import annotations

import json
from typing import Any

from tests.system.scenarios.helpers import (
    RETRAINING,
    failure_detail,
    new_jobs,
    report_tries,
    trigger_logs,
)
from tests.system.scenarios.registry import Context, ScenarioOutput, scenario

#: One emulator for both runs of the DAG; a 5 s client timeout, so a slow answer times out.
CHAIN_EMULATOR = {"predibase_default": {"connection_extra": {"timeout": 5}}}

#: Tasks of predibase_retraining that wait in the triggerer, and the trigger they use.
CHAIN_DEFERRING = {
    "upload_training_data": "DatasetTrigger",
    "finetune": "FinetuningJobTrigger",
    "deploy": "DeploymentTrigger",
    "upload_eval_batch": "DatasetTrigger",
    "score": "BatchInferenceJobTrigger",
}


@scenario(dags=(RETRAINING,), emulators=CHAIN_EMULATOR, databases=("sqlite", "postgres"))
def chain(ctx: Context, out: ScenarioOutput) -> None:
    """predibase_retraining, triggered through REST, against its own emulator."""
    stack, emulator = ctx.stack, ctx.emulators["predibase_default"]
    try:
        run = ctx.trigger(RETRAINING, "chain")
        final = stack.wait_for_run(RETRAINING, run, timeout=360)
        state = emulator.admin.state()
    finally:
        ctx.chain_done.set()
    report_tries(ctx, out, RETRAINING, run)
    assert final == "success", failure_detail(stack, RETRAINING, run)

    # The DAG uploads TWO datasets (the training data and the eval batch); everything
    # else exactly once. The deployment is gone: the teardown deleted it.
    out.note(f"emulator resources after the run: {state['counts']}")
    assert state["counts"] == {
        "datasets": 2,
        "repos": 1,
        "finetuning_jobs": 1,
        "deployments": 0,
        "batch_jobs": 1,
    }
    [repo] = state["repos"]
    assert [v["version"] for v in repo["versions"]] == [1], repo
    [job] = state["finetuning_jobs"]
    [batch] = state["batch_jobs"]
    assert job["status"] == "completed"
    assert batch["status"] == "completed"
    eval_dataset = "support-tickets-eval-support-router-1"
    assert sorted(d["name"] for d in state["datasets"]) == ["support-tickets", eval_dataset]
    assert stack.xcom(RETRAINING, run, "finetune") == "support-router/1"
    assert stack.xcom(RETRAINING, run, "deploy")["action"] == "created"
    delete_log = stack.task_log(RETRAINING, run, "delete_deployment")
    assert "deleting deployment support-router-eval" in delete_log
    assert "deployment support-router-eval is gone" in delete_log
    out.note("one deployment (support-router-eval): created by deploy, deleted by teardown")

    # Deferred for real: seen in state `deferred`, and the triggerer ran our trigger class.
    for task, trigger_class in CHAIN_DEFERRING.items():
        states = ctx.recorder.states(RETRAINING, run, task)
        logs = trigger_logs(stack, RETRAINING, run, task)
        classpath = f"airflow_predibase.triggers.base.{trigger_class}"
        ran = sorted(t for t, text in logs.items() if f'"logger":"{classpath}"' in text)
        out.note(f"{task}: states {states}; {classpath} logged by triggerer job(s) {ran}")
        if task in ("finetune", "score"):
            assert "deferred" in states, f"{task} never seen deferred: {states}"
            assert ran, f"no trigger log of {classpath} for {task}: {sorted(logs)}"

    # Extra links, as the REST API returns them, point at the emulator's console.
    console = f"{emulator.url}/console"
    expected = {
        "upload_training_data": f"{console}/data/datasets/support-tickets",
        "finetune": f"{console}/finetuning/jobs/{job['id']}",
        "deploy": f"{console}/deployments/support-router-eval",
        "upload_eval_batch": f"{console}/data/datasets/{eval_dataset}",
        "score": f"{console}/batch-inference/jobs/{batch['id']}",
    }
    for task, url in expected.items():
        links = stack.links(RETRAINING, run, task)["extra_links"]
        assert links == {"Predibase console": url}, (task, links)
    out.note(f"extra links of {len(expected)} tasks point to {console}/...")


#: Scripted on the chain's emulator before a second run of predibase_retraining. Rules are
#: taken in order, each for `count` matching requests; every one must have been hit.
FAULTS: list[dict[str, Any]] = [
    # The fine-tune's status route: two 429s with Retry-After, then a 503 burst longer than
    # the client's 5 attempts (the trigger backs off and polls again), then slow answers:
    # one past the connection's 5 s timeout (a read timeout, retried), one under it.
    {"kind": "status", "status": 429, "retry_after": 1, "count": 2},
    {"kind": "status", "status": 503, "count": 5},
    {"kind": "slow", "delay": 7, "count": 1},
    {"kind": "slow", "delay": 2, "count": 1},
]
#: The system emulators speak both dialects (the CLI's default), so the connection's
#: `dialect=auto` detects production's, and these are the paths it polls (docs/platform.md).
OTHER_FAULTS: list[dict[str, Any]] = [
    {
        "kind": "status",
        "status": 502,
        "method": "GET",
        "path": "/v2/batch-inference/*",
        "count": 2,
    },
    {
        "kind": "status",
        "status": 429,
        "retry_after": 1,
        "method": "GET",
        "path": "/v2/batch-inference/*",
        "count": 1,
    },
    {"kind": "slow", "delay": 2, "method": "GET", "path": "/v2/batch-inference/*", "count": 1},
    {"kind": "status", "status": 503, "method": "GET", "path": "/v2/deployments/*", "count": 3},
    {
        "kind": "status",
        "status": 429,
        "retry_after": 1,
        "method": "GET",
        "path": "/v1/datasets/name/*",
        "count": 2,
    },
    # Create POSTs: a 503 leaves the outcome unknown (the operator looks for its job, finds
    # none, creates it); a 429 is retried by the client.
    {"kind": "status", "status": 503, "method": "POST", "path": "/v2/finetuning/jobs"},
    {
        "kind": "status",
        "status": 429,
        "retry_after": 1,
        "method": "POST",
        "path": "/v2/batch-inference",
    },
]


JOB_ROUTES = "/v2/finetuning/jobs/*-*-*-*-*"


@scenario(dags=(RETRAINING,), emulators=CHAIN_EMULATOR)
def faults(ctx: Context, out: ScenarioOutput) -> None:
    """A second predibase_retraining run with faults scripted on every status route."""
    stack, emulator = ctx.stack, ctx.emulators["predibase_default"]
    assert ctx.chain_done.wait(timeout=600), "the clean chain never finished"
    snapshot = emulator.admin.state()
    before = snapshot["counts"]
    for rule in FAULTS:
        # A job's own routes (its id is a UUID): not `/v2/finetuning/jobs/cost-estimate`,
        # which the create asks first and would use the burst up before the trigger polls.
        emulator.admin.add_fault(**{"method": "GET", "path": JOB_ROUTES, **rule})
    for rule in OTHER_FAULTS:
        emulator.admin.add_fault(**rule)
    out.note(f"scripted {len(FAULTS) + len(OTHER_FAULTS)} fault rules; emulator had {before}")
    run = ctx.trigger(RETRAINING, "faults")
    final = stack.wait_for_run(RETRAINING, run, timeout=420)
    state = emulator.admin.state()
    report_tries(ctx, out, RETRAINING, run)
    assert final == "success", failure_detail(stack, RETRAINING, run)
    left = state["faults"]["rules"]
    assert left == [], f"scripted faults never hit: {json.dumps(left)}"
    finetunes = new_jobs(state, "finetuning_jobs", snapshot)
    batches = new_jobs(state, "batch_jobs", snapshot)
    assert len(finetunes) == 1, finetunes
    assert len(batches) == 1, batches
    after = state["counts"]
    # The training data is reused (same content, same name); the eval batch is new.
    assert after == {
        "datasets": before["datasets"] + 1,
        "repos": 1,
        "finetuning_jobs": before["finetuning_jobs"] + 1,
        "deployments": 0,
        "batch_jobs": before["batch_jobs"] + 1,
    }, (before, after)
    finetune_log = stack.task_log(RETRAINING, run, "finetune")
    assert "create outcome unknown" in finetune_log
    assert "the request created nothing" in finetune_log
    polls = "\n".join(trigger_logs(stack, RETRAINING, run, "finetune").values())
    assert f"poll of {finetunes[0]['id']} failed" in polls, (
        "the 503 burst never reached the trigger"
    )
    out.note(
        f"every fault hit; chain succeeded; one fine-tune job ({finetunes[0]['id']}), one batch"
    )
