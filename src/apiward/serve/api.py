"""The REST API under ``/api/`` (OpenAPI 3.1 at ``/api/openapi.json``).

Minimum role per route (see :func:`apiward.serve.auth.allowed`):
``health`` anonymous; reading (inventory, specs, findings, incidents,
actors, saved hunt list, changes, selftest, metrics) viewer; triage, spec
diff, hunts (saved runs and SQL) analyst; tokens admin; ingestion ingest
(or admin). Errors are JSON ``{"detail": ...}`` with 400 (a bad value,
named), 404, 408 (a hunt past its time limit), 413, 429 (+ Retry-After).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from apiward.serve.app import ServerContext, answered, ctx_of, require
from apiward.serve.auth import ROLES, AuthError, Principal
from apiward.serve.ingest import BadBatch, decode_batch
from apiward.serve.spool import SpoolFull
from apiward.serve.triage import STATUSES

__all__ = ["json_response", "router"]

router = APIRouter(prefix="/api")
Viewer = Annotated[Principal, Depends(require("viewer"))]
Analyst = Annotated[Principal, Depends(require("analyst"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Ingest = Annotated[Principal, Depends(require("ingest"))]
Status = Literal["open", "acknowledged", "resolved", "false-positive"]
assert set(STATUSES) == set(Status.__args__)  # type: ignore[attr-defined]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A bad parameter or body (the message names it)"},
    401: {"description": "No or unknown token"},
    403: {"description": "The token's role does not cover this route"},
}


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON of anything the lake holds (timestamps, bytes, decimals as strings)."""
    return Response(orjson.dumps(data, default=str, option=orjson.OPT_NON_STR_KEYS), status_code=status,
                    media_type="application/json", headers=headers)




# -- health and metrics ---------------------------------------------------------------
@router.get("/health", tags=["server"], summary="Liveness (no token needed)")
def health(request: Request) -> dict[str, Any]:
    ctx = ctx_of(request)
    return {"status": "ok", "state": (ctx.state / "state.db").exists(), "ingest": ctx.ingest}


@router.get("/metrics", tags=["server"], summary="Prometheus metrics", responses=_ERRORS,
            response_class=Response)
def metrics(request: Request, _p: Viewer) -> Response:
    from apiward.serve.metrics import render

    return Response(render(ctx_of(request)), media_type="text/plain; version=0.0.4")


# -- inventory and specs -------------------------------------------------------------------
@router.get("/inventory", tags=["inventory"], summary="Discovered endpoints", responses=_ERRORS)
def inventory(request: Request, _p: Viewer, service: str | None = None, q: Annotated[str | None, Query(max_length=200)] = None,
              status: Literal["documented", "shadow", "zombie", "orphan", "unknown"] | None = None,
              flag: Literal["unauthenticated", "sensitive"] | None = None) -> Response:
    return json_response(answered(ctx_of(request).reader.inventory, service=service, q=q, status=status, flag=flag))


@router.get("/inventory/{endpoint_id}", tags=["inventory"], summary="One endpoint: parameters, schemas, sensitive fields, auth, owner, changes, findings",
            responses={**_ERRORS, 404: {"description": "No such endpoint"}})
def endpoint(request: Request, endpoint_id: str, _p: Viewer) -> Response:
    return json_response(answered(ctx_of(request).reader.endpoint, endpoint_id))


@router.get("/spec", tags=["inventory"], summary="The observed API as OpenAPI 3.1", responses={**_ERRORS, 404: {"description": "No state or service"}})
def spec(request: Request, _p: Viewer, service: str | None = None) -> Response:
    return json_response(answered(ctx_of(request).reader.spec, service))


class SpecDiffIn(BaseModel):
    spec: dict[str, Any] | str = Field(description="Your OpenAPI 2/3 document, as an object or as JSON/YAML text")
    service: str | None = None


@router.post("/spec/diff", tags=["inventory"], summary="Observed API against your spec (nothing is saved)", responses=_ERRORS)
def spec_diff(request: Request, body: SpecDiffIn, _p: Analyst) -> Response:
    text = body.spec.encode() if isinstance(body.spec, str) else orjson.dumps(body.spec)
    return json_response(answered(ctx_of(request).reader.spec_diff, text, body.service))


