"""ASGI middleware (plain ASGI, so streaming responses pass through untouched)."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Every request body the API takes is a small JSON object; anything near this is abuse.
MAX_BODY_BYTES = 64 * 1024


class NoStoreForApi:
    """``Cache-Control: no-store`` on every /api answer.

    A browser's back button must never replay a stale log history: the page would then open
    the stream from a later offset and leave a gap.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api"):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"cache-control"]
                headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_no_store)


class BodyLimit:
    """Request bodies over ``max_bytes`` get 413 before any route sees them.

    Counted as they arrive, so neither a false Content-Length nor a chunked body gets more
    than ``max_bytes`` into memory.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, log_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # PATCH /api/runs/{id}/log: a remote runner's output (TRAINLOG_INGEST_MAX_BODY_BYTES).
        self.log_bytes = log_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        is_log = scope["method"] == "PATCH" and scope["path"].endswith("/log")
        limit = self.log_bytes if is_log else self.max_bytes
        too_large = JSONResponse({"detail": f"request body over {limit} bytes"}, status_code=413)
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > limit:
            await too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await too_large(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)
