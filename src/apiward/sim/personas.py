"""Benign personas: what real customers and admins of DemoBank do.

Each persona is a session generator (see :mod:`apiward.sim.traffic`). They
include the harmless oddities real traffic has, so detectors meet them: a
mistyped password now and then, a stale link (404), a front-end bug that
sorts by an unknown column (a 500 in the vulnerable app), old mobile apps on
the deprecated v1 API, admins exporting users through the undocumented
endpoint, and once the v3 deploy is live, the new rewards endpoint and field.
"""

from __future__ import annotations

from collections.abc import Callable

from apiward.sim import wordlists as wl
from apiward.sim.population import Person, person
from apiward.sim.traffic import Ctx, Req, SessionGen, bearer

__all__ = ["PERSONAS", "ADMIN_PERSONA", "login", "weights"]


def login(ctx: Ctx, p: Person, *, wait: float, v1: bool = False, typo_rate: float = 0.04) -> SessionGen:
    """Log ``p`` in (sometimes after a typo); returns the token or ``None``."""
    rng = ctx.rng
    path = "/api/v1/login" if v1 else "/api/v2/auth/login"
    who = p.email if rng.random() < 0.6 else p.username
    if rng.random() < typo_rate:
        yield Req("POST", path, json={"username": who, "password": p.password[:-1] + "x"}, wait=wait)
        wait = rng.uniform(3, 12)
    r = yield Req("POST", path, json={"username": who, "password": p.password}, wait=wait)
    body = r.json() if r.status == 200 else None
    if not isinstance(body, dict):
        return None
    token = body.get("access_token") or body.get("token")
    if token:
        ctx.world.tokens[p.username] = (token, ctx.now, ctx.session.ip)
    return token


def _person(ctx: Ctx) -> Person:
    return ctx.world.people[ctx.session.params["p"]]


def _think(ctx: Ctx, lo: float = 2.0, hi: float = 25.0) -> float:
    return ctx.rng.uniform(lo, hi)


def browse(ctx: Ctx) -> SessionGen:
    """An anonymous visitor looking at the catalogue."""
    rng = ctx.rng
    yield Req("GET", "/api/v2/products", params=[("page", "1"), ("limit", "20")], wait=0)
    for _ in range(rng.randint(1, 5)):
        r = rng.random()
        if r < 0.45:
            yield Req("GET", f"/api/v2/products/{rng.randint(1, ctx.world.products)}", wait=_think(ctx))
        elif r < 0.7:
            yield Req("GET", "/api/v2/products/search", params=[("q", rng.choice(wl.SEARCH_TERMS))], wait=_think(ctx))
        elif r < 0.95:
            yield Req("GET", "/api/v2/products", params=[("page", str(rng.randint(1, 3))), ("limit", "20")], wait=_think(ctx))
        else:  # a stale bookmark
            yield Req("GET", f"/api/v2/products/{rng.randint(5000, 9000)}", wait=_think(ctx))


def shop(ctx: Ctx) -> SessionGen:
    """Log in, browse, order, pay, check the order."""
    rng = ctx.rng
    p = _person(ctx)
    tok = yield from login(ctx, p, wait=0)
    if not tok:
        return
    h = bearer(tok)
    yield Req("GET", "/api/v2/users/me", headers=h, wait=_think(ctx, 0.5, 3))
    pid = rng.randint(1, ctx.world.products)
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.5:
            r = yield Req("GET", "/api/v2/products/search", params=[("q", rng.choice(wl.SEARCH_TERMS))], wait=_think(ctx))
            items = (r.json() or {}).get("items") if r.status == 200 else None
            if items:
                pid = rng.choice(items)["id"]
        else:
            yield Req("GET", "/api/v2/products", params=[("page", str(rng.randint(1, 4))), ("limit", "20")], wait=_think(ctx))
        yield Req("GET", f"/api/v2/products/{pid}", wait=_think(ctx))
    if rng.random() < 0.7:
        r = yield Req("POST", "/api/v2/orders", headers=h, json={"items": [{"product_id": pid, "quantity": rng.randint(1, 2)}]}, wait=_think(ctx, 5, 40))
        order = r.json() if r.status == 201 else None
        if isinstance(order, dict):
            r = yield Req("GET", "/api/v2/accounts", headers=h, wait=_think(ctx, 2, 8))
            accts = r.json() if r.status == 200 else None
            if accts:
                acct = max(accts, key=lambda a: a.get("balance") or 0)
                yield Req("POST", "/api/v2/payments", headers=h,
                          json={"order_id": order["id"], "account_id": acct["id"], "amount": order["total"]}, wait=_think(ctx, 5, 30))
            yield Req("GET", f"/api/v2/orders/{order['id']}", headers=h, wait=_think(ctx))
    if rng.random() < 0.3:
        yield Req("POST", "/api/v2/auth/logout", headers=h, wait=_think(ctx))


