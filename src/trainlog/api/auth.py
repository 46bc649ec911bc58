"""The API token (``TRAINLOG_API_TOKEN``): when set, every /api route needs it.

A client sends it as ``Authorization: Bearer <token>``. A browser cannot (EventSource sends
no headers), so opening ``/?token=<token>`` once stores it in an HttpOnly, SameSite=Strict
cookie and redirects to the same page without it, keeping it out of the address bar and
history. ``/api/health`` stays open for load balancers; it tells nothing but "up". The web
UI's files and the OpenAPI document are not secret and stay open too.
"""

from __future__ import annotations

import hmac
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE_NAME = "trainlog_token"
OPEN_PATHS = frozenset({"/api/health"})
# HTTP ingest (api/routes/ingest.py): its handlers check a token themselves, the API token
# or the ingest token to register a run, that run's own token for the rest.
INGEST_REGISTER_PATH = "/api/runs/ingest"
INGEST_RUN_ACTIONS = frozenset({"log", "started", "heartbeat", "finish"})
COOKIE_MAX_AGE = 30 * 24 * 3600


def self_authenticated(path: str) -> bool:
    """Whether a path's handler checks its own token (HTTP ingest)."""
    parts = path.split("/")  # "", "api", "runs", id, action
    return path == INGEST_REGISTER_PATH or (
        len(parts) == 5 and parts[1:3] == ["api", "runs"] and parts[4] in INGEST_RUN_ACTIONS
    )


def _same(given: str, token: str) -> bool:
    # Constant time, so response timing does not reveal how much of a guess was right.
    return hmac.compare_digest(given.encode(), token.encode())


class TokenAuth:
    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = self._answer(scope)
        if response is None:
            await self.app(scope, receive, send)
        else:
            await response(scope, receive, send)

    def _answer(self, scope: Scope) -> Response | None:
        """The response that replaces the app's, or None to let the request through."""
        assert self.token is not None
        path: str = scope["path"]
        if not path.startswith("/api"):
            return self._take_token_from_query(scope)
        if path in OPEN_PATHS or self_authenticated(path) or self._presented(scope):
            return None
        return JSONResponse(
            {"detail": "an API token is required: Authorization: Bearer <token>, or open /?token="},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    def _presented(self, scope: Scope) -> bool:
        assert self.token is not None
        headers = Headers(scope=scope)
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and _same(credentials.strip(), self.token):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except CookieError:  # a malformed Cookie header is no credential, not a server error
            return False
        morsel = cookie.get(COOKIE_NAME)
        return morsel is not None and _same(morsel.value, self.token)

    def _take_token_from_query(self, scope: Scope) -> Response | None:
        assert self.token is not None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [value for name, value in query if name == "token"]
        if not given:
            return None
        rest = urlencode([(name, value) for name, value in query if name != "token"])
        # One leading slash: "//host/..." would send the browser to another site.
        target = "/" + scope["path"].lstrip("/") + (f"?{rest}" if rest else "")
        if not _same(given[-1], self.token):
            # Back to the page without a cookie: the web UI then asks for the token itself.
            return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
        response = RedirectResponse(
            target,
            status_code=303,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )
        response.set_cookie(
            COOKIE_NAME,
            self.token,
            max_age=COOKIE_MAX_AGE,
            path="/",
            httponly=True,
            samesite="strict",
        )
        return response
