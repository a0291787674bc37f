"""`python -m airflow_predibase.emulator` (also the `predibase-emulator` console script)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from airflow_predibase.client.models import ACCELERATORS
from airflow_predibase.emulator.app import create_app
from airflow_predibase.emulator.config import (
    DEFAULT_DIALECT,
    DEFAULT_PROFILE,
    DEFAULT_TENANT,
    DEFAULT_TOKEN,
    DIALECTS,
    PROFILES,
    EmulatorConfig,
)
from airflow_predibase.emulator.server import bind_socket, connection_dict, uvicorn_config


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="predibase-emulator",
        description="A local Predibase server: control plane, serving plane, fault injection "
        "and a read-only demo console.",
    )
    # Defaults are spelled out rather than interpolated: a token from the environment must
    # never be printed by --help.
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8080, help="port; 0 picks a free one (default: 8080)"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("PREDIBASE_EMULATOR_TOKEN", DEFAULT_TOKEN),
        help="bearer token clients must send "
        f"(default: $PREDIBASE_EMULATOR_TOKEN, else {DEFAULT_TOKEN})",
    )
    parser.add_argument(
        "--tenant",
        default=os.environ.get("PREDIBASE_EMULATOR_TENANT", DEFAULT_TENANT),
        help="tenant ID in serving URLs "
        f"(default: $PREDIBASE_EMULATOR_TENANT, else {DEFAULT_TENANT})",
    )
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        choices=sorted(PROFILES),
        help=f"lifecycle timing (default: {DEFAULT_PROFILE})",
    )
    parser.add_argument(
        "--dialect",
        default=DEFAULT_DIALECT,
        choices=DIALECTS,
        help="spec: the seed spec's paths and shapes; platform: production as the official "
        f"SDK speaks it; default: both (default: {DEFAULT_DIALECT})",
    )
    parser.add_argument(
        "--accelerator",
        action="append",
        default=[],
        metavar="ID[=HARDWARE]",
        help="hardware this server knows beside the usual IDs, e.g. h200_141gb_100=1x H200 "
        "(repeatable)",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        help="SQLite file; state survives restarts (default: in memory)",
    )
    parser.add_argument(
        "--log-level", default="warning", help="uvicorn log level (default: warning)"
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="N",
        help="requests per second each tenant (token) may send; past it, 429 with "
        "Retry-After (default: no limit)",
    )
    parser.add_argument(
        "--ssl-certfile", default=None, help="PEM certificate: serve HTTPS (default: HTTP)"
    )
    parser.add_argument("--ssl-keyfile", default=None, help="PEM private key of --ssl-certfile")
    return parser.parse_args(argv)


def extra_accelerators(specs: Sequence[str]) -> dict[str, str]:
    """The default catalogue plus each `ID[=HARDWARE]` given on the command line."""
    known = dict(ACCELERATORS)
    for spec in specs:
        sku, _, hardware = spec.partition("=")
        if not sku.strip():
            raise ValueError(f"--accelerator {spec!r}: give an ID, e.g. h200_141gb_100")
        known[sku.strip()] = hardware.strip() or sku.strip()
    return known


def banner(url: str, config: EmulatorConfig) -> str:
    state = str(config.state_file) if config.state_file else "(in memory)"
    connection = json.dumps(connection_dict(url, config.token, config.tenant))
    return "\n".join(
        [
            f"Predibase emulator listening on {url}",
            f"  control plane: {url}/v2",
            f"  serving plane: {url}/{config.tenant}/deployments/v2/llms/<deployment>",
            f"  control API:   {url}/__emulator__/state",
            f"  console:       {url}/console (read-only, no token needed)",
            f"  token:         {config.token}",
            f"  tenant:        {config.tenant}",
            f"  profile:       {config.profile.name}",
            f"  dialect:       {config.dialect}",
            f"  state file:    {state}",
            "  rate limit:    "
            + (f"{config.rate_limit:g} requests/s per tenant" if config.rate_limit else "none"),
            f"  AIRFLOW_CONN_PREDIBASE_DEFAULT='{connection}'",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = EmulatorConfig(
            token=args.token,
            tenant=args.tenant,
            profile=args.profile,
            dialect=args.dialect,
            accelerators=extra_accelerators(args.accelerator),
            state_file=args.state_file,
            rate_limit=args.rate_limit,
        )
    except ValueError as exc:
        print(f"predibase-emulator: {exc}", file=sys.stderr)
        return 2
    sock = bind_socket(args.host, args.port)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    # Printed once the socket listens: a script reading the URL can connect straight away.
    scheme = "https" if args.ssl_certfile else "http"
    print(banner(f"{scheme}://{host}:{port}", config), flush=True)
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn_config(
            app,
            log_level=args.log_level,
            access_log=args.access_log,
            ssl_certfile=args.ssl_certfile,
            ssl_keyfile=args.ssl_keyfile,
        )
    )
    # uvicorn shuts down gracefully on Ctrl-C, then re-raises it: that is a clean stop.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
