"""The traffic simulator: benign customers and admins plus labelled attacker
playbooks, in virtual time, against any HTTP target.

How it works: :func:`plan` draws a deterministic schedule of sessions from
the seed (who, which persona or playbook, when, from which address and
device); :func:`simulate` runs them interleaved in virtual-time order over
an ``httpx.Client`` (a base URL, a capture proxy in front of the demo, or an
in-process transport such as Starlette's ``TestClient``), one request at a
time. Every request carries

- ``x-request-id: sim-<n>`` (the event id, ``n`` in execution order),
- ``x-apiward-sim-ts: <virtual unix ts>`` (the demo app's clock, and the
  event time a capture path may use in demo mode),
- ``x-forwarded-for: <simulated client ip>`` (documentation ranges only).

It also records what it sent and received as apiward events
(``events.jsonl``, :func:`apiward.model.call.dumps`) and writes the ground
truth (``labels.json``, :mod:`apiward.sim.labels`).

Determinism: the same seed and options against a freshly created demo
database give the same schedule and the same events, except the values the
wall clock or the network decide: ``duration_ms``, the server's port
(``dst.port``, and the ``host`` header and ``request.host`` unless ``host=``
is given) and a ``date`` response header if the server sends one
(:class:`apiward.sim.server.ServerThread` does not).

CLI: ``python -m apiward.sim.simulator --serve --users 100 --duration 21600 --out out/``.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from apiward.ingest.base import make_request, make_response
from apiward.model.call import ApiCall, Peer, Workload, dumps
from apiward.sim import wordlists as wl
from apiward.sim.labels import AttackLabel, BenignLabel, Labels
from apiward.sim.personas import ADMIN_PERSONA, PERSONAS, weights
from apiward.sim.playbooks import ATTACK_CLASSES, PLAYBOOKS, UA_FAMILY, parse_attack
from apiward.sim.population import ADMIN_COUNT, POPULATION_SEED, population
from apiward.sim.traffic import AddressPool, AttackInstance, Ctx, Req, Resp, Session, World

__all__ = ["SimConfig", "SimResult", "plan", "simulate", "expand_attacks", "DEFAULT_START", "main"]

DEFAULT_START = 1_740_787_200.0  # 2025-03-01T00:00:00Z


@dataclass
class SimConfig:
    """Everything that shapes a run. ``users`` benign customers (taken from
    the demo population, which must be at least ``users`` + admins +
    reserve), ``duration`` virtual seconds from ``start``; ``attacks`` names
    one instance each (repeat a name for more, ``<attack>_slow`` for the
    low-and-slow variant); ``intensity`` scales attack volume; attacks
    start inside ``attack_window`` (fractions of the run) so detectors see
    benign traffic first. ``deploy_at`` (seconds from start) switches
    customers to the v3 features (and calls ``on_deploy`` of
    :func:`simulate`)."""

    seed: int = 1
    users: int = 100
    duration: float = 86400.0
    attacks: list[str] = field(default_factory=lambda: list(ATTACK_CLASSES))
    intensity: float = 1.0
    start: float = DEFAULT_START
    population: int = 500
    population_seed: int = POPULATION_SEED
    sessions_per_user_day: float = 8.0
    admin_sessions_per_day: float = 6.0
    legacy_share: float = 0.06
    attack_window: tuple[float, float] = (0.3, 0.9)
    deploy_at: float | None = None
    id_prefix: str = "sim-"


@dataclass
class SimResult:
    events_path: Path | None
    labels_path: Path | None
    requests: int
    attack_requests: int
    benign_requests: int
    by_attack: dict[str, int]
    statuses: dict[int, int]
    elapsed_s: float
    labels: Labels

    @property
    def rate(self) -> float:
        """Requests per wall-clock second."""
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0


def expand_attacks(names: Iterable[str] | str | None) -> list[str]:
    """Normalise an attack list: ``"all"`` -> every class, ``"all_slow"`` ->
    every class low-and-slow, ``"none"``/empty -> no attacks; comma
    separated strings are split. Unknown names raise ``ValueError``."""
    if names is None:
        return list(ATTACK_CLASSES)
    if isinstance(names, str):
        names = [n for n in names.replace(" ", "").split(",") if n]
    out: list[str] = []
    for n in names:
        if n == "all":
            out.extend(ATTACK_CLASSES)
        elif n == "all_slow":
            out.extend(f"{a}_slow" for a in ATTACK_CLASSES)
        elif n in ("none", ""):
            continue
        else:
            parse_attack(n)
            out.append(n)
    return out


def _diurnal_time(rng: random.Random, start: float, duration: float) -> float:
    """A session start with a daily rhythm: quiet at night (UTC), busiest in
    the afternoon (rejection sampling; flat for runs under an hour)."""
    if duration < 3600:
        return start + rng.random() * duration
    while True:
        t = start + rng.random() * duration
        hour = (t % 86400) / 3600.0
        intensity = 0.15 + 0.85 * max(0.0, math.sin(math.pi * (hour - 6.0) / 17.0)) if 6.0 <= hour <= 23.0 else 0.15
        if rng.random() < intensity:
            return t


@dataclass
class _Customer:
    index: int
    home_ip: str
    desktop_ua: str
    mobile_ua: str
    legacy: bool
    weight: float


def plan(cfg: SimConfig) -> tuple[list[Session], World]:
    """The deterministic schedule of sessions for ``cfg`` and the world they
    share. Nothing is sent."""
    rng = random.Random(f"plan:{cfg.seed}")
    pool = AddressPool(random.Random(f"ips:{cfg.seed}"))
    people = population(cfg.population, cfg.population_seed)
    admins = people[:ADMIN_COUNT]
    customers = people[ADMIN_COUNT:]
    # The reserve: customers nobody logs in as (disable targets, spray
    # targets); a fifth of the population, shrunk to fit, never under ten.
    reserve_n = min(max(10, len(customers) // 5), len(customers) - cfg.users)
    if reserve_n < 10:
        raise ValueError(
            f"users={cfg.users} needs a population of at least {cfg.users + ADMIN_COUNT + 10} "
            f"(have {cfg.population}); seed the demo app with as many users"
        )
    benign = customers[: cfg.users]
    reserve = customers[len(customers) - reserve_n :]
    end = cfg.start + cfg.duration
    world = World(people=people, benign=benign, admins=admins, reserve=reserve, pool=pool, start=cfg.start, end=end)

    crowd = [
        _Customer(p.index, pool.benign(), rng.choice(wl.BROWSER_UAS),
                  rng.choice(wl.LEGACY_APP_UAS) if (legacy := rng.random() < cfg.legacy_share) else rng.choice(wl.MOBILE_APP_UAS),
                  legacy, rng.paretovariate(2.5))
        for p in benign
    ]
    carrier_nat = [pool.benign(v6_share=0.5) for _ in range(max(3, cfg.users // 25))]
    sessions: list[Session] = []
    kinds, shares = weights()
    days = cfg.duration / 86400.0
    n_sessions = int(round(cfg.users * max(1.0, cfg.sessions_per_user_day * days)))
    cum_w = list(_cumulative(c.weight for c in crowd))
    signups = 0
    for _ in range(n_sessions if crowd else 0):
        t = _diurnal_time(rng, cfg.start, cfg.duration)
        kind = rng.choices(kinds, weights=shares)[0]
        c = crowd[_pick(rng, cum_w)]
        mobile = rng.random() < 0.35
        ip, ua = (rng.choice(carrier_nat), c.mobile_ua) if mobile else (c.home_ip, c.desktop_ua)
        port = rng.randint(20000, 60999)
        if kind == "signup":
            from apiward.sim.population import person

            newbie = person(signups, tag="signup")
            sessions.append(Session(0, t, "signup", pool.benign(), rng.choice(wl.BROWSER_UAS),
                                    user=newbie.email.split("@")[0].replace("+", "."), role="user", params={"n": signups}, port=port))
            signups += 1
            continue
        if kind == "browse":
            sessions.append(Session(0, t, "browse", ip, ua, role="anonymous", port=port))
            continue
        if c.legacy and mobile:
            kind = "legacy"
        sessions.append(Session(0, t, kind, ip, ua, user=people[c.index].username, role="user", params={"p": c.index}, port=port))
    for a in admins:
        office_ip = pool.benign(v6_share=0.0)
        ua = rng.choice(wl.BROWSER_UAS[:5])
        for _ in range(max(1, int(round(cfg.admin_sessions_per_day * days)))):
            t = _diurnal_time(rng, cfg.start, cfg.duration)
            sessions.append(Session(0, t, ADMIN_PERSONA, office_ip, ua, user=a.username, role="admin", params={"p": a.index},
                                    port=rng.randint(20000, 60999)))
    lo, hi = cfg.attack_window
    for k, name in enumerate(expand_attacks(cfg.attacks)):
        base, slow = parse_attack(name)
        frac = rng.uniform(lo, lo + (hi - lo) * 0.25) if slow else rng.uniform(lo, hi)
        t = cfg.start + frac * cfg.duration
        # tools vary: some attackers keep their tool's agent, others send a browser's
        ua = rng.choice(wl.BROWSER_UAS) if slow or rng.random() < 0.3 else rng.choice(UA_FAMILY.get(base, wl.BROWSER_UAS))
        atk = AttackInstance(id=f"atk-{k + 1:02d}", attack=base, playbook=name, low_and_slow=slow)
        sessions.append(Session(0, t, base, pool.attacker(), ua, role="attacker",
                                params={"n": 1000 + k, "victim": rng.randrange(max(1, len(benign)))},
                                port=rng.randint(20000, 60999), attack=atk))
    sessions.sort(key=lambda s: (s.start, s.kind, s.ip))
    for i, s in enumerate(sessions):
        s.idx = i
    return sessions, world


def _cumulative(ws: Iterable[float]) -> Iterable[float]:
    total = 0.0
    for w in ws:
        total += w
        yield total


def _pick(rng: random.Random, cum: list[float]) -> int:
    import bisect

    return min(len(cum) - 1, bisect.bisect_left(cum, rng.random() * cum[-1]))


class _Recorder:
    """Writes each exchange as an :class:`ApiCall` line."""

    def __init__(self, path: Path, client: httpx.Client, host: str | None) -> None:
        self.fh = path.open("wb")
        url = client.base_url
        self.scheme = url.scheme or "http"
        self.host = host or (url.netloc.decode() if url.netloc else "")
        self.dst = Peer(ip=url.host if url.host and url.host[0].isdigit() else "", port=url.port or (443 if self.scheme == "https" else 80))
        self.workload = Workload(namespace="demobank", service="demobank-api")

    def write(self, rid: str, ts: float, ms: float, req: Req, ip: str, port: int, resp: httpx.Response) -> None:
        hreq = resp.request
        call = ApiCall(
            id=rid,
            ts=ts,
            duration_ms=round(ms, 3),
            request=make_request(
                method=req.method,
                path=req.path,
                query=[(k, str(v)) for k, v in req.params] if req.params else [],
                headers=list(hreq.headers.multi_items()),
                body=hreq.content,
                scheme=self.scheme,
                host=self.host,
            ),
            response=make_response(status=resp.status_code, headers=list(resp.headers.multi_items()), body=resp.content,
                                   reason=resp.reason_phrase),
            src=Peer(ip=ip, port=port),
            dst=self.dst,
            workload=self.workload,
            source="sim",
        )
        self.fh.write(dumps(call))
        self.fh.write(b"\n")

    def close(self) -> None:
        self.fh.close()


def run(
    sessions: list[Session],
    world: World,
    client: httpx.Client,
    cfg: SimConfig,
    *,
    recorder: _Recorder | None = None,
    host: str | None = None,
    on_deploy: Callable[[], None] | None = None,
    intensity: float = 1.0,
) -> tuple[list[AttackInstance], dict[str, BenignLabel], Counter[int], int]:
    """Execute planned sessions in virtual-time order; returns the filled
    attack instances, benign actors, status counts and the request count."""
    heap: list[tuple[float, int, Req]] = []
    gens: dict[int, Any] = {}
    ctxs: dict[int, Ctx] = {}
    by_idx = {s.idx: s for s in sessions}
    for s in sessions:
        ctx = Ctx(s, world, random.Random(f"s:{cfg.seed}:{s.idx}"), intensity=intensity)
        factory = PLAYBOOKS[s.kind] if s.attack is not None else PERSONAS[s.kind]
        gen = factory(ctx)
        try:
            first = next(gen)
        except StopIteration:
            continue
        gens[s.idx], ctxs[s.idx] = gen, ctx
        heapq.heappush(heap, (round(s.start + first.wait, 3), s.idx, first))
    deploy_ts = cfg.start + cfg.deploy_at if cfg.deploy_at is not None else None
    statuses: Counter[int] = Counter()
    benign: dict[str, BenignLabel] = {}
    attacks = [s.attack for s in sessions if s.attack is not None]
    n = 0
    headers_base = {"accept": "application/json"}
    if host:
        headers_base["host"] = host
    while heap:
        ts, idx, req = heapq.heappop(heap)
        s = by_idx[idx]
        ctx = ctxs[idx]
        ctx.now = ts
        if deploy_ts is not None and not world.deployed and ts >= deploy_ts:
            world.deployed = True
            if on_deploy is not None:
                on_deploy()
        n += 1
        rid = f"{cfg.id_prefix}{n}"
        ip = req.ip or s.ip
        headers = dict(headers_base)
        headers["user-agent"] = req.ua or s.ua
        headers["x-request-id"] = rid
        headers["x-apiward-sim-ts"] = f"{ts:.3f}"
        headers["x-forwarded-for"] = ip
        if req.headers:
            headers.update(req.headers)
        t0 = time.perf_counter()
        try:
            resp = client.request(req.method, req.path, params=req.params, json=req.json, headers=headers)
            status, body = resp.status_code, resp.content
        except httpx.HTTPError:
            resp, status, body = None, 0, b""
        ms = (time.perf_counter() - t0) * 1000.0
        statuses[status] += 1
        if recorder is not None and resp is not None:
            recorder.write(rid, ts, ms, req, ip, s.port, resp)
        if s.attack is not None:
            a = s.attack
            if not a.event_ids:
                a.start = ts
            a.end = ts
            a.event_ids.append(rid)
            if ip not in a.ips:
                a.ips.append(ip)
        else:
            key = s.user or f"anon:{s.ip}"
            b = benign.get(key)
            if b is None:
                b = benign[key] = BenignLabel(s.user, s.role)
            b.event_ids.append(rid)
            if ip not in b.ips:
                b.ips.append(ip)
        try:
            nxt = gens[idx].send(Resp(status, body))
        except StopIteration:
            continue
        heapq.heappush(heap, (round(ts + max(0.0, nxt.wait), 3), idx, nxt))
    return attacks, benign, statuses, n


def simulate(
    target: str | httpx.Client,
    *,
    seed: int = 1,
    users: int = 100,
    duration: float = 86400.0,
    attacks: Iterable[str] | str | None = None,
    out_dir: str | Path | None = None,
    intensity: float = 1.0,
    host: str | None = None,
    population: int = 500,
    start: float = DEFAULT_START,
    deploy_at: float | None = None,
    on_deploy: Callable[[], None] | None = None,
    record: bool = True,
    config: SimConfig | None = None,
) -> SimResult:
    """Run a simulation against ``target`` (a base URL or an ``httpx.Client``)
    and write ``events.jsonl`` (when ``record``) and ``labels.json`` into
    ``out_dir`` (a temporary folder when ``None``). The target must serve
    the demo API on a fresh database seeded with ``population`` users."""
    cfg = config or SimConfig(seed=seed, users=users, duration=float(duration), attacks=expand_attacks(attacks), intensity=intensity,
                              start=start, population=population, deploy_at=deploy_at)
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="apiward-sim-"))
    out.mkdir(parents=True, exist_ok=True)
    own_client = isinstance(target, str)
    client = httpx.Client(base_url=target, timeout=30.0, trust_env=False) if isinstance(target, str) else target
    sessions, world = plan(cfg)
    events_path = out / "events.jsonl" if record else None
    recorder = _Recorder(events_path, client, host) if events_path is not None else None
    t0 = time.perf_counter()
    try:
        attacks_done, benign, statuses, n = run(sessions, world, client, cfg, recorder=recorder, host=host, on_deploy=on_deploy,
                                                intensity=cfg.intensity)
    finally:
        if recorder is not None:
            recorder.close()
        if own_client:
            client.close()
    elapsed = time.perf_counter() - t0
    labels = Labels(
        seed=cfg.seed,
        start=cfg.start,
        end=cfg.start + cfg.duration,
        requests=n,
        attacks=[AttackLabel(a.id, a.attack, a.playbook, a.low_and_slow, a.ips, a.users, a.event_ids, a.start, a.end)
                 for a in attacks_done if a.event_ids],
        benign=sorted(benign.values(), key=lambda b: (b.role, b.user, b.ips[0] if b.ips else "")),
        meta={"users": cfg.users, "duration": cfg.duration, "intensity": cfg.intensity, "population": cfg.population,
              "attacks_requested": list(cfg.attacks), "deploy_at": cfg.deploy_at, "id_prefix": cfg.id_prefix},
    )
    labels_path = labels.write(out / "labels.json")
    by_attack: Counter[str] = Counter()
    for a in labels.attacks:
        by_attack[a.playbook] += len(a.event_ids)
    attack_requests = sum(by_attack.values())
    return SimResult(events_path, labels_path, n, attack_requests, n - attack_requests, dict(by_attack), dict(statuses), elapsed, labels)


def main(argv: list[str] | None = None) -> int:
    """``python -m apiward.sim.simulator``: simulate against a URL, or start
    the demo API in-process (``--serve``) and simulate against it."""
    ap = argparse.ArgumentParser(prog="python -m apiward.sim.simulator", description="Simulate labelled API traffic against the demo API.")
    tgt = ap.add_mutually_exclusive_group(required=True)
    tgt.add_argument("--base-url", help="send to this URL (the demo API, or a capture proxy in front of it)")
    tgt.add_argument("--serve", action="store_true", help="start the demo API on a free loopback port with a fresh database")
    ap.add_argument("--fixed", action="store_true", help="with --serve: the fixed (non-vulnerable) demo")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--users", type=int, default=100, help="benign customers")
    ap.add_argument("--duration", type=float, default=21600.0, help="virtual seconds")
    ap.add_argument("--attacks", default="all", help="comma list of attack classes, 'all', 'all_slow', 'none'; "
                    f"classes: {', '.join(ATTACK_CLASSES)} (suffix _slow for low-and-slow)")
    ap.add_argument("--intensity", type=float, default=1.0, help="scale attack volume")
    ap.add_argument("--population", type=int, default=500, help="people seeded in the demo database")
    ap.add_argument("--host", default=None, help="Host header to send (and record)")
    ap.add_argument("--deploy-at", type=float, default=None, help="virtual seconds after start when v3 goes live")
    ap.add_argument("--out", default="sim-out", help="folder for events.jsonl and labels.json")
    ap.add_argument("--no-record", action="store_true", help="only send; write labels but no events.jsonl")
    args = ap.parse_args(argv)
    try:
        attacks = expand_attacks(args.attacks)
    except ValueError as exc:
        ap.error(str(exc))
    kw: dict[str, Any] = dict(seed=args.seed, users=args.users, duration=args.duration, attacks=attacks, out_dir=args.out,
                              intensity=args.intensity, host=args.host, population=args.population, deploy_at=args.deploy_at,
                              record=not args.no_record)
    if args.serve:
        from apiward.sim.demoapp import create_app, set_version
        from apiward.sim.server import ServerThread

        Path(args.out).mkdir(parents=True, exist_ok=True)
        db = Path(args.out) / "demobank.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        app = create_app(str(db), vulnerable=not args.fixed, seed_users=args.population)
        with ServerThread(app) as srv:
            res = simulate(srv.base_url, on_deploy=lambda: set_version(app, 3), **kw)
    else:
        res = simulate(args.base_url, **kw)
    print(f"requests: {res.requests} ({res.benign_requests} benign, {res.attack_requests} attack) in {res.elapsed_s:.1f}s "
          f"= {res.rate:.0f} req/s")
    for name, count in sorted(res.by_attack.items()):
        print(f"  {name:28s} {count}")
    print(f"statuses: {dict(sorted(res.statuses.items()))}")
    if res.events_path:
        print(f"events: {res.events_path}")
    print(f"labels: {res.labels_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
