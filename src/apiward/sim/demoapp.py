"""DemoBank: a small bank-and-shop API with deliberate, switchable holes.

The demo gives apiward realistic traffic to discover and attack. Services (by
path): auth, users, accounts, catalog (products), orders, payments, support,
admin, plus a deprecated ``/api/v1`` zombie. Storage is one SQLite file.

``vulnerable=True`` (default) contains, on purpose:

- BOLA: ``GET/PUT /api/v2/orders/{id}``, ``GET/PATCH /api/v2/accounts/{id}``
  (and its transactions, tickets) serve any user's object.
- BFLA: ``/api/v2/admin/*`` only checks that a token is present.
- Mass assignment: ``PATCH /api/v2/users/me`` writes any column (``role``,
  ``is_admin``) and ``balance``; ``PATCH /api/v2/accounts/{id}`` writes
  ``balance``; sign-up accepts ``role``.
- Excessive data exposure: user records with ``password_hash``, ``ssn`` and
  full card numbers (``/users/me``, ``/users/{id}``, payments).
- PII and stack traces in errors: ``GET /api/v2/orders?sort=<bad>`` answers
  500 with the traceback, the failing SQL and the caller's e-mail.
- SQL injection: ``GET /api/v2/products/search?q=`` concatenates ``q``.
- Login without rate limit and with a user-enumeration oracle
  (404 "no such user" vs 401 "wrong password").
- Weak JWT handling: ``alg: none`` and expired tokens are accepted.
- Shadow endpoints missing from the spec: ``/api/v2/internal/debug`` and
  ``/api/v2/users/export``.
- A zombie ``/api/v1`` (deprecated in the spec) serving users and orders
  without authentication.

``vulnerable=False`` closes each hole (owner checks, role checks, strict
bodies, masked PII, generic errors, parameterised SQL, lockout, strict JWT,
no debug endpoint, export admin-only and documented, v1 answers 410).

``version=3`` adds a ``loyalty_tier``/``preferred_language`` field and
``GET /api/v2/rewards``; :func:`set_version` switches a running app, to
"deploy a change mid-stream".

Time: when ``trust_sim_clock`` is on (default), the ``x-apiward-sim-ts``
header is the server's "now" (token issue/expiry, created_at, lockout
windows), so simulated traffic in virtual time is reproducible.

Run: ``python -m apiward.sim.demoapp --port 8000 --db demo.sqlite [--fixed]``.
"""

# No ``from __future__ import annotations`` here: FastAPI resolves handler
# annotations at definition time and the body models are built per app.

import argparse
import base64
import hashlib
import hmac
import random
import sqlite3
import threading
import time
import traceback
from collections import defaultdict, deque
from typing import Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from apiward.sim import wordlists as wl
from apiward.sim.population import POPULATION_SEED, population

__all__ = ["create_app", "demo_spec", "set_version", "jwt_encode", "jwt_decode", "DEMO_SECRET", "main"]

DEMO_SECRET = "demobank-hs256-secret-change-me"
TOKEN_TTL = 3600.0
SEED_EPOCH = 1_735_689_600.0  # 2025-01-01T00:00:00Z, seeded history lies before it
PBKDF2_ROUNDS = 1000  # deliberately low: the demo must seed and log in fast
V3_PATHS = ("/api/v2/rewards",)
V3_FIELDS = ("loyalty_tier", "preferred_language")

SIM_TS_HEADER = "x-apiward-sim-ts"


# --- JWT (HS256 and the "none" algorithm, which only the vulnerable mode takes)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_encode(claims: dict[str, Any], secret: str = DEMO_SECRET, alg: str = "HS256") -> str:
    """A compact JWT. ``alg="none"`` gives an unsigned token (what attackers forge)."""
    head = _b64(orjson.dumps({"alg": alg, "typ": "JWT"}))
    body = _b64(orjson.dumps(claims))
    if alg == "none":
        return f"{head}.{body}."
    sig = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def jwt_decode(token: str, secret: str, *, now: float, strict: bool) -> dict[str, Any] | None:
    """Claims of a valid token, else ``None``. ``strict=False`` is the
    vulnerable behaviour: ``alg: none`` passes unsigned, ``exp`` is ignored."""
    try:
        head_s, body_s, sig_s = token.split(".")
        header = orjson.loads(_unb64(head_s))
        claims = orjson.loads(_unb64(body_s))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    alg = str(header.get("alg", ""))
    if alg.lower() == "none":
        return None if strict else claims
    if alg != "HS256":
        return None
    want = hmac.new(secret.encode(), f"{head_s}.{body_s}".encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(want, _unb64(sig_s)):
            return None
    except ValueError:
        return None
    if strict:
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp < now:
            return None
    return claims


def hash_password(password: str, salt: str) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), PBKDF2_ROUNDS).hex()
    return f"pbkdf2_sha256${PBKDF2_ROUNDS}${salt}${digest}"


