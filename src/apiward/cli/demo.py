"""``apiward demo``: the whole product in one command.

Starts the DemoBank API on a free loopback port (in this process), puts
``apiward proxy`` in front of it (a subprocess that analyses live, as in
production), runs the traffic simulator -- benign customers and labelled
attackers, in virtual time -- through the proxy, deploys API v3 half way,
then prints what apiward found: the inventory, shadow and zombie endpoints,
sensitive fields, findings and attackers. The state stays in ``--state`` for
``apiward inventory``, ``findings``, ``query`` and friends.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from apiward.cli.common import DEFAULT_STATE, StateOpt, console, fail, out

__all__ = ["register", "render_state"]

_MARKER = ".apiward-demo"
_PARAM = re.compile(r"\{[^}]*\}|<[^>]*>|:[A-Za-z_]\w*")
_SEV_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
_DISPLAY = re.compile(r"[^\s()]+")  # "alice (203.0.113.9)" -> alice, 203.0.113.9
_SEV_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"apiward proxy exited early: {err.strip()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("apiward proxy did not start listening")


def _prepare_state(state: Path) -> None:
    """A fresh demo state. Refuses to wipe a directory that is not a
    previous demo's."""
    if state.exists() and any(state.iterdir()):
        if not (state / _MARKER).exists():
            fail(f"{state} already holds apiward state that is not a demo's; pass --state DIR for the demo")
        shutil.rmtree(state)
    state.mkdir(parents=True, exist_ok=True)
    (state / _MARKER).write_text("created by apiward demo; safe to delete\n")


def _norm(template: str) -> str:
    return _PARAM.sub("{}", template.rstrip("/") or "/")


def _documented() -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(documented, deprecated) operations of the demo API's published spec."""
    from apiward.sim.demoapp import demo_spec

    documented: set[tuple[str, str]] = set()
    deprecated: set[tuple[str, str]] = set()
    for path, ops in demo_spec(version=2).get("paths", {}).items():
        for method, op in ops.items():
            key = (method.upper(), _norm(path))
            documented.add(key)
            if isinstance(op, dict) and op.get("deprecated"):
                deprecated.add(key)
    return documented, deprecated


def _exists(rec: Any) -> bool:
    """The endpoint answered something besides 404/405 (scanner noise)."""
    return any(int(s) not in (0, 404, 405) for s in getattr(rec, "statuses", {}) or {})


