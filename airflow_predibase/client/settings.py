"""Where and how the client talks to Predibase."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_BASE_URL = "https://api.app.predibase.com/v2"
DEFAULT_SERVING_URL = "https://serving.app.predibase.com"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 4
#: `auto`: probe the server once (cached per base URL and token in the process); `spec`: the
#: seed spec's paths and bodies; `platform`: production's, as the official SDK sends them.
DIALECTS: tuple[str, ...] = ("auto", "spec", "platform")
#: An Airflow connection's request budget: requests per second shared by every wait and
#: call of one host and token in one process. Production allows 100/s on paid tiers and 1/s
#: on the free tier for the whole tenant (API_NOTES); 20 leaves room for several triggerers
#: and workers on a paid tier, and a free tier's first 429 lowers it (`client/_budget.py`).
DEFAULT_MAX_REQUESTS_PER_SECOND = 20.0


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(name: str, url: str) -> str:
    """`url` without a trailing slash; plain http is allowed for loopback hosts only."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http(s) URL, got {url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError(
            f"{name} {url!r} uses plain http to a non-loopback host; the token would be sent "
            "unencrypted. Use https (plain http is accepted only for 127.0.0.1/localhost)."
        )
    return url.rstrip("/")


@dataclass(frozen=True)
class ClientSettings:
    """Connection settings. The token is kept out of `repr`."""

    token: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    serving_url: str = DEFAULT_SERVING_URL
    tenant_id: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    dialect: str = "auto"
    max_requests_per_second: float = 0.0
    """Requests per second shared by every client of this host and token in the process
    (`client/_budget.py`); `0` (the default here) switches the budget off. Airflow
    connections default to `default_request_budget(base_url)`."""

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("token is empty: set the Predibase API token (it starts with pb_)")
        object.__setattr__(self, "base_url", check_url("base_url", self.base_url))
        object.__setattr__(self, "serving_url", check_url("serving_url", self.serving_url))
        if self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {', '.join(DIALECTS)}, got {self.dialect!r}")
        rate = self.max_requests_per_second
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise ValueError(
                f"max_requests_per_second must be a number (0 switches the budget off), "
                f"got {rate!r}"
            )
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(
                f"max_requests_per_second must be >= 0 requests per second (0 switches the "
                f"budget off), got {rate}"
            )
        object.__setattr__(self, "max_requests_per_second", float(rate))

    @property
    def request_budget(self) -> float | None:
        """Requests per second shared per host and token in this process; None when off."""
        return self.max_requests_per_second or None

    @property
    def gateway_url(self) -> str:
        """The gateway root production's `/v1` routes hang off: `base_url` minus `/v2`."""
        return self.base_url.removesuffix("/v2")

    def deployment_url(self, deployment: str) -> str:
        """Serving base of one deployment: `{serving}/{tenant}/deployments/v2/llms/{name}`."""
        if not self.tenant_id:
            raise ValueError("tenant_id is required for serving calls (Settings > My Profile)")
        return f"{self.serving_url}/{self.tenant_id}/deployments/v2/llms/{deployment}"


def default_request_budget(base_url: str) -> float:
    """A connection's budget when its extra is not set: `DEFAULT_MAX_REQUESTS_PER_SECOND`,
    or off (0) for a loopback URL: the local emulator enforces no rate limit unless started
    with `--rate-limit`, and tests must not be slowed by a limit nobody set."""
    loopback = _is_loopback(urlsplit(base_url).hostname or "")
    return 0.0 if loopback else DEFAULT_MAX_REQUESTS_PER_SECOND