def _check_password(password: str, stored: str) -> bool:
    try:
        _, rounds, salt, digest = stored.split("$")
    except ValueError:
        return False
    got = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(rounds)).hex()
    return hmac.compare_digest(got, digest)


# --- storage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL, email TEXT UNIQUE NOT NULL,
  password_hash TEXT NOT NULL, full_name TEXT, phone TEXT, address TEXT, city TEXT, state TEXT,
  postcode TEXT, dob TEXT, ssn TEXT, card_number TEXT, card_exp TEXT, role TEXT DEFAULT 'user',
  is_admin INTEGER DEFAULT 0, disabled INTEGER DEFAULT 0, loyalty_tier TEXT DEFAULT 'bronze',
  preferred_language TEXT DEFAULT 'en', created_at REAL);
CREATE TABLE IF NOT EXISTS accounts (
  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, number TEXT, routing TEXT, kind TEXT,
  nickname TEXT, balance REAL, currency TEXT DEFAULT 'USD', created_at REAL);
CREATE TABLE IF NOT EXISTS products (
  id INTEGER PRIMARY KEY, name TEXT, category TEXT, price REAL, stock INTEGER, description TEXT);
CREATE TABLE IF NOT EXISTS orders (
  id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, status TEXT, total REAL, items TEXT,
  shipping_address TEXT, created_at REAL);
CREATE TABLE IF NOT EXISTS payments (
  id INTEGER PRIMARY KEY, user_id INTEGER, order_id INTEGER, account_id INTEGER, amount REAL,
  card_number TEXT, status TEXT, created_at REAL);
CREATE TABLE IF NOT EXISTS tickets (
  id INTEGER PRIMARY KEY, user_id INTEGER, subject TEXT, message TEXT, status TEXT, created_at REAL);
CREATE INDEX IF NOT EXISTS orders_user ON orders(user_id);
CREATE INDEX IF NOT EXISTS accounts_user ON accounts(user_id);
CREATE INDEX IF NOT EXISTS payments_user ON payments(user_id);
CREATE INDEX IF NOT EXISTS tickets_user ON tickets(user_id);
"""


class SQLFailure(Exception):
    """A failed statement, carrying the SQL the vulnerable mode leaks."""

    def __init__(self, sql: str, error: BaseException, trace: str) -> None:
        super().__init__(f"{type(error).__module__}.{type(error).__name__}: {error}")
        self.sql = sql
        self.trace = trace


class Store:
    """One SQLite connection shared by the app (handlers are ``async def``
    and run on the event loop thread; the lock guards any other caller)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        if path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.executescript(_SCHEMA)
        self.lock = threading.Lock()
        self.recent: deque[str] = deque(maxlen=8)

    def all(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self.lock:
            self.recent.append(sql)
            try:
                return [dict(r) for r in self.conn.execute(sql, params).fetchall()]
            except sqlite3.Error as exc:
                raise SQLFailure(sql, exc, traceback.format_exc()) from exc

    def one(self, sql: str, params: tuple = ()) -> dict[str, Any] | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def run(self, sql: str, params: tuple = ()) -> int:
        """Execute a write; returns lastrowid."""
        with self.lock:
            self.recent.append(sql)
            try:
                return self.conn.execute(sql, params).lastrowid or 0
            except sqlite3.Error as exc:
                raise SQLFailure(sql, exc, traceback.format_exc()) from exc

    def close(self) -> None:
        self.conn.close()


def seed(store: Store, n_users: int, population_seed: int = POPULATION_SEED, n_products: int = 120) -> None:
    """Fill an empty database: products, the population as users (ids 1..n),
    their accounts, past orders, payments and tickets. Deterministic."""
    if n_users <= 0 or store.one("SELECT id FROM users LIMIT 1"):
        return
    rng = random.Random(f"seed:{population_seed}")
    c = store.conn
    c.execute("BEGIN")
    for i in range(1, n_products + 1):
        adj = rng.choice(wl.PRODUCT_ADJECTIVES)
        noun, cat = rng.choice(wl.PRODUCT_NOUNS)
        c.execute(
            "INSERT INTO products (id, name, category, price, stock, description) VALUES (?,?,?,?,?,?)",
            (i, f"{adj} {noun}", cat, round(rng.uniform(4, 400), 2), rng.randint(0, 500), f"The {adj.lower()} {noun.lower()} everyone talks about."),
        )
    for p in population(n_users, population_seed):
        created = SEED_EPOCH - rng.uniform(30, 900) * 86400
        uid = p.index + 1
        c.execute(
            "INSERT INTO users (id, username, email, password_hash, full_name, phone, address, city, state, postcode,"
            " dob, ssn, card_number, card_exp, role, is_admin, loyalty_tier, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (uid, p.username, p.email, hash_password(p.password, f"s{uid:06d}"), p.full_name, p.phone, p.address, p.city,
             p.state, p.postcode, p.dob, p.ssn, p.card_number, p.card_exp, p.role, int(p.role == "admin"),
             rng.choice(("bronze", "bronze", "silver", "gold")), created),
        )
        for kind in ("checking",) + (("savings",) if rng.random() < 0.5 else ()):
            c.execute(
                "INSERT INTO accounts (user_id, number, routing, kind, nickname, balance, created_at) VALUES (?,?,?,?,?,?,?)",
                (uid, f"{rng.randint(10**9, 10**10 - 1)}", "021000021", kind, f"My {kind}", round(rng.uniform(200, 25000), 2), created),
            )
        for _ in range(rng.randint(0, 4)):
            pid = rng.randint(1, n_products)
            qty = rng.randint(1, 3)
            price = c.execute("SELECT price FROM products WHERE id=?", (pid,)).fetchone()[0]
            ts = created + rng.uniform(1, 25) * 86400
            oid = c.execute(
                "INSERT INTO orders (user_id, status, total, items, shipping_address, created_at) VALUES (?,?,?,?,?,?)",
                (uid, rng.choice(("delivered", "delivered", "shipped", "cancelled")), round(price * qty, 2),
                 orjson.dumps([{"product_id": pid, "quantity": qty}]).decode(), f"{p.address}, {p.city}, {p.state} {p.postcode}", ts),
            ).lastrowid
            c.execute(
                "INSERT INTO payments (user_id, order_id, account_id, amount, card_number, status, created_at) VALUES (?,?,?,?,?,?,?)",
                (uid, oid, None, round(price * qty, 2), p.card_number, "settled", ts),
            )
        if rng.random() < 0.2:
            c.execute(
                "INSERT INTO tickets (user_id, subject, message, status, created_at) VALUES (?,?,?,?,?)",
                (uid, rng.choice(wl.TICKET_SUBJECTS), f"Hello, this is {p.full_name}. Please call me at {p.phone}.", "closed", created + 86400),
            )
    c.execute("COMMIT")


