"""Sensitive data classification: every class with its decoys, field-name
evidence, locations and dotted paths, keyed digests, per-call bounds."""

from __future__ import annotations

import base64
import random

import orjson
import pytest

from apiward.discover.compliance import COMPLIANCE, scopes
from apiward.discover.sensitive import CLASSES, Classifier, field_evidence
from apiward.sim.piicorpus import PiiFactory, generate
from apiward.testing import make_call

C = Classifier(secret=b"test-secret")


def classes(value: str, field: str = "") -> set[str]:
    return {c for c, _ in C.classify_value(value, field)}


def jwt_token() -> str:
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(b'{"sub":"alice","iat":1764000000}').rstrip(b"=").decode()
    return f"{head}.{body}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"


# (value, field, expected class)
POSITIVES = [
    ("john.doe@example.com", "", "email"),
    ("+1 415-867-5309", "", "phone"),
    ("(415) 867-5309", "", "phone"),
    ("+44 7911 123456", "", "phone"),
    ("4158675309", "mobile", "phone"),
    ("4111 1111 1111 1111", "", "credit_card"),
    ("378282246310005", "", "credit_card"),
    ("5555-5555-5555-4444", "", "credit_card"),
    ("DE89370400440532013000", "", "iban"),
    ("GB82 WEST 1234 5698 7654 32", "", "iban"),
    ("536-22-1234", "", "ssn"),
    ("536221234", "ssn", "ssn"),
    ("12345678Z", "dni", "national_id"),
    ("AB 12 34 56 C", "", "national_id"),
    ("1985-03-12", "user.dob", "date_of_birth"),
    ("03/12/1985", "date_of_birth", "date_of_birth"),
    ("1234 Elm Street, Apt 5", "", "address"),
    ("Flat 2, 14 Baker Road", "shipping_address", "address"),
    ("8.8.4.4", "", "ip_address"),
    ("2a01:4f8:1c1c:1234::1", "", "ip_address"),
    ("10.1.2.3", "", "internal_ip"),
    (jwt_token(), "", "jwt"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "", "api_key"),
    ("AKIAIOSFODNN7EXAMPLE", "", "api_key"),
    ("ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8", "", "api_key"),
    ("xoxb-123456789012-123456789012-abcdefghijABCDEFGHIJ1234", "", "api_key"),
    ("q8Zr2LmX0vT4kYp7Wn3Bc9Hs", "client_secret", "api_key"),
    ("hunter2", "password", "password"),
    ("$2b$12$" + "R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"[:53], "", "password_hash"),
    ("5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8", "password_hash", "password_hash"),
    ("9f86d081884c7d659a2feaa0c55ad015", "session_id", "session_token"),
    ("Type 2 diabetes mellitus", "diagnosis", "health"),
    ("E11.9", "icd10", "health"),
    ("A+", "blood_type", "health"),
    ("Traceback (most recent call last):\n  File \"app.py\", line 3, in handler\nKeyError: 'x'", "", "stack_trace"),
    ("\tat com.acme.Orders.find(Orders.java:142)\n\tat com.acme.Api.get(Api.java:57)", "", "stack_trace"),
    ("goroutine 7 [running]:\nmain.handle(0xc0001)\n\t/go/src/app/main.go:18 +0x1a4", "", "stack_trace"),
    ("You have an error in your SQL syntax; check the manual", "", "sql_error"),
    ("ORA-00933: SQL command not properly ended", "detail", "sql_error"),
    ('ERROR: syntax error at or near "OR" at character 31', "", "sql_error"),
    ("/var/www/html/config.php", "", "internal_path"),
    ("No such file: C:\\Users\\build\\app\\settings.json was missing", "", "internal_path"),
    ("orders-db.prod.svc.cluster.local", "", "internal_hostname"),
    ("could not connect to server on host \"pg-1.eu.internal\" port 5432", "", "internal_hostname"),
]


