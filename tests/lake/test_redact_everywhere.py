"""The quarantine and every lake column get the redaction the lake's bodies
get (issue 10, item 6): a password in a malformed record, a token in a URL
path (and so in the learned template), a key in a query or an unknown
header are absent from every Parquet file and from the quarantine file,
read as raw bytes and as decoded values."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from apiward.lake.redact import Redactor, secret_like
from apiward.model.call import dumps
from apiward.testing import make_call

from tests.ingest.readers_support import analyze

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsInB1cnBvc2UiOiJyZXNldCJ9.T0tFTi1TSUctNTU1NTU1NTU1"
STRIPE = "sk_live_51HxYzAbCdEfGh1234567890QwErTy"
HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
RANDOM = "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY"
PASSWORD = "Hunter2-Correct-Horse!"
SECRETS = [JWT, STRIPE, HEX, RANDOM, PASSWORD]


def _everything_stored(state: Path) -> list[tuple[str, bytes]]:
    """Raw bytes of every Parquet and quarantine file, and each Parquet
    file's values as text (its pages are compressed)."""
    out = []
    for p in sorted(state.glob("lake/**/*.parquet")):
        out.append((str(p), p.read_bytes()))
        out.append((f"{p} (values)", json.dumps(pq.read_table(p).to_pylist(), default=str).encode()))
    for p in sorted(state.glob("quarantine/*")):
        out.append((str(p), p.read_bytes()))
    return out


def test_no_secret_in_any_lake_file_or_the_quarantine(tmp_path: Path) -> None:
    calls = []
    for i in range(30):  # enough that templates are learned
        calls.append(make_call("GET", f"/reset/{JWT if i % 3 == 0 else f'tok{i}x{JWT[-20:]}'}", status=200, user=f"u{i}", id=f"r{i}"))
        calls.append(make_call("GET", f"/api/keys/{STRIPE}", status=200, user=f"u{i}", id=f"k{i}"))
        calls.append(make_call("GET", f"/files/{HEX}?sig={RANDOM}", status=200, user=f"u{i}", id=f"h{i}",
                               headers={"x-custom-auth": f"v1:{RANDOM}"}))
        calls.append(make_call("POST", "/login", req_json={"user": f"u{i}", "password": PASSWORD}, status=401, id=f"l{i}"))
    data = tmp_path / "traffic.jsonl"
    lines = [dumps(c) for c in calls]
    # malformed records carrying the password: escaped in a body string, in a form, in a header pair
    good = lines[3].decode()
    lines.append(good[: good.index('"request"')].encode() + b'"request": {"body": "{\\"password\\": \\"' + PASSWORD.encode() + b'\\"}" BROKEN')
    lines.append(b'{"id": "f", "request": {"method": "POST", "path": "/login?password=' + PASSWORD.encode() + b'&x=1"')
    lines.append(b'{"id": "a", "request": {"headers": [["authorization", "Bearer ' + JWT.encode() + b'"]], "method": 7}}')
    data.write_bytes(b"\n".join(lines) + b"\n")
    state = tmp_path / "state"
    s = analyze(state, data)
    assert s["per_file"][str(data)]["quarantined"] == 3
    stored = _everything_stored(state)
    assert any("quarantine" in name for name, _ in stored)
    for name, blob in stored:
        for secret in SECRETS:
            assert secret.encode() not in blob, f"{secret[:12]}... in {name}"
    # the rows are still there, with their structure
    rows = [r for p in state.glob("lake/calls/**/*.parquet") for r in pq.read_table(p).to_pylist()]
    assert {r["path"] for r in rows if r["id"].startswith("k")} == {"/api/keys/«secret:" + Redactor(
        bytes.fromhex((state / "secret").read_text().strip())).token(STRIPE, "secret")[8:]}
    assert all(r["template"].startswith("/reset/") for r in rows if r["id"].startswith("r"))


@pytest.mark.parametrize("value, secret", [
    (JWT, True), (STRIPE, True), (HEX, True), (RANDOM, True), ("ghp_" + "a1B2" * 9, True), ("AKIAIOSFODNN7EXAMPLE", True),
    ("550e8400-e29b-41d4-a716-446655440000", False), ("507f1f77bcf86cd799439011", False), ("12345", False),
    ("how-to-configure-the-api-gateway-for-production", False), ("Release-2024-Notes-Final-Version-12", False), ("orders", False),
])
def test_secret_like(value: str, secret: bool) -> None:
    assert secret_like(value) is secret


def test_paths_keep_ids_and_templates_keep_params() -> None:
    r = Redactor(b"k" * 32)
    assert r.path("/users/550e8400-e29b-41d4-a716-446655440000/orders/42") == "/users/550e8400-e29b-41d4-a716-446655440000/orders/42"
    assert r.path("/users/{id}/tokens/{token}") == "/users/{id}/tokens/{token}"
    assert r.path(f"/a/{STRIPE}/b") == f"/a/{r.token(STRIPE, 'secret')}/b"
    assert Redactor(b"k" * 32, enabled=False).path(f"/a/{STRIPE}") == f"/a/{STRIPE}"
