"""credentials.stuffing and credentials.account_takeover on login flows
recognised from traffic (no fixed path)."""

from __future__ import annotations

from apiward.state import codec

from apiward.detect.credentials import AccountTakeover, Stuffing
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

LOGIN = "/v2/auth/session"


class Stream:
    def __init__(self, *dets):
        self.dets = dets
        self.findings = []
        self.t = 1_764_000_000.0
        self.shared = {}  # what the pipeline shares between its detectors

    def login(self, who, ok, *, ip="203.0.113.7", pw=None, ua="Mozilla/5.0", dt=5.0):
        self.t += dt
        body = {"email": who, "password": pw or f"pw-{who}"}
        if ok:
            c = make_call("POST", LOGIN, ts=self.t, ip=ip, user_agent=ua, req_json=body, json={"access_token": "eyJx.eyJy.z", "expires_in": 3600})
        else:
            c = make_call("POST", LOGIN, ts=self.t, ip=ip, user_agent=ua, req_json=body, status=401, json={"error": "invalid credentials"})
        return self.feed(c, LOGIN)

    def feed(self, c, template):
        ctx = Context(endpoint=EndpointRef(host=c.request.host, method=c.request.method, template=template), shared=self.shared)
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
    det2 = codec.loads(codec.dumps(det))
    assert det2.logins.pwd


def test_known_account_from_new_device_alone_is_not_takeover():
    s = Stream(Stuffing(), AccountTakeover())
    benign(s)
    for _ in range(3):
        s.login("user5@example.com", True, ip="198.51.100.5")
    s.login("user5@example.com", True, ip="192.0.2.200", ua="curl/8.0")
    assert s.findings == []


# -- low-and-slow and what a takeover's session does -----------------------------------

HOUR = 3600.0


def nat_week(s, hours=60):
    """A carrier NAT address shared by many users over days: everybody logs in,
    some mistype once first."""
    for h in range(hours):
        for j in range(3):
            u = f"mobile{(h * 3 + j) % 40}@example.com"
            if (h + j) % 7 == 0:
                s.login(u, False, ip="198.51.100.250", pw=f"typo-{u}", dt=30)
            s.login(u, True, ip="198.51.100.250", dt=30)
        s.t += HOUR - 180


def test_slow_stuffing_from_one_source_over_days_and_a_busy_nat_is_not():
    s = Stream(Stuffing(), AccountTakeover())
    nat_week(s)
    assert s.findings == [], [f.summary for f in s.findings]
    calls = [s.login(f"leak{i}@example.com", False, ip="192.0.2.90", dt=2 * HOUR) for i in range(8)]
    st = [f for f in s.by("credentials.stuffing") if f.title == "Low-and-slow credential stuffing"]
    assert st and st[-1].evidence["usernames"] >= 6 and st[-1].evidence["hours"] >= 10
    assert calls[-1].id in st[-1].event_ids and set(st[-1].event_ids) <= {c.id for c in calls}


def test_slow_spraying_one_password_over_a_day():
    s = Stream(Stuffing())
    benign(s)
    calls = [s.login(f"user{i}@example.com", False, ip=f"192.0.2.{40 + i % 3}", pw="Spring2025!", dt=HOUR) for i in range(10)]
    sp = [f for f in s.by("credentials.stuffing") if f.title == "Low-and-slow password spraying"]
    assert sp and {c.id for c in calls[-3:]} <= set(sp[-1].event_ids)


def test_slow_distributed_stuffing_of_unknown_usernames_and_first_login_typos_are_not():
    s = Stream(Stuffing())
    benign(s)
    # first-time users mistype, then get in: their failures resolve
    for i in range(15):
        s.login(f"newbie{i}@example.com", False, ip=f"203.0.113.{i}", pw=f"typo{i}", dt=600)
        s.login(f"newbie{i}@example.com", True, ip=f"203.0.113.{i}", dt=5)
    assert s.findings == []
    calls = [s.login(f"nobody{i}@example.com", False, ip=f"192.0.2.{100 + i}", dt=1800) for i in range(16)]
    f = [x for x in s.by("credentials.stuffing") if x.title == "Low-and-slow distributed credential stuffing"]
    assert f and f[0].evidence["usernames"] >= 12
    assert set(e for x in f for e in x.event_ids) <= {c.id for c in calls}


