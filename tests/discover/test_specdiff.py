from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from apiward.discover.inventory import Inventory
from apiward.discover.specdiff import DETECTOR_ID, apply, diff
from apiward.discover.specs import SpecError, load_spec, normalize_template, spec_routes
from apiward.testing import make_call

OAS3_YAML = """
openapi: 3.0.3
info: {title: shop, version: "1"}
servers:
  - url: https://api.example.com/api
paths:
  /v2/users/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}}
        - {name: fields, in: query, schema: {type: string}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/User"}
  /v1/users/{id}:
    get:
      responses: {"200": {description: ok}}
  /v2/legacy/report:
    get:
      deprecated: true
      responses: {"200": {description: ok}}
  /v2/orders:
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                sku: {type: string}
                qty: {type: integer}
      responses: {"201": {description: created}}
  /v2/never/called:
    get:
      responses: {"200": {description: ok}}
components:
  schemas:
    User:
      type: object
      properties:
        id: {type: string}
        name: {type: string}
"""

OAS2 = {
    "swagger": "2.0",
    "info": {"title": "shop", "version": "1"},
    "basePath": "/api",
    "paths": {
        "/v2/users/{userId}": {
            "get": {
                "parameters": [{"name": "userId", "in": "path", "required": True, "type": "integer"},
                               {"name": "fields", "in": "query", "type": "string"}],
                "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/User"}}},
            }
        },
        "/v1/users/{userId}": {"get": {"responses": {"200": {"description": "ok"}}}},
        "/v2/legacy/report": {"get": {"deprecated": True, "responses": {"200": {"description": "ok"}}}},
        "/v2/orders": {
            "post": {
                "parameters": [{"name": "body", "in": "body", "schema": {
                    "type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}}}}],
                "responses": {"201": {"description": "created"}},
            }
        },
        "/v2/never/called": {"get": {"responses": {"200": {"description": "ok"}}}},
    },
    "definitions": {"User": {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}},
}


def feed(inv: Inventory, call) -> None:
    inv.observe(call, inv.resolve(call), [])


def traffic() -> Inventory:
    inv = Inventory()
    for i in range(20):
        # documented, but with an undocumented query parameter, an undocumented
        # response field, an integer id documented as string, and a 404 not in the spec
        feed(inv, make_call("GET", f"/api/v2/users/{i}?fields=name&debug=1", route="/api/v2/users/{userId}", user=f"u{i}",
                            json={"id": i, "name": "n", "ssn": "123-45-6789"}))
        feed(inv, make_call("GET", f"/api/v1/users/{i}", route="/api/v1/users/{userId}", user=f"u{i}", json={"id": i}))
        feed(inv, make_call("GET", "/api/v2/legacy/report", route="/api/v2/legacy/report", user="u1", json={}))
        feed(inv, make_call("POST", "/api/v2/orders", route="/api/v2/orders", status=201, user="u1",
                            req_json={"sku": "A", "qty": 1, "discount": 99}, json={"id": 1}))
        feed(inv, make_call("GET", "/api/internal/debug", route="/api/internal/debug", json={"env": "prod"}))
    feed(inv, make_call("GET", "/api/v2/users/999", route="/api/v2/users/{userId}", status=404, json={"error": "nope"}))
    return inv


@pytest.fixture(params=["oas3.yaml", "oas3.json", "oas2.json", "oas2.yaml"])
def spec_file(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    import yaml

    doc = yaml.safe_load(OAS3_YAML) if request.param.startswith("oas3") else OAS2
    p = tmp_path / request.param
    p.write_text(yaml.safe_dump(doc) if p.suffix == ".yaml" else orjson.dumps(doc).decode())
    return p


def test_every_category(spec_file: Path) -> None:
    inv = traffic()
    res = diff(inv, spec_file)
    by_kind: dict[str, set[tuple[str, str]]] = {}
    for it in res.items:
        by_kind.setdefault(it.kind, set()).add((f"{it.method} {it.template}", it.field))
    assert by_kind["shadow"] == {("GET /api/internal/debug", "")}
    zombies = {e for e, _ in by_kind["zombie"]}
    assert zombies == {"GET /api/v2/legacy/report", "GET /api/v1/users/{userId}"}  # deprecated; old version
    assert by_kind["orphan"] == {("GET /api/v2/never/called", "")}
    assert ("GET /api/v2/users/{userId}", "debug") in by_kind["undocumented_parameter"]
    assert ("GET /api/v2/users/{userId}", "fields") not in by_kind["undocumented_parameter"]
    assert ("GET /api/v2/users/{userId}", "ssn") in by_kind["undocumented_response_field"]
    assert ("GET /api/v2/users/{userId}", "id") in by_kind["type_mismatch"]
    assert ("GET /api/v2/users/{userId}", "name") not in by_kind.get("type_mismatch", set())
    assert ("POST /api/v2/orders", "discount") in by_kind["undocumented_request_field"]
    assert ("GET /api/v2/users/{userId}", "404") in by_kind["undocumented_status"]
    status = {k[2]: v for k, v in res.status.items()}
    assert status == {
        "/api/v2/users/{userId}": "documented",
        "/api/v1/users/{userId}": "zombie",
        "/api/v2/legacy/report": "zombie",
        "/api/v2/orders": "documented",
        "/api/internal/debug": "shadow",
    }


def test_findings_and_apply(spec_file: Path) -> None:
    inv = traffic()
    res = diff(inv, spec_file)
    findings = res.findings()
    assert findings and all(f.detector == DETECTOR_ID and f.owasp.startswith("API9:2023") and f.cwe for f in findings)
    shadow = [f for f in findings if f.evidence["kind"] == "shadow"]
    assert len(shadow) == 1 and shadow[0].endpoint == "GET /api/internal/debug"
    assert shadow[0].severity == "high"  # answered 2xx without credentials
    assert shadow[0].event_ids  # points at sample events
    assert len({f.id for f in findings}) == len(findings)
    assert [f.id for f in diff(inv, spec_file).findings()] == [f.id for f in findings]  # stable ids
    apply(inv, res)
    rows = {(r["method"], r["template"]): r for r in inv.rows()}
    assert rows[("GET", "/api/internal/debug")]["status"] == "shadow"
    assert rows[("GET", "/api/v2/users/{userId}")]["status"] == "documented"
    assert rows[("GET", "/api/v2/never/called")]["status"] == "orphan"
    assert rows[("GET", "/api/v2/never/called")]["calls"] == 0


def test_structural_match_without_prefix_and_literal_segments(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\nservers: [{url: 'https://gw.example.com/base'}]\n"
        "paths:\n  /users/{id}: {get: {responses: {'200': {description: ok}}}}\n"
        "  /users/me: {get: {responses: {'200': {description: ok}}}}\n"
        "  /files/{name}.json: {get: {responses: {'200': {description: ok}}}}\n"
    )
    inv = Inventory()
    # captured behind a gateway that strips /base; the templater kept a literal
    feed(inv, make_call("GET", "/users/42", route="/users/{userId}"))
    feed(inv, make_call("GET", "/users/me", route="/users/me"))
    feed(inv, make_call("GET", "/users/alice", route="/users/alice"))
    feed(inv, make_call("GET", "/files/a.json", route="/files/{fileId}.json"))
    feed(inv, make_call("PUT", "/users/42", route="/users/{userId}"))
    res = diff(inv, p)
    status = {(k[1], k[2]): v for k, v in res.status.items()}
    assert status[("GET", "/users/{userId}")] == "documented"
    assert status[("GET", "/users/me")] == "documented"
    assert status[("GET", "/users/alice")] == "documented"
    assert res.matched[("api.example.com", "GET", "/users/me")].path == "/users/me"  # most literal wins
    assert status[("GET", "/files/{fileId}.json")] == "documented"
    assert status[("PUT", "/users/{userId}")] == "shadow"  # documented path, undocumented method
    assert not [i for i in res.items if i.kind == "orphan"]


def test_spec_routes_and_errors(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text(orjson.dumps(OAS2).decode())
    routes = spec_routes(p)
    assert "/api/v2/users/{userId}" in routes and len(routes) == 5
    assert normalize_template("/a/{x}/b/{y}/") == normalize_template("/a/{id}/b/{z}") == "/a/{}/b/{}"
    bad = tmp_path / "bad.yaml"
    bad.write_text("hello: [")
    with pytest.raises(SpecError):
        load_spec(bad)
    notspec = tmp_path / "n.yaml"
    notspec.write_text("a: 1\n")
    with pytest.raises(SpecError, match="not an OpenAPI"):
        load_spec(notspec)
