"""Run by the official SDK's own virtualenv (`.venv-sdk`): one flow per argument, each
printing one JSON line `{"flow": ..., ...}` with what the SDK returned."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
from predibase import Predibase

SFT_ROWS = [{"prompt": f"ticket {i}: charged twice", "completion": "billing"} for i in range(8)]
#: Classification trains on `text` and `label` (dataset_files.TASK_COLUMNS).
LABELLED_ROWS = {
    "text": [f"ticket {i}: " + ("charged twice" if i % 2 else "app crashes") for i in range(8)],
    "label": ["billing" if i % 2 else "technical" for i in range(8)],
}
#: A GRPO secret: the emulator must never show its value back.
GRPO_SECRET = "sk-oracle-judge-4e1d"
#: A Hugging Face token: never stored, never shown back.
HF_TOKEN = "hf_oracle_token_90ab"


def emit(flow: str, **fields: object) -> None:
    print(json.dumps({"flow": flow, **fields}, default=str), flush=True)


def quiet(call, *args, **kwargs):
    """The SDK prints progress to stdout; keep our stdout to the JSON lines."""
    with contextlib.redirect_stdout(io.StringIO()):
        return call(*args, **kwargs)


def quiet_output(call, *args, **kwargs) -> str:
    """What `call` printed (it returns nothing else)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        call(*args, **kwargs)
    return out.getvalue()


def reward_len(prompt, completion, example):
    return float(len(completion) < 50)