def test_slow_guessing_then_success_is_a_takeover_but_a_spray_then_the_owner_is_not():
    s = Stream(AccountTakeover())
    benign(s)
    for pw in ("a", "b", "c", "d"):
        s.login("user5@example.com", False, ip="192.0.2.77", pw=pw, dt=2 * HOUR)
    ok = s.login("user5@example.com", True, ip="192.0.2.77", dt=2 * HOUR)
    ato = s.by("credentials.account_takeover")
    assert len(ato) == 1 and ato[0].event_ids[-1] == ok.id and len(ato[0].event_ids) == 5
    # others' failures on an account (a spray), then its owner logs in from home
    for i, ip in enumerate(("192.0.2.1", "192.0.2.2", "192.0.2.3")):
        s.login("user7@example.com", False, ip=ip, pw=f"Spring{i}", dt=HOUR)
    s.login("user7@example.com", True, ip="198.51.100.7", dt=HOUR)
    assert len(s.by("credentials.account_takeover")) == 1


def test_the_session_a_takeover_opens_joins_the_finding_the_owners_own_does_not():
    det = AccountTakeover()
    s = Stream(det)
    benign(s)
    for i in range(6):
        s.login("user9@example.com", False, ip="192.0.2.66", pw=f"guess{i}", dt=1)
    tok = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyOSJ9.stolen"
    s.t += 2
    login = make_call("POST", LOGIN, ts=s.t, ip="192.0.2.66", req_json={"email": "user9@example.com", "password": "pw-user9@example.com"},
                      json={"access_token": tok})
    s.feed(login, LOGIN)
    key = s.by("credentials.account_takeover")[0].key
    after = []
    for path in ("/v2/me", "/v2/accounts", "/v2/payments"):
        s.t += 3
        c = make_call("GET", path, ts=s.t, ip="192.0.2.66", user="user9", headers={"authorization": f"Bearer {tok}"}, json={})
        after.append(s.feed(c, path))
    # the owner, with a token of their own
    s.t += 60
    own = s.feed(make_call("GET", "/v2/me", ts=s.t, ip="198.51.100.9", user="user9", headers={"authorization": "Bearer eyJ.own.tok"}, json={}), "/v2/me")
    joined = {e for f in s.by("credentials.account_takeover") if f.key == key for e in f.event_ids}
    assert {c.id for c in after} <= joined and own.id not in joined
    codec.loads(codec.dumps(det))


def test_stuffing_and_takeover_share_one_login_history_per_stream():
    """Both detectors read the same login history: in one pipeline they
    share one tracker (one parse, one history per login); detectors fed
    another stream over the same contexts never adopt it (that sharing
    survives a checkpoint and restart is tested in tests/test_pipeline.py)."""
    stuff, ato = Stuffing(), AccountTakeover()
    s = Stream(stuff, ato)
    benign(s)
    for i in range(8):
        s.login(f"victim{i}@example.com", False, ip="192.0.2.66")
    s.login("victim7@example.com", True, ip="192.0.2.66")
    assert stuff.logins is ato.logins
    assert stuff.logins.seen > 0
    assert s.by("credentials.stuffing") and s.by("credentials.account_takeover")

    # the same calls replayed through fresh detectors: same verdicts, own tracker
    stuff2, ato2 = Stuffing(), AccountTakeover()
    s2 = Stream(stuff2, ato2)
    benign(s2)
    for i in range(8):
        s2.login(f"victim{i}@example.com", False, ip="192.0.2.66")
    s2.login("victim7@example.com", True, ip="192.0.2.66")
    assert stuff2.logins is ato2.logins and stuff2.logins is not stuff.logins
    assert sorted(f.key for f in s2.findings) == sorted(f.key for f in s.findings)

    # a detector alone keeps its own tracker and still detects
    alone = Stream(AccountTakeover())
    for i in range(8):
        alone.login(f"victim{i}@example.com", False, ip="192.0.2.66")
    alone.login("victim7@example.com", True, ip="192.0.2.66")
    assert alone.by("credentials.account_takeover")


def test_tracker_state_from_before_the_failure_index_is_rebuilt():
    stuff = Stuffing()
    s = Stream(stuff)
    s.login("bob@example.com", False, ip="192.0.2.9")
    s.login("bob@example.com", True, ip="192.0.2.9")
    lt = stuff.logins
    state = dict(lt.__dict__)
    for k in ("fail_at", "seen", "_learned", "max_keys"):
        state.pop(k)
    old = type(lt).__new__(type(lt))
    old.__setstate__(state)
    assert old.failed_since("ip:192.0.2.9", s.t - 60) and not old.failed_since("ip:192.0.2.10", 0)


