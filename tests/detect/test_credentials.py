"""credentials.stuffing and credentials.account_takeover on login flows
recognised from traffic (no fixed path)."""

from __future__ import annotations

import pickle

from apiward.detect.credentials import AccountTakeover, Stuffing
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

LOGIN = "/v2/auth/session"


class Stream:
    def __init__(self, *dets):
        self.dets = dets
        self.findings = []
        self.t = 1_764_000_000.0

    def login(self, who, ok, *, ip="203.0.113.7", pw=None, ua="Mozilla/5.0", dt=5.0):
        self.t += dt
        body = {"email": who, "password": pw or f"pw-{who}"}
        if ok:
            c = make_call("POST", LOGIN, ts=self.t, ip=ip, user_agent=ua, req_json=body, json={"access_token": "eyJx.eyJy.z", "expires_in": 3600})
        else:
            c = make_call("POST", LOGIN, ts=self.t, ip=ip, user_agent=ua, req_json=body, status=401, json={"error": "invalid credentials"})
        return self.feed(c, LOGIN)

    def feed(self, c, template):
        ctx = Context(endpoint=EndpointRef(host=c.request.host, method=c.request.method, template=template))
        for d in self.dets:
            self.findings.extend(d.score_one(c, ctx))
        for d in self.dets:
            d.learn_one(c, ctx)
        return c

    def by(self, det_id):
        return [f for f in self.findings if f.detector == det_id]


def benign(s):
    for i in range(30):
        s.login(f"user{i}@example.com", True, ip=f"198.51.100.{i}")
    # a user mistypes twice, then gets in
    s.login("user3@example.com", False, ip="198.51.100.3")
    s.login("user3@example.com", False, ip="198.51.100.3")
    s.login("user3@example.com", True, ip="198.51.100.3")
    # sign-ups (201) and password changes are not logins
    for i in range(10):
        s.feed(make_call("POST", "/v2/accounts", ts=s.t, status=201, req_json={"email": f"new{i}@example.com", "password": "x"},
                         json={"id": 900 + i}), "/v2/accounts")
        s.feed(make_call("POST", "/v2/me/password", ts=s.t, status=401, user=f"user{i}",
                         req_json={"old_password": "a", "new_password": "b"}, json={}), "/v2/me/password")


def test_benign_logins_and_typos_are_quiet():
    s = Stream(Stuffing(), AccountTakeover())
    benign(s)
    assert s.findings == []


def test_stuffing_burst_early_in_the_stream_and_the_takeover_it_yields():
    s = Stream(Stuffing(), AccountTakeover())
    calls = []
    for i in range(20):
        calls.append(s.login(f"victim{i}@example.com", ok=(i == 15), ip="192.0.2.66", dt=0.5))
    st = s.by("credentials.stuffing")
    assert st, "stuffing not flagged"
    f = st[-1]
    assert f.title == "Credential stuffing" and f.attack == "T1110.004" and f.tactic == "credential-access"
    assert f.evidence["source"] == "ip:192.0.2.66" and f.evidence["usernames"] == 20
    assert set(f.event_ids) == {c.id for c in calls}
    assert len({x.key for x in st}) == 1  # one finding per source
    ato = s.by("credentials.account_takeover")
    assert len(ato) == 1 and ato[0].evidence["account"] == "victim15@example.com"
    assert ato[0].event_ids[-1] == calls[15].id and ato[0].severity == "critical"


def test_brute_force_then_success():
    s = Stream(Stuffing(), AccountTakeover())
    benign(s)
    calls = [s.login("user7@example.com", False, ip="192.0.2.9", pw=f"guess{i}") for i in range(9)]
    win = s.login("user7@example.com", True, ip="192.0.2.9", pw="right")
    brute = [f for f in s.by("credentials.stuffing") if f.title == "Password brute force"]
    assert brute and brute[-1].attack == "T1110.001" and set(brute[-1].event_ids) >= {c.id for c in calls[-8:]}
    ato = s.by("credentials.account_takeover")
    assert len(ato) == 1 and win.id in ato[0].event_ids and calls[-1].id in ato[0].event_ids


def test_password_spraying_from_many_addresses():
    det = Stuffing()
    s = Stream(det, AccountTakeover())
    benign(s)
    calls = [s.login(f"user{i}@example.com", False, ip=f"203.0.113.{100 + i}", pw="Winter2025!") for i in range(8)]
    spray = [f for f in s.by("credentials.stuffing") if f.title == "Password spraying"]
    assert spray and spray[-1].attack == "T1110.003" and spray[-1].evidence["sources"] >= 6
    assert set(spray[-1].event_ids) <= {c.id for c in calls}
    # no per-source stuffing: each address tried one account
    assert not [f for f in s.by("credentials.stuffing") if f.title == "Credential stuffing"]
    det2 = pickle.loads(pickle.dumps(det))
    assert det2.logins.pwd


def test_known_account_from_new_device_alone_is_not_takeover():
    s = Stream(Stuffing(), AccountTakeover())
    benign(s)
    for _ in range(3):
        s.login("user5@example.com", True, ip="198.51.100.5")
    s.login("user5@example.com", True, ip="192.0.2.200", ua="curl/8.0")
    assert s.findings == []
