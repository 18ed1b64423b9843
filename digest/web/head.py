"""HEAD wherever GET is answered: the pages, /healthz, /metrics and the JSON API.

FastAPI routes declared with GET do not answer HEAD (405; Starlette's own `Route`
adds HEAD, FastAPI's `APIRoute` does not), but link checkers, uptime monitors, some
mail scanners and HTTP clients probing an API (`curl -I`) send HEAD. No GET handler
changes anything (every change is a POST, PUT, PATCH or DELETE), so running one for
HEAD is safe. A HEAD on a route without GET still answers 405 with its `Allow`.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """ASGI middleware: a HEAD runs as GET, and only the status and headers
    (Content-Length included, as for the GET) are sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, headers_only)