@pytest.mark.parametrize("value,field,cls", POSITIVES)
def test_positive(value: str, field: str, cls: str) -> None:
    assert cls in CLASSES
    assert cls in classes(value, field), (value, field, C.classify_value(value, field))


# (value, field): none of these may be flagged
DECOYS = [
    ("4111111111111112", ""),  # fails Luhn
    ("4532015112830367", "order_id"),  # passes Luhn but an order id
    ("1712345678901", ""),  # epoch millis
    ("1712345678901", "timestamp"),
    ("550e8400-e29b-41d4-a716-446655440000", "request_id"),
    ("2024-03-12T10:22:01Z", "created_at"),
    ("1985-03-12", "created"),  # a date, but not a birth date
    ("2.14.3", "version"),
    ("1.4.2.0", "version"),
    ("10.0.19041.1", "build"),
    ("19.99", "price"),
    ("1299.00", ""),
    ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "etag"),
    ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "checksum"),
    ("5f2b9c0e7a1d3c4b8e6f0a12", "id"),
    ("94107", "zip"),
    ("94107-1234", ""),
    ("536221234", ""),  # nine digits, no evidence
    ("4158675309", ""),  # ten digits, no evidence
    ("4158675309", "order_total"),
    ("1Z999AA10123456784", "tracking_number"),
    ("********", "password"),
    ("[REDACTED]", "api_key"),
    ("**** **** **** 4242", "card.number"),
    ("Bearer", "token_type"),
    ("CiQ2ZGQ4YzQ0", "next_page_token"),
    ("Ships in 2-3 business days, part no. 4410-22-118", "description"),
    ("Wireless Mouse", "name"),
    ("true", "email_verified"),
    ("jdk.internal.reflect.NativeMethodAccessorImpl", "class"),
]


@pytest.mark.parametrize("value,field", DECOYS)
def test_decoy_not_flagged(value: str, field: str) -> None:
    assert C.classify_value(value, field) == []


def test_field_name_evidence() -> None:
    assert field_evidence("card_number") == ("credit_card", False)
    assert field_evidence("number", "cards") == ("credit_card", False)
    assert field_evidence("socialSecurityNumber")[0] == "ssn"
    assert field_evidence("dob")[0] == "date_of_birth"
    assert field_evidence("new_password")[0] == "password"
    assert field_evidence("password_changed_at") == ("", False)
    assert field_evidence("email_verified")[0] == ""
    assert field_evidence("order_id")[1] is True
    # evidence decides for values whose shape alone is ambiguous
    assert classes("536221234", "ssn") == {"ssn"} and classes("536221234") == set()
    assert classes("4158675309", "phone") == {"phone"}
    assert classes("1985-03-12", "birthDate") == {"date_of_birth"}
    # a card-number field still needs a Luhn-valid number
    assert "credit_card" not in classes("4111111111111112", "card_number")


def test_corpus_values_are_classified() -> None:
    """Every generated PII value of the corpus comes back with its class;
    no decoy is flagged."""
    docs = generate(150, seed=3)
    missed, flagged = [], []
    for d in docs:
        for lv in d.values:
            got = classes(lv.value, lv.field)
            if lv.cls and lv.cls not in got:
                missed.append(lv)
            if lv.decoy and got:
                flagged.append((lv, got))
    assert not missed, missed[:5]
    assert not flagged, flagged[:5]


def test_factory_values_validate() -> None:
    f = PiiFactory(random.Random(11))
    for _ in range(200):
        assert classes(f.card()) == {"credit_card"}
        assert classes(f.iban()) == {"iban"}
        assert classes(f.ssn()) == {"ssn"}
        assert classes(f.luhn_failing()) == set()


