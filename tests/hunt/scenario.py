"""A scripted multi-identity, multi-day attack plus benign users behind a
carrier NAT, written to a lake with the findings a detector would raise.

Day 1: address A scans the API (recon), then, from the same device,
signs up 'mallory' and uses her token. Day 2: from address B (a new
device) the attacker logs in as mallory, then brute-forces the victim's
password until it works; 40 minutes later, from address C and yet
another device, it logs into the victim's account and walks other
customers' records (BOLA) carrying e-mails and phones. The victim uses
the account normally from home (H) on day 1. Six benign users share the
NAT address N with the same phone app; one of them has a (false
positive) finding.
"""

from __future__ import annotations

from pathlib import Path

from apiward.model.call import Actor
from apiward.model.finding import Finding
from apiward.pipeline import Pipeline
from apiward.sim.demoapp import jwt_encode
from apiward.testing import make_call

DAY1 = 1_740_787_200.0 + 3600  # 2025-03-01 01:00Z
DAY2 = DAY1 + 86400
A, B, C, H, N = "203.0.113.50", "198.51.100.77", "192.0.2.99", "198.51.100.5", "192.0.2.200"
UA_A, UA_B, UA_C = "curl/8.4.0", "python-requests/2.31.0", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
UA_VICTIM, UA_APP = "Mozilla/5.0 (Macintosh) Safari/17.4", "DemoBank/5.2 (iPhone; iOS 17.4)"


def tok(sub: str, t: float) -> str:
    return jwt_encode({"sub": sub, "uid": 1, "role": "user", "iat": int(t), "exp": int(t) + 3600})


def call(method: str, path: str, *, ip: str, ua: str, ts: float, id: str, token: str | None = None, status: int = 200,
         json=None, req_json=None):
    h = {"authorization": f"Bearer {token}"} if token else {}
    c = make_call(method, path, ip=ip, user_agent=ua, ts=ts, id=id, status=status, json=json, req_json=req_json, headers=h,
                  host="bank.test")
    c.actor = Actor()  # resolved by the pipeline, from the token or the address
    return c