# --- request and response models (documented shapes; the vulnerable mode
# also accepts undeclared fields, which is the mass-assignment hole)


def _models(vulnerable: bool) -> dict[str, type[BaseModel]]:
    extra = "allow" if vulnerable else "forbid"

    class Signup(BaseModel):
        model_config = ConfigDict(extra=extra)
        email: str = Field(max_length=200)
        password: str = Field(min_length=1 if vulnerable else 8, max_length=200)
        full_name: str = Field(max_length=200)
        phone: str | None = None

    class Login(BaseModel):
        model_config = ConfigDict(extra=extra)
        username: str = Field(description="username or e-mail", max_length=200)
        password: str = Field(max_length=200)

    class ProfilePatch(BaseModel):
        model_config = ConfigDict(extra=extra)
        full_name: str | None = None
        phone: str | None = None
        address: str | None = None
        city: str | None = None
        postcode: str | None = None
        preferred_language: str | None = Field(None, description="since v3")

    class AccountPatch(BaseModel):
        model_config = ConfigDict(extra=extra)
        nickname: str | None = Field(None, max_length=80)

    class OrderItem(BaseModel):
        product_id: int
        quantity: int = Field(1, ge=1, le=100)

    class OrderIn(BaseModel):
        model_config = ConfigDict(extra=extra)
        items: list[OrderItem]
        shipping_address: str | None = None

    class OrderUpdate(BaseModel):
        model_config = ConfigDict(extra=extra)
        shipping_address: str | None = None
        status: str | None = Field(None, description="only 'cancelled' may be set by customers")

    class PaymentIn(BaseModel):
        model_config = ConfigDict(extra=extra)
        order_id: int
        account_id: int
        amount: float = Field(gt=0)

    class TicketIn(BaseModel):
        model_config = ConfigDict(extra=extra)
        subject: str = Field(max_length=200)
        message: str = Field(max_length=5000)

    class PublicUser(BaseModel):
        id: int
        username: str
        full_name: str
        city: str

    return {k: v for k, v in locals().items() if isinstance(v, type) and issubclass(v, BaseModel)}


_PROFILE_FIELDS = ("id", "username", "email", "full_name", "phone", "address", "city", "state", "postcode", "role", "created_at")


def _mask_user(row: dict[str, Any], version: int) -> dict[str, Any]:
    out = {k: row.get(k) for k in _PROFILE_FIELDS}
    ssn = row.get("ssn") or ""
    card = row.get("card_number") or ""
    out["ssn"] = f"***-**-{ssn[-4:]}" if ssn else None
    out["card"] = f"**** **** **** {card[-4:]}" if card else None
    if version >= 3:
        out["loyalty_tier"] = row.get("loyalty_tier")
        out["preferred_language"] = row.get("preferred_language")
    return out


def _full_user(row: dict[str, Any], version: int) -> dict[str, Any]:
    out = dict(row)
    if version < 3:
        for f in V3_FIELDS:
            out.pop(f, None)
    return out