def test_dotted_paths_with_arrays_and_locations() -> None:
    body = {"user": {"email": "ann@example.org", "cards": [{"number": "4111111111111111", "brand": "visa"},
                                                            {"number": "5555555555554444", "brand": "mc"}]},
            "items": [{"sku": "SKU-1", "price": "9.99"}]}
    call = make_call("POST", "/api/users?email=bob@example.com", req_json={"password": "s3cret!", "username": "bob"},
                     json=body)
    hits = C.classify_call(call)
    got = {(h.location, h.field, h.cls) for h in hits}
    assert ("response_body", "user.email", "email") in got
    assert ("response_body", "user.cards[].number", "credit_card") in got
    assert ("request_body", "password", "password") in got
    assert ("query", "email", "email") in got
    cards = [h for h in hits if h.cls == "credit_card"]
    assert len(cards) == 2 and cards[0].value_hash != cards[1].value_hash
    assert not any(h.field.startswith("items") for h in hits)


def test_path_segment_and_form_body() -> None:
    call = make_call("POST", "/users/jane.roe%40example.com/cards/4111111111111111", status=204,
                     req_body=b"iban=DE89370400440532013000&note=hello",
                     headers={"content-type": "application/x-www-form-urlencoded"})
    got = {(h.location, h.cls) for h in C.classify_call(call)}
    assert ("path", "email") in got and ("path", "credit_card") in got
    assert ("request_body", "iban") in got


def test_error_body_location_and_text_bodies() -> None:
    trace = 'Traceback (most recent call last):\n  File "/srv/app/views.py", line 9, in get\nKeyError: "id"'
    call = make_call("GET", "/orders/1", status=500, json={"error": "boom", "detail": trace})
    hits = C.classify_call(call)
    assert {"stack_trace", "internal_path"} <= {h.cls for h in hits}
    assert {h.location for h in hits} == {"error_body"}
    assert next(h for h in hits if h.cls == "stack_trace").field == "detail"
    # the same body with a 200 is a response body
    ok = make_call("GET", "/orders/1", status=200, json={"detail": trace})
    assert {h.location for h in C.classify_call(ok)} == {"response_body"}
    # a plain-text error page
    txt = make_call("GET", "/x", status=502, body=b"upstream pg-primary.eu-west-1.internal: ORA-12541: TNS:no listener",
                    resp_headers={"content-type": "text/plain"})
    got = {(h.location, h.cls) for h in C.classify_call(txt)}
    assert ("error_body", "internal_hostname") in got and ("error_body", "sql_error") in got


def test_headers_and_cookies() -> None:
    tok = jwt_token()
    basic = base64.b64encode(b"admin:hunter2").decode()
    call = make_call("GET", "/me", headers={"authorization": f"Bearer {tok}", "x-api-key": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                                            "cookie": "sessionid=8f14e45fceea167a5a36dedd4bea2543; theme=dark"},
                     resp_headers={"set-cookie": "auth_token=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA; Path=/; HttpOnly"},
                     json={"ok": True})
    got = {(h.location, h.field, h.cls) for h in C.classify_call(call)}
    assert ("header", "authorization", "jwt") in got
    assert ("header", "x-api-key", "api_key") in got
    assert ("cookie", "sessionid", "session_token") in got
    assert ("cookie", "auth_token", "session_token") in got
    assert not any(f == "theme" for _, f, _ in got)
    b = make_call("GET", "/", headers={"authorization": f"Basic {basic}"})
    assert {h.cls for h in C.classify_call(b)} == {"basic_auth"}
    o = make_call("GET", "/", headers={"authorization": "Bearer opaque-token-abcdef123456"})
    assert {h.cls for h in C.classify_call(o)} == {"bearer_token"}


