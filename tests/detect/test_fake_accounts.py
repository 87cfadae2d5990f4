"""fake_accounts.signup_burst: sign-ups recognised from traffic."""

from __future__ import annotations

from apiward.state import codec
import random

from apiward.detect.fake_accounts import SignupBurst
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

FIRST = ["ana", "ben", "chloe", "dmitri", "elif", "farid", "greta", "hugo", "ines", "jonas", "kemal", "lena", "mateo", "nora"]
LAST = ["garcia", "nguyen", "okafor", "smith", "rossi", "kim", "novak", "silva", "haddad", "berg"]
DOMAINS = ["example.com", "example.org", "example.net", "mail.test"]


class Stream:
    def __init__(self, det):
        self.det = det
        self.findings = []
        self.t = 1_764_000_000.0

    def feed(self, c, template):
        ctx = Context(endpoint=EndpointRef(host=c.request.host, method=c.request.method, template=template))
        self.findings.extend(self.det.score_one(c, ctx))
        self.det.learn_one(c, ctx)
        return c

    def signup(self, username, email, *, ip, ua="Mozilla/5.0", dt=30.0, status=201):
        self.t += dt
        body = {"username": username, "email": email, "password": "S3cret!pass", "full_name": username.title()}
        c = make_call("POST", "/api/v3/register", ts=self.t, ip=ip, user_agent=ua, req_json=body, status=status,
                      json={"id": int(self.t) % 100000, "username": username, "email": email})
        return self.feed(c, "/api/v3/register")

    def login(self, username, *, ip):
        self.t += 5
        c = make_call("POST", "/api/v3/token", ts=self.t, ip=ip, req_json={"username": username, "password": "S3cret!pass"},
                      json={"access_token": "eyJx.eyJy.z"})
        return self.feed(c, "/api/v3/token")


def wave(s, rng, n=40):
    for i in range(n):
        f, l = rng.choice(FIRST), rng.choice(LAST)
        num = rng.randint(1, 999)
        s.signup(f"{f}.{l}{num}", f"{f}{rng.choice(['.', '_', ''])}{l}{num}@{rng.choice(DOMAINS)}", ip=f"198.51.100.{i}", dt=20)
        s.login(f"{f}.{l}{num}", ip=f"198.51.100.{i}")


def test_normal_signup_wave_is_quiet():
    s = Stream(SignupBurst())
    wave(s, random.Random(5))
    # a household signing up two accounts from one address
    s.signup("pat.lee", "pat.lee@example.com", ip="198.51.100.200")
    s.signup("sam.lee", "sam.lee@example.com", ip="198.51.100.200")
    assert s.findings == []


def test_one_source_creating_many_accounts():
    det = SignupBurst()
    s = Stream(det)
    wave(s, random.Random(6), n=10)
    rng = random.Random(9)
    calls = [s.signup(f"{rng.choice(FIRST)}{rng.choice(LAST)}", f"{rng.choice(FIRST)}.{rng.choice(LAST)}@example.com", ip="192.0.2.50", dt=3)
             for _ in range(6)]
    src = [f for f in s.findings if f.key.endswith("|src|ip:192.0.2.50")]
    assert src and set(src[-1].event_ids) == {c.id for c in calls}
    assert src[-1].evidence["accounts"] == 6 and src[-1].owasp == "API6:2023"
    codec.loads(codec.dumps(det))


def test_patterned_names_from_rotating_addresses_and_new_domain():
    s = Stream(SignupBurst())
    wave(s, random.Random(7), n=20)
    calls = [s.signup(f"promo_bot{100 + i}", f"promo_bot{100 + i}@burner.test", ip=f"203.0.113.{i}", dt=10) for i in range(10)]
    keys = {f.key.split("|", 2)[1] + "|" + f.key.split("|", 2)[2] for f in s.findings}
    assert "stem|promo_bot#" in keys and "domain|burner.test" in keys
    stem = [f for f in s.findings if "stem|" in f.key][-1]
    assert set(stem.event_ids) <= {c.id for c in calls} and stem.evidence["sources"] >= 5


def test_accounts_created_then_used_by_their_creator():
    s = Stream(SignupBurst(source_accounts=50))
    wave(s, random.Random(8), n=20)  # peers: each of 20 addresses made and used one account
    names = [f"{FIRST[i]}{LAST[i]}" for i in range(4)]
    for i, n in enumerate(names):
        s.signup(n, f"{n}@example.org", ip="192.0.2.77", dt=60)
    for n in names:
        s.login(n, ip="192.0.2.77")
    reuse = [f for f in s.findings if "|reuse|" in f.key]
    assert reuse and reuse[-1].evidence["accounts_used"] >= 3


