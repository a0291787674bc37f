"""Deployments: `pending` -> `initializing` -> `ready`, updates, standby and deletion.

`standby` is derived rather than scheduled: a `ready` deployment with `min_replicas: 0`
that has been idle for `cooldown_time` seconds is in standby. The next serving request
wakes it and waits the profile's cold start, as the real gateway queues it.

Every base model in the catalogue is also served as a shared deployment of the same
name, always ready, as the platform's shared endpoints are.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_predibase.client.models import (
    Deployment,
    DeploymentConfig,
    DeploymentRequest,
    DeploymentStatus,
    DeploymentUpdateRequest,
)
from airflow_predibase.client.models.configs import SECRET_FIELDS
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.lifecycle import GONE, Phase
from airflow_predibase.emulator.resources._base import LifecycleResource
from airflow_predibase.emulator.spec import require_accelerator
from airflow_predibase.emulator.store import Doc
from airflow_predibase.emulator.wire import iso, wire
from airflow_predibase.kinds import DEPLOYMENT

S = DeploymentStatus
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_ADAPTER_ID = re.compile(r"^[^/\s]+/[1-9][0-9]*$")
#: Every setting of `DeploymentConfig` a deployment keeps and shows back: all but the
#: secrets (`hf_token` is used to pull the model and never stored).
SETTINGS: tuple[str, ...] = tuple(
    name for name in DeploymentConfig.model_fields if name not in SECRET_FIELDS
)
#: Where a compute spec names the serving hardware.
SKU_FIELD = "compute_spec.requests.inference.sku"


def default_settings() -> dict[str, Any]:
    """What a deployment gets for the settings its request leaves out (a fresh dict)."""
    return {
        "accelerator": "a10_24gb_100",
        "min_replicas": 0,
        "max_replicas": 1,
        "cooldown_time": 3600,
        "scale_up_threshold": None,
        "quantization": "none",
        "max_total_tokens": None,
        "preloaded_adapters": [],
        "prefix_caching": False,
        "speculator": None,
        "uses_guaranteed_capacity": False,
        "description": None,
    }


#: Where the names of deleted deployments are kept (for the console only).
DELETED = "deleted_deployment"
#: Idle time is tracked to the second: enough for cooldowns, and spares a write per request.
_TOUCH_EVERY = 1.0


class Deployments(LifecycleResource):
    registered = DEPLOYMENT
    aliases = ("deployments",)
    state_key = "deployments"
    stored_as = "deployment"

    def plan(self, doc: Doc, status: str) -> list[Phase]:
        profile = self.ctx.profile
        if status == S.PENDING:
            return [(status, profile.deployment_pending), *self.plan(doc, S.INITIALIZING.value)]
        if status == S.INITIALIZING:
            return [(status, profile.deployment_initializing), (doc["_fate"], None)]
        if status == S.UPDATING:
            return [(status, profile.deployment_updating), (S.READY.value, None)]
        if status == S.DELETING:
            return [(status, profile.deployment_deleting), (GONE, None)]
        return [(status, None)]

    def status(self, doc: Doc) -> str:
        now = self.ctx.now()
        position = self.ctx.position(doc)
        if position.status == S.READY and doc["config"]["min_replicas"] == 0:
            idle_since = max(position.started, doc.get("_last_used") or 0.0)
            if now - idle_since >= doc["config"]["cooldown_time"]:
                return S.STANDBY.value
        return position.status

    def view(self, doc: Doc) -> dict[str, Any]:
        fields = {
            "name": doc["name"],
            "base_model": doc["base_model"],
            "status": self.status(doc),
            **doc["config"],
            "created_at": iso(doc["created_at"]),
            "updated_at": iso(doc.get("updated_at")),
        }
        if fields["status"] == S.FAILED:
            fields["error"] = doc.get("_error") or "deployment failed"
        return wire(Deployment, fields)

    # -- control plane ------------------------------------------------------------------------

    def create(
        self, request: DeploymentRequest, *, extras: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A new deployment. `extras`: production's settings the seed has no field for
        (camelCase, shown back in the platform view's `config`)."""
        if not _NAME.match(request.name):
            raise ApiError(
                400,
                f"invalid deployment name {request.name!r}: use 1-63 lower-case letters, "
                "digits and hyphens, starting and ending with a letter or digit",
            )
        self.require_free(request.name)
        self.ctx.require_base_model(request.base_model)
        config = default_settings()
        config.update(self._settings(request))
        sku = self._sku(config)
        if sku is not None:
            if request.accelerator is not None and request.accelerator != sku:
                raise ApiError(
                    400,
                    f"field '{SKU_FIELD}': {sku} disagrees with accelerator "
                    f"{request.accelerator}; give one of them",
                )
            config["accelerator"] = sku
        self._check(config)
        error = self.take_failure()
        doc: Doc = {
            "name": request.name,
            "base_model": request.base_model,
            "config": config,
            "created_at": self.ctx.now(),
            "updated_at": None,
            "_fate": S.READY.value if error is None else S.FAILED.value,
            "_extras": extras or {},
        }
        if error is not None:
            doc["_error"] = error
        self.ctx.begin(doc, self.plan(doc, S.PENDING.value))
        self.save(doc)
        self.store.delete(DELETED, request.name)
        return self.view(doc)

    def update(
        self,
        name: str,
        request: DeploymentUpdateRequest,
        *,
        extras: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        doc = self.load(name)
        status = S(self.status(doc))
        # Not serving and not settled: still coming up, or going away.
        if not status.is_serving and not status.is_terminal:
            raise ApiError(409, f"deployment {name!r} is {status}; update it once it is ready")
        if request.base_model is not None and request.base_model != doc["base_model"]:
            raise ApiError(
                400,
                f"the base model cannot be changed (deployment {name!r} serves "
                f"{doc['base_model']}); create a new deployment instead",
            )
        changes = self._settings(request)
        current = doc["config"]["accelerator"]
        asked = self._sku(changes) or changes.get("accelerator")
        if asked is not None and asked != current:
            raise ApiError(
                400,
                f"the accelerator cannot be changed by an update (deployment {name!r} runs on "
                f"{current}, asked for {asked}); create a new deployment",
            )
        config = {**doc["config"], **changes}
        self._check(config)
        doc["config"] = config
        doc["_extras"] = {**doc.get("_extras", {}), **(extras or {})}
        doc["updated_at"] = self.ctx.now()
        doc["_last_used"] = self.ctx.now()
        self.ctx.begin(doc, self.plan(doc, S.UPDATING.value))
        self.save(doc)
        return self.view(doc)

    def delete(self, name: str) -> dict[str, Any]:
        doc = self.load(name)
        if self.ctx.position(doc).status != S.DELETING:
            self.ctx.begin(doc, self.plan(doc, S.DELETING.value))
            self.save(doc)
            # Remembered once it is gone, so its console page can say it was deleted.
            self.store.put(DELETED, name, {"name": name, "deleted_at": self.ctx.now()})
        return self.view(doc)

    def deleted(self, name: str) -> Doc | None:
        """When deployment `name` was deleted (`deleted_at`), if it was and is not back."""
        return self.store.get(DELETED, name)

    def _settings(self, request: DeploymentRequest | DeploymentUpdateRequest) -> dict[str, Any]:
        """The configuration fields the request sets, accelerator checked (unknown extras
        and secrets are dropped)."""
        sent = request.model_dump(mode="json", exclude_none=True, include=set(SETTINGS))
        if "accelerator" in sent:
            sent["accelerator"] = require_accelerator(
                sent["accelerator"], "accelerator", self.ctx.config.accelerators
            )
        return sent

    def _sku(self, settings: dict[str, Any]) -> str | None:
        """The accelerator a compute spec in `settings` asks for (checked), if it has one."""
        spec = settings.get("compute_spec")
        if spec is None:
            return None
        return require_accelerator(
            spec["requests"]["inference"]["sku"], SKU_FIELD, self.ctx.config.accelerators
        )

    @staticmethod
    def _check(config: dict[str, Any]) -> None:
        if config["min_replicas"] > config["max_replicas"]:
            raise ApiError(
                400,
                f"min_replicas ({config['min_replicas']}) is larger than max_replicas "
                f"({config['max_replicas']})",
            )
        for adapter_id in config["preloaded_adapters"]:
            if not _ADAPTER_ID.match(adapter_id):
                raise ApiError(400, f"preloaded adapter {adapter_id!r} is not <repo>/<version>")

    # -- serving plane ------------------------------------------------------------------------

    def _shared(self, name: str) -> Doc | None:
        model = self.ctx.config.base_model(name)
        if model is None:
            return None
        return {"name": name, "base_model": name, "config": default_settings(), "_shared": True}

    def lookup(self, name: str) -> tuple[Doc, S]:
        """The deployment a serving request names and its status (404 in serving shape)."""
        doc = self.find(name)
        if doc is None:
            shared = self._shared(name)
            if shared is None:
                raise self.not_found(name, error_type="not_found")
            return shared, S.READY
        return doc, S(self.status(doc))

    async def wake(self, name: str) -> Doc:
        """The deployment, ready to answer: cold-started from standby if need be."""
        doc, status = self.lookup(name)
        if doc.get("_shared"):
            return doc
        if status == S.STANDBY:
            doc["_waking"] = True
            cold_start = self.ctx.profile.deployment_cold_start
            self.ctx.begin(doc, [(S.INITIALIZING.value, cold_start), (S.READY.value, None)])
            self.save(doc)
            status = S.INITIALIZING
        woken = False
        if status == S.INITIALIZING and doc.get("_waking"):
            # Requests that arrive during a cold start queue behind it, like the first.
            ends = self.ctx.position(doc).ends
            if ends is not None:
                await self.ctx.clock.sleep(ends - self.ctx.now())
            doc, status = self.lookup(name)
            woken = True
        # `standby` serves too: with a zero cooldown, a deployment just woken reads standby.
        if not status.is_serving:
            raise ApiError(
                503,
                f"deployment {name!r} is {status}, not serving yet",
                headers={"Retry-After": "1"},
            )
        self._touch(doc, force=woken)
        return doc

    def _touch(self, doc: Doc, *, force: bool = False) -> None:
        now = self.ctx.now()
        idle = now - (doc.get("_last_used") or 0.0)
        if force or (doc["config"]["min_replicas"] == 0 and idle > _TOUCH_EVERY):
            doc["_last_used"] = now
            doc.pop("_waking", None)
            self.save(doc)