def test_value_hash_keyed_stable_and_normalised() -> None:
    call = make_call("GET", "/u", json={"email": "Ann@Example.org", "card": "4111 1111 1111 1111"})
    h1 = {h.cls: h.value_hash for h in C.classify_call(call)}
    h2 = {h.cls: h.value_hash for h in C.classify_call(make_call("GET", "/u", json={"email": "ann@example.org",
                                                                                     "card": "4111-1111-1111-1111"}))}
    assert h1 == h2  # stable across calls and formats
    assert all(len(v) == 12 and int(v, 16) >= 0 for v in h1.values())
    assert h1["email"] not in ("ann@example.org", "Ann@Example.org")
    other = {h.cls: h.value_hash for h in Classifier(secret=b"another").classify_call(call)}
    assert other["email"] != h1["email"]  # keyed: another secret, another digest
    dup = make_call("GET", "/u", json={"a": [{"email": "x@example.com"}, {"email": "x@example.com"}]})
    assert len(C.classify_call(dup)) == 1  # deduplicated per (location, field, class, value)


def test_bounds_on_a_huge_body() -> None:
    c = Classifier(max_fields=300, max_hits=50)
    rows = [{"email": f"user{i}@example.com", "ssn": "536-22-1234", "n": i} for i in range(20000)]
    call = make_call("GET", "/export", json={"rows": rows})
    assert len(call.response.body) > 1_000_000 or call.response.truncated
    hits = c.classify_call(call)
    assert 0 < len(hits) <= 50
    # a non-JSON huge body is scanned only up to max_text_bytes
    big = b"x " * 400_000 + b" leak at /home/deploy/app.py"
    t = make_call("GET", "/log", status=200, body=big, resp_headers={"content-type": "text/plain"})
    assert not any(h.cls == "internal_path" for h in Classifier(max_text_bytes=4096).classify_call(t))
    small = make_call("GET", "/log", status=200, body=b"leak at /home/deploy/app.py",
                      resp_headers={"content-type": "text/plain"})
    assert any(h.cls == "internal_path" for h in Classifier(max_text_bytes=4096).classify_call(small))


def test_field_budget_limits_walk() -> None:
    c = Classifier(max_fields=10)
    body = {"rows": [{"email": f"u{i}@example.com"} for i in range(100)]}
    hits = c.classify_call(make_call("GET", "/x", json=body))
    assert 1 <= len(hits) <= 10


def test_odd_input_never_raises() -> None:
    for body in (b"\xff\xfe\x00garbage", b"{not json", b"[1, 2, null, true, 3.5]", b'"just a string"'):
        call = make_call("GET", "/x", body=body, resp_headers={"content-type": "application/json"})
        assert isinstance(C.classify_call(call), list)
    assert C.classify_value("") == [] and C.classify_value("   ") == []
    call = make_call("GET", "/x", json={"a": {"b": [[["4111111111111111"]]]}, "7": 4111111111111111})
    got = {(h.field, h.cls) for h in C.classify_call(call)}
    assert ("a.b[][][]", "credit_card") in got and ("7", "credit_card") in got


def test_compliance_scopes() -> None:
    assert set(CLASSES) == set(COMPLIANCE)
    assert COMPLIANCE["credit_card"] == ["PCI DSS"]
    assert "HIPAA" in COMPLIANCE["health"]
    assert "GDPR" in COMPLIANCE["email"] and "GDPR" in COMPLIANCE["national_id"]
    assert COMPLIANCE["api_key"] == ["secrets"] and COMPLIANCE["password"] == ["secrets"]
    assert scopes(["email", "credit_card", "health"]) == ["PCI DSS", "GDPR", "HIPAA"]


def test_constructor_validates() -> None:
    with pytest.raises(ValueError):
        Classifier(secret=b"")
    with pytest.raises(ValueError):
        Classifier(max_fields=0)
    assert Classifier(secret=b"k" * 100).value_hash("a") != Classifier(secret=b"j" * 100).value_hash("a")


def test_request_never_mutated() -> None:
    call = make_call("GET", "/x", json={"email": "a@example.com"})
    before = orjson.dumps(call.response.json())
    C.classify_call(call)
    assert orjson.dumps(call.response.json()) == before