# -- findings --------------------------------------------------------------------------------
@router.get("/findings", tags=["findings"], summary="Findings, most severe first, with triage", responses=_ERRORS)
def findings(
    request: Request, _p: Viewer,
    kind: Literal["attack", "exposure"] | None = None,
    status: Status | None = None,
    severity: Literal["info", "low", "medium", "high", "critical"] | None = Query(None, description="Minimum severity"),
    detector: Annotated[str | None, Query(max_length=100)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    endpoint: Annotated[str | None, Query(max_length=300)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    return json_response(answered(ctx_of(request).reader.findings, kind=kind, status=status, severity=severity, detector=detector,
                               actor=actor, endpoint=endpoint, q=q, limit=limit))


@router.get("/findings/stream", tags=["findings"], summary="New and updated findings as server-sent events",
            responses={**_ERRORS, 200: {"content": {"text/event-stream": {}}, "description": "event: finding, data: the finding"}},
            response_class=StreamingResponse)
async def findings_stream(request: Request, _p: Viewer,
                          max_seconds: Annotated[float, Query(ge=0, le=86400, description="Close after this long (0: never)")] = 0,
                          interval: Annotated[float, Query(ge=0.2, le=60)] = 1.0) -> StreamingResponse:
    reader = ctx_of(request).reader

    def current() -> dict[str, tuple[Any, ...]]:
        return {f["id"]: (f["count"], f["last_seen"], f["triage"]["status"]) for f in reader.findings(limit=10_000)}

    async def events() -> Any:
        seen = await run_in_threadpool(current)
        sig = reader.lake_sig()
        start = time.monotonic()
        beat = start
        yield b": apiward findings stream\nretry: 3000\n\n"
        while True:
            if max_seconds and time.monotonic() - start >= max_seconds:
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(interval)
            new_sig = reader.lake_sig()
            if new_sig != sig:
                sig = new_sig
                rows = await run_in_threadpool(reader.findings, limit=10_000)
                for f in rows:
                    key = (f["count"], f["last_seen"], f["triage"]["status"])
                    if seen.get(f["id"]) != key:
                        kind = "new" if f["id"] not in seen else "updated"
                        seen[f["id"]] = key
                        f = {k: f[k] for k in ("id", "title", "severity", "kind", "detector", "actor_display", "endpoint", "events", "last_seen", "summary")}
                        f["change"] = kind
                        yield b"event: finding\nid: " + f["id"].encode() + b"\ndata: " + orjson.dumps(f, default=str) + b"\n\n"
            if time.monotonic() - beat > 15:
                beat = time.monotonic()
                yield b": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


@router.get("/findings/{finding_id}", tags=["findings"], summary="One finding with evidence, its events and triage history",
            responses={**_ERRORS, 404: {"description": "No such finding"}})
def finding(request: Request, finding_id: str, _p: Viewer, events: Annotated[int, Query(ge=0, le=1000)] = 50) -> Response:
    return json_response(answered(ctx_of(request).reader.finding, finding_id, events))


class TriageIn(BaseModel):
    status: Status
    note: str = Field("", max_length=2000)


def _triage(request: Request, finding_id: str, body: TriageIn, p: Principal) -> Response:
    ctx = ctx_of(request)
    if not ctx.reader.findings(ids=[finding_id]):
        raise HTTPException(404, f"no finding {finding_id}")
    t = ctx.triage.set(finding_id, body.status, p.name, body.note)
    return json_response({"id": finding_id, "triage": t})


@router.post("/findings/{finding_id}/triage", tags=["findings"], summary="Set a finding's status (who and when are recorded)",
             responses={**_ERRORS, 404: {"description": "No such finding"}})
def triage_post(request: Request, finding_id: str, body: TriageIn, p: Analyst) -> Response:
    return _triage(request, finding_id, body, p)


@router.patch("/findings/{finding_id}", tags=["findings"], summary="Set a finding's status (same as POST .../triage)",
              responses={**_ERRORS, 404: {"description": "No such finding"}})
def triage_patch(request: Request, finding_id: str, body: TriageIn, p: Analyst) -> Response:
    return _triage(request, finding_id, body, p)


# -- incidents and actors ---------------------------------------------------------------------
@router.get("/incidents", tags=["incidents"], summary="Incidents: an actor's attack findings together", responses=_ERRORS)
def incidents(request: Request, _p: Viewer) -> Response:
    return json_response(answered(ctx_of(request).reader.incidents))


@router.get("/incidents/{target}/report", tags=["incidents"], summary="Incident report (JSON, HTML or Markdown) of an incident id or an actor",
            responses={**_ERRORS, 404: {"description": "No such incident or actor"}}, response_class=Response)
def incident_report(request: Request, target: str, _p: Viewer,
                    format: Literal["json", "html", "md"] = "json", download: bool = False) -> Response:
    from apiward.hunt.report import render_html, render_markdown
    from apiward.serve.app import REPORT_CSP

    rep = answered(ctx_of(request).reader.report, target)
    disp = {"Content-Disposition": f'attachment; filename="apiward-report-{_safe(target)}.{format}"'} if download else {}
    if format == "json":
        return json_response(rep, headers=disp)
    if format == "html":
        return Response(render_html(rep), media_type="text/html; charset=utf-8", headers={**disp, "Content-Security-Policy": REPORT_CSP})
    return Response(render_markdown(rep), media_type="text/markdown; charset=utf-8", headers=disp)


def _safe(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in s)[:80]


@router.get("/actors", tags=["actors"], summary="Actors (attacker clusters) ranked by risk", responses=_ERRORS)
def actors(request: Request, _p: Viewer, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> Response:
    return json_response(answered(ctx_of(request).reader.actors, limit))


@router.get("/actors/{actor:path}", tags=["actors"], summary="One actor: linked identities, findings and kill-chain timeline",
            responses={**_ERRORS, 404: {"description": "No such actor"}})
def actor(request: Request, actor: str, _p: Viewer) -> Response:
    return json_response(answered(ctx_of(request).reader.actor, actor))


@router.get("/changes", tags=["inventory"], summary="API change log, newest first", responses=_ERRORS)
def changes(request: Request, _p: Viewer, limit: Annotated[int, Query(ge=1, le=100_000)] = 1000) -> Response:
    return json_response(answered(ctx_of(request).reader.changes, limit))


@router.get("/selftest", tags=["server"], summary="The last self-test report saved in the state (404 when none)",
            responses={**_ERRORS, 404: {"description": "No self-test report yet"}})
def selftest(request: Request, _p: Viewer) -> Response:
    rep = answered(ctx_of(request).reader.selftest)
    if rep is None:
        raise HTTPException(404, "no self-test report in this state; run `apiward selftest --state DIR`")
    return json_response(rep)


# -- hunts ----------------------------------------------------------------------------------------
@router.get("/hunts", tags=["hunts"], summary="Saved hunts (shipped and <state>/hunts)", responses=_ERRORS)
def hunts(request: Request, _p: Viewer) -> Response:
    return json_response([h.to_dict() for h in load_saved_hunts(ctx_of(request)).values()])


def load_saved_hunts(ctx: ServerContext) -> dict[str, Any]:
    from apiward.hunt.saved import BadHunt, load_hunts

    try:
        return load_hunts(ctx.state / "hunts")
    except BadHunt as exc:
        raise HTTPException(400, str(exc)) from None


class HuntRunIn(BaseModel):
    params: dict[str, str | int | float | bool] = Field(default_factory=dict, description="Parameter overrides")
    since: str | None = Field(None, max_length=40, description="7d, 12h, an ISO date or time, or all")
    until: str | None = Field(None, max_length=40)
    limit: int = Field(1000, ge=1, le=100_000)


class SqlIn(BaseModel):
    sql: str = Field(min_length=1, max_length=20_000, description="One SELECT over the hunting views")
    since: str | None = Field(None, max_length=40)
    until: str | None = Field(None, max_length=40)
    limit: int = Field(1000, ge=1, le=100_000)
    timeout: float = Field(30.0, gt=0, le=120)


def hunt_result(res: Any, limit: int) -> dict[str, Any]:
    rows = res.rows[:limit]
    return {"columns": res.columns, "rows": [list(r) for r in rows], "row_count": len(res.rows), "truncated": len(res.rows) > limit,
            "seconds": round(res.seconds, 3), "meta": res.meta}


def run_sql(ctx: ServerContext, body: SqlIn) -> Any:
    """An analyst's SQL: read-only, sandboxed, time-limited."""
    return answered(ctx.reader.hunt, lambda s: s.query(body.sql), body.since, body.until, body.timeout)


def run_saved(ctx: ServerContext, name: str, body: HuntRunIn) -> Any:
    hs = load_saved_hunts(ctx)
    if name not in hs:
        raise HTTPException(404, f"no hunt {name!r}; known: {', '.join(hs)}")
    overrides = {k: str(v) if not isinstance(v, str) else v for k, v in body.params.items()}
    return answered(ctx.reader.hunt, lambda s: hs[name].run(s, overrides), body.since, body.until)


@router.post("/hunts/sql", tags=["hunts"], summary="Ad-hoc SQL: one read-only SELECT, time-limited",
             responses={**_ERRORS, 408: {"description": "Ran past its time limit"}})
def hunt_sql(request: Request, body: SqlIn, _p: Analyst) -> Response:
    return json_response(hunt_result(run_sql(ctx_of(request), body), body.limit))


@router.post("/hunts/{name}/run", tags=["hunts"], summary="Run a saved hunt",
             responses={**_ERRORS, 404: {"description": "No such hunt"}, 408: {"description": "Ran past its time limit"}})
def hunt_run(request: Request, name: str, body: HuntRunIn, _p: Analyst) -> Response:
    return json_response(hunt_result(run_saved(ctx_of(request), name, body), body.limit))


# -- ingestion ------------------------------------------------------------------------------------
_COMMON = {"type": "object", "properties": {
    "version": {"type": "string"}, "time": {"type": "integer", "description": "epoch milliseconds"},
    "body": {"type": "string", "format": "byte"}, "TruncatedBody": {"type": "boolean"},
    "headers": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}, "value": {"type": "string"}}}}}}
