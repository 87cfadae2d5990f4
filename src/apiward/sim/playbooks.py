"""Attacker playbooks: one session generator per attack class.

Each playbook is what a real attacker's tooling does against an API like
DemoBank, paced in virtual time; with ``low_and_slow`` (playbook name
``<attack>_slow``) the same steps come fewer and far apart, hidden in the
benign volume. Every request a playbook sends is ground truth for its attack
instance (see :mod:`apiward.sim.labels`). Attack class names:
``recon, credential_stuffing, password_spraying, account_takeover, bola,
bfla, mass_assignment, scraping, sqli, fake_accounts, token_misuse,
data_exposure``.
"""

from __future__ import annotations

from collections.abc import Callable

from apiward.sim import wordlists as wl
from apiward.sim.demoapp import TOKEN_TTL, jwt_encode
from apiward.sim.population import person
from apiward.sim.traffic import Ctx, Req, SessionGen, bearer

__all__ = ["PLAYBOOKS", "ATTACK_CLASSES", "parse_attack"]


def _own_account(ctx: Ctx, *, wait: float = 0.0) -> SessionGen:
    """Sign up an account of the attacker's own and log in; returns
    ``(token, user_id, username)`` or ``None``."""
    atk = ctx.session.attack
    n = int(ctx.session.params.get("n", 0))
    p = person(n, tag="attacker")
    r = yield Req("POST", "/api/v2/auth/signup", json={"email": p.email, "password": p.password, "full_name": p.full_name}, wait=wait)
    if r.status not in (201, 409):
        return None
    username = (r.json() or {}).get("username", "") if r.status == 201 else ""
    r = yield Req("POST", "/api/v2/auth/login", json={"username": p.email, "password": p.password}, wait=ctx.gap(1, 4))
    body = r.json() if r.status == 200 else None
    if not isinstance(body, dict) or "access_token" not in body:
        return None
    if atk is not None:
        atk.add_user(username or p.email.split("@")[0])
    return body["access_token"], body.get("user_id", 0), p.email


def recon(ctx: Ctx) -> SessionGen:
    """Scanner sweep: spec files, secret files, admin consoles, a 404 storm
    of fuzzed API paths, then method fuzzing on what answered."""
    rng = ctx.rng
    ua = ctx.session.ua
    probes = list(wl.RECON_PATHS)
    fuzz = [f"/api/v2/{w}" for w in wl.FUZZ_WORDS] + [f"/api/{w}" for w in wl.FUZZ_WORDS] + [f"/api/v2/users/{w}" for w in wl.FUZZ_WORDS[:12]]
    n = ctx.scale(len(probes) + len(fuzz) + 40, 30)
    ctx.expect(n)
    found: list[str] = []
    sent = 0
    r = yield Req("GET", "/openapi.json", wait=0, ua=ua)
    sent += 1
    spec = r.json() if r.status == 200 else None
    if isinstance(spec, dict):
        found = sorted(spec.get("paths", {}))
    targets = probes + fuzz
    rng.shuffle(targets)
    for path in targets[: max(1, int(n * 0.75))]:
        r = yield Req("GET", path, wait=ctx.gap(0.02, 0.3), ua=ua)
        sent += 1
        if r.status < 400 and path not in found:
            found.append(path)
    # method fuzzing on concrete paths
    concrete = [p.replace("{user_id}", "1").replace("{order_id}", "1").replace("{account_id}", "1").replace("{product_id}", "1")
                .replace("{ticket_id}", "1") for p in found if p.startswith("/api/")]
    for _ in range(max(0, n - sent)):
        if not concrete:
            break
        yield Req(rng.choice(("OPTIONS", "PUT", "DELETE", "PATCH", "TRACE", "POST", "HEAD")), rng.choice(concrete), wait=ctx.gap(0.02, 0.3), ua=ua)