# ---------------------------------------------------------------------------
# the memoised fast path must give exactly the hits of a plain reference walk
# ---------------------------------------------------------------------------


def reference_hits(c: Classifier, call) -> list:
    """The classifier's first, memo-free ``classify_call``: every value
    classified afresh with ``_classify`` and uncached ``field_evidence``."""
    from urllib.parse import unquote

    from apiward.discover import sensitive as s
    from apiward.model.context import SensitiveHit

    hits: list = []
    seen: set = set()
    budget = [c.max_fields]

    def ev(key: str, parent: str) -> tuple[str, bool]:
        return field_evidence(key, parent) if key else ("", False)

    def add(location: str, field: str, cls: str, conf: float, value: str) -> None:
        if len(hits) >= c.max_hits:
            return
        h = c.value_hash(value, cls)
        if (location, field, cls, h) not in seen:
            seen.add((location, field, cls, h))
            hits.append(SensitiveHit(location=location, field=field, cls=cls, value_hash=h, confidence=conf))

    def value(v: str, location: str, field: str, key: str) -> None:
        budget[0] -= 1
        for cls, conf, x in c._classify(v, *ev(key, "")):
            add(location, field, cls, conf, x)

    def cookie(name: str, val: str) -> None:
        if not val or budget[0] <= 0:
            return
        budget[0] -= 1
        for cls, conf, x in c._cookie_found(name, val):
            add("cookie", name, cls, conf, x)

    def headers(hs: list) -> None:
        for name, val in hs:
            if name in s._SKIP_HEADERS or not val:
                continue
            if name in s._AUTH_HEADERS:
                for cls, conf, x in s._authorization(val):
                    add("header", name, cls, conf, x)
            elif s._KEYISH_HEADER.search(name) and "csrf" not in name and "xsrf" not in name:
                for cls, conf, x in s._keyish_header(name, val):
                    add("header", name, cls, conf, x)
            elif name in ("x-forwarded-for", "x-real-ip", "forwarded", "true-client-ip", "cf-connecting-ip"):
                continue
            elif len(val) >= 8 and (name.startswith("x-") or name in ("via", "x-backend-server")):
                value(val, "header", name, name)

    def walk(doc, location: str) -> None:
        stack = [(doc, "", "", "")]
        while stack and budget[0] > 0:
            node, path, key, parent = stack.pop()
            if isinstance(node, dict):
                for k, v in node.items():
                    p = f"{path}.{k}" if path else k
                    if isinstance(v, str):
                        budget[0] -= 1
                        if budget[0] < 0:
                            return
                        pos, neg = ev(k, key)
                        if v and (pos or len(v) >= 6):
                            for cls, conf, x in c._classify(v, pos, neg):
                                add(location, p, cls, conf, x)
                    elif isinstance(v, (dict, list)):
                        stack.append((v, p, k, key))
                    elif isinstance(v, int) and not isinstance(v, bool):
                        budget[0] -= 1
                        pos, neg = ev(k, key)
                        if pos or v >= 10**12:
                            for cls, conf, x in c._classify(str(v), pos, neg):
                                add(location, p, cls, conf, x)
            elif isinstance(node, list):
                p = path + "[]"
                for v in node:
                    if isinstance(v, str):
                        budget[0] -= 1
                        if budget[0] < 0:
                            return
                        pos, neg = ev(key, parent)
                        if v and (pos or len(v) >= 6):
                            for cls, conf, x in c._classify(v, pos, neg):
                                add(location, p, cls, conf, x)
                    elif isinstance(v, (dict, list)):
                        stack.append((v, p, key, parent))
                    elif isinstance(v, int) and not isinstance(v, bool) and v >= 10**12:
                        budget[0] -= 1
                        for cls, conf, x in c._classify(str(v), *ev(key, parent)):
                            add(location, p, cls, conf, x)
            elif isinstance(node, str):
                budget[0] -= 1
                for cls, conf, x in c._classify(node, "", False):
                    add(location, path, cls, conf, x)

    def body(msg, location: str) -> None:
        if not msg.body or budget[0] <= 0:
            return
        kind = msg.kind
        if kind == "json":
            doc = orjson.loads(msg.body) if not msg.truncated and _valid_json(msg.body) else None
            if doc is not None:
                walk(doc, location)
                return
        elif kind == "form":
            for k, v in msg.form():
                if budget[0] <= 0:
                    break
                value(v, location, k, k)
            return
        if kind not in ("json", "form", "text", "xml", ""):
            return
        budget[0] -= 1
        for cls, conf, x in c._scan_text(msg.body[: c.max_text_bytes].decode("utf-8", "replace")):
            add(location, "", cls, conf, x)

    req = call.request
    if len(req.path) > 1:
        for i, seg in enumerate(req.path.split("/")):
            if seg and len(seg) >= 6:
                value(unquote(seg) if "%" in seg else seg, "path", f"path[{i}]", "")
    for k, v in req.query:
        if budget[0] <= 0:
            break
        value(v, "query", k, k)
    headers(req.headers)
    if req.cookies:
        for k, v in req.cookies.items():
            cookie(k, v)
    else:
        for raw in req.header_all("cookie"):
            for part in raw.split(";"):
                k, sep, v = part.strip().partition("=")
                if sep:
                    cookie(k, v)
    body(req, "request_body")
    resp = call.response
    if resp is not None:
        for raw in resp.header_all("set-cookie"):
            k, sep, rest = raw.partition("=")
            if sep:
                cookie(k.strip(), rest.split(";", 1)[0])
        headers(resp.headers)
        body(resp, "error_body" if resp.status >= 400 else "response_body")
    return hits