def test_an_address_that_onboarded_people_while_learning_is_not_a_bot_farm():
    """A partner's onboarding desk signs up and logs in a few people an
    hour from one address; it did the same while apiward learned."""
    det = SignupBurst(source_accounts=50)
    s = Stream(det)
    wave(s, random.Random(8), n=20)

    def desk(base: int) -> None:
        for i in range(4):
            n = f"{FIRST[(base + i) % len(FIRST)]}{LAST[(base + 2 * i) % len(LAST)]}{base}"
            s.signup(n, f"{n}@example.org", ip="192.0.2.90", dt=60)
            s.login(n, ip="192.0.2.90")
        s.t += 3600

    learning = Stream(det)
    learning.t = s.t
    for c_mode in ("learn",):
        orig = learning.feed

        def feed(c, template, orig=orig):
            ctx = Context(endpoint=EndpointRef(host=c.request.host, method=c.request.method, template=template), mode=c_mode)
            det.learn_one(c, ctx)
            return c
        learning.feed = feed
        for day in range(3):
            for i in range(4):
                n = f"{FIRST[(day + i) % len(FIRST)]}{LAST[i]}{day}x"
                learning.signup(n, f"{n}@example.org", ip="192.0.2.90", dt=60)
                learning.login(n, ip="192.0.2.90")
            learning.t += 3600
    s.t = learning.t
    desk(7)
    assert not [f for f in s.findings if "192.0.2.90" in f.key]


def test_identity_detectors_tolerate_odd_input_and_survive_the_state_codec():
    """Every identity-aware detector: no response, binary and broken bodies,
    odd JSON shapes, empty actors; scoring before learning; state survives the state codec
    and the call is not modified."""
    from apiward.detect.registry import build_detectors

    ids = [
        "bola.cross_owner_access", "bola.enumeration", "bfla.admin_function", "mass_assignment.readonly_write",
        "data_exposure.sensitive_response", "credentials.stuffing", "credentials.account_takeover",
        "scraping.enumeration", "fake_accounts.signup_burst",
    ]
    odd = [
        (make_call("GET", "/a/1", status=None), "/a/{id}"),
        (make_call("POST", "/login", body=b"\x00\xff\xfe", headers={"content-type": "application/json"}, req_body=b"{broken"), "/login"),
        (make_call("POST", "/login", req_json=["password", "x"], json=[1, 2, None]), "/login"),
        (make_call("PUT", "/a/1", req_json={"password": 5, "email": None}, json="str"), "/a/{id}"),
        (make_call("GET", "/a/?page=-1&limit=abc&cursor=", json={"items": [1, {"id": True}]}), "/a/"),
        (make_call("PATCH", "/a/x", user="u", req_json={"role": {"nested": 1}, "balance": None}, json={"role": {"nested": 1}}), "/a/{id}"),
    ]
    for det in build_detectors(ids):
        for c, tpl in odd:
            before = c.request.body, c.status
            ctx = Context(endpoint=EndpointRef(host=c.request.host, method=c.request.method, template=tpl, path_params=(("id", "1"),) if "{id}" in tpl else ()))
            assert isinstance(det.score_one(c, ctx), list)
            det.learn_one(c, ctx)
            assert (c.request.body, c.status) == before
        clone = codec.loads(codec.dumps(det))
        assert type(clone) is type(det)


def test_slow_patterned_signups_over_days_and_their_logins():
    det = SignupBurst()
    s = Stream(det)
    wave(s, random.Random(8))
    ips = ["192.0.2.31", "192.0.2.32", "192.0.2.33"]
    made = []
    for k in range(9):
        ip = ips[k % 3]
        made.append(s.signup(f"bonus{5600 + k}", f"bonus{5600 + k}@dropmail.test", ip=ip, dt=5 * 3600))
        made.append(s.login(f"bonus{5600 + k}@dropmail.test", ip=ip))
    found = [f for f in s.findings if f.key.endswith("stem|bonus#")]
    assert found, "slow patterned sign-ups not flagged"
    flagged = {e for f in s.findings for e in f.event_ids}
    assert {c.id for c in made[4:]} <= flagged  # sign-ups and the logins into them
    assert found[0].evidence["hours"] >= 20
    codec.loads(codec.dumps(det))


def test_people_sharing_a_name_sign_up_days_apart_from_their_own_addresses():
    s = Stream(SignupBurst())
    wave(s, random.Random(9))
    for k in range(8):
        s.signup(f"maria.garcia{k + 1}", f"maria.garcia{k + 1}@example.com", ip=f"203.0.113.{k}", dt=6 * 3600)
    assert s.findings == []
