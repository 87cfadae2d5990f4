"""recon.scanning: scanner agents, sensitive-file probes, 404 storms, unknown
paths and method fuzzing, per actor."""

from __future__ import annotations

from apiward.state import codec

from apiward.detect.recon import Scanning
from apiward.model.context import Context, EndpointRef
from apiward.pipeline import Pipeline
from apiward.testing import make_call

T0 = 1_764_000_000.0


class Stream:
    def __init__(self, det: Scanning) -> None:
        self.det = det
        self.findings: list = []
        self.t = T0

    def __call__(self, method: str, path: str, status: int = 200, **kw):
        self.t += 2.0
        c = make_call(method, path, status=status, ts=self.t, **kw)
        ctx = Context(endpoint=EndpointRef(host=c.request.host, method=method, template=path.split("?")[0]))
        self.findings.extend(self.det.score_one(c, ctx))
        self.det.learn_one(c, ctx)
        return c


def browse(s: Stream, users: int = 20) -> None:
    for i in range(users):
        for p in range(15):
            s("GET", f"/api/v2/products/{p}", user=f"u{i}", ip=f"198.51.100.{i}", user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0")


def test_normal_users_with_a_stray_404_and_api_docs_are_quiet() -> None:
    s = Stream(Scanning())
    browse(s)
    # one mistyped URL, a developer reading the docs, CORS preflight + edits
    s("GET", "/api/v2/prodcts/3", status=404, user="u1", ip="198.51.100.1")
    s("GET", "/docs", user="dev", ip="198.51.100.90")
    s("GET", "/openapi.json", user="dev", ip="198.51.100.90")
    for m in ("OPTIONS", "PUT", "DELETE"):
        s(m, "/api/v2/orders/7", user="u2", ip="198.51.100.2")
    assert s.findings == []


def test_scanner_agent_is_flagged_once_per_actor_and_grows() -> None:
    s = Stream(Scanning(flush_every=4))
    browse(s, 5)
    ua = "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)"
    calls = [s("GET", f"/api/v2/x{i}", status=404, ip="192.0.2.9", user_agent=ua) for i in range(12)]
    assert s.findings, "scanner agent not flagged"
    f = s.findings[0]
    assert f.detector == "recon.scanning" and f.actor == "ip:192.0.2.9"
    assert "scanner_agent" in f.evidence["signals"] and f.event_ids == [calls[0].id]
    assert f.owasp == "API9:2023" and f.attack == "T1595" and f.tactic == "reconnaissance"
    assert len({x.key for x in s.findings}) == 1
    covered = {e for x in s.findings for e in x.event_ids}
    assert len(covered & {c.id for c in calls}) >= 10  # later events are folded in
    assert any("not_found_storm" in x.evidence["signals"] for x in s.findings)


def test_secret_and_spec_probes_with_a_plain_client() -> None:
    s = Stream(Scanning())
    browse(s, 5)
    probes = ["/.env", "/.git/config", "/swagger.json", "/backup.zip"]
    calls = [s("GET", p, status=404, ip="192.0.2.10", user_agent="curl/8.4.0") for p in probes]
    assert s.findings
    f = s.findings[-1]
    assert f.evidence["signals"]["probes"] >= 2
    assert set(f.evidence["probed_paths"]) <= set(probes)
    assert set(f.event_ids) <= {c.id for c in calls}


def test_exposed_secret_file_is_high_severity_at_once() -> None:
    s = Stream(Scanning())
    c = s("GET", "/.env", status=200, ip="192.0.2.11", user_agent="curl/8.4.0", body=b"DB_PASSWORD=x")
    assert len(s.findings) == 1
    f = s.findings[0]
    assert f.severity == "high" and f.evidence["signals"]["exposed_secret"] == "/.env" and f.event_ids == [c.id]


def test_method_fuzzing() -> None:
    s = Stream(Scanning())
    browse(s, 3)
    for m in ("OPTIONS", "PUT", "TRACE", "PATCH", "DELETE", "PROPFIND"):
        s(m, "/api/v2/users/1", status=405, ip="192.0.2.12", user_agent="python-requests/2.31.0")
    assert s.findings
    assert "method_fuzzing" in s.findings[-1].evidence["signals"]


def test_not_found_storm_is_relative_to_the_norm() -> None:
    det = Scanning(min_not_found=10)
    s = Stream(det)
    browse(s, 10)
    for i in range(9):  # below the distinct-path floor
        s("GET", f"/api/v2/w{i}", status=404, ip="192.0.2.13", user_agent="Go-http-client/1.1")
    assert s.findings == []
    s("GET", "/api/v2/w9", status=404, ip="192.0.2.13", user_agent="Go-http-client/1.1")
    assert s.findings and "not_found_storm" in s.findings[-1].evidence["signals"]
    # a heavy user with many successes and a dozen 404s is far below the ratio bar
    for i in range(200):
        s("GET", f"/api/v2/products/{i % 40}", user="busy", ip="198.51.100.77")
    for i in range(12):
        s("GET", f"/api/v2/products/gone{i}", status=404, user="busy", ip="198.51.100.77")
    assert not [f for f in s.findings if f.actor == "user:busy"]
    assert codec.loads(codec.dumps(det))._actors.keys() == det._actors.keys()


def test_unknown_paths_through_the_pipeline(tmp_path) -> None:
    """With the real inventory: templates nobody else called, mostly 404."""
    pipe = Pipeline(tmp_path / "state", detectors=[Scanning(min_unknown=12, min_not_found=1000)])
    t = T0
    calls = []
    for i in range(30):
        for u in range(6):
            t += 1
            calls.append(make_call("GET", f"/api/v2/catalog/{i}", ts=t, user=f"u{u}", ip=f"198.51.100.{u}"))
    words = ["alpha", "beta", "gamma", "delta", "omega", "zeta", "theta", "kappa", "sigma", "lambda", "epsilon", "iota", "rho", "tau"]
    probe = []
    for w in words:
        t += 1
        probe.append(make_call("GET", f"/internal/{w}/{w}x", status=404, ts=t, ip="192.0.2.14", user_agent="okhttp/4.9.3"))
    found = pipe.process(calls + probe)
    pipe.close()
    mine = [f for f in found if f.actor == "ip:192.0.2.14"]
    assert mine and "unknown_paths" in mine[-1].evidence["signals"]
    assert not [f for f in found if f.actor != "ip:192.0.2.14"]


def at(det: Scanning, out: list, ts: float, method: str, path: str, status: int = 200, template: str | None = None, **kw):
    c = make_call(method, path, status=status, ts=ts, **kw)
    ctx = Context(endpoint=EndpointRef(host=c.request.host, method=method, template=template or path))
    out.extend(det.score_one(c, ctx))
    det.learn_one(c, ctx)
    return c


def test_slow_sweep_over_days_is_flagged_call_by_call() -> None:
    """One probe every 3-4 hours for five days: never a storm within a
    horizon, but a pile of distinct not-found and refused endpoints."""
    det = Scanning()
    out: list = []
    words = ["backup", "hidden", "secret", "audit", "tokens", "dev", "debug", "staging", "sessions", "beta", "reports", "private",
             "logs", "upload", "export", "import", "old", "keys", "metrics", "internal", "legacy", "temp", "v0", "test", "mirror",
             "stats", "jobs", "queue", "cache", "files", "raw", "dump", "sync", "hooks", "tasks", "events"]
    t = T0
    probes = []
    for i, w in enumerate(words):
        t += 11_000 + (i % 3) * 1200
        refused = i % 7 == 3  # the odd path exists and wants credentials
        probes.append(at(det, out, t, "GET", f"/api/v2/{w}", status=401 if refused else 404, ip="192.0.2.77", user_agent="Mozilla/5.0 Firefox/126.0"))
        # benign traffic around it keeps the global norm realistic
        for u in range(3):
            at(det, out, t + u, "GET", f"/api/v2/products/{i}", template="/api/v2/products/{id}", user=f"u{u}", ip=f"198.51.100.{u}")
    assert t - T0 > 86_400  # the sweep outlives one horizon
    mine = [f for f in out if f.actor == "ip:192.0.2.77"]
    assert mine and set(mine[0].evidence["signals"]) == {"slow_probing"}
    first = next(i for i, c in enumerate(probes) if c.id in mine[0].event_ids[-1:])
    assert 10 <= first < 25
    covered = {e for f in mine for e in f.event_ids}
    # the probes before the trigger ride along with it, every later one is reported as it comes, across horizons
    assert {c.id for c in probes} <= covered
    assert not [f for f in out if f.actor != "ip:192.0.2.77"]


def test_slow_look_alikes_are_quiet() -> None:
    """A client whose token expires every hour (401 on the endpoints it
    polls, then a refresh) and who follows stale links for three days, and a
    shared address where people mistype their password."""
    det = Scanning()
    out: list = []
    t = T0
    for h in range(72):
        for k in range(30):
            t += 60
            at(det, out, t, "GET", f"/api/v2/orders/{k}", template="/api/v2/orders/{id}", user="poller", ip="198.51.100.9")
        for ep in ("/api/v2/users/me", "/api/v2/accounts", "/api/v2/notifications"):
            at(det, out, t + 1, "GET", ep, status=401, user="poller", ip="198.51.100.9")
        if h % 6 == 0:
            at(det, out, t + 2, "GET", f"/api/v2/promo-{h}", status=404, user="poller", ip="198.51.100.9")
        for k in range(4):
            at(det, out, t + 3 + k, "POST", "/api/v2/auth/login", status=401 if k % 2 else 200, ip="203.0.113.200",
               req_json={"username": f"p{h}-{k}", "password": "x"})
    assert out == []
    assert codec.loads(codec.dumps(det))._actors["user:poller"].slow is not None


def test_methods_the_api_serves_are_not_method_fuzzing():
    from apiward.detect.recon import Scanning
    from apiward.model.context import Context, EndpointRef
    from apiward.testing import make_call

    det = Scanning()
    found = []
    t = 1_764_000_000.0
    for i in range(30):  # a CalDAV client's sync: WebDAV methods, answered 207/201
        for m, st in (("PROPFIND", 207), ("REPORT", 207), ("MKCALENDAR", 201), ("PUT", 201), ("DELETE", 204)):
            t += 1
            c = make_call(m, "/alice/work/", status=st, ts=t, user="alice")
            ctx = Context(endpoint=EndpointRef(host=c.request.host, method=m, template="/{user}/{calendar}/"))
            found += det.score_one(c, ctx)
            det.learn_one(c, ctx)
    assert found == []


def test_release_archives_are_not_secret_probes():
    from apiward.detect.injection import _probe
    from apiward.detect.recon import Scanning

    det = Scanning()
    assert det._probe("/packages/alice_water_bottle-0.1.0.tar.gz") == "" and not _probe("/packages/app-1.2.tar.gz")
    assert det._probe("/backup.tar.gz") == "secret" and _probe("/backup-2023-01-01.tar.gz") and _probe("/db.sql")