def orders(ctx: Ctx) -> SessionGen:
    """Check past orders; now and then change a shipping address or cancel."""
    rng = ctx.rng
    p = _person(ctx)
    tok = yield from login(ctx, p, wait=0)
    if not tok:
        return
    h = bearer(tok)
    sort = rng.choices(("created_at", "total", "status", "date"), weights=(70, 15, 10, 3))[0]  # "date": a front-end bug
    r = yield Req("GET", "/api/v2/orders", params=[("sort", sort)], headers=h, wait=_think(ctx, 1, 5))
    mine = r.json() if r.status == 200 else None
    if sort == "date":
        r = yield Req("GET", "/api/v2/orders", params=[("sort", "created_at")], headers=h, wait=_think(ctx, 2, 6))
        mine = r.json() if r.status == 200 else None
    if isinstance(mine, list) and mine:
        for o in rng.sample(mine, min(len(mine), rng.randint(1, 3))):
            yield Req("GET", f"/api/v2/orders/{o['id']}", headers=h, wait=_think(ctx))
        o = rng.choice(mine)
        if rng.random() < 0.15:
            yield Req("PUT", f"/api/v2/orders/{o['id']}", headers=h, json={"shipping_address": f"{p.address}, {p.city}, {p.state} {p.postcode}"}, wait=_think(ctx))
        elif rng.random() < 0.05:
            yield Req("PUT", f"/api/v2/orders/{o['id']}", headers=h, json={"status": "cancelled"}, wait=_think(ctx))


def bank(ctx: Ctx) -> SessionGen:
    """Look at accounts, transactions and payments; sometimes rename one."""
    rng = ctx.rng
    p = _person(ctx)
    tok = yield from login(ctx, p, wait=0)
    if not tok:
        return
    h = bearer(tok)
    r = yield Req("GET", "/api/v2/accounts", headers=h, wait=_think(ctx, 1, 4))
    accts = r.json() if r.status == 200 else None
    if isinstance(accts, list) and accts:
        a = rng.choice(accts)
        yield Req("GET", f"/api/v2/accounts/{a['id']}", headers=h, wait=_think(ctx))
        if rng.random() < 0.6:
            yield Req("GET", f"/api/v2/accounts/{a['id']}/transactions", headers=h, wait=_think(ctx))
        if rng.random() < 0.08:
            yield Req("PATCH", f"/api/v2/accounts/{a['id']}", headers=h, json={"nickname": rng.choice(("Bills", "Rainy day", "Travel", "Everyday"))}, wait=_think(ctx))
    if rng.random() < 0.5:
        yield Req("GET", "/api/v2/payments", headers=h, wait=_think(ctx))
    if ctx.world.deployed and rng.random() < 0.6:
        yield Req("GET", "/api/v2/rewards", headers=h, wait=_think(ctx))


def profile(ctx: Ctx) -> SessionGen:
    """Read and update one's own profile."""
    rng = ctx.rng
    p = _person(ctx)
    tok = yield from login(ctx, p, wait=0)
    if not tok:
        return
    h = bearer(tok)
    yield Req("GET", "/api/v2/users/me", headers=h, wait=_think(ctx, 1, 4))
    change: dict[str, str] = {}
    r = rng.random()
    if r < 0.4:
        change["phone"] = p.phone
    elif r < 0.8:
        change.update(address=p.address, city=p.city, postcode=p.postcode)
    else:
        change["full_name"] = p.full_name
    if ctx.world.deployed and rng.random() < 0.5:
        change["preferred_language"] = rng.choice(("en", "es", "fr", "de"))
    yield Req("PATCH", "/api/v2/users/me", headers=h, json=change, wait=_think(ctx, 10, 60))
    yield Req("GET", "/api/v2/users/me", headers=h, wait=_think(ctx, 1, 5))
    if ctx.world.deployed and rng.random() < 0.5:
        yield Req("GET", "/api/v2/rewards", headers=h, wait=_think(ctx))


