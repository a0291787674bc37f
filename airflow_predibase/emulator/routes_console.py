"""A read-only demo console under `/console`, where the provider's extra links point.

For a control plane that is not predibase.com, `links.console_base()` is
`<scheme>://<netloc>/console`, and each kind's page is its `ResourceKind.console_path`
below that: the routes are built from the same registry, so the links always land here.

One server-rendered page per fine-tuning job, deployment, batch job and dataset: status,
timeline, settings, and a fine-tuning job's training loss as an inline SVG. No token is
needed (the browser that follows an Airflow link has none) and none is ever shown: a page
holds only what `GET` of the resource returns. Reading a page never moves a resource on,
not even under the `instant` profile. Faults never apply here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from airflow_predibase.emulator import console_html as html
from airflow_predibase.emulator.auth import CONSOLE_PREFIX
from airflow_predibase.emulator.backend import Backend
from airflow_predibase.emulator.lifecycle import GONE
from airflow_predibase.emulator.resources._base import LifecycleResource
from airflow_predibase.emulator.resources.finetuning import loss_curve
from airflow_predibase.emulator.wire import iso
from airflow_predibase.kinds import DEPLOYMENT, FINETUNING_JOB, KINDS, ResourceKind

_HEADERS = {
    # No script, no fetches, no framing: the page is text, styles and one SVG.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
#: Shown elsewhere on the page, not in the settings table.
_NOT_SETTINGS = ("status", "error", "lastError", "progress")


def page_url(kind: ResourceKind, key: str) -> str:
    """The console page of one resource: what `links.console_url` gives for the emulator."""
    return CONSOLE_PREFIX + kind.console_path.format(id=quote(key, safe="/"))


def _respond(title: str, body: str, status: int = 200, *, refresh: bool = False) -> HTMLResponse:
    return HTMLResponse(html.page(title, body, refresh=refresh), status, headers=_HEADERS)


class ConsoleRoutes:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [Route(CONSOLE_PREFIX, self.index, methods=["GET"])]
        for kind in KINDS.values():
            path = CONSOLE_PREFIX + kind.console_path.replace("{id}", "{key:path}")
            routes.append(Route(path, self._page_for(kind), methods=["GET"], name=kind.name))
        routes.append(Route(CONSOLE_PREFIX + "/{rest:path}", self.unknown, methods=["GET"]))
        return routes

    def _resource(self, kind: ResourceKind) -> LifecycleResource:
        resource = self.backend.kinds.get(kind.name)
        assert resource is not None, f"the emulator has no resource for kind {kind.name}"
        return resource

    def _page_for(self, kind: ResourceKind) -> Any:
        async def endpoint(request: Request) -> HTMLResponse:
            return self.resource_page(kind, request.path_params["key"])

        return endpoint

    async def index(self, request: Request) -> HTMLResponse:
        sections = []
        for kind in KINDS.values():
            resource = self._resource(kind)
            items = []
            for doc in resource.docs():
                key = doc[resource.key_field]
                items.append((page_url(kind, key), key, resource.view(doc)["status"]))
            sections.append(f"<h2>{html.esc(kind.label)}s</h2>{html.link_list(items)}")
        body = "<h1>Predibase emulator</h1>" + "".join(sections)
        return _respond("Console", body)

    async def unknown(self, request: Request) -> HTMLResponse:
        body = f"<h1>Not found</h1><p>No console page at {html.esc(request.url.path)}.</p>"
        return _respond("Not found", body, 404)

    def resource_page(self, kind: ResourceKind, key: str) -> HTMLResponse:
        resource = self._resource(kind)
        title = f"{kind.label} {key}"
        # `find`, never `get`: under the `instant` profile a GET moves the resource on.
        doc = resource.find(key)
        if doc is None:
            return self._missing(kind, key, title)
        view = resource.view(doc)
        status = kind.status(view["status"])
        badge = html.status_badge(str(status), success=status.is_success, failure=status.is_failure)
        parts = [f"<h1>{html.esc(title)}</h1><p>{badge}</p>"]
        if error := view.get("error") or view.get("lastError"):
            parts.append(f"<p><strong>Error:</strong> {html.esc(error)}</p>")
        if kind is FINETUNING_JOB:
            parts.append(self._training(view))
        marks = sorted((t, s) for s, t in self.backend.marks(doc).items() if s != GONE)
        parts.append("<h2>Timeline</h2>" + html.table((s, iso(t)) for t, s in marks))
        settings = [(k, v) for k, v in view.items() if k not in _NOT_SETTINGS]
        parts.append("<h2>Settings</h2>" + html.table(settings))
        return _respond(title, "".join(parts), refresh=not status.is_terminal)

    @staticmethod
    def _training(view: dict[str, Any]) -> str:
        progress = view.get("progress")
        if not progress:
            return '<h2>Training loss</h2><p class="note">Training has not started.</p>'
        summary = html.table(
            [
                ("step", f"{progress['step']} of {progress['total_steps']}"),
                ("epoch", progress.get("epoch")),
                ("train_loss", progress.get("train_loss")),
            ]
        )
        svg = html.loss_svg(
            loss_curve(progress), int(progress["total_steps"]), progress.get("train_loss")
        )
        return f"<h2>Training loss</h2>{svg}{summary}"

    def _missing(self, kind: ResourceKind, key: str, title: str) -> HTMLResponse:
        if kind is DEPLOYMENT and (gone := self.backend.deployments.deleted(key)) is not None:
            badge = html.status_badge("deleted", success=False, failure=False)
            body = (
                f"<h1>{html.esc(title)}</h1><p>{badge}</p><p>This deployment was deleted "
                f"(deletion requested at {html.esc(iso(gone['deleted_at']))}); it no longer "
                "exists and serves nothing.</p>"
            )
            return _respond(title, body, 410)
        body = (
            f"<h1>{html.esc(title)}</h1><p>There is no {html.esc(kind.label)} called "
            f"{html.esc(key)} in this emulator (a reset or a restart without a state file "
            "forgets everything).</p>"
        )
        return _respond(title, body, 404)
