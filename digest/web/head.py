"""HEAD for the pages and /healthz: answered like GET, without the body.

FastAPI routes declared with GET do not answer HEAD (405), but link checkers,
uptime monitors and some mail scanners send HEAD. The pages' GET handlers change
nothing (every change is a POST behind a button), so running them for HEAD is safe;
the JSON API under /api/ keeps its exact methods.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """ASGI middleware: a HEAD outside /api/ runs as GET, and only the status and
    headers (Content-Length included, as for the GET) are sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "HEAD"
            or scope["path"].startswith("/api/")
        ):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, headers_only)