def render_state(state: Path, labels_path: Path | None = None, *, max_rows: int = 40) -> dict[str, int]:
    """Print the demo's report from ``state``; returns headline counts."""
    from apiward.state import StateDir

    snap = StateDir(state).load()
    if snap is None:
        out.print("[red]no state was written[/]")
        return {}
    inventory = snap["inventory"]
    findings = list(snap["findings"].values())
    records = sorted((r for _, r in inventory.endpoints.each()), key=lambda r: (r.service, r.template, r.method))
    documented, deprecated = _documented()

    # Inventory
    t = Table(title="API inventory", title_justify="left")
    for col in ("method", "endpoint", "calls", "actors", "statuses", "auth", "status"):
        t.add_column(col, justify="right" if col in ("calls", "actors") else "left")
    shadow, zombie = [], []
    shown = 0
    for r in records:
        if not _exists(r):
            continue
        key = (r.method, _norm(r.template))
        tag = ""
        if key in deprecated:
            tag = "[magenta]zombie[/]"
            zombie.append(r)
        elif key not in documented:
            tag = "[yellow]shadow[/]"
            shadow.append(r)
        if shown < max_rows:
            sts = ", ".join(f"{k}:{v}" for k, v in sorted(r.statuses.items(), key=lambda kv: -kv[1])[:3])
            auth = ", ".join(sorted(r.auth_schemes)) or ("[red]none[/]" if r.unauth_2xx else "-")
            t.add_row(r.method, r.template, str(r.calls), str(r.actors), sts, auth, tag)
            shown += 1
    noise = sum(1 for r in records if not _exists(r))
    out.print(t)
    out.print(f"{shown} live endpoints shown; {noise} probed paths that only answered 404/405 (scanner noise) hidden.\n")

    # Shadow and zombie
    sz = Table(title="Shadow (undocumented) and zombie (deprecated but called) endpoints", title_justify="left")
    for col in ("kind", "method", "endpoint", "calls", "actors", "last seen (UTC)"):
        sz.add_column(col)
    for kind, rs in (("zombie", zombie), ("shadow", shadow)):
        for r in rs:
            sz.add_row(kind, r.method, r.template, str(r.calls), str(r.actors), time.strftime("%Y-%m-%d %H:%M", time.gmtime(r.last_seen)))
    out.print(sz)

    # Sensitive data
    st = Table(title="Sensitive fields", title_justify="left")
    for col in ("endpoint", "where", "field", "classes"):
        st.add_column(col)
    n_sens = 0
    for r in records:
        for k, classes in sorted(r.sensitive.items()):
            loc, _, field = k.partition("|")
            n_sens += 1
            if n_sens <= max_rows:
                st.add_row(f"{r.method} {r.template}", loc, field, ", ".join(classes))
    out.print(st)
    if n_sens > max_rows:
        out.print(f"... and {n_sens - max_rows} more (apiward inventory)")

    # Findings
    findings.sort(key=lambda f: (_SEV_ORDER.get(f.severity, 9), -f.count, f.detector))
    ft = Table(title=f"Findings ({len(findings)})", title_justify="left")
    for col in ("severity", "finding", "actor", "endpoint", "events", "OWASP"):
        ft.add_column(col, justify="right" if col == "events" else "left")
    for f in findings[:max_rows]:
        ft.add_row(
            f"[{_SEV_STYLE.get(f.severity, '')}]{f.severity}[/]", f.title, f.actor_display or f.actor or "-",
            f.endpoint or "-", str(f.count), f.owasp or "-",
        )
    out.print(ft)
    if len(findings) > max_rows:
        out.print(f"... and {len(findings) - max_rows} more (apiward findings)")

    # Attackers
    truth: dict[str, set[str]] = {}
    if labels_path is not None and labels_path.exists():
        from apiward.sim.labels import load_labels

        for a in load_labels(labels_path).attacks:
            for who in a.ips + a.users:
                if who:
                    truth.setdefault(who, set()).add(a.attack)
    by_actor: dict[str, list[Any]] = {}
    for f in findings:
        if f.actor:
            by_actor.setdefault(f.actor, []).append(f)
    at = Table(title=f"Actors with findings ({len(by_actor)})", title_justify="left")
    for col in ("actor", "severity", "findings", "tactics", "detectors") + (("simulated as",) if truth else ()):
        at.add_column(col)
    rows = sorted(by_actor.items(), key=lambda kv: (min(_SEV_ORDER.get(f.severity, 9) for f in kv[1]), -len(kv[1])))
    caught = 0
    for actor, fs in rows[:max_rows]:
        sev = min((f.severity for f in fs), key=lambda s: _SEV_ORDER.get(s, 9))
        disp = fs[0].actor_display or actor
        row = [disp, f"[{_SEV_STYLE.get(sev, '')}]{sev}[/]", str(len(fs)),
               ", ".join(sorted({f.tactic for f in fs if f.tactic})) or "-", ", ".join(sorted({f.detector for f in fs}))]
        if truth:
            names = {actor.partition(":")[2]} | set(_DISPLAY.findall(disp))
            who = sorted(set().union(*(truth.get(n, set()) for n in names)))
            caught += bool(who)
            row.append(f"[red]attacker: {', '.join(who)}[/]" if who else "benign")
        at.add_row(*row)
    out.print(at)
    if truth and rows:
        out.print(f"{caught} of {len(rows)} actors with findings were simulated attackers (or the accounts they used).")
    return {"endpoints": shown, "shadow": len(shadow), "zombie": len(zombie), "sensitive": n_sens, "findings": len(findings),
            "actors": len(by_actor)}


def _write_config(state: Path, work: Path) -> None:
    """The demo's ``apiward.toml``: the simulator stands in for a load
    balancer on loopback (its X-Forwarded-For is the client), and the
    DemoBank spec is the documented API."""
    import orjson

    from apiward.sim.demoapp import demo_spec

    spec = work / "demobank-openapi.json"
    spec.write_bytes(orjson.dumps(demo_spec(version=2), option=orjson.OPT_INDENT_2))
    (state / "apiward.toml").write_text(
        "# written by apiward demo\n"
        'trusted_proxies = ["127.0.0.0/8", "::1/128"]\n'
        f"spec = [{orjson.dumps(str(spec.resolve())).decode()}]\n"
    )


