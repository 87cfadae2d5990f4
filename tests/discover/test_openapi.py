from __future__ import annotations

import orjson
import yaml
from openapi_spec_validator import validate

from apiward.discover.inventory import Inventory
from apiward.discover.openapi import export
from apiward.model.context import SensitiveHit
from apiward.testing import make_call


def feed(inv: Inventory, call, hits=()) -> None:
    inv.observe(call, inv.resolve(call), list(hits))


def build() -> Inventory:
    inv = Inventory()
    email = SensitiveHit(location="response_body", field="users[].email", cls="email")
    ssn_q = SensitiveHit(location="query", field="ssn", cls="ssn")
    for i in range(30):
        feed(inv, make_call("GET", f"/users?page={i}&ssn=123-45-67{i:02d}", route="/users", user="a",
                            json={"users": [{"id": i, "email": f"u{i}@example.com", "role": ["admin", "user"][i % 2]}], "next": None}),
             [email, ssn_q])
        feed(inv, make_call("GET", f"/users/{i}/orders/{i}", route="/users/{id}/orders/{id}", headers={"x-api-key": "k-123"},
                            json={"total": 9.5, "ts": "2024-01-01T00:00:00Z"}))
        feed(inv, make_call("POST", "/login", route="/login", req_json={"username": "bob", "password": "pw"}, status=200,
                            json={"token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.sig"}))
        feed(inv, make_call("DELETE", "/items/1", route="/items/{itemId}", status=None, host="other.example.com"))
    # an api-key caller and a cookie caller
    c = make_call("GET", "/users/1/orders/2", route="/users/{id}/orders/{id}", headers={"x-api-key": "k-123"})
    c.actor.auth_scheme = "apikey"
    feed(inv, c)
    c = make_call("GET", "/users", route="/users", headers={"cookie": "sessionid=s1"}, json={"users": []})
    c.actor.auth_scheme = "cookie"
    feed(inv, c)
    feed(inv, make_call("GET", "/users", route="/users", json={"users": []}))  # no credentials, 200
    return inv


def test_export_is_valid_openapi_31() -> None:
    doc = export(build())
    validate(doc)  # raises on an invalid document
    assert doc["openapi"] == "3.1.0"
    assert {"/users", "/users/{id}/orders/{id2}", "/login", "/items/{itemId}"} <= set(doc["paths"])
    # YAML round trip stays valid
    validate(yaml.safe_load(yaml.safe_dump(doc, allow_unicode=True)))
    validate(orjson.loads(orjson.dumps(doc)))


def test_export_content() -> None:
    doc = export(build())
    users = doc["paths"]["/users"]["get"]
    params = {p["name"]: p for p in users["parameters"]}
    assert params["page"]["schema"]["type"] == "integer"
    assert params["ssn"]["x-sensitive"] == ["ssn"]
    assert "enum" not in params["ssn"]["schema"]
    assert all("123-45" not in str(e) for e in params["ssn"]["schema"].get("examples", []))
    schema = users["responses"]["200"]["content"]["application/json"]["schema"]
    item = schema["properties"]["users"]["items"]
    assert item["properties"]["email"]["format"] == "email"
    assert item["properties"]["email"]["x-sensitive"] == ["email"]
    assert item["properties"]["email"]["examples"][0].startswith("«email:")
    assert item["properties"]["role"]["enum"] == ["admin", "user"]
    assert set(item["required"]) == {"id", "email", "role"}
    assert schema["properties"]["next"]["type"] == "null"
    login = doc["paths"]["/login"]["post"]
    body = login["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["password"]["examples"][0].startswith("«secret:")
    assert "pw" not in orjson.dumps(doc).decode().replace("password", "")
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["cookieAuth"]["in"] == "cookie" and schemes["cookieAuth"]["name"] == "sessionid"
    assert {"bearerAuth": []} in users["security"] and {} in users["security"]  # also answered without credentials
    assert doc["paths"]["/items/{itemId}"]["delete"]["responses"] == {"default": {"description": "no response observed"}}
    assert {s["url"] for s in doc["servers"]} == {"https://api.example.com", "https://other.example.com"}


def test_export_one_service() -> None:
    doc = export(build(), "other.example.com")
    validate(doc)
    assert list(doc["paths"]) == ["/items/{itemId}"]