def _valid_json(b: bytes) -> bool:
    try:
        orjson.loads(b)
    except orjson.JSONDecodeError:
        return False
    return True


def varied_calls(n: int, seed: int) -> list:
    """Corpus documents as request and response bodies, with credentials in
    headers and cookies, PII in paths and queries, repeats, text and form
    bodies, and shapes the memo keys must tell apart (a value under a field
    with evidence and without, the same body as request and as error)."""
    rnd = random.Random(seed)
    f = PiiFactory(rnd)
    basic = base64.b64encode(b"admin:hunter2").decode()
    auths = [f"Bearer {jwt_token()}", "Bearer opaque-token-abcdef123456", f"Basic {basic}", "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
             "Token abc", "Bearer sk_live_4eC39HqLyjWDarjtT1zdp7dc"]
    # a few response bodies repeat under calls that used more or less of the
    # leaf budget before them
    pool = [{"users": [{"email": f.email(), "phone": f.phone(), "ssn": f.ssn(), "n": i} for i in range(k)]}
            for k in (1, 3, 6)]
    calls = []
    for d in generate(n, seed=seed):
        body = d.body_bytes()
        r = rnd.random()
        email, card, ssn = f.email(), f.card(), f.ssn()
        headers = {"content-type": d.content_type, "authorization": rnd.choice(auths),
                   "x-trace": rnd.choice([card, email, "1740830423.118", "10.0.0.7", ssn]),
                   "x-session-token": rnd.choice(["8f14e45fceea167a5a36dedd4bea2543", "short", jwt_token()]),
                   "cookie": rnd.choice(["sessionid=8f14e45fceea167a5a36dedd4bea2543; theme=dark",
                                         f"auth_token=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA; card={card}", "a=b"])}
        path = rnd.choice([f"/users/{email}/cards/{card}", "/api/v2/products", f"/ssn/{ssn}", "/a%40b.example.com/x"])
        if r < 0.3:
            query = "&".join(f"q{i}={email}" for i in range(rnd.randint(0, 4)))
            calls.append(make_call("POST", f"{path}?{query}", req_body=body, headers=headers,
                                   json=rnd.choice(pool) if rnd.random() < 0.7 else {"card": card, "ssn": ssn}))
        elif r < 0.45:
            # the same document with no field names to lean on
            calls.append(make_call("GET", path, status=rnd.choice([200, 404, 500]), json=_leaf_values(orjson.loads(body))
                                   if d.content_type.endswith("json") else {"v": body.decode()}, headers=headers))
        elif r < 0.55:
            form = f"iban={f.iban()}&phone=%2B1+415-867-5309&note=hello".encode()
            calls.append(make_call("POST", path, req_body=form, headers={**headers, "content-type":
                                   "application/x-www-form-urlencoded"}, status=201, body=body,
                                   resp_headers={"content-type": d.content_type,
                                                 "set-cookie": f"session={jwt_token()}; Path=/"}))
        else:
            calls.append(make_call("GET", path, headers=headers, status=d.status, body=body,
                                   resp_headers={"content-type": d.content_type}))
    # one value under names that decide differently; one body under two content types
    tok = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA"
    body = orjson.dumps({"note": "call +1 415-867-5309", "email": "ann@example.org"})
    for name in ("x-api-key", "x-session-token", "x-auth"):
        for cookie in (f"sessionid={tok}", f"theme={tok}", f"auth={tok}", f"card={f.card()}"):
            for ct in ("application/json", "text/plain", ""):
                calls.append(make_call("GET", "/p", headers={name: tok, "cookie": cookie}, body=body,
                                       resp_headers={"content-type": ct} if ct else {}))
    return calls


