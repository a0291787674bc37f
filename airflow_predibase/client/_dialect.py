"""Which API dialect a server speaks: the seed spec's, or production's (the official SDK's).

`ClientSettings.dialect` forces one (`spec`, `platform`); `auto` (the default) asks the
server once: production answers `GET {gateway}/v1/users/current` (the SDK 2025.10.3 itself
calls `{gateway}/users/current`, so that is tried second) with the user record; a server
that speaks only the seed spec answers 404 or 405 (or 400 or 410: the emulator under
`--dialect spec` says so with a 400). The answer is cached per process for
each (gateway, token): the cache is a dict under a `threading.Lock` that is never held
across I/O, so sync clients in threads and async clients in event loops share it. Two
clients that start at the same instant may both probe; the answers agree. A probe that
fails otherwise (401, 5xx after retries, no connection) raises and caches nothing.

The probe is an operation like any other (`detect`), so it is written once for both
clients. The user record's tenant short code (`tenant.shortCode`) fills a missing
`tenant_id`.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from airflow_predibase.client._base import ApiRequest, decode
from airflow_predibase.client._exchange import Dialect, Op
from airflow_predibase.client.settings import ClientSettings

#: Where production answers with the current user: the API notes' path, then the SDK's.
PROBE_PATHS = ("/v1/users/current", "/users/current")
#: What a server that does not serve the route as production does answers.
NOT_THERE = frozenset({400, 404, 405, 410})


@dataclass(frozen=True)
class DialectChoice:
    """The dialect a client speaks, and how it was chosen."""

    dialect: Dialect
    detected: bool
    """True when probed (now or earlier in this process); False when set in the settings."""
    tenant_id: str | None = None
    """The tenant short code from production's user record, when detected."""

    def __str__(self) -> str:
        return f"{self.dialect} ({'detected' if self.detected else 'set by the connection'})"


def forced(settings: ClientSettings) -> DialectChoice | None:
    """The choice the settings make, or None for `auto`."""
    if settings.dialect == "auto":
        return None
    return DialectChoice(settings.dialect, detected=False)  # type: ignore[arg-type]


def _tenant(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = body["data"]
    tenant = body.get("tenant") if isinstance(body, dict) else None
    code = tenant.get("shortCode") or tenant.get("short_code") if isinstance(tenant, dict) else None
    return code if isinstance(code, str) and code else None


def detect() -> Op[DialectChoice]:
    """Probe the gateway: a user record means production; NOT_THERE on both paths the seed."""
    for path in PROBE_PATHS:
        call = ApiRequest("GET", path, plane="gateway", ok_statuses=NOT_THERE)
        response = yield call
        if response.status_code not in NOT_THERE:
            return DialectChoice(
                "platform", detected=True, tenant_id=_tenant(decode(call, response))
            )
    return DialectChoice("spec", detected=True)


_lock = threading.Lock()
_detected: dict[tuple[str, str], DialectChoice] = {}


def _key(settings: ClientSettings) -> tuple[str, str]:
    # The token is keyed by its digest: the cache never holds it.
    return settings.gateway_url, hashlib.sha256(settings.token.encode()).hexdigest()


def cached(settings: ClientSettings) -> DialectChoice | None:
    with _lock:
        return _detected.get(_key(settings))


def remember(settings: ClientSettings, choice: DialectChoice) -> DialectChoice:
    """Cache `choice` (the first one cached for these settings wins) and return it."""
    with _lock:
        return _detected.setdefault(_key(settings), choice)


def forget() -> None:
    """Drop every cached detection (tests; or after a server changed dialect)."""
    with _lock:
        _detected.clear()


class DialectAware:
    """What the sync and async clients share about the dialect (both add `resolve_dialect`,
    which may probe)."""

    settings: ClientSettings
    _choice: DialectChoice | None = None
    _on_dialect: Callable[[DialectChoice], None] | None = None
    _tenant_asked = False

    @property
    def dialect(self) -> DialectChoice | None:
        """The dialect this client speaks, if known without asking the server: set in the
        settings, or detected earlier in this process. None until `auto` has probed."""
        if self._choice is None:
            known = forced(self.settings) or cached(self.settings)
            if known is not None:
                self._adopt(known)
        return self._choice

    def _adopt(self, choice: DialectChoice) -> DialectChoice:
        first = self._choice is None
        self._choice = choice
        self._take_tenant(choice)
        if first and self._on_dialect is not None:
            self._on_dialect(choice)
        return choice

    def _detected(self, choice: DialectChoice) -> DialectChoice:
        return self._adopt(remember(self.settings, choice))

    def _take_tenant(self, choice: DialectChoice) -> None:
        if choice.tenant_id and not self.settings.tenant_id:
            self.settings = replace(self.settings, tenant_id=choice.tenant_id)

    def _wants_tenant(self, call: ApiRequest) -> bool:
        """A serving call without a tenant, which production's user record may supply (asked
        once per client: under `auto` by the probe itself, under `platform` by a probe)."""
        if call.plane != "serving" or self.settings.tenant_id or self._tenant_asked:
            return False
        choice = self.dialect
        return self.settings.dialect != "spec" and (choice is None or choice.dialect == "platform")