def credential_stuffing(ctx: Ctx) -> SessionGen:
    """Replay a leaked combo list against the login from rotating
    residential-looking addresses with browser agents. A few pairs are real
    (password reuse); hits are checked with ``/users/me``."""
    rng = ctx.rng
    atk = ctx.session.attack
    n = ctx.scale(180, 10)
    ctx.expect(n)
    ips = [ctx.session.ip] + [ctx.new_ip() for _ in range(max(2, n // 6))]
    people = ctx.world.benign + ctx.world.reserve
    tag = f"leak{ctx.session.idx}"
    sent = 0
    i = 0
    while sent < n:
        ip = rng.choice(ips)
        ua = rng.choice(wl.BROWSER_UAS)
        r0 = rng.random()
        name = ""
        if r0 < 0.05 and people:
            victim = rng.choice(people)
            user, pw, name = victim.email, victim.password, victim.username
        elif r0 < 0.15 and people:
            victim = rng.choice(people)
            user, pw, name = victim.email, rng.choice(wl.COMMON_PASSWORDS), victim.username
        else:
            fake = person(i, tag=tag)
            user, pw = fake.email, rng.choice((fake.password, rng.choice(wl.COMMON_PASSWORDS)))
        i += 1
        r = yield Req("POST", "/api/v2/auth/login", json={"username": user, "password": pw}, wait=ctx.gap(0.1, 1.2), ip=ip, ua=ua)
        sent += 1
        body = r.json() if r.status == 200 else None
        if isinstance(body, dict) and body.get("access_token"):
            if atk is not None:
                atk.add_user(name or user)
            yield Req("GET", "/api/v2/users/me", headers=bearer(body["access_token"]), wait=ctx.gap(0.2, 1.0), ip=ip, ua=ua)
            sent += 1


def password_spraying(ctx: Ctx) -> SessionGen:
    """A few common passwords against many accounts, one password per
    round, from a handful of addresses, to stay under per-account lockouts."""
    rng = ctx.rng
    atk = ctx.session.attack
    names = {p.email: p.username for p in ctx.world.benign + ctx.world.reserve}
    targets = sorted(names)
    rng.shuffle(targets)
    per_round = min(len(targets), ctx.scale(60, 5))
    rounds = 3
    ctx.expect(per_round * rounds)
    ips = [ctx.session.ip] + [ctx.new_ip() for _ in range(2)]
    passwords = rng.sample(wl.SPRAY_PASSWORDS, rounds)
    for k, pw in enumerate(passwords):
        for j, user in enumerate(targets[:per_round]):
            wait = ctx.gap(0.3, 2.0) if j else ctx.gap(120, 600) if k else 0.0
            r = yield Req("POST", "/api/v2/auth/login", json={"username": user, "password": pw}, wait=wait, ip=ips[k % len(ips)])
            if r.status == 200 and atk is not None:
                atk.add_user(names[user])


def account_takeover(ctx: Ctx) -> SessionGen:
    """Guess a victim's password (failures, then the reused password), then
    from a new address and device read everything and change the contact
    details."""
    rng = ctx.rng
    atk = ctx.session.attack
    victims = ctx.world.benign or ctx.world.reserve
    victim = victims[int(ctx.session.params.get("victim", 0)) % len(victims)]
    if atk is not None:
        atk.add_user(victim.username)
    fails = ctx.scale(10, 3)
    ctx.expect(fails + 12)
    ip_a = ctx.session.ip
    for _ in range(fails):
        yield Req("POST", "/api/v2/auth/login", json={"username": victim.email, "password": rng.choice(wl.COMMON_PASSWORDS)}, wait=ctx.gap(0.5, 3), ip=ip_a)
    r = yield Req("POST", "/api/v2/auth/login", json={"username": victim.email, "password": victim.password}, wait=ctx.gap(0.5, 3), ip=ip_a)
    if r.status != 200:
        return
    ip_b = ctx.new_ip()
    ua_b = rng.choice(wl.BROWSER_UAS)
    r = yield Req("POST", "/api/v2/auth/login", json={"username": victim.email, "password": victim.password}, wait=ctx.gap(300, 1800), ip=ip_b, ua=ua_b)
    tok = (r.json() or {}).get("access_token") if r.status == 200 else None
    if not tok:
        return
    h = bearer(tok)
    yield Req("GET", "/api/v2/users/me", headers=h, wait=ctx.gap(1, 4), ip=ip_b, ua=ua_b)
    r = yield Req("GET", "/api/v2/accounts", headers=h, wait=ctx.gap(1, 4), ip=ip_b, ua=ua_b)
    accts = r.json() if r.status == 200 else None
    if isinstance(accts, list):
        for a in accts:
            yield Req("GET", f"/api/v2/accounts/{a['id']}/transactions", headers=h, wait=ctx.gap(1, 4), ip=ip_b, ua=ua_b)
    yield Req("GET", "/api/v2/payments", headers=h, wait=ctx.gap(1, 4), ip=ip_b, ua=ua_b)
    yield Req("GET", "/api/v2/orders", params=[("sort", "created_at")], headers=h, wait=ctx.gap(1, 4), ip=ip_b, ua=ua_b)
    yield Req("PATCH", "/api/v2/users/me", headers=h, json={"phone": f"+1-555-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
                                                          "address": "1 Dropbox Way", "city": "Reno", "postcode": "89501"},
              wait=ctx.gap(5, 20), ip=ip_b, ua=ua_b)


def bola(ctx: Ctx) -> SessionGen:
    """An authenticated customer walks other customers' order and account
    ids, and rewrites a few orders' shipping address."""
    rng = ctx.rng
    own = yield from _own_account(ctx)
    if own is None:
        return
    h = bearer(own[0])
    n = ctx.scale(140, 10)
    ctx.expect(n + 3)
    r = yield Req("GET", "/api/v2/orders", params=[("sort", "created_at")], headers=h, wait=ctx.gap(1, 3))
    yield Req("GET", "/api/v2/accounts", headers=h, wait=ctx.gap(1, 3))
    orders = ctx.walk(rng.randint(1, 600), n)
    accounts = ctx.walk(rng.randint(1, 600), n)
    for k in range(n):
        if rng.random() < 0.6:
            yield Req("GET", f"/api/v2/orders/{orders[k]}", headers=h, wait=ctx.gap(0.05, 0.8))
        elif rng.random() < 0.85:
            yield Req("GET", f"/api/v2/accounts/{accounts[k]}", headers=h, wait=ctx.gap(0.05, 0.8))
        else:
            yield Req("PUT", f"/api/v2/orders/{orders[k]}", headers=h, json={"shipping_address": "77 Mule St, Reno, NV 89501"}, wait=ctx.gap(0.05, 0.8))


def bfla(ctx: Ctx) -> SessionGen:
    """A normal customer calls the admin API: lists users, reads stats,
    disables accounts, tries the export tool."""
    rng = ctx.rng
    own = yield from _own_account(ctx)
    if own is None:
        return
    h = bearer(own[0])
    ctx.expect(ctx.scale(14, 6))
    yield Req("GET", "/api/v2/admin/stats", headers=h, wait=ctx.gap(1, 5))
    for page in range(1, ctx.scale(6, 2) + 1):
        yield Req("GET", "/api/v2/admin/users", params=[("page", str(page)), ("limit", "200")], headers=h, wait=ctx.gap(0.5, 3))
    reserve = ctx.world.reserve[len(ctx.world.reserve) // 2:] or ctx.world.reserve
    for victim in rng.sample(reserve, min(len(reserve), ctx.scale(3, 1))):
        yield Req("POST", f"/api/v2/admin/users/{victim.index + 1}/disable", headers=h, wait=ctx.gap(1, 5))
    yield Req("GET", "/api/v2/users/export", headers=h, wait=ctx.gap(1, 5))


def mass_assignment(ctx: Ctx) -> SessionGen:
    """Privilege escalation by over-posting: ``role``/``is_admin`` at
    sign-up and on the profile, ``balance`` on the account, then checks."""
    atk = ctx.session.attack
    p = person(int(ctx.session.params.get("n", 0)), tag="attacker")
    ctx.expect(10)
    yield Req("POST", "/api/v2/auth/signup", json={"email": p.email, "password": p.password, "full_name": p.full_name, "role": "admin", "is_admin": True}, wait=0)
    r = yield Req("POST", "/api/v2/auth/login", json={"username": p.email, "password": p.password}, wait=ctx.gap(1, 4))
    tok = (r.json() or {}).get("access_token") if r.status == 200 else None
    if not tok:
        return
    if atk is not None:
        atk.add_user(p.email.split("@")[0].replace("+", "."))
    h = bearer(tok)
    yield Req("GET", "/api/v2/users/me", headers=h, wait=ctx.gap(1, 4))
    yield Req("PATCH", "/api/v2/users/me", headers=h, json={"full_name": p.full_name, "role": "admin", "is_admin": True}, wait=ctx.gap(2, 8))
    yield Req("GET", "/api/v2/users/me", headers=h, wait=ctx.gap(1, 4))
    r = yield Req("GET", "/api/v2/accounts", headers=h, wait=ctx.gap(1, 4))
    accts = r.json() if r.status == 200 else None
    if isinstance(accts, list) and accts:
        aid = accts[0]["id"]
        yield Req("PATCH", f"/api/v2/accounts/{aid}", headers=h, json={"nickname": "main", "balance": 1000000}, wait=ctx.gap(2, 8))
        yield Req("GET", f"/api/v2/accounts/{aid}", headers=h, wait=ctx.gap(1, 4))
    yield Req("PATCH", "/api/v2/users/me", headers=h, json={"balance": 250000}, wait=ctx.gap(2, 8))
    yield Req("GET", "/api/v2/admin/users", headers=h, wait=ctx.gap(1, 4))


def scraping(ctx: Ctx) -> SessionGen:
    """Harvest the whole catalogue with oversized pages, every product
    detail, then every public user profile with an account of its own."""
    rng = ctx.rng
    ua = ctx.session.ua
    n = ctx.scale(260, 20)
    ctx.expect(n)
    sent = 0
    page = 1
    while sent < n // 8:
        yield Req("GET", "/api/v2/products", params=[("page", str(page)), ("limit", "100")], wait=ctx.gap(0.1, 0.6), ua=ua)
        sent += 1
        page = page + 1 if page < 3 else 1
    pid = 1
    while sent < n // 2:
        yield Req("GET", f"/api/v2/products/{pid}", wait=ctx.gap(0.1, 0.6), ua=ua)
        sent += 1
        pid = pid % ctx.world.products + 1
    own = yield from _own_account(ctx, wait=ctx.gap(1, 5))
    if own is None:
        return
    h = bearer(own[0])
    for uid in ctx.walk(rng.randint(1, 20), max(0, n - sent)):
        yield Req("GET", f"/api/v2/users/{uid}", headers=h, wait=ctx.gap(0.1, 0.6), ua=ua)


def sqli(ctx: Ctx) -> SessionGen:
    """sqlmap against the product search: boolean, error, union, stacked
    and time-based probes, then dumping the users table via UNION."""
    rng = ctx.rng
    ua = ctx.session.ua
    payloads = list(wl.SQLI_PAYLOADS)
    n = ctx.scale(len(payloads) * 2, 8)
    ctx.expect(n + 1)
    yield Req("GET", "/api/v2/products/search", params=[("q", "lamp")], wait=0, ua=ua)
    for k in range(n):
        base = payloads[k % len(payloads)]
        q = base if k < len(payloads) else rng.choice(wl.SEARCH_TERMS) + base
        yield Req("GET", "/api/v2/products/search", params=[("q", q)], wait=ctx.gap(0.05, 0.4), ua=ua)


def fake_accounts(ctx: Ctx) -> SessionGen:
    """A sign-up bot: a burst of accounts with patterned addresses on a
    throwaway domain, one password, from a few addresses; each logs in."""
    rng = ctx.rng
    atk = ctx.session.attack
    n = ctx.scale(40, 5)
    ctx.expect(2 * n)
    ips = [ctx.session.ip] + [ctx.new_ip() for _ in range(2)]
    stem = rng.choice(("promo", "user", "deal", "bonus", "acct"))
    domain = rng.choice(("tempmail.test", "mailbox.example", "dropmail.test"))
    pw = "Qwerty123!"
    base = rng.randint(1000, 9000)
    for k in range(n):
        ip = ips[k % len(ips)]
        email = f"{stem}{base + k}@{domain}"
        first = rng.choice(wl.FIRST_NAMES)
        r = yield Req("POST", "/api/v2/auth/signup", json={"email": email, "password": pw, "full_name": f"{first} {rng.choice(wl.LAST_NAMES)}"},
                      wait=ctx.gap(0.3, 2.5), ip=ip)
        if r.status == 201:
            if atk is not None:
                atk.add_user((r.json() or {}).get("username", ""))
            yield Req("POST", "/api/v2/auth/login", json={"username": email, "password": pw}, wait=ctx.gap(0.2, 1.0), ip=ip)


def token_misuse(ctx: Ctx) -> SessionGen:
    """Forged ``alg: none`` tokens (as admin, as another user), a tampered
    signed token, an expired token replayed, and a token stolen from a
    customer used from the attacker's address."""
    rng = ctx.rng
    atk = ctx.session.attack
    ctx.expect(16)
    own = yield from _own_account(ctx)
    if own is None:
        return
    tok, uid, _ = own
    t0 = int(ctx.now)
    admin_claims = {"sub": ctx.world.admins[0].username if ctx.world.admins else "admin", "uid": 1, "role": "admin", "iat": t0, "exp": t0 + 3600}
    forged = jwt_encode(admin_claims, alg="none")
    yield Req("GET", "/api/v2/users/me", headers=bearer(forged), wait=ctx.gap(5, 30))
    yield Req("GET", "/api/v2/admin/users", headers=bearer(forged), wait=ctx.gap(1, 5))
    victim = rng.choice(ctx.world.benign or ctx.world.reserve)
    forged_v = jwt_encode({"sub": victim.username, "uid": victim.index + 1, "role": "user", "iat": t0, "exp": t0 + 3600}, alg="none")
    yield Req("GET", "/api/v2/accounts", headers=bearer(forged_v), wait=ctx.gap(1, 5))
    # tampered payload, original signature
    head, _, sig = tok.split(".")
    body = jwt_encode({"sub": "x", "uid": 1, "role": "admin", "iat": t0, "exp": t0 + 3600}, secret="wrong").split(".")[1]
    yield Req("GET", "/api/v2/admin/stats", headers=bearer(f"{head}.{body}.{sig}"), wait=ctx.gap(1, 5))
    # a token stolen from a customer (issued within the hour, elsewhere)
    loot = [(u, t) for u, t in sorted(ctx.world.tokens.items()) if ctx.now - t[1] < TOKEN_TTL * 0.8 and t[2] != ctx.session.ip]
    if loot:
        user, (stolen, _, _) = rng.choice(loot)
        if atk is not None:
            atk.add_user(user)
        ip = ctx.new_ip()
        for path in ("/api/v2/users/me", "/api/v2/accounts", "/api/v2/payments"):
            yield Req("GET", path, headers=bearer(stolen), wait=ctx.gap(2, 10), ip=ip)
    # the attacker's own token, replayed long after it expired
    yield Req("GET", "/api/v2/users/me", headers=bearer(tok), wait=TOKEN_TTL * 2 + ctx.gap(60, 600))
    yield Req("GET", "/api/v2/orders", params=[("sort", "created_at")], headers=bearer(tok), wait=ctx.gap(1, 5))


def data_exposure(ctx: Ctx) -> SessionGen:
    """Harvest over-exposed PII: full user records by id, the undocumented
    export and debug endpoints, and the unauthenticated v1 zombie."""
    rng = ctx.rng
    own = yield from _own_account(ctx)
    if own is None:
        return
    h = bearer(own[0])
    n = ctx.scale(120, 10)
    ctx.expect(n + 3)
    yield Req("GET", "/api/v2/internal/debug", wait=ctx.gap(1, 5))
    yield Req("GET", "/api/v2/users/export", params=[("limit", "100000")], headers=h, wait=ctx.gap(1, 5))
    for k, uid in enumerate(ctx.walk(rng.randint(1, 50), n)):
        if k % 2:
            yield Req("GET", f"/api/v1/users/{uid}", wait=ctx.gap(0.1, 0.8))
        else:
            yield Req("GET", f"/api/v2/users/{uid}", headers=h, wait=ctx.gap(0.1, 0.8))


ATTACK_CLASSES: tuple[str, ...] = (
    "recon", "credential_stuffing", "password_spraying", "account_takeover", "bola", "bfla",
    "mass_assignment", "scraping", "sqli", "fake_accounts", "token_misuse", "data_exposure",
)

PLAYBOOKS: dict[str, Callable[[Ctx], SessionGen]] = {name: globals()[name] for name in ATTACK_CLASSES}

# What each attacker looks like on the wire by default (agent family).
UA_FAMILY: dict[str, tuple[str, ...]] = {
    "recon": wl.SCANNER_UAS[1:],
    "sqli": wl.SCANNER_UAS[:1],
    "scraping": wl.SCRIPT_UAS,
    "password_spraying": wl.SCRIPT_UAS,
    "fake_accounts": wl.SCRIPT_UAS,
    "data_exposure": wl.SCRIPT_UAS,
}


def parse_attack(name: str) -> tuple[str, bool]:
    """``"bola_slow"`` -> ``("bola", True)``; raises ``ValueError`` on an
    unknown class."""
    slow = name.endswith("_slow")
    base = name[: -len("_slow")] if slow else name
    if name == "low_and_slow":
        raise ValueError("use <attack>_slow, e.g. bola_slow")
    if base not in PLAYBOOKS:
        raise ValueError(f"unknown attack {name!r}; known: {', '.join(ATTACK_CLASSES)} (add _slow for low-and-slow)")
    return base, slow

