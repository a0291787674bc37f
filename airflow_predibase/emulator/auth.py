"""Bearer-token check on every route, as a plain ASGI layer (cheap on the hot poll path).

Exempt, as on the platform: the presigned upload URL and the results download URL (the
secret is in the URL). Also exempt: the emulator's own liveness probe, which reveals
nothing, and the read-only demo console under `/console` (resource names, statuses and
settings; never a token), which a browser opens from an Airflow extra link.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from airflow_predibase.emulator.errors import error_body, is_serving_path

UPLOAD_PREFIX = "/__uploads__/"
FILES_PREFIX = "/__files__/"
CONSOLE_PREFIX = "/console"
OPEN_PATHS = ("/__emulator__/health",)


def is_console_path(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


class AuthMiddleware:
    """401 ``{"error": ...}`` for a missing or wrong token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    def _exempt(self, path: str) -> bool:
        return (
            path.startswith((UPLOAD_PREFIX, FILES_PREFIX))
            or path in OPEN_PATHS
            or is_console_path(path)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self._exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        sent = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if sent is not None and hmac.compare_digest(sent, self._expected):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            # Closing before the handshake is accepted answers it with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": "invalid API token"})
            return
        if sent is None:
            message = "missing Authorization header; send 'Authorization: Bearer <API token>'"
        else:
            message = "invalid API token"
        body = error_body(401, message, serving=is_serving_path(scope["path"]))
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
