"""Hunt latency on a large lake: build a lake of N API calls (default 10
million) over months, then time every shipped hunt on it.

The lake is generated column-wise with numpy + pyarrow (no pipeline: it
would take hours), in the lake's own layout and Parquet options
(``calls/date=YYYY-MM-DD/part-*.parquet``, zstd, dictionary and statistics
on all but the free-text columns, rows in time order within a file):

- 20,000 customers with heavy-tailed activity (Pareto), a daily rhythm,
  home addresses, 60 carrier NAT addresses shared by mobile sessions,
  15% anonymous traffic, ~40 endpoints of a banking API with realistic
  mixes of methods, statuses, bodies (redacted tokens where the lake would
  have them) and response sizes;
- every few days, the attacks the hunts look for (brute force then
  success, spraying, BOLA walks, low-and-slow walks, scanners, injection,
  sign-up bursts, forged and travelling tokens, zombie reads, bulk
  exports, privileged writes, a new endpoint found by one actor).

Usage::

    python bench/hunts.py --out /tmp/lake10m              # build (minutes) then time
    python bench/hunts.py --out /tmp/lake10m --reuse      # time an existing lake
    python bench/hunts.py --calls 1000000 --days 30       # smaller

Prints one line per hunt: rows returned and seconds (best of --repeat,
first run cold), for the whole range and for the last 7 days.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from apiward.lake.calls import CALLS_SCHEMA  # noqa: E402
from apiward.lake.store import _column_options  # noqa: E402

START = 1_735_689_600.0  # 2025-01-01
USERS = 20_000
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "DemoBank/5.2 (iPhone; iOS 17.4)", "DemoBank/5.2 (Android 14; Pixel 8)", "DemoBank/5.1 (Android 13; SM-S911B)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
]
# method, template, weight, id kind, request body kind, response kind
ENDPOINTS = [
    ("GET", "/api/v2/users/me", 12, None, None, "me"), ("GET", "/api/v2/accounts", 9, None, None, "list"),
    ("GET", "/api/v2/accounts/{accountId}", 7, "acct", None, "acct"), ("GET", "/api/v2/accounts/{accountId}/transactions", 8, "acct", None, "list"),
    ("GET", "/api/v2/orders", 6, None, None, "list"), ("GET", "/api/v2/orders/{orderId}", 6, "order", None, "order"),
    ("PUT", "/api/v2/orders/{orderId}", 1, "order", "json", "order"), ("POST", "/api/v2/orders", 2, None, "json", "order"),
    ("GET", "/api/v2/products", 8, None, None, "list"), ("GET", "/api/v2/products/{productId}", 10, "product", None, "product"),
    ("GET", "/api/v2/products/search", 4, None, None, "list"), ("POST", "/api/v2/auth/login", 5, None, "login", "login"),
    ("POST", "/api/v2/auth/refresh", 2, None, None, "login"), ("POST", "/api/v2/auth/signup", 0.3, None, "signup", "signup"),
    ("GET", "/api/v2/payments", 3, None, None, "list"), ("POST", "/api/v2/payments", 1.5, None, "json", "payment"),
    ("GET", "/api/v2/support/tickets", 1, None, None, "list"), ("GET", "/api/v2/support/tickets/{ticketId}", 0.8, "ticket", None, "ticket"),
    ("POST", "/api/v2/support/tickets", 0.4, None, "json", "ticket"), ("PATCH", "/api/v2/users/me", 0.6, None, "json", "me"),
    ("GET", "/api/v2/notifications", 4, None, None, "list"), ("GET", "/api/v2/cards", 2, None, None, "list"),
    ("GET", "/api/v2/admin/stats", 0.05, None, None, "list"), ("GET", "/api/v2/admin/users", 0.05, None, None, "list"),
    ("GET", "/health", 2, None, None, "small"),
]
REQ_HEADERS = [
    '[["host","api.bank.example"],["accept","application/json"],["user-agent","%s"],["authorization","Bearer «credential:%s»"]]',
]


def _ips(rng: np.random.Generator, n: int, first: int) -> np.ndarray:
    a = rng.integers(0, 256, size=(n, 3))
    return np.array([f"{first}.{x}.{y}.{z}" for x, y, z in a], dtype=object)


def _strs(values: np.ndarray) -> pa.Array:
    return pa.array(values.tolist(), pa.string())


def _fmt(template: str, *cols: np.ndarray) -> list[str]:
    return [template % t for t in zip(*cols)]


class World:
    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        w = rng.pareto(1.6, USERS) + 0.05
        self.user_w = w / w.sum()
        self.home = _ips(rng, USERS, 81)
        self.nat = np.array([f"100.64.{x}.{y}" for x, y in rng.integers(0, 256, size=(60, 2))], dtype=object)
        self.ua = rng.integers(0, len(UAS), USERS)
        self.mua = rng.integers(4, 7, USERS)
        ew = np.array([e[2] for e in ENDPOINTS], dtype=float)
        self.ep_w = ew / ew.sum()
        hours = np.arange(24)
        dw = 0.15 + 0.85 * np.clip(np.sin(np.pi * (hours - 6) / 17.0), 0, None) * ((hours >= 6) & (hours <= 23))
        self.hour_w = dw / dw.sum()


def benign_day(world: World, day: int, n: int) -> dict[str, list]:
    rng = world.rng
    t0 = START + day * 86400
    hour = rng.choice(24, size=n, p=world.hour_w)
    ts = np.sort(t0 + hour * 3600 + rng.random(n) * 3600)
    anon = rng.random(n) < 0.15
    users = rng.choice(USERS, size=n, p=world.user_w)
    mobile = rng.random(n) < 0.35
    ip = np.where(mobile, world.nat[rng.integers(0, len(world.nat), n)], world.home[users])
    anon_ip = _ips(rng, n, 150)
    ip = np.where(anon, anon_ip, ip)
    ua_i = np.where(mobile, world.mua[users], world.ua[users])
    ep = rng.choice(len(ENDPOINTS), size=n, p=world.ep_w)
    # anonymous callers only browse products, log in, sign up, health
    public = np.array([i for i, e in enumerate(ENDPOINTS) if e[1].startswith(("/api/v2/products", "/api/v2/auth", "/health"))])
    ep = np.where(anon, public[rng.integers(0, len(public), n)], ep)
    meth = np.array([ENDPOINTS[i][0] for i in ep], dtype=object)
    tmpl = np.array([ENDPOINTS[i][1] for i in ep], dtype=object)
    own_obj = users * 3 + rng.integers(0, 3, n) + 1
    prod = rng.integers(1, 500, n)
    obj = np.where(np.char.find(tmpl.astype(str), "{productId}") >= 0, prod, own_obj)
    path = np.array([t.split("{")[0] + str(o) + (t.split("}")[1] if "}" in t else "") if "{" in t else t for t, o in zip(tmpl, obj)], dtype=object)
    status = np.full(n, 200, dtype=np.int32)
    login = tmpl == "/api/v2/auth/login"
    fail = login & (rng.random(n) < 0.06)
    status[fail] = 401
    status[(meth == "POST") & ~login & (tmpl != "/api/v2/auth/refresh")] = 201
    status[rng.random(n) < 0.004] = 404
    status[rng.random(n) < 0.0005] = 500
    uname = np.array([f"u{u:05d}" for u in users], dtype=object)
    actor = np.where(anon | login, np.array([f"ip:{x}" for x in ip], dtype=object), np.array([f"user:{u}" for u in uname], dtype=object))
    actor_kind = np.where(anon | login, "ip", "user").astype(object)
    tok = np.array([f"{(u * 2654435761 + day * 97 + (1 if m else 0)) % (1 << 40):010x}" for u, m in zip(users, mobile)], dtype=object)
    token = np.where(anon | login, None, tok)
    ua = np.array(UAS, dtype=object)[ua_i]
    acct_tok = np.array([f"{(u * 40503) % (1 << 40):010x}" for u in users], dtype=object)
    req_body = np.full(n, None, dtype=object)
    req_body[login] = _fmt('{"username":"«email:%s»","password":"«password:%s»"}', acct_tok[login], np.array([f"{x:010x}" for x in rng.integers(0, 1 << 40, login.sum())]))
    js = (meth != "GET") & ~login
    req_body[js] = _fmt('{"note":"%s","amount":%d}', np.array(["ok"] * js.sum()), rng.integers(1, 500, js.sum()))
    resp = np.full(n, None, dtype=object)
    kinds = np.array([ENDPOINTS[i][5] for i in ep], dtype=object)
    for kind, fmt in (("me", '{"id":%d,"username":"%s","email":"«email:%s»","phone":"«phone:%s»","city":"Springfield"}'),):
        m = kinds == kind
        resp[m] = _fmt(fmt, users[m] + 1, uname[m], acct_tok[m], acct_tok[m])
    m = kinds == "order"
    resp[m] = _fmt('{"id":%d,"user_id":%d,"status":"paid","total":%d.5,"shipping_address":"«address:%s»"}', obj[m], users[m] + 1, rng.integers(5, 900, m.sum()), acct_tok[m])
    m = kinds == "acct"
    resp[m] = _fmt('{"id":%d,"user_id":%d,"number":"«iban:%s»","balance":%d.12,"currency":"USD"}', obj[m], users[m] + 1, acct_tok[m], rng.integers(0, 90000, m.sum()))
    m = kinds == "product"
    resp[m] = _fmt('{"id":%d,"name":"Product %d","price":%d.99,"stock":%d}', obj[m], obj[m], rng.integers(1, 300, m.sum()), rng.integers(0, 500, m.sum()))
    m = kinds == "list"
    resp[m] = _fmt('[{"id":%d,"status":"ok"},{"id":%d,"status":"ok"},{"id":%d,"status":"ok"}]', obj[m], obj[m] + 1, obj[m] + 2)
    m = kinds == "login"
    resp[m] = np.where(status[m] == 200, np.array(_fmt('{"access_token":"«jwt:%s»","token_type":"bearer","user_id":%d}', tok[m], users[m] + 1), dtype=object),
                       '{"detail":"wrong password"}')
    m = kinds == "ticket"
    resp[m] = _fmt('{"id":%d,"user_id":%d,"subject":"Help","message":"«phone:%s»"}', obj[m], users[m] + 1, acct_tok[m])
    m = (kinds == "small") | (kinds == "signup") | (kinds == "payment")
    resp[m] = '{"ok":true}'
    sens = np.full(n, None, dtype=object)
    rsens_map = {"me": ["email", "phone"], "order": ["address"], "acct": ["iban"], "ticket": ["phone"], "login": ["jwt"]}
    rs = [rsens_map.get(k, []) if st < 400 else [] for k, st in zip(kinds, status)]
    sens_l = [(["email", "password"] if lg else []) + r for lg, r in zip(login, rs)]
    query = np.full(n, None, dtype=object)
    srch = tmpl == "/api/v2/products/search"
    query[srch] = _fmt('[["q","%s"]]', np.array(["lamp", "chair", "blender", "desk", "kettle"], dtype=object)[rng.integers(0, 5, srch.sum())])
    pg = tmpl == "/api/v2/products"
    query[pg] = _fmt('[["page","%d"],["limit","20"]]', rng.integers(1, 20, pg.sum()))
    hdr = np.array(_fmt(REQ_HEADERS[0], ua, np.where(token == None, "0", token)), dtype=object)  # noqa: E711
    resp_bytes = np.array([len(r) if r else 0 for r in resp], dtype=np.int64)
    return {
        "ts": ts, "method": meth, "path": path, "template": tmpl, "query": query, "status": status, "req_body": req_body,
        "resp_body": resp, "actor": actor, "actor_kind": actor_kind, "actor_user": np.where(actor_kind == "user", uname, None),
        "client_ip": ip, "user_agent": ua, "token_id": token, "sensitive": sens_l, "resp_sensitive": rs, "req_headers": hdr,
        "resp_bytes": resp_bytes, "jwt_alg": np.where(token == None, None, "HS256"),  # noqa: E711
    }


def attack_rows(day: int, rng: np.random.Generator) -> list[dict]:
    """The attacks the shipped hunts look for, a few per day."""
    rows: list[dict] = []
    t0 = START + day * 86400 + 3600 * (1 + day % 20)
    aip = f"203.0.{day % 250}.{7 + day % 200}"

    def add(dt: float, method: str, template: str, path: str, status: int, actor: str, ip: str, ua: str = UAS[0], **kw) -> None:
        r = {"ts": t0 + dt, "method": method, "template": template, "path": path, "status": status, "actor": actor,
             "actor_kind": actor.split(":")[0], "actor_user": actor[5:] if actor.startswith("user:") else None, "client_ip": ip,
             "user_agent": ua, "query": None, "req_body": None, "resp_body": '{"ok":true}', "token_id": None, "jwt_alg": None,
             "sensitive": [], "resp_sensitive": [], "req_headers": '[["host","api.bank.example"]]', "resp_bytes": 11}
        r.update(kw)
        rows.append(r)

    k = day % 7
    if k == 0:  # brute force then success on one account; and spraying
        for i in range(12):
            add(i * 3, "POST", "/api/v2/auth/login", "/api/v2/auth/login", 401, f"ip:{aip}", aip, req_body='{"username":"«email:victim%04d»","password":"«password:%d»"}' % (day, i))
        add(40, "POST", "/api/v2/auth/login", "/api/v2/auth/login", 200, f"ip:{aip}", aip, req_body='{"username":"«email:victim%04d»","password":"«password:x»"}' % day,
            resp_body='{"access_token":"«jwt:%010x»"}' % (day + 77))
        for i in range(60):
            add(100 + i, "POST", "/api/v2/auth/login", "/api/v2/auth/login", 401 if i < 59 else 200, f"ip:{aip}9", aip + "9",
                req_body='{"username":"«email:spray%05d»","password":"«password:Summer2025»"}' % i)
    elif k == 1:  # BOLA walk and forged tokens
        for i in range(150):
            add(i * 2, "GET", "/api/v2/orders/{orderId}", f"/api/v2/orders/{5000 + i}", 200, f"user:mallory{day}", aip,
                resp_body='{"id":%d,"user_id":%d,"status":"paid","shipping_address":"«address:%08x»"}' % (5000 + i, 900 + i, i), resp_sensitive=["address"],
                token_id=f"{day:04x}bad0000")
        for i in range(5):
            add(400 + i, "GET", "/api/v2/admin/users", "/api/v2/admin/users", 200, f"user:admin{day}", aip, jwt_alg="none", token_id=f"{day:04x}f0f0f0")
    elif k == 2:  # scanner and injection
        for i in range(200):
            add(i * 0.2, "GET", f"/api/v2/x{i}", f"/api/v2/x{i}", 404, f"ip:{aip}", aip, ua="gobuster/3.6")
        for i in range(30):
            add(60 + i, "GET", "/api/v2/products/search", "/api/v2/products/search", 500 if i % 5 == 0 else 200, f"ip:{aip}", aip, ua="sqlmap/1.7",
                query='[["q","lamp\' OR \'1\'=\'1 -- %d"]]' % i)
    elif k == 3:  # sign-up burst, privileged writes
        for i in range(20):
            add(i * 20, "POST", "/api/v2/auth/signup", "/api/v2/auth/signup", 201, f"ip:{aip}", aip, req_body='{"email":"«email:%08x»","password":"«password:x»"}' % i)
        add(500, "PATCH", "/api/v2/users/me", "/api/v2/users/me", 200, f"user:escal{day}", aip, req_body='{"full_name":"E","role":"admin","is_admin":true}')
    elif k == 4:  # a travelling token, zombie reads, bulk export
        for i, ip in enumerate(("81.2.3.4", "45.9.8.7", "81.2.3.4", "45.9.8.7")):
            add(i * 60, "GET", "/api/v2/accounts", "/api/v2/accounts", 200, f"user:u{day:05d}", ip, token_id=f"{day:06x}77aa")
        for i in range(40):
            add(300 + i, "GET", "/api/v1/users/{userId}", f"/api/v1/users/{i + 1}", 200, f"ip:{aip}", aip,
                resp_body='{"id":%d,"email":"«email:%08x»","ssn":"«ssn:%08x»"}' % (i, i, i), resp_sensitive=["email", "ssn"])
        add(400, "GET", "/api/v2/accounts", "/api/v2/accounts", 200, f"user:exporter{day}", aip, resp_bytes=900_000, resp_sensitive=["email", "iban"])
    elif k == 5:  # newcomer reading sensitive data, new endpoint by one actor
        for i in range(50):
            add(i * 5, "GET", "/api/v2/users/{userId}", f"/api/v2/users/{i + 10}", 200, f"user:newbie{day}", aip,
                resp_body='{"id":%d,"username":"x%d","email":"«email:%08x»"}' % (i + 10, i, i), resp_sensitive=["email"])
        add(600, "GET", f"/api/v2/internal/debug{day}", f"/api/v2/internal/debug{day}", 200, f"ip:{aip}", aip)
    elif k == 6:  # low and slow over three days
        for d in range(3):
            for i in range(14):
                add(d * 86400 + i * 3000, "GET", "/api/v2/accounts/{accountId}", f"/api/v2/accounts/{9000 + d * 14 + i}", 200, f"user:slow{day}", aip,
                    resp_body='{"id":%d,"user_id":%d}' % (9000 + d * 14 + i, 70 + i), resp_sensitive=["iban"])
    return rows


def build(out: Path, calls: int, days: int, seed: int) -> None:
    world = World(seed)
    per_day = calls // days
    root = out / "lake" / "calls"
    t_start = time.perf_counter()
    total = 0
    names = CALLS_SCHEMA.names
    by_day: dict[int, list[dict]] = {}
    for day in range(days):  # attacks can span days: file each row under the day of its time
        for r in attack_rows(day, world.rng):
            by_day.setdefault(int((r["ts"] - START) // 86400), []).append(r)
    for day in range(days):
        cols = benign_day(world, day, per_day)
        atk = by_day.get(day, [])
        n = len(cols["ts"])
        table_cols: dict[str, list] = {}
        for name in names:
            v = cols.get(name)
            if v is None:
                table_cols[name] = [None] * n
            else:
                table_cols[name] = list(v) if not isinstance(v, list) else v
        for r in atk:
            for name in names:
                table_cols[name].append(r.get(name))
        m = n + len(atk)
        table_cols["id"] = [f"d{day:03d}-{i:07d}" for i in range(m)]
        table_cols["source"] = ["bench"] * m
        table_cols["scheme"] = ["https"] * m
        table_cols["host"] = ["api.bank.example"] * m
        table_cols["service"] = ["bank-api"] * m
        table_cols["duration_ms"] = list(np.round(world.rng.gamma(2.0, 20.0, m), 2))
        table_cols["req_bytes"] = [len(b) if b else 0 for b in table_cols["req_body"]]
        table_cols["ts"] = [int(t * 1_000_000) for t in table_cols["ts"]]
        table_cols["auth_scheme"] = ["bearer" if t else None for t in table_cols["token_id"]]
        arrays = []
        for field in CALLS_SCHEMA:
            vals = table_cols[field.name]
            if pa.types.is_timestamp(field.type):
                arrays.append(pa.array(vals, pa.int64()).cast(field.type))
            else:
                arrays.append(pa.array(vals, field.type, from_pandas=True))
        table = pa.Table.from_arrays(arrays, schema=CALLS_SCHEMA)
        table = table.take(pc.sort_indices(table, sort_keys=[("ts", "ascending")]))
        d = datetime.fromtimestamp(START + day * 86400, tz=timezone.utc).strftime("%Y-%m-%d")
        (root / f"date={d}").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / f"date={d}" / "part-bench.parquet", compression="zstd", compression_level=1,
                       row_group_size=64_000, **_column_options(table.schema))
        total += m
        if day % 10 == 0 or day == days - 1:
            el = time.perf_counter() - t_start
            print(f"  day {day + 1}/{days}: {total:,} calls, {el:.0f}s", flush=True)
    for t in ("findings", "changes", "incidents", "finding_events"):
        (out / "lake" / t).mkdir(parents=True, exist_ok=True)


def lake_size(out: Path) -> tuple[int, int]:
    files = list((out / "lake" / "calls").rglob("*.parquet"))
    return len(files), sum(f.stat().st_size for f in files)


def time_hunts(out: Path, repeat: int, threads: int | None, only: list[str] | None = None) -> None:
    from apiward.hunt.saved import shipped_hunts
    from apiward.hunt.session import HuntSession
    from apiward.hunt.timerange import TimeRange

    hunts = {k: v for k, v in shipped_hunts().items() if not only or k in only}
    with HuntSession(out, TimeRange(), timeout=600, threads=threads) as s:
        n, first, last = s.query("select count(*), min(ts), max(ts) from calls").rows[0]
    print(f"lake: {n:,} calls, {first} .. {last}; {lake_size(out)[0]} files, {lake_size(out)[1] / 1e9:.2f} GB")
    end = last.timestamp() + 1
    ranges = {"all": TimeRange(), "last 7d": TimeRange(end - 7 * 86400, end)}
    print(f"{'hunt':32s} {'range':8s} {'rows':>6s} {'cold s':>7s} {'best s':>7s}")
    summary = []
    for name, h in hunts.items():
        for label, tr in ranges.items():
            times = []
            rows = 0
            for _ in range(repeat):
                with HuntSession(out, tr, timeout=600, threads=threads) as s:
                    t0 = time.perf_counter()
                    res = h.run(s)
                    times.append(time.perf_counter() - t0)
                    rows = len(res.rows)
            print(f"{name:32s} {label:8s} {rows:6d} {times[0]:7.2f} {min(times):7.2f}", flush=True)
            summary.append((name, label, rows, times[0], min(times)))
    allr = [x for x in summary if x[1] == "all"]
    print(f"\nwhole range: median {np.median([x[4] for x in allr]):.2f}s, max {max(x[4] for x in allr):.2f}s over {len(allr)} hunts")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench/out/lake10m", help="state folder to build the lake in")
    ap.add_argument("--calls", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reuse", action="store_true", help="time an existing lake, do not build")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--only", nargs="*", help="time only these hunts")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if not args.reuse:
        t0 = time.perf_counter()
        print(f"building {args.calls:,} calls over {args.days} days in {out} ...", flush=True)
        build(out, args.calls, args.days, args.seed)
        print(f"built in {time.perf_counter() - t0:.0f}s", flush=True)
    os.environ.setdefault("APIWARD_NOW", "2025-06-01")
    time_hunts(out, args.repeat, args.threads, args.only)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
