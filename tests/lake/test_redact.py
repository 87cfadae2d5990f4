"""Secrets and PII never reach the lake by default."""

from __future__ import annotations

from pathlib import Path

import orjson

from apiward.config import load_settings
from apiward.lake.query import connect
from apiward.lake.redact import Redactor, luhn_ok
from apiward.model.context import SensitiveHit
from apiward.pipeline import Pipeline
from apiward.testing import make_call

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl"
SECRETS = ["hunter2", "4111111111111111", "s3ss10n-v4lu3", "AKIAABCDEFGHIJKLMNOP", JWT, "c2lnbmF0dXJl"]


def secret_call():
    return make_call(
        "POST",
        "/login?api_key=AKIAABCDEFGHIJKLMNOP&page=2",
        req_json={"username": "alice", "password": "hunter2", "card": {"number": "4111 1111 1111 1111"}},
        json={"token": JWT, "order": "4111111111111112"},
        headers={"authorization": f"Bearer {JWT}", "cookie": "session=s3ss10n-v4lu3; theme=dark"},
        resp_headers={"set-cookie": "session=s3ss10n-v4lu3; Path=/; HttpOnly"},
        id="s#1",
    )


def test_lake_holds_no_secret_by_default(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path / "s", detectors=[])
    pipe.process([secret_call()])
    pipe.close()
    con = connect(tmp_path / "s" / "lake")
    row = con.execute("select * from calls").fetchone()
    blob = orjson.dumps([str(v) for v in row]).decode()
    for s in SECRETS:
        assert s not in blob, s
    # What is not secret stays useful for hunting.
    assert "alice" in blob and "page" in blob and "theme" in blob
    # A number that fails Luhn is not a card and is kept.
    assert "4111111111111112" in blob
    # Equal secrets give equal tokens, so hunts can still join on them.
    headers = dict(orjson.loads(con.execute("select req_headers from calls").fetchone()[0]))
    assert headers["authorization"].startswith("Bearer «credential:")


def test_keep_raw_bodies_is_an_explicit_opt_in(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path / "s", settings=load_settings(keep_raw_bodies=True), detectors=[])
    pipe.process([secret_call()])
    pipe.close()
    body = connect(tmp_path / "s" / "lake").execute("select req_body from calls").fetchone()[0]
    assert "hunter2" in body


def test_classifier_marked_fields_are_tokenised() -> None:
    r = Redactor(b"k" * 32)
    body = b'{"users":[{"email":"bob@example.org","name":"Bob"}]}'
    hits = [SensitiveHit(location="response_body", field="users[].email", cls="email")]
    out = r.body(body, "json", hits, orjson.loads(body))
    assert b"bob@example.org" not in out and b"Bob" in out and "«email:".encode() in out


def test_tokens_are_keyed() -> None:
    assert Redactor(b"a" * 32).token("x") != Redactor(b"b" * 32).token("x")
    assert Redactor(b"a" * 32).token("x") == Redactor(b"a" * 32).token("x")


def test_luhn() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