def run_demo(state: Path, *, users: int, duration: float, seed: int, attacks: str) -> dict[str, Any]:
    """Serve, proxy, simulate, drain; returns the run's figures."""
    from apiward.sim.demoapp import create_app, set_version
    from apiward.sim.server import ServerThread

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import httpx

        from apiward.sim.simulator import DEFAULT_START, simulate

    work = state / "demo"
    work.mkdir(parents=True, exist_ok=True)
    population = max(500, users + 100)
    _write_config(state, work)
    figures: dict[str, Any] = {}
    with Progress(
        SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), console=console,
    ) as prog:
        t_api = prog.add_task("start the DemoBank API", total=1, info="")
        app = create_app(str(work / "demobank.sqlite"), vulnerable=True, seed_users=population)
        server = ServerThread(app).start()
        prog.update(t_api, completed=1, info=server.base_url)

        t_px = prog.add_task("start apiward proxy", total=1, info="")
        port = _free_port()
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        proxy = subprocess.Popen(
            [sys.executable, "-m", "apiward", "proxy", "--listen", f"127.0.0.1:{port}", "--upstream", server.base_url,
             "--state", str(state), "--trust-sim-clock", "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
        )
        try:
            _wait_port(port, proxy)
            prog.update(t_px, completed=1, info=f"http://127.0.0.1:{port} -> {server.base_url}")

            t_sim = prog.add_task("simulate users and attackers", total=duration, info="")
            sent = [0]

            def hook(request: httpx.Request) -> None:
                sent[0] += 1
                if sent[0] % 25 == 0:
                    ts = request.headers.get("x-apiward-sim-ts")
                    if ts:
                        prog.update(t_sim, completed=float(ts) - DEFAULT_START, info=f"{sent[0]} requests")

            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0, trust_env=False,
                              event_hooks={"request": [hook]}) as client:
                res = simulate(
                    client, seed=seed, users=users, duration=duration, attacks=attacks, out_dir=work,
                    population=population, host="api.demobank.test", deploy_at=duration / 2,
                    on_deploy=lambda: set_version(app, 3), record=False,
                )
            prog.update(t_sim, completed=duration, info=f"{res.requests} requests ({res.attack_requests} attack)")
            figures.update(requests=res.requests, attack_requests=res.attack_requests, sim_seconds=res.elapsed_s)

            t_dr = prog.add_task("drain the capture queue and checkpoint", total=1, info="")
            proxy.send_signal(signal.SIGTERM)
            _, err = proxy.communicate(timeout=300)
            line = next((ln for ln in err.decode(errors="replace").splitlines() if "proxy stopped" in ln), "")
            prog.update(t_dr, completed=1, info=line.replace("apiward proxy stopped: ", ""))
            figures["proxy"] = line
            if proxy.returncode != 0:
                raise RuntimeError(f"apiward proxy failed: {err.decode(errors='replace')[-2000:]}")
        finally:
            if proxy.poll() is None:
                proxy.kill()
                proxy.wait(10)
            server.stop()
            app.state.store.close()
    return figures


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        quick: Annotated[bool, typer.Option("--quick", help="A small run (well under two minutes).")] = False,
        state: StateOpt = DEFAULT_STATE,
        users: Annotated[int | None, typer.Option("--users", help="Simulated benign customers.")] = None,
        seed: Annotated[int, typer.Option("--seed", help="Simulation seed (same seed, same traffic).")] = 1,
        hours: Annotated[float | None, typer.Option("--hours", help="Virtual hours of traffic.")] = None,
        attacks: Annotated[str, typer.Option("--attacks", help="Attack classes: all, all_slow, none or a comma list.")] = "all",
        serve: Annotated[bool, typer.Option("--serve/--no-serve", help="End with the web console running on the demo's data (Ctrl-C stops it).")] = True,
        listen: Annotated[str, typer.Option("--listen", help="Where the console listens (with --serve), host:port.")] = "127.0.0.1:8000",
    ) -> None:
        """Run the demo: DemoBank API + apiward proxy + simulated users and attackers, analysed live.

        Leaves the state in --state for `apiward inventory`, `findings`, `query`, and ends with
        the web console serving it (`--no-serve` to skip, as scripts and CI do).
        """
        n_users = users or (40 if quick else 150)
        duration = 3600.0 * (hours or (8.0 if quick else 24.0))
        _prepare_state(state)
        out.print(
            f"[bold]apiward demo[/]: {n_users} simulated customers and attackers over {duration / 3600:.0f} virtual hours, "
            f"through apiward proxy, state in {state}"
        )
        t0 = time.perf_counter()
        try:
            figures = run_demo(state, users=n_users, duration=duration, seed=seed, attacks=attacks)
        except (RuntimeError, OSError, ValueError) as exc:
            fail(str(exc), 1)
            return
        out.print()
        counts = render_state(state, state / "demo" / "labels.json")
        out.print(
            f"\n[bold]done[/] in {time.perf_counter() - t0:.0f} s: {figures.get('requests', 0)} requests "
            f"({figures.get('attack_requests', 0)} from attackers), {counts.get('endpoints', 0)} endpoints, "
            f"{counts.get('shadow', 0)} shadow, {counts.get('zombie', 0)} zombie, {counts.get('findings', 0)} findings."
        )
        out.print(
            f"Explore: apiward inventory --state {state} | apiward findings --state {state} | "
            f"apiward query --state {state} \"select method, count(*) from calls group by 1\""
        )
        if serve:
            from apiward.cli.serve import run_server

            out.print(f"\n[bold]Console[/]: http://{listen}/ (sign in with the admin token below; Ctrl-C stops it)")
            try:
                run_server(state, listen)
            except OSError as exc:
                fail(f"cannot serve on {listen}: {exc.strerror or exc}", 1)
