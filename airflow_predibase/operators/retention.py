"""ArchiveAdapterVersionsOperator: keep a repository to its last N adapter versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_predibase.client.errors import NotFoundError
from airflow_predibase.exceptions import PredibaseInvalidParameter
from airflow_predibase.operators._base import check_choice, coerce_int, coerce_list, is_templated
from airflow_predibase.operators._validation import check_name

#: What `action` accepts.
ACTIONS = ("archive", "delete")


class ArchiveAdapterVersionsOperator(BaseOperator):
    """Archive (or delete) the adapter versions of `repo` beyond the newest `keep_last`.

    Never touched: the newest `keep_last` trained (``ready``) versions; the champion and
    the previous champion `deployment` serves (as PromoteAdapterOperator records them:
    its preloaded adapters) and every adapter in `keep`; any version that has not finished
    training. Failed and cancelled versions beyond the newest `keep_last` are archived
    or deleted like the others. Re-running changes nothing more (already archived
    versions are reported as ``unchanged``; a version already deleted is not listed).

    Returns (and pushes as XCom)::

        {"repo", "action", "archived": [...], "deleted": [...], "unchanged": [...],
         "kept": [...], "protected": [...], "unfinished": [...]}

    with adapter IDs (``"repo/N"``) in each list.

    :param repo: the adapter repository (templated).
    :param keep_last: how many of the newest trained versions to keep (at least 1).
    :param action: ``"archive"`` (hidden, weights kept, undone with the client's
        ``unarchive_adapter_version``) or ``"delete"`` (for good).
    :param deployment: a deployment whose champion and previous champion are protected
        (templated; None: only `keep` protects).
    :param keep: adapter IDs never to touch, e.g. the champion passed explicitly
        (templated).
    :param predibase_conn_id: Airflow connection of type ``predibase``.
    """

    template_fields: Sequence[str] = ("repo", "deployment", "keep")
    ui_color = "#e8e3ff"

    def __init__(
        self,
        *,
        repo: str,
        keep_last: int = 3,
        action: str = "archive",
        deployment: str | None = None,
        keep: Sequence[str] | str | None = None,
        predibase_conn_id: str = "predibase_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        try:
            check_name("repo", repo)
            check_choice("action", action, ACTIONS, " (archive hides, delete removes)")
            keep_count = coerce_int(keep_last, "keep_last")
            if keep_count is None or keep_count < 1:
                raise ValueError(f"keep_last must be an integer of at least 1, got {keep_last!r}")
        except ValueError as error:
            raise PredibaseInvalidParameter(f"{self.task_id}: {error}") from None
        self.repo = repo
        self.keep_last = keep_count
        self.action = action
        self.deployment = deployment
        self.keep = keep
        self.predibase_conn_id = predibase_conn_id

    def execute(self, context: Any) -> Any:
        from airflow_predibase.hooks.predibase import PredibaseHook
        from airflow_predibase.operators.promote import champion_of

        try:
            explicit = [str(a) for a in (coerce_list(self.keep, "keep") or []) if a]
        except ValueError as error:
            raise PredibaseInvalidParameter(f"{self.task_id}: {error}") from None
        client = PredibaseHook(predibase_conn_id=self.predibase_conn_id).get_client()
        protected = set(explicit)
        if self.deployment and not is_templated(self.deployment):
            record = champion_of(client, str(self.deployment))
            protected |= {a for a in (record.champion, record.previous) if a}
        versions = client.list_adapter_versions(str(self.repo))
        trained = [v for v in versions if v.status.is_success]
        newest = {v.adapter_id for v in trained[-self.keep_last :]}
        result: dict[str, Any] = {
            "repo": str(self.repo),
            "action": self.action,
            "archived": [],
            "deleted": [],
            "unchanged": [],
            "kept": sorted(newest, key=_number),
            "protected": sorted(protected & {v.adapter_id for v in versions}, key=_number),
            "unfinished": [],
        }
        for version in versions:
            adapter_id = version.adapter_id
            if adapter_id in newest or adapter_id in protected:
                continue
            if not version.status.is_terminal:
                result["unfinished"].append(adapter_id)
                continue
            if self.action == "archive":
                if version.archived:
                    result["unchanged"].append(adapter_id)
                    continue
                client.archive_adapter_version(version.repo or str(self.repo), version.version)
                result["archived"].append(adapter_id)
            else:
                try:
                    client.delete_adapter_version(version.repo or str(self.repo), version.version)
                except NotFoundError:  # deleted by a try whose answer was lost
                    result["unchanged"].append(adapter_id)
                    continue
                result["deleted"].append(adapter_id)
        self.log.info(
            "%s: kept %s, protected %s, %s %s, unchanged %s, still training %s",
            self.repo,
            result["kept"],
            result["protected"],
            "archived" if self.action == "archive" else "deleted",
            result["archived"] or result["deleted"],
            result["unchanged"],
            result["unfinished"],
        )
        return result


def _number(adapter_id: str) -> int:
    tail = adapter_id.rpartition("/")[2]
    return int(tail) if tail.isdigit() else 0