def build(state: Path) -> dict[str, list[str]]:
    calls, ev = [], {"recon": [], "stuffing": [], "bola": [], "nat1": []}
    t = DAY1
    # victim at home, day 1
    v0 = tok("victim", t)
    calls.append(call("POST", "/api/login", ip=H, ua=UA_VICTIM, ts=t, id="v-login", req_json={"username": "victim@example.com", "password": "pw"},
                      json={"access_token": v0, "user_id": 7}))
    calls += [call("GET", "/api/me", ip=H, ua=UA_VICTIM, ts=t + 5 + i, id=f"v-me-{i}", token=v0, json={"id": 7, "name": "V"}) for i in range(3)]
    # day 1: recon from A
    for i in range(30):
        cid = f"a-scan-{i}"
        calls.append(call("GET", f"/api/{['admin', 'debug', 'backup', 'env', 'config', 'private'][i % 6]}{i}", ip=A, ua=UA_A, ts=t + 600 + i, id=cid, status=404))
        ev["recon"].append(cid)
    # day 1: same device signs up mallory and uses her token
    calls.append(call("POST", "/api/signup", ip=A, ua=UA_A, ts=t + 1200, id="a-signup", status=201,
                      req_json={"email": "mallory@evil.test", "password": "x"}, json={"id": 99, "username": "mallory"}))
    m1 = tok("mallory", t + 1210)
    calls.append(call("POST", "/api/login", ip=A, ua=UA_A, ts=t + 1210, id="a-login", req_json={"username": "mallory@evil.test", "password": "x"},
                      json={"access_token": m1, "user_id": 99}))
    calls += [call("GET", "/api/me", ip=A, ua=UA_A, ts=t + 1220 + i, id=f"m-me-{i}", token=m1, json={"id": 99}) for i in range(2)]
    # benign NAT users on day 1: same app, same address, minutes apart
    for u in range(6):
        tk = tok(f"nat{u}", t + 2000 + u * 60)
        calls.append(call("POST", "/api/login", ip=N, ua=UA_APP, ts=t + 2000 + u * 60, id=f"n{u}-login",
                          req_json={"username": f"nat{u}@example.com", "password": "p"}, json={"access_token": tk, "user_id": 100 + u}))
        for i in range(3):
            cid = f"n{u}-me-{i}"
            calls.append(call("GET", "/api/me", ip=N, ua=UA_APP, ts=t + 2005 + u * 60 + i, id=cid, token=tk, json={"id": 100 + u}))
            if u == 1:
                ev["nat1"].append(cid)
    # day 2: B logs in as mallory, then brute-forces the victim
    t = DAY2
    m2 = tok("mallory", t)
    calls.append(call("POST", "/api/login", ip=B, ua=UA_B, ts=t, id="b-login-m", req_json={"username": "mallory@evil.test", "password": "x"},
                      json={"access_token": m2, "user_id": 99}))
    calls.append(call("GET", "/api/me", ip=B, ua=UA_B, ts=t + 5, id="b-me", token=m2, json={"id": 99}))
    for i in range(12):
        cid = f"b-fail-{i}"
        calls.append(call("POST", "/api/login", ip=B, ua=UA_B, ts=t + 60 + i * 5, id=cid, status=401,
                          req_json={"username": "victim@example.com", "password": f"guess{i}"}, json={"detail": "wrong password"}))
        ev["stuffing"].append(cid)
    calls.append(call("POST", "/api/login", ip=B, ua=UA_B, ts=t + 130, id="b-crack", req_json={"username": "victim@example.com", "password": "pw"},
                      json={"access_token": tok("victim", t + 130), "user_id": 7}))
    ev["stuffing"].append("b-crack")
    # day 2 +40 min: C logs into the victim's account and walks other customers' records
    v2 = tok("victim", t + 2400)
    calls.append(call("POST", "/api/login", ip=C, ua=UA_C, ts=t + 2400, id="c-login", req_json={"username": "victim@example.com", "password": "pw"},
                      json={"access_token": v2, "user_id": 7}))
    for k in range(30):
        cid = f"c-bola-{k}"
        calls.append(call("GET", f"/api/customers/{200 + k}", ip=C, ua=UA_C, ts=t + 3600 + k * 10, id=cid, token=v2,
                          json={"id": 200 + k, "user_id": 200 + k, "email": f"customer{k}@example.com", "phone": f"+1 202 555 01{k:02d}"}))
        ev["bola"].append(cid)
    calls.sort(key=lambda c: c.ts)
    pipe = Pipeline(state, detectors=[])
    pipe.process(calls)
    pipe._event_ts = {c.id: c.ts for c in calls}
    ts = pipe._event_ts

    def f(det: str, actor: str, tactic: str, attack: str, owasp: str, ids: list[str], sev: str = "high", ep: str = "") -> Finding:
        return Finding(detector=det, title=det, severity=sev, confidence=0.8, owasp=owasp, attack=attack, tactic=tactic, actor=actor,
                       actor_display=actor.split(":", 1)[1], endpoint=ep, event_ids=ids, first_seen=ts[ids[0]], last_seen=ts[ids[-1]],
                       summary=f"{det} by {actor}")

    pipe.record([
        f("recon.scanning", f"ip:{A}", "reconnaissance", "T1595", "API9:2023", ev["recon"], "medium", "GET /api/{x}"),
        f("credentials.stuffing", f"ip:{B}", "credential-access", "T1110.001", "API2:2023", ev["stuffing"], "high", "POST /api/login"),
        f("bola.cross_owner_access", "user:victim", "collection", "T1213", "API1:2023", ev["bola"], "critical", "GET /api/customers/{id}"),
        f("anomaly.behaviour", "user:nat1", "initial-access", "T1078", "API6:2023", ev["nat1"], "low", "GET /api/me"),
    ])
    pipe.close()
    return ev