def datasets(pb: Predibase, tag: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"sft_{tag}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in SFT_ROWS))
        ds = quiet(pb.datasets.from_file, str(path), name=f"sft-{tag}")
        emit(
            "from_file", uuid=ds.uuid, name=ds.name, status=ds.status, connection=ds.connection_name
        )
    frame = pd.DataFrame({"text": ["some raw text to pretrain on"] * 4})
    ds2 = quiet(pb.datasets.from_pandas_dataframe, frame, name=f"cpt-{tag}")
    emit("from_pandas_dataframe", uuid=ds2.uuid, name=ds2.name, status=ds2.status)
    ds3 = quiet(pb.datasets.from_pandas_dataframe, pd.DataFrame(LABELLED_ROWS), name=f"cls-{tag}")
    emit("labelled_dataset", name=ds3.name, status=ds3.status)
    got = pb.datasets.get(f"sft-{tag}")
    emit("datasets_get", uuid=got.uuid, status=got.status)


def finetuning(pb: Predibase, tag: str, watch: bool) -> None:
    from predibase import ClassificationConfig, ContinuedPretrainingConfig, GRPOConfig, SFTConfig

    repo = quiet(pb.repos.create, name=f"repo-{tag}", description="oracle", exists_ok=True)
    emit("repos_create", uuid=repo.uuid, name=repo.name)
    emit("repos_get", name=pb.repos.get(f"repo-{tag}").name)
    emit("repos_list", names=[r.name for r in pb.repos.list(limit=50)])
    quiet(pb.repos.create, name=f"gone-{tag}")
    pb.repos.delete(f"gone-{tag}")
    emit("repos_delete", names=[r.name for r in pb.repos.list(limit=50)])
    configs = {
        "sft": SFTConfig(base_model="qwen3-8b", epochs=1, lr_scheduler={"type": "cosine"}),
        "continued_pretraining": ContinuedPretrainingConfig(base_model="qwen3-8b"),
        "grpo": GRPOConfig(
            base_model="qwen3-8b",
            reward_fns=[reward_len],
            num_generations=4,
            secrets={"JUDGE_KEY": GRPO_SECRET},
        ),
        "classification": ClassificationConfig(base_model="qwen3-8b"),
    }
    datasets_for = {"continued_pretraining": f"cpt-{tag}", "classification": f"cls-{tag}"}
    uuids = {}
    for task, config in configs.items():
        job = quiet(
            pb.finetuning.jobs.create,
            config=config,
            dataset=datasets_for.get(task, f"sft-{tag}"),
            repo=f"repo-{tag}",
            description=f"oracle {task}",
            watch=watch,
        )
        emit(
            "finetuning_create",
            task=task,
            uuid=job.uuid,
            status=job.status,
            adapter=f"{job.target_repo}/{job.target_version_tag}",
            watch=watch,
            params_task=job.params.get("task") if isinstance(job.params, dict) else job.params.task,
        )
        uuids[task] = job.uuid
    grpo = pb.finetuning.jobs.get(uuids["grpo"])
    emit(
        "grpo_secrets",
        secrets=grpo.params.secrets,
        config=pb.adapters.get_config(f"repo-{tag}/3").secrets,
    )
    got = pb.finetuning.jobs.get(job.uuid)
    emit("finetuning_get", uuid=got.uuid, status=got.status, accelerator=got.accelerator)
    quiet(pb.finetuning.jobs.estimate_cost, config=configs["sft"], dataset=f"sft-{tag}")
    emit("estimate_cost", ok=True)
    settings = {"base_model": "qwen3-8b", "task": "sft", "adapter": "lora", "epochs": 1}
    printed = quiet_output(
        pb.adapters.estimate_finetuning_cost,
        config={**settings, "train_steps": None},
        dataset=f"sft-{tag}",
    )
    emit("estimate_finetuning_cost", printed=printed.strip().splitlines())


def cancel(pb: Predibase, tag: str) -> None:
    from predibase import SFTConfig

    job = quiet(
        pb.finetuning.jobs.create,
        config=SFTConfig(base_model="qwen3-8b"),
        dataset=f"sft-{tag}",
        repo=f"repo-{tag}",
    )
    quiet(pb.finetuning.jobs.cancel, job.uuid)
    emit("finetuning_cancel", uuid=job.uuid, status=pb.finetuning.jobs.get(job.uuid).status)


def update_config(pb: Predibase, tag: str) -> None:
    from predibase import SFTConfig

    datasets(pb, tag)
    quiet(pb.repos.create, name=f"repo-{tag}")
    job = quiet(
        pb.finetuning.jobs.create,
        config=SFTConfig(base_model="qwen3-8b", epochs=1),
        dataset=f"sft-{tag}",
        repo=f"repo-{tag}",
    )
    pb.finetuning.jobs.update(job.uuid, SFTConfig(base_model="qwen3-8b", epochs=5, rank=8))
    config = pb.adapters.get_config(f"repo-{tag}/1")
    emit("update_config", epochs=config.epochs, rank=config.rank)


def adapters(pb: Predibase, tag: str) -> None:
    adapter_id = f"repo-{tag}/1"
    adapter = quiet(pb.adapters.get, adapter_id)
    emit(
        "adapters_get",
        name=adapter.name,
        archived=adapter.archived,
        job=adapter.finetuning_job_uuid,
        path=adapter.artifact_path,
    )
    pb.adapters.archive(adapter_id)
    emit("adapters_archive", archived=quiet(pb.adapters.get, adapter_id).archived)
    pb.adapters.unarchive(adapter_id)
    emit("adapters_unarchive", archived=quiet(pb.adapters.get, adapter_id).archived)
    pb.adapters.delete(f"repo-{tag}/2")
    emit("adapters_delete", versions=[v.tag for v in pb.repos.get(f"repo-{tag}").all_versions])


#: Every other setting of the SDK's DeploymentConfig (snake_case, as the SDK takes them).
SERVING = {
    "scale_up_threshold": 4,
    "max_total_tokens": 8192,
    "max_num_batched_tokens": 4096,
    "prefix_caching": True,
    "chunked_prefill": True,
    "speculator": "disabled",
    "speculation_disable_by_batch_size": 32,
    "uses_guaranteed_capacity": False,
    "lorax_image_tag": "lorax:2025.10",
    "request_logging_enabled": True,
    "direct_ingress": True,
    "backend": "v2",
    "disable_adapters": False,
    "merge_adapter": False,
    "cache_model": True,
    "quantization": "fp8",
    "compute_spec": {"requests": {"inference": {"sku": "a10_24gb_100"}}, "region": "us-west-2"},
}


def deployments(pb: Predibase, tag: str) -> None:
    from predibase import DeploymentConfig, UpdateDeploymentConfig

    config = DeploymentConfig(
        base_model="qwen3-8b",
        min_replicas=0,
        max_replicas=1,
        cooldown_time=600,
        custom_args=["--max-batch-size", "8"],
        hf_token=HF_TOKEN,
        **SERVING,
    )
    dep = quiet(pb.deployments.create, f"dep-{tag}", config=config, description="oracle")
    emit(
        "deployments_create",
        name=dep.name,
        status=dep.status,
        block=True,
        accelerator=dep.accelerator,
        model=dep.model,
        custom_args=dep.config.custom_args,
        config=dep.config.model_dump(exclude_none=True),
        hf_token=dep.config.hf_token,
        quantization=dep.quantization,
    )
    quick = quiet(pb.deployments.create, f"dep2-{tag}", config=config, block=False)
    emit("deployments_create", name=quick.name, status=quick.status, block=False)
    got = pb.deployments.get(f"dep-{tag}")
    emit("deployments_get", name=got.name, uuid=got.uuid, status=got.status)
    emit("deployments_list", names=[x.name for x in pb.deployments.list()])
    quiet(
        pb.deployments.update,
        f"dep-{tag}",
        config=UpdateDeploymentConfig(max_replicas=2, cooldown_time=900),
    )
    emit("deployments_update", config=pb.deployments.get(f"dep-{tag}").config.max_replicas)
    pb.deployments.delete(f"dep2-{tag}")
    emit("deployments_delete", status=pb.deployments.get(f"dep2-{tag}").status)


def batch(pb: Predibase, tag: str) -> None:
    from predibase.beta.config import BatchInferenceServerConfig

    rows = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8},
        }
        for i in range(3)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"batch_{tag}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        quiet(pb.datasets.from_file, str(path), name=f"batch-{tag}")
        server = BatchInferenceServerConfig(base_model="qwen3-8b")
        bi = pb.beta.batch_inference
        job = quiet(bi.create, dataset=f"batch-{tag}", server_config=server)
        emit("batch_create", uuid=job.uuid, status=job.status)
        other = quiet(bi.create, dataset=f"batch-{tag}", server_config=server)
        bi.cancel(other)
        emit("batch_cancel", status=bi.get(other.uuid).status)
        emit("batch_list", uuids=[j.uuid for j in bi.list(limit=10)])
        import time

        while bi.get(job.uuid).status != "completed":
            time.sleep(0.2)
        emit("batch_get", status=bi.get(job.uuid).status)
        dest = Path(tmp) / "out.jsonl"
        bi.download_results(job, dest=str(dest))
        emit(
            "batch_results",
            ids=sorted(json.loads(x)["custom_id"] for x in dest.read_text().splitlines()),
        )


FLOWS = {
    "datasets": datasets,
    "finetuning": finetuning,
    "cancel": cancel,
    "adapters": adapters,
    "deployments": deployments,
    "update_config": update_config,
    "batch": batch,
}


def main() -> None:
    tag, flows = sys.argv[1], sys.argv[2:]
    pb = quiet(Predibase)
    emit("connect", tenant=pb._session.tenant)
    for flow in flows:
        name, _, option = flow.partition(":")
        if name == "finetuning":
            finetuning(pb, tag, watch=option == "watch")
        else:
            FLOWS[name](pb, tag)


if __name__ == "__main__":
    main()
