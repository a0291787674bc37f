"""PromoteAdapterOperator: make an adapter the champion a deployment serves, or roll back.

Where the champion is recorded
------------------------------
On the platform, in the deployment itself: its ``preloaded_adapters`` list holds the
champion first and, from the same repository, the previous champion second (kept loaded so
a rollback is instant). That is the one record that cannot drift from what is served, that
every DAG, retry and cleared task sees the same, and that a human changing the deployment
in the console changes too. `champion_of` reads it; EvaluateAdapterOperator
(``baseline="champion"``) and ArchiveAdapterVersionsOperator (never archives either) use it.

Each promotion or rollback also emits an Airflow Asset event on `champion_asset(deployment)`
with ``{adapter, previous, deployment, action}`` in its extra: the history, and what a DAG
scheduled on the champion reads from ``triggering_asset_events``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from airflow_predibase.client.errors import NotFoundError
from airflow_predibase.exceptions import PredibaseInvalidParameter
from airflow_predibase.kinds import DEPLOYMENT, ResourceKind
from airflow_predibase.operators._base import PredibaseBaseOperator, is_templated
from airflow_predibase.waiting.events import JobEvent

#: XCom key holding this try's decision across a deferral.
XCOM_PROMOTION = "promotion"
#: Task state store key: the rollback this task instance made (a re-run finds it done).
STATE_ROLLBACK = "predibase_rollback"


def champion_asset(deployment: str) -> Any:
    """The Asset standing for the champion adapter `deployment` serves."""
    from airflow.providers.common.compat.sdk import Asset

    return Asset(name=f"predibase-champion/{deployment}", uri=f"predibase://champions/{deployment}")


def repo_of(adapter_id: str) -> str:
    return adapter_id.rpartition("/")[0]


def split_adapter_id(adapter_id: str, field: str) -> tuple[str, int]:
    """``"repo/3"`` -> ``("repo", 3)``; a ValueError naming `field` otherwise."""
    repo, _, number = str(adapter_id).rpartition("/")
    if not repo or not (number.isascii() and number.isdigit()) or int(number) < 1:
        raise ValueError(f"{field}={adapter_id!r} is not an adapter ID '<repo>/<version>'")
    return repo, int(number)


@dataclass(frozen=True)
class ChampionRecord:
    """What a deployment says about its champion (see the module docstring)."""

    champion: str | None
    previous: str | None

    @classmethod
    def of(cls, preloaded: Sequence[str] | None) -> ChampionRecord:
        adapters = list(preloaded or [])
        champion = adapters[0] if adapters else None
        previous = None
        if champion and len(adapters) > 1 and repo_of(adapters[1]) == repo_of(champion):
            previous = adapters[1]
        return cls(champion, previous)


def champion_of(client: Any, deployment: str) -> ChampionRecord:
    """The champion (and previous champion) `deployment` serves, read from the platform."""
    return ChampionRecord.of(client.get_deployment(deployment).preloaded_adapters)


def promoted(current: Sequence[str], candidate: str) -> list[str]:
    """The preloaded list once `candidate` is champion: it first, the old champion second
    (if from the same repository), older versions of that repository no longer preloaded,
    adapters of other repositories kept after them."""
    record = ChampionRecord.of(current)
    head = [candidate]
    champion = record.champion
    if champion and champion != candidate and repo_of(champion) == repo_of(candidate):
        head.append(champion)
    rest = [a for a in current if a not in head and repo_of(a) != repo_of(candidate)]
    return head + rest


def rolled_back(current: Sequence[str]) -> list[str]:
    """The preloaded list after a rollback: the previous champion first, the rolled-back
    one no longer preloaded."""
    record = ChampionRecord.of(current)
    return [a for a in current if a != record.champion]


class PromoteAdapterOperator(PredibaseBaseOperator):
    """Make `adapter` the champion `deployment` serves, or roll back to the previous one.

    The deployment is updated to preload the candidate first and the outgoing champion
    second (kept warm for a rollback), then waited for until it serves again. Re-running
    after success changes nothing and reports ``unchanged``. Returns (and pushes as XCom)
    ``{"action": "promoted"|"rolled_back"|"unchanged", "champion", "previous",
    "deployment"}``, and emits an event on `champion_asset(deployment)` with
    ``{adapter, previous, deployment, action}`` in its extra.

    :param deployment: the deployment that serves the champion (it must exist).
    :param adapter: the candidate, ``"<repo>/<version>"`` (templated; e.g. the XCom of
        FinetuneOperator). It must be trained (ready) and not archived. Not used with
        ``rollback=True``.
    :param rollback: serve the previous champion again instead (the second preloaded adapter
        of the champion's repository); the rolled-back adapter is no longer preloaded. A
        deployment with no previous champion fails the task, unless this task instance
        already rolled back (then ``unchanged``).
    :param emit_asset: emit the champion Asset event (default True).

    Plus the waiting parameters of every Predibase operator (``deferrable``,
    ``poll_interval``, ``timeout``; see docs/waiting.md).
    """

    kind: ClassVar[ResourceKind] = DEPLOYMENT
    template_fields: Sequence[str] = ("deployment", "adapter")

    def __init__(
        self,
        *,
        deployment: str,
        adapter: str | None = None,
        rollback: bool = False,
        emit_asset: bool = True,
        **kwargs: Any,
    ) -> None:
        if emit_asset and deployment and not is_templated(deployment):
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), champion_asset(deployment)]
        super().__init__(**kwargs)
        if not deployment:
            raise PredibaseInvalidParameter(f"{self.task_id}: deployment must be given")
        if not rollback and not adapter:
            raise PredibaseInvalidParameter(
                f"{self.task_id}: adapter must be given ('<repo>/<version>'), or rollback=True"
            )
        # Only a literal is checked here: a template or an XComArg (`finetune.output`) is
        # checked once rendered, in execute.
        if isinstance(adapter, str) and adapter and not is_templated(adapter) and not rollback:
            self._check_adapter_id(adapter)
        self.deployment = deployment
        self.adapter = adapter
        self.rollback = rollback
        self.emit_asset = emit_asset

    def _check_adapter_id(self, adapter: str) -> tuple[str, int]:
        try:
            return split_adapter_id(adapter, "adapter")
        except ValueError as error:
            raise PredibaseInvalidParameter(f"{self.task_id}: {error}") from None

    def execute(self, context: Any) -> Any:
        from airflow_predibase.client.models import DeploymentUpdateRequest

        client = self.client
        current_deployment = client.get_deployment(self.deployment)
        current = list(current_deployment.preloaded_adapters or [])
        record = ChampionRecord.of(current)
        if self.rollback:
            action, wanted = self._plan_rollback(context, record, current)
        else:
            action, wanted = self._plan_promotion(client, record, current)
        after = ChampionRecord.of(wanted)
        decision = {
            "action": action,
            "champion": after.champion,
            "previous": record.champion if action != "unchanged" else after.previous,
            "deployment": self.deployment,
        }
        if self.rollback and action == "unchanged":
            decision["previous"] = (self._rollback_state(context) or {}).get("rolled_back")
        context["ti"].xcom_push(key=XCOM_PROMOTION, value=decision)
        self._publish(context, self.kind, self.deployment)
        if action == "unchanged":
            self.log.info(
                "%s already serves %s as its champion: unchanged", self.deployment, after.champion
            )
            return self._result(context, decision)
        self.log.info(
            "%s: %s -> %s (preloaded adapters %s -> %s)",
            self.deployment,
            record.champion,
            after.champion,
            current,
            wanted,
        )
        if self.rollback:
            self._remember_rollback(context, record)
        updated = client.update_deployment(
            self.deployment, DeploymentUpdateRequest(preloaded_adapters=wanted)
        )
        event = self._wait(updated, self.deployment, self._deadline())
        return self._finish(context, event)

    def _plan_promotion(
        self, client: Any, record: ChampionRecord, current: list[str]
    ) -> tuple[str, list[str]]:
        candidate = str(self.adapter)
        repo, number = self._check_adapter_id(candidate)
        if record.champion == candidate:
            return "unchanged", current
        try:
            version = client.get_adapter_version(repo, number)
        except NotFoundError as error:
            raise PredibaseInvalidParameter(
                f"{self.task_id}: adapter {candidate} does not exist ({error.message})"
            ) from None
        if not version.status.is_success:
            raise PredibaseInvalidParameter(
                f"{self.task_id}: adapter {candidate} is {version.status}, not ready: only a "
                "trained adapter can be promoted"
            )
        if version.archived:
            raise PredibaseInvalidParameter(
                f"{self.task_id}: adapter {candidate} is archived; unarchive it to promote it"
            )
        return "promoted", promoted(current, candidate)

    def _plan_rollback(
        self, context: Any, record: ChampionRecord, current: list[str]
    ) -> tuple[str, list[str]]:
        done = self._rollback_state(context)
        if done and record.champion == done.get("to") and done.get("rolled_back") not in current:
            return "unchanged", current
        if record.previous is None:
            raise PredibaseInvalidParameter(
                f"{self.task_id}: {self.deployment} has no previous champion to roll back to "
                f"(preloaded adapters: {current or 'none'}); promote an adapter explicitly"
            )
        return "rolled_back", rolled_back(current)

    def _rollback_state(self, context: Any) -> dict[str, Any] | None:
        store = context.get("task_state_store")
        found = store.get(STATE_ROLLBACK) if store is not None else None
        return found if isinstance(found, dict) else None

    def _remember_rollback(self, context: Any, record: ChampionRecord) -> None:
        store = context.get("task_state_store")
        if store is not None:
            store.set(STATE_ROLLBACK, {"rolled_back": record.champion, "to": record.previous})

    def _on_success(self, context: Any, event: JobEvent) -> Any:
        ti = context["ti"]
        decision = ti.xcom_pull(task_ids=ti.task_id, key=XCOM_PROMOTION)
        if not isinstance(decision, dict):  # pragma: no cover - pushed before every wait
            served = champion_of(self.client, self.deployment)
            decision = {
                "action": "rolled_back" if self.rollback else "promoted",
                "champion": served.champion,
                "previous": served.previous,
                "deployment": self.deployment,
            }
        self.log.info("%s serves %s as its champion", self.deployment, decision["champion"])
        return self._result(context, decision)

    def _result(self, context: Any, decision: dict[str, Any]) -> dict[str, Any]:
        if self.emit_asset and not is_templated(self.deployment):
            context["outlet_events"][champion_asset(self.deployment)].extra.update(
                {
                    "adapter": decision["champion"],
                    "previous": decision["previous"],
                    "deployment": self.deployment,
                    "action": decision["action"],
                }
            )
        return decision
