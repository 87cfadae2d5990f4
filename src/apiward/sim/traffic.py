"""The simulator's building blocks: requests in virtual time, sessions that
produce them, the shared world, and the pools of client addresses.

A session is a generator: it yields :class:`Req` (with a think time ``wait``
in virtual seconds) and receives the :class:`Resp`, so a session can use what
the server answered (a token, an order id) while the overall schedule stays
deterministic: sessions run interleaved in virtual-time order, each with its
own seeded RNG, against a fresh database.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import orjson

from apiward.sim.population import Person

__all__ = ["Req", "Resp", "Session", "Ctx", "World", "AddressPool", "SessionGen", "bearer"]

_NOBODY = object()


@dataclass(slots=True)
class Req:
    """One request a session wants sent. ``json`` is the body (``None`` = no
    body); ``ip``/``ua`` override the session's client address and agent."""

    method: str
    path: str
    params: list[tuple[str, str]] | None = None
    json: Any = None
    headers: dict[str, str] | None = None
    wait: float = 0.0
    ip: str | None = None
    ua: str | None = None


@dataclass(slots=True)
class Resp:
    """What the session gets back: status and raw body, JSON parsed on demand."""

    status: int
    body: bytes
    _json: Any = _NOBODY

    def json(self) -> Any:
        if self._json is _NOBODY:
            try:
                self._json = orjson.loads(self.body) if self.body else None
            except orjson.JSONDecodeError:
                self._json = None
        return self._json


SessionGen = Generator[Req, Resp, None]


@dataclass(eq=False)
class AttackInstance:
    """Ground truth for one attack run, filled while it executes."""

    id: str
    attack: str  # the class name: bola, sqli, ...
    playbook: str  # what was asked for: bola or bola_slow
    low_and_slow: bool
    ips: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0

    def add_user(self, user: str) -> None:
        if user and user not in self.users:
            self.users.append(user)


@dataclass(eq=False)
class Session:
    """A planned session: who, from where, when, and which persona or
    playbook drives it (``kind``, with ``params``)."""

    idx: int
    start: float
    kind: str
    ip: str
    ua: str
    user: str = ""
    role: str = "anonymous"  # user | admin | anonymous | attacker
    params: dict[str, Any] = field(default_factory=dict)
    port: int = 0
    attack: AttackInstance | None = None

    def plan_row(self) -> tuple:
        """The session as plain values, for comparing schedules."""
        return (self.idx, round(self.start, 3), self.kind, self.ip, self.ua, self.user, self.role, sorted(self.params.items()), self.port,
                self.attack.id if self.attack else None)


def bearer(token: str | None) -> dict[str, str] | None:
    return {"authorization": f"Bearer {token}"} if token else None


class AddressPool:
    """Unique client addresses from the documentation ranges (RFC 5737 and
    RFC 3849): IPv4 first, then 2001:db8::/32. Attackers and benign users
    draw from disjoint slices so ground truth stays unambiguous, but both
    slices span all ranges (address family or range says nothing)."""

    _V4 = ("198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24")

    def __init__(self, rng: random.Random, attacker_share: int = 160) -> None:
        v4 = [str(h) for net in self._V4 for h in ipaddress.ip_network(net).hosts()]
        rng.shuffle(v4)
        self._rng = rng
        self._attacker = v4[:attacker_share]
        self._benign = v4[attacker_share:]
        self._used: set[str] = set()

    def _v6(self) -> str:
        while True:
            a = self._rng.randrange(1, 0xFFFF)
            addr = f"2001:db8:{a:x}:{self._rng.randrange(0, 0xFFFF):x}::{self._rng.randrange(1, 0xFFFF):x}"
            if addr not in self._used:
                self._used.add(addr)
                return addr

    def benign(self, v6_share: float = 0.15) -> str:
        if self._benign and self._rng.random() >= v6_share:
            ip = self._benign.pop()
            self._used.add(ip)
            return ip
        return self._v6()

    def attacker(self) -> str:
        if self._attacker and self._rng.random() >= 0.1:
            ip = self._attacker.pop()
            self._used.add(ip)
            return ip
        return self._v6()


@dataclass
class World:
    """What sessions share: the population, who plays which part, tokens
    benign users hold (a token thief's loot), the deploy switch, and the
    attacker address pool (drawn from lazily, in execution order)."""

    people: list[Person]
    benign: list[Person]  # customers that act benignly
    admins: list[Person]
    reserve: list[Person]  # population nobody logs in as; disable targets
    pool: AddressPool
    start: float
    end: float
    tokens: dict[str, tuple[str, float, str]] = field(default_factory=dict)  # user -> (token, issued ts, ip)
    deployed: bool = False
    signups: int = 0  # benign sign-ups so far (unique new people)
    products: int = 120


class Ctx:
    """What a running session sees: its RNG, the world, its own identity,
    and pacing (``gap``) that stretches to low-and-slow when asked."""

    def __init__(self, session: Session, world: World, rng: random.Random, *, intensity: float = 1.0) -> None:
        self.session = session
        self.world = world
        self.rng = rng
        self.intensity = intensity
        self.slow = bool(session.attack and session.attack.low_and_slow)
        self._slow_mean = 60.0
        self.now = session.start  # kept current by the executor
        # An attacker's own habits, drawn from the session's seed: how much
        # it sends, how fast, and in which order it walks ids. Two seeds give
        # two different attacks of the same class.
        attack = session.attack is not None
        self.volume = rng.uniform(0.6, 1.6) if attack else 1.0
        self.tempo = rng.uniform(0.4, 2.5) if attack else 1.0
        self.order = rng.choice(("up", "down", "stride", "shuffled")) if attack else "up"
        self.stride = rng.randint(2, 7)

    def scale(self, n: int, minimum: int = 1) -> int:
        """A request budget ``n`` scaled by intensity (fewer when slow)."""
        k = n * self.intensity * self.volume * (0.35 if self.slow else 1.0)
        return max(minimum, int(round(k)))

    def expect(self, n: int) -> None:
        """Declare about how many requests follow, so slow pacing spreads
        them over the time left in the run."""
        if self.slow:
            span = max(600.0, self.world.end - self.session.start)
            self._slow_mean = span / max(1, n)

    def gap(self, lo: float, hi: float) -> float:
        """Think time between two requests: uniform in [lo, hi] normally,
        an exponential with the stretched mean when low-and-slow."""
        if self.slow:
            return self.rng.expovariate(1.0 / self._slow_mean)
        return self.rng.uniform(lo, hi) * self.tempo

    def walk(self, start: int, n: int, *, lo: int = 1) -> list[int]:
        """``n`` object ids from ``start`` in this attacker's order:
        ascending, descending, with a stride, or shuffled (never below ``lo``)."""
        if self.order == "down":
            ids = [start + n - 1 - k for k in range(n)]
        elif self.order == "stride":
            ids = [start + k * self.stride for k in range(n)]
        else:
            ids = [start + k for k in range(n)]
            if self.order == "shuffled":
                self.rng.shuffle(ids)
        return [max(lo, i) for i in ids]

    def new_ip(self) -> str:
        return self.world.pool.attacker()


Persona = Callable[[Ctx], SessionGen]