def _leaf_values(doc) -> list:
    out: list = []
    stack = [doc]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
        else:
            out.append(x)
    return out


def same_as_reference(c: Classifier, calls: list, replays: int = 2) -> int:
    """Classify ``calls`` ``replays`` times (warm memos on later rounds) and
    compare each answer, in order, with the reference; returns hits seen."""
    n = 0
    for _ in range(replays):
        for call in calls:
            want = reference_hits(c, call)
            got = c.classify_call(call)
            assert got == want, (call.request.method, call.request.path, got, want)
            n += len(got)
    return n


def test_fast_path_matches_reference_on_varied_calls() -> None:
    calls = varied_calls(300, seed=5)
    # twice the same calls: body, value and header memos answer the second round
    assert same_as_reference(Classifier(secret=b"ref"), calls) > 1000
    # tiny memos rotate generations constantly; tight budgets cut walks short
    assert same_as_reference(Classifier(secret=b"ref", memo_size=64), calls) > 1000
    for max_fields, max_hits in ((7, 500), (12, 500), (40, 500), (2000, 3)):
        same_as_reference(Classifier(secret=b"ref", max_fields=max_fields, max_hits=max_hits), calls)
    # values cut short before classifying (a 20-digit run cut to 16 digits may be a card)
    long_digits = make_call("GET", "/x", json={"a": "4111111111111111" + "0000", "b": ["5555555555554444" + "123"]})
    same_as_reference(Classifier(secret=b"ref", max_value_chars=16), [*calls[:50], long_digits])
    assert {h.cls for h in Classifier(max_value_chars=16).classify_call(long_digits)} == {"credit_card"}


@pytest.fixture(scope="module")
def sim_events(tmp_path_factory: pytest.TempPathFactory) -> list:
    """A short DemoBank simulation (every attack playbook) over loopback HTTP."""
    from apiward.model.call import loads
    from apiward.sim.demoapp import create_app
    from apiward.sim.server import ServerThread
    from apiward.sim.simulator import simulate

    tmp = tmp_path_factory.mktemp("sim")
    app = create_app(str(tmp / "demo.sqlite"), seed_users=120)
    try:
        with ServerThread(app) as srv:
            res = simulate(srv.base_url, out_dir=tmp / "out", users=20, duration=2 * 3600.0, population=120,
                           intensity=0.25, seed=3, attacks="all")
    finally:
        app.state.store.close()
    return [loads(line) for line in res.events_path.read_bytes().splitlines()]