_TELEMETRY = {"type": "object", "required": ["request"], "properties": {
    "requestID": {"type": "string"}, "scheme": {"type": "string"}, "sourceAddress": {"type": "string"},
    "destinationAddress": {"type": "string"}, "destinationNamespace": {"type": "string"},
    "request": {"type": "object", "required": ["method"], "properties": {
        "method": {"type": "string"}, "path": {"type": "string"}, "host": {"type": "string"}, "common": _COMMON}},
    "response": {"type": "object", "properties": {"statusCode": {"type": "string"}, "common": _COMMON}}}}
_TELEMETRY_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "oneOf": [_TELEMETRY, {"type": "array", "items": _TELEMETRY}]}}}}}
_EVENTS_BODY = {"requestBody": {"required": True, "content": {"application/x-ndjson": {"schema": {"type": "string"}},
                                                               "application/json": {"schema": {"type": "object"}}}}}
_INGEST_RESPONSES = {**_ERRORS, 202: {"description": "Accepted: on disk, will be analysed"}, 413: {"description": "Body too large"},
                     429: {"description": "Queue full; retry after Retry-After seconds"}}


async def _ingest(request: Request, fmt: str) -> Response:
    from apiward.serve.ingest import MAX_BODY

    ctx = ctx_of(request)
    if not ctx.ingest:
        raise HTTPException(503, "ingestion is off on this server (apiward serve --no-ingest)")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPException(413, f"body is {declared} bytes; at most {MAX_BODY} per request")
    body = await request.body()
    try:
        calls = await run_in_threadpool(decode_batch, fmt, body)
    except BadBatch as exc:
        return json_response({"detail": str(exc), "errors": exc.errors}, 400)
    try:
        n = await run_in_threadpool(ctx.spool.append, calls)
    except SpoolFull as exc:
        return json_response({"detail": str(exc)}, 429, headers={"Retry-After": str(exc.retry_after)})
    if ctx.consumer is not None:
        ctx.consumer.wake()
    return json_response({"accepted": n, "pending": len(ctx.spool)}, 202)


