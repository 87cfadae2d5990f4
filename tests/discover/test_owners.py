from __future__ import annotations

from pathlib import Path

import pytest

from apiward.discover.inventory import Inventory
from apiward.discover.owners import OwnersError, OwnersFile, owner_from_labels, resolve_owner
from apiward.model.call import Workload
from apiward.testing import make_call


def test_owner_from_labels_priority() -> None:
    assert owner_from_labels({"team": "payments", "app.kubernetes.io/part-of": "shop"}, "ns") == ("payments", "label team")
    assert owner_from_labels({"example.com/owner": "sre"}, "ns") == ("sre", "label example.com/owner")
    assert owner_from_labels({"app.kubernetes.io/part-of": "shop"}, "ns") == ("shop", "label app.kubernetes.io/part-of")
    assert owner_from_labels({"app": "x"}, "billing") == ("billing", "namespace")
    assert owner_from_labels({}, "") == ("", "")


YAML = """
owners:
  - match: "api.example.com/payments/*"
    team: payments
  - path: "/admin/**"
    team: platform
  - host: "*.internal.example.com"
    team: infra
"""

TOML = """
[[owners]]
match = "api.example.com/payments/*"
team = "payments"

[[owners]]
path = "/admin/**"
team = "platform"

[[owners]]
host = "*.internal.example.com"
team = "infra"
"""


@pytest.mark.parametrize("name,text", [("owners.yaml", YAML), ("owners.toml", TOML)])
def test_owners_file(tmp_path: Path, name: str, text: str) -> None:
    p = tmp_path / name
    p.write_text(text)
    of = OwnersFile.load(p)
    assert of.owner("api.example.com", "/payments/{id}") == "payments"
    assert of.owner("api.example.com:443", "/payments/{id}/refund") == "payments"
    assert of.owner("other.example.com", "/payments/{id}") == ""
    assert of.owner("any.host", "/admin/users") == "platform"
    assert of.owner("db.internal.example.com", "/x") == "infra"
    # the file wins over labels; labels when no rule matches
    assert resolve_owner("api.example.com", "/payments/1", {"team": "t"}, "ns", of) == ("payments", "owners file")
    assert resolve_owner("api.example.com", "/users", {"team": "t"}, "ns", of) == ("t", "label team")


def test_short_form_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "o.yaml"
    p.write_text('"api.example.com/users/*": identity\n"/health": sre\n')
    of = OwnersFile.load(p)
    assert of.owner("api.example.com", "/users/{id}") == "identity"
    assert of.owner("x", "/health") == "sre"
    bad = tmp_path / "bad.yaml"
    bad.write_text("owners:\n  - match: '/x'\n    teem: typo\n")
    with pytest.raises(OwnersError, match="unknown key"):
        OwnersFile.load(bad)
    with pytest.raises(OwnersError, match="not-there"):
        OwnersFile.load(tmp_path / "not-there.toml")


def test_inventory_shows_owners(tmp_path: Path) -> None:
    p = tmp_path / "owners.yaml"
    p.write_text(YAML)
    inv = Inventory()
    c = make_call("GET", "/payments/1", route="/payments/{id}")
    inv.observe(c, inv.resolve(c), [])
    c = make_call("GET", "/catalog/1", route="/catalog/{id}")
    c.workload = Workload(namespace="shop", route="/catalog/{id}", labels={"app.kubernetes.io/part-of": "storefront"})
    inv.observe(c, inv.resolve(c), [])
    c = make_call("GET", "/orphanish", route="/orphanish")
    inv.observe(c, inv.resolve(c), [])
    rows = {r["template"]: r for r in inv.rows(owners=OwnersFile.load(p))}
    assert rows["/payments/{id}"]["owner"] == "payments"
    assert rows["/catalog/{id}"]["owner"] == "storefront"
    assert rows["/orphanish"]["owner"] == ""