def support(ctx: Ctx) -> SessionGen:
    """Open a support ticket and look at existing ones."""
    rng = ctx.rng
    p = _person(ctx)
    tok = yield from login(ctx, p, wait=0)
    if not tok:
        return
    h = bearer(tok)
    r = yield Req("GET", "/api/v2/support/tickets", headers=h, wait=_think(ctx, 1, 5))
    mine = r.json() if r.status == 200 else None
    if isinstance(mine, list) and mine and rng.random() < 0.5:
        yield Req("GET", f"/api/v2/support/tickets/{rng.choice(mine)['id']}", headers=h, wait=_think(ctx))
    subject = rng.choice(wl.TICKET_SUBJECTS)
    msg = f"Hi, {subject.lower()}. My phone is {p.phone} if you need to call. Thanks, {p.full_name.split()[0]}"
    r = yield Req("POST", "/api/v2/support/tickets", headers=h, json={"subject": subject, "message": msg}, wait=_think(ctx, 30, 120))
    if r.status == 201 and isinstance(r.json(), dict):
        yield Req("GET", f"/api/v2/support/tickets/{r.json()['id']}", headers=h, wait=_think(ctx))


def legacy(ctx: Ctx) -> SessionGen:
    """An old mobile app that still speaks the deprecated v1 API."""
    rng = ctx.rng
    p = _person(ctx)
    tok = yield from login(ctx, p, wait=0, v1=True, typo_rate=0.0)
    if not tok:
        return
    uid = p.index + 1
    yield Req("GET", f"/api/v1/users/{uid}", headers=bearer(tok), wait=_think(ctx, 1, 4))
    r = yield Req("GET", "/api/v2/orders", params=[("sort", "created_at")], headers=bearer(tok), wait=_think(ctx))
    mine = r.json() if r.status == 200 else None
    if isinstance(mine, list) and mine:
        yield Req("GET", f"/api/v1/orders/{rng.choice(mine)['id']}", headers=bearer(tok), wait=_think(ctx))


def signup(ctx: Ctx) -> SessionGen:
    """A new customer signs up, logs in and fills in the profile."""
    rng = ctx.rng
    n = ctx.session.params["n"]
    p = person(n, tag="signup")
    r = yield Req("POST", "/api/v2/auth/signup", json={"email": p.email, "password": p.password, "full_name": p.full_name, "phone": p.phone}, wait=0)
    if r.status != 201:
        return
    r = yield Req("POST", "/api/v2/auth/login", json={"username": p.email, "password": p.password}, wait=_think(ctx, 3, 15))
    tok = (r.json() or {}).get("access_token") if r.status == 200 else None
    if not tok:
        return
    h = bearer(tok)
    yield Req("PATCH", "/api/v2/users/me", headers=h, json={"address": p.address, "city": p.city, "postcode": p.postcode}, wait=_think(ctx, 20, 90))
    yield Req("GET", "/api/v2/users/me", headers=h, wait=_think(ctx))
    if rng.random() < 0.5:
        yield Req("GET", "/api/v2/products", params=[("page", "1"), ("limit", "20")], wait=_think(ctx))


def admin(ctx: Ctx) -> SessionGen:
    """An administrator's routine: stats, user lists, the (undocumented)
    export tool, and now and then disabling a dormant account."""
    rng = ctx.rng
    p = _person(ctx)
    tok = yield from login(ctx, p, wait=0, typo_rate=0.02)
    if not tok:
        return
    h = bearer(tok)
    yield Req("GET", "/api/v2/admin/stats", headers=h, wait=_think(ctx, 1, 5))
    for page in range(1, rng.randint(2, 4)):
        yield Req("GET", "/api/v2/admin/users", params=[("page", str(page)), ("limit", "50")], headers=h, wait=_think(ctx, 3, 20))
    if rng.random() < 0.25:
        yield Req("GET", "/api/v2/users/export", params=[("limit", "200")], headers=h, wait=_think(ctx, 5, 30))
    if rng.random() < 0.15 and ctx.world.reserve:
        target = rng.choice(ctx.world.reserve[: max(1, len(ctx.world.reserve) // 2)])
        yield Req("POST", f"/api/v2/admin/users/{target.index + 1}/disable", headers=h, wait=_think(ctx, 5, 30))
    if rng.random() < 0.3:
        yield Req("GET", f"/api/v2/support/tickets/{rng.randint(1, 50)}", headers=h, wait=_think(ctx))


PERSONAS: dict[str, Callable[[Ctx], SessionGen]] = {
    "browse": browse,
    "shop": shop,
    "orders": orders,
    "bank": bank,
    "profile": profile,
    "support": support,
    "legacy": legacy,
    "signup": signup,
    "admin": admin,
}
ADMIN_PERSONA = "admin"


def weights() -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Customer session kinds and their shares (legacy only for users on
    an old app, signup and browse need no account)."""
    kinds = ("browse", "shop", "orders", "bank", "profile", "support", "signup")
    return kinds, (0.18, 0.26, 0.16, 0.22, 0.08, 0.06, 0.04)
