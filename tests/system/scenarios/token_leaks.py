"""The API token is nowhere: checked last, on everything the other scenarios left behind."""

from __future__ import annotations

import json

from tests.system.harness import find_secret, read_files
from tests.system.scenarios.registry import Context, ScenarioOutput, scenario


@scenario(databases=("sqlite", "postgres"), last=True)
def secrets(ctx: Context, out: ScenarioOutput) -> None:
    """The token is in no log, trigger row, XCom or rendered field of any run above."""
    stack, token = ctx.stack, ctx.token
    logs = read_files(stack.all_log_files())
    trigger_log_count = sum(".trigger." in name for name in logs)
    hits = find_secret(token, logs)
    assert not hits, f"the token is in the logs: {hits}"
    out.note(f"{len(logs)} log files ({trigger_log_count} trigger logs): no token")

    rows = list(ctx.trigger_table.rows.values())
    assert rows, "no trigger row was captured"
    classes = sorted({r["classpath"].rsplit(".", 1)[-1] for r in rows})
    texts = {f"trigger table {r['id']}": json.dumps(r, default=str) for r in rows}
    texts.update(
        {f"REST trigger {i}": json.dumps(t, default=str) for i, t in ctx.recorder.triggers.items()}
    )
    hits = find_secret(token, texts)
    assert not hits, f"the token is in the trigger table: {hits}"
    out.note(
        f"{len(rows)} trigger table rows ({', '.join(classes)}; kwargs raw and decrypted) and "
        f"{len(ctx.recorder.triggers)} triggers shown by REST: no token"
    )

    xcoms = stack.sql("SELECT dag_id, run_id, task_id, map_index, key, value FROM xcom")
    hits = find_secret(token, {"xcom": "\n".join(json.dumps(x, default=str) for x in xcoms)})
    assert not hits, f"the token is in XCom: {hits}"
    next_kwargs = stack.sql("SELECT next_kwargs FROM task_instance")
    hits = find_secret(token, {"ti": "\n".join(json.dumps(x, default=str) for x in next_kwargs)})
    assert not hits, f"the token is in task_instance.next_kwargs: {hits}"
    out.note(f"{len(xcoms)} XCom rows and every task's next_kwargs: no token")

    rendered = {}
    for dag_id, run_id in ctx.runs:
        for ti in stack.task_instances(dag_id, run_id):
            rendered[f"{dag_id}/{run_id}/{ti['task_id']}[{ti['map_index']}]"] = json.dumps(
                ti.get("rendered_fields")
            )
    assert any(v not in ("null", "{}") for v in rendered.values()), "no rendered fields at all"
    hits = find_secret(token, rendered)
    assert not hits, f"the token is in rendered template fields: {hits}"
    out.note(f"rendered fields of {len(rendered)} task instances (REST): no token")