def test_fast_path_matches_reference_on_simulator_traffic(sim_events: list) -> None:
    assert len(sim_events) > 200
    hits = same_as_reference(Classifier(secret=b"sim"), sim_events)
    assert hits > len(sim_events)  # DemoBank leaks: several hits per call on average
    same_as_reference(Classifier(secret=b"sim", memo_size=32, max_fields=25), sim_events)


def test_ssn_rules_agree_with_stdnum() -> None:
    from stdnum.us import ssn as stdnum_ssn

    from apiward.discover.sensitive import _ssn_ok

    rnd = random.Random(2)
    samples = ["078051120", "078-05-1120", "219-09-9999", "457555462", "000123456", "666-12-3456", "912-34-5678",
               "123-00-4567", "123-45-0000", "123-45-678", "12-345-6789", "１２３-45-6789", "123456789 "]
    for _ in range(3000):
        d = "".join(rnd.choice("0123456789") for _ in range(9))
        if rnd.random() < 0.3:
            d = rnd.choice(["000", "666", "9" + d[1:3]]) + d[3:]
        samples += [d, f"{d[:3]}-{d[3:5]}-{d[5:]}"]
    for v in samples:
        assert _ssn_ok(v) == stdnum_ssn.is_valid(v), v


def test_plain_values_skipped_before_classifying_are_never_sensitive() -> None:
    """The cheap rejection in front of ``_classify`` (``_PLAIN``) must only
    skip values ``_classify`` finds nothing in without field evidence."""
    from apiward.discover.sensitive import _PLAIN

    rnd = random.Random(4)
    f = PiiFactory(rnd)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    samples = ["1740830423.118", "1712345678901", "4111111111111111", "536221234", "4158675309", "10.0.0.1",
               "AKIAIOSFODNN7EXAMPLE", "Wireless Mouse", "swagger", "eyJhbGciOiJ", "Bearer", "electronics"]
    for _ in range(4000):
        k = rnd.random()
        if k < 0.3:
            v = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 23)))
        elif k < 0.5:
            v = f"{rnd.randint(0, 10**rnd.randint(1, 12))}.{rnd.randint(0, 10**rnd.randint(1, 8))}"
        elif k < 0.8:
            v = " ".join("".join(rnd.choice(letters) for _ in range(rnd.randint(1, 9))) for _ in range(rnd.randint(1, 3)))
        else:
            v = rnd.choice([f.card(), f.ssn(formatted=False), f.phone(), f.email(), f.iban()]).replace(" ", "")
        samples.append(v[:23])
    skipped = 0
    for v in samples:
        if len(v) < 24 and _PLAIN.fullmatch(v):
            skipped += 1
            for neg in (False, True):
                assert C._classify(v, "", neg) == [], v
    assert skipped > 2000


def test_memos_stay_bounded() -> None:
    c = Classifier(memo_size=64)
    for i in range(3000):
        call = make_call("GET", f"/u/{i}/user{i}@example.com?q=v{i}", headers={"authorization": f"Bearer tok-{i:08d}-abcdef"},
                         json={"email": f"user{i}@example.com", "name": f"User Number{i}", "n": [f"x{i}y" * 3]})
        assert {h.cls for h in c.classify_call(call)} >= {"email", "bearer_token"}
    assert len(c._memo) <= 2 * 64
    assert len(c._aux_memo) <= 2 * 8 and len(c._body_memo) <= 2 * 8
    assert len(c._path_memo) <= 4096
    # a long value is answered but never kept
    c.classify_call(make_call("GET", "/x", json={"note": "word " * 100 + "ann@example.org"}))
    assert not any(isinstance(k, str) and len(k) > 256 for k in (*c._memo.new, *c._memo.old))
