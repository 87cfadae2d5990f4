"""The apiward server: one FastAPI app with the REST API under ``/api/``
(:mod:`apiward.serve.api`) and the web console (:mod:`apiward.serve.console`)
over one state directory.

Authentication: ``Authorization: Bearer <token>`` (API), or the console's
session cookie (``aw_session``: HttpOnly, SameSite=Strict, Secure behind
TLS). A request carrying the cookie that changes anything must also carry
the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``).
Every route needs a token except ``GET /api/health``, the login page and
the static files. Anonymous: 401; wrong role: 403, each with a JSON body
saying what is needed.

Every response carries the secure headers: a CSP with no inline scripts
and ``frame-ancestors 'none'``, ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: no-referrer``, ``X-Frame-Options: DENY``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from apiward.hunt.session import HuntError, HuntTimeout
from apiward.serve.auth import AuthStore, LoginLimiter, Principal, allowed
from apiward.serve.queries import BadQuery, NotFound, StateReader
from apiward.serve.spool import Spool, SpoolConsumer
from apiward.serve.triage import TriageStore

__all__ = ["COOKIE", "CSP", "REPORT_CSP", "ServerContext", "create_app", "require"]

COOKIE = "aw_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: Incident reports are self-contained HTML with their own inline CSS; still no scripts.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


@dataclass
class ServerContext:
    """What every route reaches: the state and the server's stores."""

    state: Path
    auth: AuthStore
    triage: TriageStore
    reader: StateReader
    spool: Spool
    consumer: SpoolConsumer | None
    login_limiter: LoginLimiter = field(default_factory=LoginLimiter)
    ingest: bool = True
    counters: dict[str, int] = field(default_factory=lambda: {"requests": 0, "unauthorized": 0, "forbidden": 0})

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()
        self.reader.close()
        self.spool.close()
        self.auth.close()
        self.triage.close()


def principal_of(request: Request) -> Principal | None:
    """The caller, from a bearer token or the console's session cookie.
    A cookie-authenticated request that changes state must carry the
    session's CSRF token."""
    ctx: ServerContext = request.app.state.ctx
    authz = request.headers.get("authorization")
    if authz:
        scheme, _, tok = authz.partition(" ")
        return ctx.auth.check(tok.strip()) if scheme.lower() == "bearer" else None
    sid = request.cookies.get(COOKIE)
    if not sid:
        return None
    p = ctx.auth.session(sid)
    if p is not None and request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token") or ""
        if not hmac.compare_digest(sent.encode(), p.csrf.encode()):
            raise HTTPException(403, "CSRF token missing or wrong: send the session's X-CSRF-Token header")
    return p


def ctx_of(request: Request) -> ServerContext:
    """The server's context (state reader, auth, ingestion) for a request."""
    return request.app.state.ctx


def answered(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with the reader's errors as HTTP answers
    (404 not found, 408 a hunt out of time, 400 a bad query), for the
    API and the console alike."""
    try:
        return fn(*args, **kwargs)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except HuntTimeout as exc:
        raise HTTPException(408, str(exc)) from None
    except (BadQuery, HuntError) as exc:
        raise HTTPException(400, str(exc)) from None


def require(need: str) -> Any:
    """A dependency: the caller must hold a role that covers ``need``."""

    def dep(request: Request) -> Principal:
        ctx: ServerContext = request.app.state.ctx
        p = principal_of(request)
        if p is None:
            ctx.counters["unauthorized"] += 1
            raise HTTPException(401, "authentication required: send Authorization: Bearer <token>",
                                headers={"WWW-Authenticate": "Bearer"})
        if not allowed(p.role, need):
            ctx.counters["forbidden"] += 1
            raise HTTPException(403, f"forbidden: this needs the {need} role or higher; token {p.name!r} has role {p.role}")
        return p

    dep.need = need  # type: ignore[attr-defined]
    return dep


def create_app(state: Path | str, *, ingest: bool = True, max_pending: int = 100_000, hunt_timeout: float = 30.0,
               warm: bool = True) -> FastAPI:
    """The server app over ``state``. ``ingest`` starts the spool consumer
    (the pipeline itself opens on the first event). The owner closes
    ``app.state.ctx`` when done serving (it stops the consumer, which
    checkpoints the pipeline)."""
    from apiward.state import StateDir

    root = StateDir(state).root
    auth = AuthStore(root)
    triage = TriageStore(root)
    reader = StateReader(root, triage, hunt_timeout=hunt_timeout)
    spool = Spool(root / "spool.db", max_pending=max_pending)
    consumer = None
    if ingest:
        def make_pipeline() -> Any:
            from apiward.pipeline import Pipeline

            return Pipeline(root)

        consumer = SpoolConsumer(spool, make_pipeline).start()
    ctx = ServerContext(root, auth, triage, reader, spool, consumer, ingest=ingest)

    app = FastAPI(
        title="apiward",
        version=_version(),
        description="apiward server: inventory, findings and triage, actors, hunts, incidents, live ingestion. "
        "Send `Authorization: Bearer <token>` (apiward tokens create).",
        openapi_url=None, docs_url=None, redoc_url=None,
    )
    app.state.ctx = ctx

    @app.middleware("http")
    async def secure_headers(request: Request, call_next: Any) -> Any:
        ctx.counters["requests"] += 1
        response = await call_next(request)
        h = response.headers
        h.setdefault("Content-Security-Policy", CSP)
        h["X-Content-Type-Options"] = "nosniff"
        h["Referrer-Policy"] = "no-referrer"
        h["X-Frame-Options"] = "DENY"
        h.setdefault("Cache-Control", "no-store")
        if request.url.scheme == "https":
            h["Strict-Transport-Security"] = "max-age=31536000"
        return response

    from apiward.serve.api import router as api_router
    from apiward.serve.console import LoginRequired, login_redirect
    from apiward.serve.console import router as console_router

    app.include_router(api_router)
    app.include_router(console_router)
    app.mount("/static", StaticFiles(packages=[("apiward.serve", "static")]), name="static")

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi_doc(request: Request) -> JSONResponse:
        require("viewer")(request)
        return JSONResponse(app.openapi())

    app.add_exception_handler(LoginRequired, login_redirect)  # type: ignore[arg-type]

    if warm:
        import threading

        def _warm() -> None:
            try:
                reader.overview()
            except Exception:
                pass  # an empty or half-written state: pages say so themselves

        threading.Thread(target=_warm, name="apiward-warm", daemon=True).start()
    return app


def _version() -> str:
    from apiward import __version__

    return __version__
