"""The web console: server-rendered pages (Jinja2), HTMX for partial
updates, uPlot for charts, no inline scripts (the CSP forbids them).

Sign-in takes an API token once and opens a session cookie; every page
needs a session (anonymous visitors are sent to ``/login``), every form
carries the session's CSRF token, and the sign-in form a double-submit
one. Pages reuse the REST API's queries (:mod:`apiward.serve.queries`).
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from apiward.serve.app import COOKIE, SAFE_METHODS, ServerContext, answered, ctx_of
from apiward.serve.auth import SESSION_SECONDS, Principal, allowed
from apiward.serve.triage import STATUSES

__all__ = ["LoginRequired", "login_redirect", "router"]

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.filters["tojson_attr"] = lambda v: json.dumps(v, default=str)
LOGIN_CSRF = "aw_login_csrf"
SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


class LoginRequired(Exception):
    """No console session: go to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


async def login_redirect(request: Request, exc: LoginRequired) -> Response:
    return RedirectResponse(f"/login?next={quote(exc.next_url, safe='/')}", status_code=303)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def page_user(need: str) -> Any:
    """A dependency: a console session whose role covers ``need``; forms
    (any unsafe method) must carry the session's CSRF token."""

    async def dep(request: Request) -> Principal:
        ctx: ServerContext = request.app.state.ctx
        p = ctx.auth.session(request.cookies.get(COOKIE, ""))
        if p is None:
            ctx.counters["unauthorized"] += 1
            if request.method in SAFE_METHODS:
                raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
            raise HTTPException(401, "authentication required: sign in at /login")
        if request.method not in SAFE_METHODS:
            form = await request.form()
            sent = str(form.get("csrf") or request.headers.get("x-csrf-token") or "")
            if not hmac.compare_digest(sent.encode(), p.csrf.encode()):
                raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again")
        if not allowed(p.role, need):
            ctx.counters["forbidden"] += 1
            raise HTTPException(403, f"forbidden: this needs the {need} role or higher; you are signed in as {p.name} ({p.role})")
        return p

    dep.need = need  # type: ignore[attr-defined]
    return dep


Viewer = Annotated[Principal, Depends(page_user("viewer"))]
Analyst = Annotated[Principal, Depends(page_user("analyst"))]


def render(request: Request, template: str, p: Principal | None, code: int = 200, **data: Any) -> HTMLResponse:
    data.update(user=p, csrf=p.csrf if p else "", nav=template.split(".")[0], can_analyse=bool(p and allowed(p.role, "analyst")))
    return templates.TemplateResponse(request, template, data, status_code=code)




# -- sign-in ---------------------------------------------------------------------------------
def _safe_next(nxt: str | None) -> str:
    if not nxt or not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        return "/"
    return nxt


@router.get("/login")
def login_page(request: Request, next: str = "/", error: str = "") -> HTMLResponse:
    token = secrets.token_urlsafe(24)
    resp = render(request, "login.html", None, next=_safe_next(next), login_csrf=token, error=error)
    resp.set_cookie(LOGIN_CSRF, token, httponly=True, samesite="strict", secure=_secure(request), max_age=3600, path="/login")
    return resp


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = ctx_of(request)
    client = request.client.host if request.client else "?"
    form = await request.form()
    nxt = _safe_next(str(form.get("next") or "/"))
    wait = ctx.login_limiter.retry_after(client)
    if wait:
        return render(request, "login.html", None, code=429, next=nxt, login_csrf=request.cookies.get(LOGIN_CSRF, ""),
                      error=f"Too many failed sign-ins from your address; try again in {wait} s.")
    sent, cookie = str(form.get("csrf") or ""), request.cookies.get(LOGIN_CSRF, "")
    if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
        raise HTTPException(403, "CSRF token missing or wrong: reload the sign-in page")
    p = ctx.auth.check(str(form.get("token") or "").strip())
    if p is None or p.role == "ingest":
        ctx.login_limiter.failed(client)
        return render(request, "login.html", None, code=401, next=nxt, login_csrf=cookie,
                      error="That token is not valid for the console." if p is None else "Ingest tokens cannot sign in to the console.")
    sid, _ = ctx.auth.open_session(p)
    resp = RedirectResponse(nxt, status_code=303)
    resp.set_cookie(COOKIE, sid, httponly=True, samesite="strict", secure=_secure(request), max_age=SESSION_SECONDS, path="/")
    resp.delete_cookie(LOGIN_CSRF, path="/login")
    return resp


@router.post("/logout")
async def logout(request: Request, _p: Viewer) -> Response:
    ctx_of(request).auth.close_session(request.cookies.get(COOKIE, ""))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


# -- pages -----------------------------------------------------------------------------------
@router.get("/")
def overview(request: Request, p: Viewer) -> HTMLResponse:
    return render(request, "overview.html", p, o=answered(ctx_of(request).reader.overview))


