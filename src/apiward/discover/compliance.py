"""Which compliance regimes a sensitive data class brings an API into.

The mapping is deliberately coarse: it answers "does this endpoint fall under
PCI DSS / GDPR / HIPAA scope?" for the inventory, not a legal opinion.
``secrets`` marks credentials (rotate them if they leak) and
``infrastructure`` marks leaks that help an attacker map the backend.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["COMPLIANCE", "SCOPES", "scopes"]

PCI = "PCI DSS"
GDPR = "GDPR"
HIPAA = "HIPAA"
SECRETS = "secrets"
INFRA = "infrastructure"

SCOPES: tuple[str, ...] = (PCI, GDPR, HIPAA, SECRETS, INFRA)

COMPLIANCE: dict[str, list[str]] = {
    # payment cards
    "credit_card": [PCI],
    "card_cvv": [PCI],
    # personal data
    "email": [GDPR],
    "phone": [GDPR],
    "iban": [GDPR],
    "national_id": [GDPR],
    "ssn": [GDPR],
    "date_of_birth": [GDPR],
    "address": [GDPR],
    "ip_address": [GDPR],
    # health data is also a GDPR special category (art. 9)
    "health": [HIPAA, GDPR],
    # credentials
    "jwt": [SECRETS],
    "bearer_token": [SECRETS],
    "basic_auth": [SECRETS],
    "api_key": [SECRETS],
    "password": [SECRETS],
    "password_hash": [SECRETS],
    "session_token": [SECRETS],
    # information exposure (mostly in error responses)
    "stack_trace": [INFRA],
    "sql_error": [INFRA],
    "internal_path": [INFRA],
    "internal_hostname": [INFRA],
    "internal_ip": [INFRA],
}


def scopes(classes: Iterable[str]) -> list[str]:
    """The compliance scopes touched by ``classes``, in :data:`SCOPES` order."""
    hit = {s for c in classes for s in COMPLIANCE.get(c, ())}
    return [s for s in SCOPES if s in hit]