def test_credential_forms_are_judged_by_names_once_and_values_every_time():
    from apiward.detect.objects import login_fields

    # same field names, different values: the verdict follows the values
    assert login_fields({"email": "a@example.com", "password": "x"}) == ("a@example.com", "x", "email")
    assert login_fields({"email": "b@example.com", "password": 5}) is None  # not a password value
    assert login_fields({"email": "", "password": "x"}) is None  # no user value
    assert login_fields({"email": 7, "password": "y"}) == ("7", "y", "email")
    assert login_fields({"Email": "c", "email": "d", "password": "z"}) == ("d", "z", "email")
    # password changes and forms without a user field are not credential pairs
    assert login_fields({"user": "u", "password": "p", "new_password": "q"}) is None
    assert login_fields({"password": "p", "remember": True}) is None
    assert login_fields({"pass": None, "pwd": "p", "handle": "h"}) == ("h", "p", "handle")


# -- HTTP Basic and API tokens (found on real apps in the zoo) --------------------------

import base64  # noqa: E402

from apiward.ingest.actor import ActorResolver  # noqa: E402

_RESOLVER = ActorResolver()


def basic_call(user, pw, status, *, ip, ts, path="/v1/accounts/alice", method="GET"):
    auth = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
    c = make_call(method, path, ts=ts, ip=ip, headers={"authorization": auth}, status=status, json={"ok": status < 400})
    c.actor = _RESOLVER.resolve(c)
    return c


def test_basic_auth_guesses_are_a_brute_force_named_on_the_source_and_the_owner_back_is_no_takeover():
    s = Stream(Stuffing(), AccountTakeover())
    t = 1_764_000_000.0
    for i in range(3):  # alice works from her address
        s.feed(basic_call("alice", "right", 200, ip="198.51.100.4", ts=t + i), "/v1/accounts/{id}")
    for i, pw in enumerate(("123456", "password", "qwerty", "letmein", "admin", "welcome", "monkey", "dragon", "111111")):
        s.feed(basic_call("alice", pw, 401, ip="203.0.113.66", ts=t + 10 + i), "/v1/accounts/{id}")
    s.feed(basic_call("alice", "right", 200, ip="198.51.100.4", ts=t + 30), "/v1/accounts/{id}")  # the owner, back
    brute = s.by("credentials.stuffing")
    assert brute and {f.actor for f in brute} == {"ip:203.0.113.66"}  # the guesser, never alice
    assert s.by("credentials.account_takeover") == []


def test_basic_403_with_another_password_than_the_working_one_is_a_failed_login():
    s = Stream(Stuffing())
    t = 1_764_000_000.0
    s.feed(basic_call("alice", "right", 200, ip="198.51.100.4", ts=t, method="POST", path="/"), "/")
    s.feed(basic_call("alice", "right", 403, ip="198.51.100.4", ts=t + 1, method="POST", path="/"), "/")  # authorization, not a guess
    assert s.by("credentials.stuffing") == []
    for i in range(9):
        s.feed(basic_call("alice", f"guess{i}", 403, ip="203.0.113.9", ts=t + 5 + i, method="POST", path="/"), "/")
    assert {f.actor for f in s.by("credentials.stuffing")} == {"ip:203.0.113.9"}


def test_many_distinct_refused_tokens_from_one_source_are_token_guessing():
    s = Stream(Stuffing())
    t = 1_764_000_000.0
    for i in range(5):  # the owner's one token, refused on a forbidden call now and then: not guessing
        c = make_call("GET", "/api/contents", ts=t + i, ip="198.51.100.4", headers={"authorization": "token good-token-1"}, status=200 if i else 403)
        c.actor = _RESOLVER.resolve(c)
        s.feed(c, "/api/contents")
    assert s.by("credentials.stuffing") == []
    for i in range(10):
        c = make_call("GET", "/api/contents", ts=t + 10 + i, ip="203.0.113.5", headers={"authorization": f"token guess-{i:04d}"}, status=403)
        c.actor = _RESOLVER.resolve(c)
        s.feed(c, "/api/contents")
    found = s.by("credentials.stuffing")
    assert found and {f.actor for f in found} == {"ip:203.0.113.5"} and "tokens" in found[-1].summary