@router.post("/telemetry", tags=["ingest"], summary="APIClarity telemetry (object, array or JSON lines)", status_code=202,
             openapi_extra=_TELEMETRY_BODY, responses=_INGEST_RESPONSES)
async def telemetry(request: Request, _p: Ingest) -> Response:
    return await _ingest(request, "telemetry")


@router.post("/events", tags=["ingest"], summary="apiward events as JSON lines (apiward's own wire format)", status_code=202,
             openapi_extra=_EVENTS_BODY, responses=_INGEST_RESPONSES)
async def events_batch(request: Request, _p: Ingest) -> Response:
    return await _ingest(request, "events")


@router.get("/ingest", tags=["ingest"], summary="Ingestion queue and consumer counters", responses=_ERRORS)
def ingest_status(request: Request, _p: Viewer) -> Response:
    ctx = ctx_of(request)
    return json_response({**ctx.spool.stats(), **(ctx.consumer.stats() if ctx.consumer else {}), "enabled": ctx.ingest})


# -- tokens ---------------------------------------------------------------------------------------
class TokenIn(BaseModel):
    role: Literal["viewer", "analyst", "admin", "ingest"]
    name: str = Field(min_length=1, max_length=100)


assert set(ROLES) == set(TokenIn.model_fields["role"].annotation.__args__)  # type: ignore[union-attr]


@router.get("/tokens", tags=["tokens"], summary="API tokens (never the secrets)", responses=_ERRORS)
def tokens(request: Request, _p: Admin) -> Response:
    return json_response(ctx_of(request).auth.tokens())


@router.post("/tokens", tags=["tokens"], summary="Create a token; the secret is shown only in this answer", status_code=201, responses=_ERRORS)
def token_create(request: Request, body: TokenIn, _p: Admin) -> Response:
    try:
        tid, tok = ctx_of(request).auth.create(body.role, body.name)
    except AuthError as exc:
        raise HTTPException(400, str(exc)) from None
    return json_response({"id": tid, "name": body.name.strip(), "role": body.role, "token": tok}, 201)


@router.delete("/tokens/{token_id}", tags=["tokens"], summary="Revoke a token (and its console sessions)",
               responses={**_ERRORS, 404: {"description": "No such active token"}})
def token_revoke(request: Request, token_id: str, _p: Admin) -> Response:
    if not ctx_of(request).auth.revoke(token_id):
        raise HTTPException(404, f"no active token {token_id}")
    return json_response({"id": token_id, "revoked": True})
