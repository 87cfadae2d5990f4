"""A 0-100 risk score per endpoint, with the factors that make it up.

Four parts, each capped, so the score reads as "how bad if this endpoint is
abused" and the factors say why:

- sensitivity (<= 35): the most sensitive class it carries (cards, health,
  credentials, national ids weigh most) plus a little per sensitive field;
- auth posture (<= 25): 2xx answers without credentials, worst when
  sensitive data left without them;
- exposure (<= 15): calls from internet (globally routable) client IPs;
- findings (<= 25): findings on the endpoint, by severity;
- inventory status: shadow and zombie endpoints add a little.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["CLASS_WEIGHT", "risk_score"]

CLASS_WEIGHT: dict[str, int] = {
    "credit_card": 35, "card_cvv": 35, "health": 32, "ssn": 32, "national_id": 30, "password": 30,
    "password_hash": 28, "jwt": 26, "bearer_token": 26, "api_key": 28, "session_token": 26, "basic_auth": 26,
    "iban": 26, "date_of_birth": 20, "address": 18, "email": 16, "phone": 16, "ip_address": 8,
    "stack_trace": 10, "sql_error": 12, "internal_path": 6, "internal_hostname": 6, "internal_ip": 6,
}
SEVERITY_WEIGHT = {"info": 1, "low": 2, "medium": 4, "high": 7, "critical": 10}


def risk_score(
    *,
    classes: list[str],
    sensitive_fields: int,
    calls: int,
    unauth_2xx: int,
    unauth_sensitive: int,
    auth_seen: bool,
    public_calls: int,
    findings: list[str] | None = None,
    status: str = "unknown",
) -> tuple[int, list[str]]:
    """``(score, factors)``; ``findings`` is the severities of the
    endpoint's findings."""
    factors: list[str] = []
    sens = max((CLASS_WEIGHT.get(c, 10) for c in classes), default=0)
    if sens:
        sens = min(35, sens + min(5, sensitive_fields - 1))
        factors.append(f"sensitive data ({', '.join(sorted(set(classes))[:4])})")
    auth = 0
    if unauth_sensitive:
        auth = 25
        factors.append("sensitive data served without credentials")
    elif unauth_2xx and calls:
        frac = unauth_2xx / calls
        auth = 10 + round(8 * frac) + (0 if auth_seen else 4)
        factors.append("answers 2xx without credentials")
    exp = 0
    if public_calls and calls:
        exp = 8 + round(7 * min(1.0, public_calls / calls * 2))
        factors.append("called from internet addresses")
    fnd = 0
    if findings:
        w = sum(SEVERITY_WEIGHT.get(s, 2) for s in findings)
        fnd = min(25, round(6 * math.log2(1 + w)))
        factors.append(f"{len(findings)} finding(s)")
    extra = 0
    if status in ("shadow", "zombie"):
        extra = 5 if status == "shadow" else 8
        factors.append(f"{status} endpoint")
    return min(100, sens + auth + exp + fnd + extra), factors


def score_record(rec: Any, findings: list[str] | None = None) -> tuple[int, list[str]]:
    """:func:`risk_score` of an :class:`~apiward.discover.inventory.EndpointRecord`."""
    classes = [c for cs in rec.sensitive.values() for c in cs]
    return risk_score(
        classes=classes,
        sensitive_fields=len(rec.sensitive),
        calls=rec.calls,
        unauth_2xx=rec.unauth_2xx,
        unauth_sensitive=rec.unauth_sensitive,
        auth_seen=bool(rec.auth_schemes),
        public_calls=rec.public_calls,
        findings=findings,
        status=rec.status,
    )
