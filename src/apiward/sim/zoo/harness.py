"""Run a real application behind ``apiward proxy`` and record what was sent.

The zoo (issue 8) measures apiward end to end on real open-source APIs it
was never tuned on. One run, :func:`run_app`, does what a user would:

1. start the application as a subprocess on a free loopback port;
2. start ``apiward proxy`` (the real CLI, a subprocess) in front of it;
3. let the app's scenario drive it through the proxy with scripted benign
   users and attackers; every actor has its own loopback source address
   (``127.0.0.N``) so an unauthenticated actor is still one actor;
4. stop the proxy (SIGINT: it drains its queue and checkpoints) and read
   ``apiward findings --kind attack --format json`` and
   ``apiward inventory --format json``;
5. score them (:mod:`apiward.sim.zoo.score`) against the ground truth the
   scenario wrote: which actor ran which attack, and the route each request
   hit in the app's own route table.

Nothing here knows an app's paths: that is in the app's module.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

__all__ = [
    "ZooActor", "Attack", "Sent", "Driver", "ZooApp", "AppRun", "free_port", "wait_http", "run_app", "cli",
]

CLI = [sys.executable, "-m", "apiward"]


@dataclass
class ZooActor:
    """One scripted user or attacker: its loopback address and credentials."""

    name: str
    ip: str
    benign: bool
    user: str = ""  # the user name apiward should resolve (HTTP Basic user), "" when anonymous

    def keys(self) -> set[str]:
        """Actor keys apiward may name this actor by."""
        keys = {f"ip:{self.ip}"}
        if self.user:
            keys.add(f"user:{self.user}")
        return keys


@dataclass
class Attack:
    """A planted attack: what it is, who ran it, the OWASP category it belongs to."""

    id: str
    kind: str  # bola_read, bfla, brute_force, ...
    owasp: str  # "API1" .. "API10"
    actor: ZooActor
    requests: int = 0


@dataclass
class Sent:
    """One request the scenario sent and what came back."""

    actor: str
    method: str
    path: str
    status: int


class Driver:
    """Hands out one HTTP client per actor (bound to the actor's address)
    and records every request for the ground truth."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.sent: list[Sent] = []
        self.actors: list[ZooActor] = []
        self.attacks: list[Attack] = []
        self._clients: dict[str, httpx.Client] = {}
        self._next_ip = 10

    def actor(self, name: str, *, benign: bool, user: str = "") -> ZooActor:
        """A new actor with its own loopback address."""
        self._next_ip += 1
        a = ZooActor(name, f"127.0.{self._next_ip // 250}.{self._next_ip % 250 + 2}", benign, user)
        self.actors.append(a)
        return a

    def attack(self, id: str, kind: str, owasp: str, actor: ZooActor) -> Attack:
        at = Attack(id, kind, owasp, actor)
        self.attacks.append(at)
        return at

    def client(self, actor: ZooActor) -> httpx.Client:
        c = self._clients.get(actor.name)
        if c is None:
            transport = httpx.HTTPTransport(local_address=actor.ip, retries=0)
            c = httpx.Client(base_url=self.base_url, transport=transport, timeout=self.timeout, follow_redirects=False)
            self._clients[actor.name] = c
        return c

    def request(self, actor: ZooActor, method: str, path: str, *, attack: Attack | None = None, **kw: Any) -> httpx.Response:
        """Send one request as ``actor`` and record it."""
        r = self.client(actor).request(method, path, **kw)
        self.sent.append(Sent(actor.name, method.upper(), httpx.URL(self.base_url + path).path, r.status_code))
        if attack is not None:
            attack.requests += 1
        return r

    def close(self) -> None:
        for c in self._clients.values():
            c.close()


class ZooApp(Protocol):
    """What an app module provides."""

    name: str
    package: str  # the importable module that must be installed

    def start(self, workdir: Path, port: int) -> subprocess.Popen[bytes]: ...
    def ready_path(self) -> str: ...
    def routes(self, upstream: str, workdir: Path) -> list[tuple[str, str]]: ...
    def drive(self, d: Driver, *, quick: bool, seed: int) -> None: ...


@dataclass
class AppRun:
    """Everything a run produced, for scoring and printing."""

    app: str
    routes: list[tuple[str, str]]
    sent: list[Sent]
    actors: list[ZooActor]
    attacks: list[Attack]
    findings: list[dict[str, Any]]
    inventory: list[dict[str, Any]]
    probes: list[dict[str, Any]] = field(default_factory=list)
    proxy_summary: str = ""
    seconds: float = 0.0


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], *, timeout: float = 60.0, log: Path | None = None) -> None:
    """Wait until ``url`` answers (any status) or fail with the process's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}" + _tail(log))
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=2.0)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s" + _tail(log))


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    return ":\n" + log.read_text(errors="replace")[-2000:]


def stop(proc: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
    """Stop one process we started, by its id; kill it if it does not go."""
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _env() -> dict[str, str]:
    """The environment for CLI subprocesses: this apiward first on the path."""
    src = str(Path(__file__).resolve().parents[3])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)}


def cli(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run the apiward CLI as a user would; raise with its stderr on failure."""
    r = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=_env())
    if r.returncode != 0:
        raise RuntimeError(f"apiward {' '.join(args)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r


@contextlib.contextmanager
def _running(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield proc
    finally:
        stop(proc, sig=sig)


def run_app(app: ZooApp, workdir: Path, *, quick: bool = False, seed: int = 1) -> AppRun:
    """Start ``app`` and the proxy, drive the scenario, read the CLI's view."""
    t0 = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    state = workdir / "state"
    app_port, proxy_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{app_port}"
    app_log = workdir / f"{app.name}.log"
    with _running(app.start(workdir, app_port)) as app_proc:
        wait_http(upstream + app.ready_path(), app_proc, log=app_log)
        routes = app.routes(upstream, workdir)
        proxy_log = workdir / "proxy.log"
        with open(proxy_log, "wb") as plog:
            proxy = subprocess.Popen(
                [*CLI, "proxy", "--upstream", upstream, "--listen", f"127.0.0.1:{proxy_port}", "--state", str(state)],
                stdout=plog, stderr=subprocess.STDOUT, env=_env(),
            )
        with _running(proxy, signal.SIGINT):
            wait_http(f"http://127.0.0.1:{proxy_port}{app.ready_path()}", proxy, log=proxy_log)
            d = Driver(f"http://127.0.0.1:{proxy_port}")
            d.sent.append(Sent("readiness check", "GET", app.ready_path(), 200))  # wait_http's call through the proxy
            try:
                app.drive(d, quick=quick, seed=seed)
            finally:
                d.close()
        summary = proxy_log.read_text(errors="replace").strip().splitlines()
        if proxy.returncode != 0:
            raise RuntimeError(f"apiward proxy exited with {proxy.returncode}:\n" + "\n".join(summary[-30:]))
    findings = orjson.loads(cli("findings", "--kind", "attack", "--format", "json", "--state", str(state)).stdout or "[]")
    inventory = orjson.loads(cli("inventory", "--format", "json", "--state", str(state)).stdout or "[]")
    probes = orjson.loads(cli("inventory", "--probes", "--format", "json", "--state", str(state)).stdout or "[]")
    return AppRun(
        app=app.name, routes=routes, sent=d.sent, actors=d.actors, attacks=d.attacks, findings=findings,
        inventory=_endpoints(inventory), probes=probes, proxy_summary=summary[-1] if summary else "",
        seconds=time.monotonic() - t0,
    )


def _endpoints(inv: Any) -> list[dict[str, Any]]:
    """The endpoint records of ``apiward inventory --format json``."""
    if isinstance(inv, dict):
        inv = inv.get("endpoints", [])
    if not isinstance(inv, list):
        raise ValueError(f"apiward inventory --format json: expected a list of endpoints, got {type(inv).__name__}")
    return inv
