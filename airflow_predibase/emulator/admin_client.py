"""A small typed wrapper over the `/__emulator__` control API, for tests and scripts.

It talks HTTP even in-process: the server's event loop then does every state change, so
a test's thread never races it.
"""

from __future__ import annotations

from typing import Any

import httpx


class AdminClient:
    """Script faults, force states and inspect an emulator at `url`."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        self._http = httpx.Client(
            base_url=f"{url.rstrip('/')}/__emulator__",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.is_error:
            raise RuntimeError(
                f"emulator control API {method} {path}: {response.status_code} {response.text}"
            )
        return response.json()

    def state(self) -> dict[str, Any]:
        """Every resource as GET shows it, with counts, faults and the profile."""
        result: dict[str, Any] = self._call("GET", "/state")
        return result

    def reset(self) -> None:
        """Forget all resources, faults and scheduled failures; restore the start profile."""
        self._call("POST", "/reset")

    def set_profile(self, profile: str | dict[str, Any]) -> None:
        """`instant`, `fast`, `realistic`, or a full set of durations."""
        self._call("PUT", "/profile", {"profile": profile})

    def add_fault(self, kind: str, *, method: str = "*", path: str = "*", **options: Any) -> None:
        """Script a fault; see `faults.FaultRule` for `kind` and the options."""
        self._call("POST", "/faults", {"kind": kind, "method": method, "path": path, **options})

    def late_commit(
        self,
        path: str,
        lag: float = 12.0,
        *,
        method: str = "POST",
        lost_as: str = "drop",
        **options: Any,
    ) -> None:
        """The next create at `path` is done, its answer lost (`lost_as`: ``drop``, ``status``
        with a 5xx `status=`, or ``timeout`` after `delay=` real seconds), and what it created
        shows (GET, lists) only `lag` seconds of the emulator's clock later."""
        self.add_fault("late_commit", method=method, path=path, lag=lag, lost_as=lost_as, **options)

    def list_lag(self, path: str, lag: float, *, method: str = "POST", **options: Any) -> None:
        """What the next create at `path` makes is missing from lists for `lag` clock seconds."""
        self.add_fault("list_lag", method=method, path=path, lag=lag, **options)

    def foreign(self, path: str, other: str | None = None, **options: Any) -> None:
        """The next GET at `path` answers with another resource: `other`'s answer, or (without
        `other`) the real one under another id."""
        self.add_fault("foreign", method="GET", path=path, other=other, **options)

    def unknown_status(
        self, path: str, reported_status: str = "suspended", count: int = 1, **options: Any
    ) -> None:
        """The next `count` GETs at `path` report `reported_status`, a status nobody knows."""
        self.add_fault(
            "unknown_status",
            method="GET",
            path=path,
            reported_status=reported_status,
            count=count,
            **options,
        )

    def truncated(self, path: str, keep: float = 0.5, **options: Any) -> None:
        """The next answer at `path` keeps its status but loses its body after `keep` of it."""
        self.add_fault("truncated", path=path, keep=keep, **options)

    def set_page_size(self, page_size: int | None) -> None:
        """Serve every list in pages of at most `page_size` items (None: unpaged again)."""
        self._call("PUT", "/pagination", {"page_size": page_size})

    def set_rate_limit(self, requests_per_second: float | None) -> dict[str, Any]:
        """Limit each tenant (token) to this many requests per second (None: no limit); the
        counts start from zero."""
        result: dict[str, Any] = self._call(
            "PUT", "/rate-limit", {"requests_per_second": requests_per_second}
        )
        return result

    def rate_limit(self) -> dict[str, Any]:
        """`{"requests_per_second", "allowed", "limited"}`: the limit and the requests it let
        through and answered with 429 since it was set."""
        result: dict[str, Any] = self._call("GET", "/rate-limit")
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/faults")
        return result

    def chaos(self, probability: float, *, seed: int = 0, **options: Any) -> None:
        """Fail each matching request with `probability`, drawing from a seeded generator."""
        self._call("PUT", "/chaos", {"probability": probability, "seed": seed, **options})

    def stop_chaos(self) -> None:
        self._call("DELETE", "/chaos")

    def fail_next(self, kind: str, count: int = 1, error: str = "emulated failure") -> None:
        """The next `count` resources of `kind` created end in failure with `error`.

        `kind` is `dataset`, `finetuning_job`, `deployment` or `batch_inference_job` (older
        spellings such as `finetuning` or `deployments` work too), here as in `advance`
        and `force`.
        """
        self._call("POST", "/fail-next", {"kind": kind, "count": count, "error": error})

    def advance(self, kind: str, key: str) -> dict[str, Any]:
        """Move one resource to its next state now."""
        result: dict[str, Any] = self._call("POST", f"/resources/{kind}/{key}/advance")
        return result

    def force(self, kind: str, key: str, status: str, error: str | None = None) -> dict[str, Any]:
        """Put one resource in `status`; its lifecycle carries on from there."""
        body = {"status": status, "error": error}
        result: dict[str, Any] = self._call("POST", f"/resources/{kind}/{key}/force", body)
        return result

    def advance_clock(self, seconds: float) -> None:
        """Skip the emulator's clock ahead (all lifecycles move with it)."""
        self._call("POST", "/clock/advance", {"seconds": seconds})
