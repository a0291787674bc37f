"""DeleteDeploymentOperator (a teardown), and what deleting a deployment involves: the
delete-and-wait loop DeployOperator's own cleanup uses too, and the lifetime log line."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException

from airflow_predibase.client.errors import ConflictError, NotFoundError
from airflow_predibase.exceptions import PredibaseInvalidParameter, PredibaseJobTimeout
from airflow_predibase.kinds import DEPLOYMENT
from airflow_predibase.operators._base import PredibaseBaseOperator, fail_fast_on_rejection
from airflow_predibase.operators._validation import check_name

if TYPE_CHECKING:
    from airflow_predibase.client import PredibaseClient
    from airflow_predibase.client.models import Deployment
    from airflow_predibase.lineage import DeleteFacts


class DeleteDeploymentOperator(PredibaseBaseOperator):
    """Delete a deployment and wait until it is gone. Made to run as a teardown.

    ``deploy >> work >> DeleteDeploymentOperator(...).as_teardown(setups=deploy)`` deletes
    the deployment whether ``work`` succeeded or failed. Deleting one that does not exist
    succeeds (``missing_ok``), so re-runs and clears are safe.

    :param name: deployment name.
    :param missing_ok: succeed when there is nothing to delete.
    :param wait_for_deletion: poll until the deployment is gone (bounded by ``timeout``,
        default 15 minutes).
    :param hourly_rate: what the deployment costs per hour, as you know it (the provider
        knows no prices and never invents one): the lifetime logged before the delete is
        then priced with it.
    """

    template_fields: Sequence[str] = ("name",)
    kind = DEPLOYMENT
    _lineage: DeleteFacts | None = None

    def __init__(
        self,
        *,
        name: str,
        missing_ok: bool = True,
        wait_for_deletion: bool = True,
        hourly_rate: float | None = None,
        poll_interval: float = 5.0,
        timeout: float | None = 900.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poll_interval=poll_interval, timeout=timeout, **kwargs)
        self.hourly_rate = check_hourly_rate(
            hourly_rate, f"DeleteDeploymentOperator {self.task_id}"
        )
        self.name = name
        self.missing_ok = missing_ok
        self.wait_for_deletion = wait_for_deletion
        self._check_name()

    def _check_name(self) -> None:
        try:
            check_name("name", self.name)
        except ValueError as error:
            raise PredibaseInvalidParameter(
                f"DeleteDeploymentOperator {self.task_id}: {error}"
            ) from None

    @fail_fast_on_rejection
    def execute(self, context: Any) -> None:
        self._check_name()  # rendered: fails before any request
        try:
            current = self.client.get_deployment(self.name)
        except NotFoundError:
            if not self.missing_ok:
                raise AirflowException(f"deployment {self.name} does not exist") from None
            self.log.info("deployment %s does not exist: nothing to delete", self.name)
            return
        self._publish(context, self.kind, self.name)
        self.log.info("%s", lifetime_report(current, self.hourly_rate))
        delete_and_wait(
            self.client,
            self.name,
            poll_interval=self.poll_interval,
            deadline=self._deadline(),
            log=self.log,
            wait=self.wait_for_deletion,
        )
        from airflow_predibase.lineage import DeleteFacts

        self._lineage = DeleteFacts(self.name)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the deployment, with a ``DROP`` lifecycle change (docs/lineage.md)."""
        from airflow_predibase.lineage import build

        return build(self._lineage, self.hook.get_settings)


def delete_and_wait(
    client: PredibaseClient,
    name: str,
    *,
    poll_interval: float,
    deadline: float | None,
    log: Any,
    wait: bool = True,
    send: bool = True,
) -> None:
    """Delete `name` (unless not `send`: it is being deleted already) and (if `wait`) poll
    until it is gone; PredibaseJobTimeout after `deadline`. One already gone is fine."""

    try:
        if send:
            log.info("deleting deployment %s", name)
            with contextlib.suppress(ConflictError):  # already being deleted
                client.delete_deployment(name)
        while wait:
            current = client.get_deployment(name)
            if deadline is not None and time.time() >= deadline:
                raise PredibaseJobTimeout(
                    f"deployment {name} is still {current.status} after the timeout",
                    resource_id=name,
                    remote_status=str(current.status),
                )
            time.sleep(poll_interval)
    except NotFoundError:
        log.info("deployment %s is gone", name)


def check_hourly_rate(value: Any, owner: str) -> float | None:
    """`value` as a rate per hour (None stays None), or ValueError naming `owner`."""
    if value is None:
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: hourly_rate must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(rate) or rate < 0:
        raise ValueError(f"{owner}: hourly_rate must be a finite number >= 0, got {value!r}")
    return rate


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [f"{days} d"] if days else []
    parts += [f"{hours} h"] if hours or days else []
    parts += [f"{minutes} min", f"{secs} s"]
    return " ".join(parts)


def lifetime_report(
    deployment: Deployment, hourly_rate: float | None, now: float | None = None
) -> str:
    """One log line: how long `deployment` lived until now, and what that came to at
    `hourly_rate` (given by the user: no platform build is known to report a price)."""
    name = deployment.name
    created = _epoch(deployment.created_at)
    if created is None:
        return f"deployment {name}: lifetime unknown (the server reports no creation time)"
    lived = max(0.0, (time.time() if now is None else now) - created)
    text = f"deployment {name} lived {_duration(lived)} (created {deployment.created_at})"
    if hourly_rate is not None:
        text += f"; at {hourly_rate:g}/h (hourly_rate given to the task) that is "
        text += f"{hourly_rate * lived / 3600:.2f}"
    return text


def _epoch(value: str | None) -> float | None:
    from datetime import datetime, timezone

    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()