def _tree(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Endpoints grouped by service, then by their first path segment."""
    services: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        segs = [s for s in r["template"].split("/") if s]
        head = "/" + "/".join(segs[:2]) if segs and segs[0] == "api" and len(segs) > 2 else "/" + (segs[0] if segs else "")
        services.setdefault(r["service"] or r["host"] or "(unknown)", {}).setdefault(head, []).append(r)
    return [{"service": s, "groups": [{"prefix": k, "rows": v} for k, v in sorted(g.items())],
             "count": sum(len(v) for v in g.values())} for s, g in sorted(services.items())]


@router.get("/inventory")
def inventory(request: Request, p: Viewer, q: str = "", status: str = "", flag: str = "") -> HTMLResponse:
    rows = answered(ctx_of(request).reader.inventory, q=q or None, status=status or None, flag=flag or None)
    tmpl = "inventory_tree.html" if request.headers.get("hx-request") else "inventory.html"
    return render(request, tmpl, p, tree=_tree(rows), rows=rows, q=q, status=status, flag=flag)


@router.get("/endpoints/{endpoint_id}")
def endpoint(request: Request, endpoint_id: str, p: Viewer) -> HTMLResponse:
    return render(request, "endpoint.html", p, e=answered(ctx_of(request).reader.endpoint, endpoint_id))


@router.get("/findings")
def findings(request: Request, p: Viewer, kind: str = "", status: str = "", severity: str = "", q: str = "") -> HTMLResponse:
    rows = answered(ctx_of(request).reader.findings, kind=kind or None, status=status or None, severity=severity or None, q=q or None,
                   limit=500)
    tmpl = "findings_table.html" if request.headers.get("hx-request") else "findings.html"
    return render(request, tmpl, p, rows=rows, kind=kind, status=status, severity=severity, q=q, statuses=STATUSES,
                  severities=SEVERITY_ORDER)


@router.get("/findings/{finding_id}")
def finding(request: Request, finding_id: str, p: Viewer) -> HTMLResponse:
    f = answered(ctx_of(request).reader.finding, finding_id, 25)
    return render(request, "finding.html", p, f=f, statuses=STATUSES, evidence=json.dumps(f["evidence"], indent=2, default=str))


@router.post("/findings/{finding_id}/triage")
async def triage(request: Request, finding_id: str, p: Analyst) -> Response:
    ctx = ctx_of(request)
    form = await request.form()
    status, note = str(form.get("status") or ""), str(form.get("note") or "")
    if status not in STATUSES:
        raise HTTPException(400, f"status must be one of {', '.join(STATUSES)}")
    if not ctx.reader.findings(ids=[finding_id]):
        raise HTTPException(404, f"no finding {finding_id}")
    try:
        ctx.triage.set(finding_id, status, p.name, note[:2000])
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return RedirectResponse(f"/findings/{quote(finding_id)}?saved=1", status_code=303)


@router.get("/actors")
def actors(request: Request, p: Viewer) -> HTMLResponse:
    return render(request, "actors.html", p, rows=answered(ctx_of(request).reader.actors, 500))


@router.get("/actors/{actor:path}")
def actor(request: Request, actor: str, p: Viewer) -> HTMLResponse:
    from apiward.model.taxonomy import KILL_CHAIN

    a = answered(ctx_of(request).reader.actor, actor)
    return render(request, "actor.html", p, a=a, kill_chain=KILL_CHAIN)


@router.get("/hunts")
def hunts(request: Request, p: Viewer) -> HTMLResponse:
    from apiward.serve.api import load_saved_hunts

    return render(request, "hunts.html", p, hunts=[h.to_dict() for h in load_saved_hunts(ctx_of(request)).values()], sql="", result=None,
                  error="", name="")


@router.post("/hunts")
async def hunt_run(request: Request, p: Analyst) -> Response:
    from apiward.serve.api import (
        HuntRunIn,
        SqlIn,
        hunt_result,
        load_saved_hunts,
        run_saved,
        run_sql,
    )

    ctx = ctx_of(request)
    form = await request.form()
    name, sql = str(form.get("name") or ""), str(form.get("sql") or "")
    since = str(form.get("since") or "") or None
    want_csv = form.get("action") == "csv"
    error, res = "", None
    try:
        if name:
            res = run_saved(ctx, name, HuntRunIn(since=since))
        elif sql.strip():
            res = run_sql(ctx, SqlIn(sql=sql[:20_000], since=since))
        else:
            error = "Write a query or pick a saved hunt."
    except HTTPException as exc:
        error = str(exc.detail)
    except ValueError as exc:
        error = str(exc)
    if want_csv and res is not None:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(res.columns)
        for row in res.rows:
            w.writerow(["" if v is None else v for v in row])
        fname = (name or "hunt") + ".csv"
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{fname}"'})
    result = hunt_result(res, 1000) if res is not None else None
    return render(request, "hunts.html", p, code=400 if error else 200, hunts=[h.to_dict() for h in load_saved_hunts(ctx).values()],
                  sql=sql, name=name, result=result, error=error)


@router.get("/incidents")
def incidents(request: Request, p: Viewer) -> HTMLResponse:
    return render(request, "incidents.html", p, rows=answered(ctx_of(request).reader.incidents))


@router.get("/incidents/{target}")
def incident(request: Request, target: str, p: Viewer) -> HTMLResponse:
    rep = answered(ctx_of(request).reader.report, target)
    return render(request, "incident.html", p, r=rep, target=target)


@router.get("/selftest")
def selftest(request: Request, p: Viewer) -> HTMLResponse:
    return render(request, "selftest.html", p, rep=answered(ctx_of(request).reader.selftest))