def _public_user(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "username": row["username"], "full_name": row["full_name"], "city": row["city"]}


def _mask_payment(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    card = out.pop("card_number", None) or ""
    out["card_last4"] = card[-4:] if card else None
    return out


def client_ip(request: Request) -> str:
    xff = request.headers.get("x-forwarded-for")
    if xff:
        return xff.split(",")[0].strip()
    return request.client.host if request.client else ""


# --- the app


def create_app(
    db_path: str,
    *,
    vulnerable: bool = True,
    version: int = 2,
    seed_users: int = 500,
    population_seed: int = POPULATION_SEED,
    secret: str = DEMO_SECRET,
    trust_sim_clock: bool = True,
) -> FastAPI:
    """The DemoBank FastAPI app on SQLite file ``db_path`` (``":memory:"``
    works), seeded with ``seed_users`` people of the population on first use.
    See the module docstring for the holes ``vulnerable`` switches."""
    store = Store(db_path)
    seed(store, seed_users, population_seed)
    M = _models(vulnerable)
    app = FastAPI(
        title="DemoBank API",
        version=f"{version}.0.0",
        description="Accounts, shop, payments and support for DemoBank customers.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.store = store
    app.state.version = version
    app.state.vulnerable = vulnerable
    failures: dict[str, deque[float]] = defaultdict(deque)
    bearer = HTTPBearer(auto_error=False)
    mode = "vulnerable" if vulnerable else "fixed"

    def now(request: Request) -> float:
        if trust_sim_clock:
            ts = request.headers.get(SIM_TS_HEADER)
            if ts:
                try:
                    return float(ts)
                except ValueError:
                    pass
        return time.time()

    def issue_token(user: dict[str, Any], at: float) -> str:
        iat = int(at)
        jti = hashlib.sha256(f"{secret}:{user['id']}:{at}".encode()).hexdigest()[:16]
        claims = {"sub": user["username"], "uid": user["id"], "role": user["role"], "iat": iat, "exp": iat + int(TOKEN_TTL), "jti": jti}
        return jwt_encode(claims, secret)

    async def current_user(request: Request, cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict[str, Any]:
        if cred is None:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        claims = jwt_decode(cred.credentials, secret, now=now(request), strict=not vulnerable)
        if claims is None:
            raise HTTPException(401, "invalid or expired token", headers={"WWW-Authenticate": "Bearer"})
        uid = claims.get("uid")
        row = store.one("SELECT * FROM users WHERE id=?", (uid,)) if isinstance(uid, int) else None
        if row is None:
            row = store.one("SELECT * FROM users WHERE username=?", (str(claims.get("sub", "")),))
        if row is None:
            raise HTTPException(401, "unknown subject")
        if row["disabled"]:
            raise HTTPException(403, "account disabled")
        return row

    async def admin_user(user: dict[str, Any] = Depends(current_user)) -> dict[str, Any]:
        if not vulnerable and user["role"] != "admin":
            raise HTTPException(403, "admin role required")
        return user

    def own_or_404(row: dict[str, Any] | None, user: dict[str, Any], what: str) -> dict[str, Any]:
        if row is None or (not vulnerable and row["user_id"] != user["id"]):
            raise HTTPException(404, f"{what} not found")
        return row

    def show_user(row: dict[str, Any]) -> dict[str, Any]:
        return _full_user(row, app.state.version) if vulnerable else _mask_user(row, app.state.version)

    @app.exception_handler(SQLFailure)
    async def _sql_failure(request: Request, exc: SQLFailure) -> JSONResponse:
        if vulnerable:
            return JSONResponse(
                {"error": str(exc), "query": exc.sql, "trace": exc.trace, "path": request.url.path},
                status_code=500,
            )
        return JSONResponse({"error": "internal server error", "request_id": request.headers.get("x-request-id", "")}, status_code=500)

    @app.get("/health", tags=["meta"])
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": app.state.version, "mode": mode}

    # ---- auth
    auth = APIRouter(prefix="/api/v2/auth", tags=["auth"])

    async def do_login(request: Request, username: str, password: str) -> dict[str, Any]:
        t = now(request)
        ip = client_ip(request)
        row = store.one("SELECT * FROM users WHERE username=? OR email=?", (username, username))
        if not vulnerable:
            for key in (f"u:{username.lower()}", f"ip:{ip}"):
                q = failures[key]
                while q and q[0] < t - 900:
                    q.popleft()
                if len(q) >= (5 if key.startswith("u:") else 20):
                    raise HTTPException(429, "too many failed attempts, try again later", headers={"Retry-After": "900"})
        if row is None or not _check_password(password, row["password_hash"]):
            if not vulnerable:
                failures[f"u:{username.lower()}"].append(t)
                failures[f"ip:{ip}"].append(t)
                raise HTTPException(401, "invalid credentials")
            if row is None:
                raise HTTPException(404, "no such user")
            raise HTTPException(401, "wrong password")
        if row["disabled"]:
            raise HTTPException(403, "account disabled")
        return {"access_token": issue_token(row, t), "token_type": "bearer", "expires_in": int(TOKEN_TTL), "user_id": row["id"]}

    @auth.post("/signup", status_code=201)
    async def signup(body: M["Signup"], request: Request) -> dict[str, Any]:  # type: ignore[valid-type]
        data = body.model_dump(exclude_unset=True)
        email = data["email"].strip().lower()
        if "@" not in email:
            raise HTTPException(422, "invalid e-mail")
        if store.one("SELECT id FROM users WHERE email=?", (email,)):
            raise HTTPException(409, "email already registered")
        base = email.split("@")[0].replace("+", ".")
        username = base
        n = 1
        while store.one("SELECT id FROM users WHERE username=?", (username,)):
            n += 1
            username = f"{base}{n}"
        t = now(request)
        role = str(data.get("role", "user")) if vulnerable else "user"
        uid = store.run(
            "INSERT INTO users (username, email, password_hash, full_name, phone, role, is_admin, created_at) VALUES (?,?,?,?,?,?,?,?)",
            (username, email, hash_password(data["password"], hashlib.sha256(email.encode()).hexdigest()[:8]),
             data["full_name"], data.get("phone"), role, int(role == "admin" or bool(vulnerable and data.get("is_admin"))), t),
        )
        balance = float(data.get("balance", 0.0)) if vulnerable and isinstance(data.get("balance"), (int, float)) else 0.0
        store.run(
            "INSERT INTO accounts (user_id, number, routing, kind, nickname, balance, created_at) VALUES (?,?,?,?,?,?,?)",
            (uid, f"{4000000000 + uid}", "021000021", "checking", "My checking", balance, t),
        )
        return {"id": uid, "username": username, "email": email, "role": role}

    @auth.post("/login")
    async def login(body: M["Login"], request: Request) -> dict[str, Any]:  # type: ignore[valid-type]
        return await do_login(request, body.username, body.password)

    @auth.post("/logout", status_code=204)
    async def logout(user: dict = Depends(current_user)) -> Response:
        return Response(status_code=204)

    app.include_router(auth)

    # ---- users
    users = APIRouter(prefix="/api/v2/users", tags=["users"])

    @users.get("/me")
    async def me(user: dict = Depends(current_user)) -> dict[str, Any]:
        return show_user(user)

    @users.patch("/me")
    async def patch_me(body: M["ProfilePatch"], user: dict = Depends(current_user)) -> dict[str, Any]:  # type: ignore[valid-type]
        data = body.model_dump(exclude_unset=True)
        if app.state.version < 3 and "preferred_language" in data and not vulnerable:
            raise HTTPException(422, "unknown field preferred_language")
        balance = data.pop("balance", None)
        cols = {c for c in user if c != "id"}
        sets = {k: v for k, v in data.items() if k in cols and isinstance(v, (str, int, float, bool, type(None)))}
        if sets:
            store.run(f"UPDATE users SET {', '.join(f'{k}=?' for k in sets)} WHERE id=?", (*sets.values(), user["id"]))
        if vulnerable and isinstance(balance, (int, float)):
            store.run("UPDATE accounts SET balance=? WHERE id=(SELECT MIN(id) FROM accounts WHERE user_id=?)", (balance, user["id"]))
        return show_user(store.one("SELECT * FROM users WHERE id=?", (user["id"],)) or user)

    @users.get("/export", include_in_schema=not vulnerable)
    async def export_users(
        limit: int = Query(1000, ge=1, le=100000), offset: int = Query(0, ge=0), user: dict = Depends(admin_user)
    ) -> dict[str, Any]:
        rows = store.all("SELECT * FROM users ORDER BY id LIMIT ? OFFSET ?", (limit, offset))
        return {"count": len(rows), "users": [show_user(r) for r in rows]}

    @users.get("/{user_id}", responses={200: {"model": M["PublicUser"]}})
    async def get_user(user_id: int, user: dict = Depends(current_user)) -> dict[str, Any]:
        row = store.one("SELECT * FROM users WHERE id=?", (user_id,))
        if row is None:
            raise HTTPException(404, "user not found")
        return _full_user(row, app.state.version) if vulnerable else _public_user(row)

    app.include_router(users)

    # ---- accounts
    accounts = APIRouter(prefix="/api/v2/accounts", tags=["accounts"])

    @accounts.get("")
    async def list_accounts(user: dict = Depends(current_user)) -> list[dict[str, Any]]:
        return store.all("SELECT * FROM accounts WHERE user_id=? ORDER BY id", (user["id"],))

    @accounts.get("/{account_id}")
    async def get_account(account_id: int, user: dict = Depends(current_user)) -> dict[str, Any]:
        return own_or_404(store.one("SELECT * FROM accounts WHERE id=?", (account_id,)), user, "account")

    @accounts.patch("/{account_id}")
    async def patch_account(account_id: int, body: M["AccountPatch"], user: dict = Depends(current_user)) -> dict[str, Any]:  # type: ignore[valid-type]
        row = own_or_404(store.one("SELECT * FROM accounts WHERE id=?", (account_id,)), user, "account")
        data = body.model_dump(exclude_unset=True)
        allowed = {"nickname", "balance", "kind", "currency", "user_id"} if vulnerable else {"nickname"}
        sets = {k: v for k, v in data.items() if k in allowed and isinstance(v, (str, int, float, type(None)))}
        if sets:
            store.run(f"UPDATE accounts SET {', '.join(f'{k}=?' for k in sets)} WHERE id=?", (*sets.values(), row["id"]))
        return store.one("SELECT * FROM accounts WHERE id=?", (row["id"],)) or row

    @accounts.get("/{account_id}/transactions")
    async def account_transactions(account_id: int, user: dict = Depends(current_user)) -> list[dict[str, Any]]:
        own_or_404(store.one("SELECT * FROM accounts WHERE id=?", (account_id,)), user, "account")
        rows = store.all("SELECT * FROM payments WHERE account_id=? ORDER BY id DESC LIMIT 50", (account_id,))
        return rows if vulnerable else [_mask_payment(r) for r in rows]

    app.include_router(accounts)

    # ---- catalog
    catalog = APIRouter(prefix="/api/v2/products", tags=["catalog"])

    @catalog.get("")
    async def list_products(
        page: int = Query(1, ge=1), limit: int = Query(20, ge=1, le=10000 if vulnerable else 50), category: str | None = None
    ) -> dict[str, Any]:
        if category:
            rows = store.all("SELECT * FROM products WHERE category=? ORDER BY id LIMIT ? OFFSET ?", (category, limit, (page - 1) * limit))
        else:
            rows = store.all("SELECT * FROM products ORDER BY id LIMIT ? OFFSET ?", (limit, (page - 1) * limit))
        total = (store.one("SELECT COUNT(*) AS n FROM products") or {"n": 0})["n"]
        return {"page": page, "limit": limit, "total": total, "items": rows}

    @catalog.get("/search")
    async def search_products(q: str = Query(..., max_length=500)) -> dict[str, Any]:
        if vulnerable:
            rows = store.all(f"SELECT id, name, category, price FROM products WHERE name LIKE '%{q}%' ORDER BY id LIMIT 50")
        else:
            rows = store.all("SELECT id, name, category, price FROM products WHERE name LIKE ? ORDER BY id LIMIT 50", (f"%{q}%",))
        return {"query": q, "count": len(rows), "items": rows}

    @catalog.get("/{product_id}")
    async def get_product(product_id: int) -> dict[str, Any]:
        row = store.one("SELECT * FROM products WHERE id=?", (product_id,))
        if row is None:
            raise HTTPException(404, "product not found")
        return row

    app.include_router(catalog)

    # ---- orders
    orders = APIRouter(prefix="/api/v2/orders", tags=["orders"])

    @orders.get("")
    async def list_orders(sort: str = Query("created_at", description="created_at | total | status"), user: dict = Depends(current_user)) -> list[dict[str, Any]]:
        if vulnerable:
            sql = (
                "SELECT o.* FROM orders o JOIN users u ON u.id = o.user_id "
                f"WHERE u.email = '{user['email']}' ORDER BY o.{sort} DESC LIMIT 50"
            )
            return store.all(sql)
        if sort not in ("created_at", "total", "status"):
            raise HTTPException(400, "unsupported sort field")
        return store.all(f"SELECT * FROM orders WHERE user_id=? ORDER BY {sort} DESC LIMIT 50", (user["id"],))

    @orders.post("", status_code=201)
    async def create_order(body: M["OrderIn"], request: Request, user: dict = Depends(current_user)) -> dict[str, Any]:  # type: ignore[valid-type]
        total = 0.0
        items = []
        for it in body.items:
            prod = store.one("SELECT price FROM products WHERE id=?", (it.product_id,))
            if prod is None:
                raise HTTPException(422, f"unknown product {it.product_id}")
            total += prod["price"] * it.quantity
            items.append({"product_id": it.product_id, "quantity": it.quantity})
        addr = body.shipping_address or f"{user.get('address') or ''}, {user.get('city') or ''}"
        status = "pending"
        if vulnerable and isinstance(getattr(body, "status", None), str):
            status = body.status  # type: ignore[attr-defined]
        oid = store.run(
            "INSERT INTO orders (user_id, status, total, items, shipping_address, created_at) VALUES (?,?,?,?,?,?)",
            (user["id"], status, round(total, 2), orjson.dumps(items).decode(), addr, now(request)),
        )
        return store.one("SELECT * FROM orders WHERE id=?", (oid,)) or {}

    @orders.get("/{order_id}")
    async def get_order(order_id: int, user: dict = Depends(current_user)) -> dict[str, Any]:
        return own_or_404(store.one("SELECT * FROM orders WHERE id=?", (order_id,)), user, "order")

    @orders.put("/{order_id}")
    async def update_order(order_id: int, body: M["OrderUpdate"], user: dict = Depends(current_user)) -> dict[str, Any]:  # type: ignore[valid-type]
        row = own_or_404(store.one("SELECT * FROM orders WHERE id=?", (order_id,)), user, "order")
        data = body.model_dump(exclude_unset=True)
        if not vulnerable and data.get("status") not in (None, "cancelled"):
            raise HTTPException(422, "status may only be set to 'cancelled'")
        allowed = {"shipping_address", "status", "total", "user_id"} if vulnerable else {"shipping_address", "status"}
        sets = {k: v for k, v in data.items() if k in allowed and v is not None and isinstance(v, (str, int, float))}
        if sets:
            store.run(f"UPDATE orders SET {', '.join(f'{k}=?' for k in sets)} WHERE id=?", (*sets.values(), row["id"]))
        return store.one("SELECT * FROM orders WHERE id=?", (row["id"],)) or row

    app.include_router(orders)

    # ---- payments
    payments = APIRouter(prefix="/api/v2/payments", tags=["payments"])

    @payments.get("")
    async def list_payments(user: dict = Depends(current_user)) -> list[dict[str, Any]]:
        rows = store.all("SELECT * FROM payments WHERE user_id=? ORDER BY id DESC LIMIT 50", (user["id"],))
        return rows if vulnerable else [_mask_payment(r) for r in rows]

    @payments.post("", status_code=201)
    async def pay(body: M["PaymentIn"], request: Request, user: dict = Depends(current_user)) -> dict[str, Any]:  # type: ignore[valid-type]
        order = own_or_404(store.one("SELECT * FROM orders WHERE id=?", (body.order_id,)), user, "order")
        acct = own_or_404(store.one("SELECT * FROM accounts WHERE id=?", (body.account_id,)), user, "account")
        if acct["balance"] < body.amount:
            raise HTTPException(402, "insufficient funds")
        store.run("UPDATE accounts SET balance = balance - ? WHERE id=?", (body.amount, acct["id"]))
        store.run("UPDATE orders SET status='paid' WHERE id=?", (order["id"],))
        pid = store.run(
            "INSERT INTO payments (user_id, order_id, account_id, amount, card_number, status, created_at) VALUES (?,?,?,?,?,?,?)",
            (user["id"], order["id"], acct["id"], body.amount, user.get("card_number"), "settled", now(request)),
        )
        row = store.one("SELECT * FROM payments WHERE id=?", (pid,)) or {}
        return row if vulnerable else _mask_payment(row)

    app.include_router(payments)

    # ---- support
    support = APIRouter(prefix="/api/v2/support/tickets", tags=["support"])

    @support.get("")
    async def list_tickets(user: dict = Depends(current_user)) -> list[dict[str, Any]]:
        return store.all("SELECT * FROM tickets WHERE user_id=? ORDER BY id DESC LIMIT 50", (user["id"],))

    @support.post("", status_code=201)
    async def open_ticket(body: M["TicketIn"], request: Request, user: dict = Depends(current_user)) -> dict[str, Any]:  # type: ignore[valid-type]
        tid = store.run(
            "INSERT INTO tickets (user_id, subject, message, status, created_at) VALUES (?,?,?,?,?)",
            (user["id"], body.subject, body.message, "open", now(request)),
        )
        return store.one("SELECT * FROM tickets WHERE id=?", (tid,)) or {}

    @support.get("/{ticket_id}")
    async def get_ticket(ticket_id: int, user: dict = Depends(current_user)) -> dict[str, Any]:
        return own_or_404(store.one("SELECT * FROM tickets WHERE id=?", (ticket_id,)), user, "ticket")

    app.include_router(support)

    # ---- admin
    admin = APIRouter(prefix="/api/v2/admin", tags=["admin"])

    @admin.get("/users")
    async def admin_users(page: int = Query(1, ge=1), limit: int = Query(50, ge=1, le=500), user: dict = Depends(admin_user)) -> dict[str, Any]:
        rows = store.all(
            "SELECT id, username, email, full_name, phone, role, disabled, created_at FROM users ORDER BY id LIMIT ? OFFSET ?",
            (limit, (page - 1) * limit),
        )
        return {"page": page, "limit": limit, "users": rows}

    @admin.post("/users/{user_id}/disable")
    async def admin_disable(user_id: int, user: dict = Depends(admin_user)) -> dict[str, Any]:
        if store.one("SELECT id FROM users WHERE id=?", (user_id,)) is None:
            raise HTTPException(404, "user not found")
        store.run("UPDATE users SET disabled=1 WHERE id=?", (user_id,))
        return {"id": user_id, "disabled": True}

    @admin.get("/stats")
    async def admin_stats(user: dict = Depends(admin_user)) -> dict[str, Any]:
        one = lambda sql: (store.one(sql) or {"n": 0})["n"]  # noqa: E731
        return {
            "users": one("SELECT COUNT(*) AS n FROM users"),
            "orders": one("SELECT COUNT(*) AS n FROM orders"),
            "payments_total": one("SELECT ROUND(COALESCE(SUM(amount),0),2) AS n FROM payments"),
            "open_tickets": one("SELECT COUNT(*) AS n FROM tickets WHERE status='open'"),
        }

    app.include_router(admin)

    # ---- shadow: an internal debug endpoint left in (vulnerable mode only)
    if vulnerable:

        @app.get("/api/v2/internal/debug", include_in_schema=False)
        async def internal_debug() -> dict[str, Any]:
            return {
                "service": "demobank-api",
                "mode": mode,
                "version": app.state.version,
                "db_file": store.path.rsplit("/", 1)[-1],
                "jwt": {"alg": "HS256", "secret_hint": secret[:8] + "...", "ttl": TOKEN_TTL},
                "recent_queries": list(store.recent),
            }

    # ---- v3 (new in the "deploy")
    @app.get("/api/v2/rewards", tags=["rewards"])
    async def rewards(user: dict = Depends(current_user)) -> dict[str, Any]:
        if app.state.version < 3:
            raise HTTPException(404, "Not Found")
        n = (store.one("SELECT COUNT(*) AS n FROM orders WHERE user_id=?", (user["id"],)) or {"n": 0})["n"]
        return {"user_id": user["id"], "tier": user.get("loyalty_tier"), "points": n * 120, "next_tier_at": (n // 5 + 1) * 600}

    # ---- v1 zombie, deprecated but still served
    v1 = APIRouter(prefix="/api/v1", tags=["legacy"], deprecated=True)

    def gone() -> None:
        raise HTTPException(410, "API v1 has been retired; use /api/v2")

    @v1.post("/login")
    async def v1_login(body: M["Login"], request: Request) -> dict[str, Any]:  # type: ignore[valid-type]
        if not vulnerable:
            gone()
        out = await do_login(request, body.username, body.password)
        return {"token": out["access_token"], "user_id": out["user_id"]}

    @v1.get("/users/{user_id}")
    async def v1_user(user_id: int) -> dict[str, Any]:
        if not vulnerable:
            gone()
        row = store.one("SELECT * FROM users WHERE id=?", (user_id,))
        if row is None:
            raise HTTPException(404, "user not found")
        return _full_user(row, 2)

    @v1.get("/orders/{order_id}")
    async def v1_order(order_id: int) -> dict[str, Any]:
        if not vulnerable:
            gone()
        row = store.one("SELECT * FROM orders WHERE id=?", (order_id,))
        if row is None:
            raise HTTPException(404, "order not found")
        return row

    app.include_router(v1)

    def openapi() -> dict[str, Any]:
        cache = app.__dict__.setdefault("_spec_cache", {})
        v = app.state.version
        if v not in cache:
            spec = get_openapi(title=app.title, version=f"{v}.0.0", description=app.description, routes=app.routes)
            if v < 3:
                for p in V3_PATHS:
                    spec["paths"].pop(p, None)
                props = spec.get("components", {}).get("schemas", {}).get("ProfilePatch", {}).get("properties", {})
                for f in V3_FIELDS:
                    props.pop(f, None)
            cache[v] = spec
        return cache[v]

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def set_version(app: FastAPI, version: int) -> None:
    """Deploy another API version into a running demo app (v3 adds fields
    and ``/api/v2/rewards``; the served spec follows)."""
    app.state.version = version
    app.version = f"{version}.0.0"


def demo_spec(*, vulnerable: bool = True, version: int = 2) -> dict[str, Any]:
    """The demo API's OpenAPI document (as served at ``/openapi.json``)."""
    app = create_app(":memory:", vulnerable=vulnerable, version=version, seed_users=0)
    try:
        return app.openapi()
    finally:
        app.state.store.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m apiward.sim.demoapp --port P --db PATH [--fixed]``"""
    import uvicorn

    ap = argparse.ArgumentParser(prog="python -m apiward.sim.demoapp", description="Run the DemoBank demo API.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--db", default="demobank.sqlite", help="SQLite file (created and seeded on first use)")
    ap.add_argument("--fixed", action="store_true", help="close the deliberate vulnerabilities")
    ap.add_argument("--version", type=int, default=2, choices=(2, 3), help="API version to serve")
    ap.add_argument("--users", type=int, default=500, help="people to seed into a new database")
    ap.add_argument("--no-sim-clock", action="store_true", help="ignore x-apiward-sim-ts; use the wall clock")
    args = ap.parse_args(argv)
    app = create_app(
        args.db, vulnerable=not args.fixed, version=args.version, seed_users=args.users, trust_sim_clock=not args.no_sim_clock
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", date_header=False, server_header=False)


if __name__ == "__main__":
    main()
