"""The independent OpenAPI traffic generator (specgen_alt): determinism,
paths that match their templates, ground truth that adds up, HAR/JSONL that
apiward reads back, long-tailed call counts and realistic value styles."""

from __future__ import annotations

import collections
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from apiward.ingest.base import ReadOptions
from apiward.ingest.registry import read_file
from apiward.model.call import ApiCall
from apiward.sim import specgen_alt as sg

# --- three small specs ------------------------------------------------------

SWAGGER2: dict[str, Any] = {
    "swagger": "2.0",
    "info": {"title": "Bookshop", "version": "2.3.1"},
    "host": "shop.example.com",
    "basePath": "/api/v2",
    "schemes": ["https"],
    "consumes": ["application/json"],
    "produces": ["application/json"],
    "securityDefinitions": {"key": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
    "security": [{"key": []}],
    "parameters": {
        "UserId": {"name": "userId", "in": "path", "required": True, "type": "integer", "format": "int64"},
        "Page": {"name": "page", "in": "query", "type": "integer", "minimum": 1, "maximum": 40},
    },
    "paths": {
        "/users": {
            "get": {"parameters": [{"$ref": "#/parameters/Page"}],
                    "responses": {"200": {"description": "ok", "schema": {"type": "array", "items": {"$ref": "#/definitions/User"}}}}},
            "post": {"parameters": [{"name": "body", "in": "body", "schema": {"$ref": "#/definitions/User"}}],
                     "responses": {"201": {"description": "created", "schema": {"$ref": "#/definitions/User"}}}},
        },
        "/users/{userId}": {
            "parameters": [{"$ref": "#/parameters/UserId"}],
            "get": {"responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/User"}},
                                  "404": {"description": "missing"}}},
            "put": {"parameters": [{"name": "body", "in": "body", "schema": {"$ref": "#/definitions/User"}}],
                    "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/User"}}}},
            "delete": {"responses": {"204": {"description": "gone"}}},
        },
        "/users/{userId}/orders/{orderId}": {
            "parameters": [{"$ref": "#/parameters/UserId"}],
            "get": {"parameters": [{"name": "orderId", "in": "path", "required": True, "type": "string", "format": "uuid"}],
                    "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/Order"}}}},
        },
        "/books/{slug}": {
            "get": {"parameters": [{"name": "slug", "in": "path", "required": True, "type": "string"}],
                    "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/Book"}}}},
        },
        "/authors/{handle}/posts/{postSlug}": {
            "get": {"parameters": [{"name": "handle", "in": "path", "required": True, "type": "string"},
                                   {"name": "postSlug", "in": "path", "required": True, "type": "string"}],
                    "responses": {"200": {"description": "ok"}}},
        },
        "/reports/{year}/{month}/summary.{format}": {
            "get": {"parameters": [{"name": "year", "in": "path", "required": True, "type": "integer"},
                                   {"name": "month", "in": "path", "required": True, "type": "integer"},
                                   {"name": "format", "in": "path", "required": True, "type": "string", "enum": ["json", "csv"]}],
                    "responses": {"200": {"description": "ok"}}},
        },
        "/shelves/{kind}": {
            "get": {"parameters": [{"name": "kind", "in": "path", "required": True, "type": "string",
                                    "enum": ["fiction", "poetry", "history"]}],
                    "responses": {"200": {"description": "ok"}}},
        },
        "/files/{fileName}": {
            "get": {"parameters": [{"name": "fileName", "in": "path", "required": True, "type": "string"}],
                    "responses": {"200": {"description": "ok"}}},
        },
        "/codes/{code}": {
            "get": {"parameters": [{"name": "code", "in": "path", "required": True, "type": "string",
                                    "pattern": "^[A-Z]{3}-[0-9]{4}$"}],
                    "responses": {"200": {"description": "ok"}}},
        },
    },
    "definitions": {
        "User": {"type": "object", "required": ["id", "name"], "properties": {
            "id": {"type": "integer", "readOnly": True},
            "name": {"type": "string"},
            "email": {"type": "string", "format": "email"},
            "friends": {"type": "array", "items": {"$ref": "#/definitions/User"}},  # a cycle
            "best": {"$ref": "#/definitions/User"},
        }},
        "Order": {"allOf": [{"$ref": "#/definitions/Base"}, {"type": "object", "properties": {
            "userId": {"type": "integer"}, "total": {"type": "number"}, "buyer": {"$ref": "#/definitions/User"}}}]},
        "Base": {"type": "object", "properties": {"id": {"type": "string"}, "createdAt": {"type": "string", "format": "date-time"}}},
        "Book": {"type": "object", "properties": {"slug": {"type": "string"}, "title": {"type": "string"}}},
    },
}

OPENAPI3: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Cloud Instances", "version": "1.0.0"},
    "servers": [{"url": "https://{region}.api.cloud.example/v1", "variables": {"region": {"default": "eu", "enum": ["eu", "us"]}}}],
    "components": {
        "parameters": {
            "Project": {"name": "project", "in": "path", "required": True, "schema": {"type": "string"}},
            "Location": {"name": "location", "in": "path", "required": True, "schema": {"type": "string"}},
        },
        "securitySchemes": {"oauth": {"type": "oauth2", "flows": {}}},
        "schemas": {
            "Instance": {"type": "object", "properties": {
                "name": {"type": "string"}, "instanceId": {"type": "string"},
                "state": {"type": "string", "enum": ["RUNNING", "STOPPED"]},
                "parent": {"$ref": "#/components/schemas/Node"}}},
            "Node": {"type": "object", "properties": {
                "label": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}},
        },
        "requestBodies": {"Instance": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Instance"}}}}},
        "responses": {"Instance": {"description": "ok", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Instance"}}}}},
    },
    "security": [{"oauth": []}],
    "paths": {
        "/projects/{project}/locations/{location}/instances": {
            "parameters": [{"$ref": "#/components/parameters/Project"}, {"$ref": "#/components/parameters/Location"}],
            "get": {"operationId": "cloud.projects.locations.instances.list", "responses": {"200": {"description": "ok"}}},
            "post": {"operationId": "cloud.projects.locations.instances.create",
                     "requestBody": {"$ref": "#/components/requestBodies/Instance"},
                     "responses": {"201": {"$ref": "#/components/responses/Instance"}}},
        },
        "/projects/{project}/locations/{location}/instances/{instanceId}": {
            "parameters": [{"$ref": "#/components/parameters/Project"}, {"$ref": "#/components/parameters/Location"},
                           {"name": "instanceId", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {"operationId": "cloud.projects.locations.instances.get", "responses": {"200": {"$ref": "#/components/responses/Instance"}}},
            "delete": {"operationId": "cloud.projects.locations.instances.delete", "responses": {"204": {"description": "gone"}}},
        },
        "/{name}:start": {
            "post": {"operationId": "cloud.projects.locations.instances.start",
                     "parameters": [{"name": "name", "in": "path", "required": True, "x-reservedExpansion": True,
                                     "description": "Instance name, in the format `projects/*/locations/*/instances/*`.",
                                     "schema": {"type": "string"}}],
                     "responses": {"200": {"description": "ok"}}},
        },
        "/releases/{version}": {
            "get": {"parameters": [{"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "ok"}}},
        },
        "/countries/{countryCode}/languages/{lang}": {
            "get": {"parameters": [{"name": "countryCode", "in": "path", "required": True, "schema": {"type": "string"}},
                                   {"name": "lang", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "ok"}}},
        },
        "/members/{email}": {
            "get": {"parameters": [{"name": "email", "in": "path", "required": True, "schema": {"type": "string", "format": "email"}}],
                    "responses": {"200": {"description": "ok"}}},
        },
    },
}

NO_SERVERS: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Tiny Todo", "version": "0.1"},
    "paths": {
        "/lists/{listId}/items/{itemId}": {
            "get": {"parameters": [
                {"name": "listId", "in": "path", "required": True, "schema": {"type": "integer"}},
                {"name": "itemId", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "ok"}}},
        },
        "/search?mode=fast": {"get": {"parameters": [{"name": "q", "in": "query", "required": True, "schema": {"type": "string"}}],
                                      "responses": {"200": {"description": "ok"}}}},
    },
}

SPECS = {"bookshop": SWAGGER2, "cloud": OPENAPI3, "tiny-todo": NO_SERVERS}


def _many_ops_spec(n: int = 200) -> dict[str, Any]:
    """A wide spec to look at the call-count distribution."""
    paths = {}
    for i in range(n):
        paths[f"/r{i}/{{id}}"] = {"get": {"parameters": [{"name": "id", "in": "path", "required": True, "type": "integer"}],
                                         "responses": {"200": {"description": "ok"}}}}
    return {"swagger": "2.0", "info": {"title": "wide", "version": "1"}, "host": "wide.example.org", "paths": paths}


@pytest.fixture(scope="module")
def traffic() -> list[sg.SpecTraffic]:
    done, skipped = sg.generate_many(((k, copy.deepcopy(v)) for k, v in SPECS.items()), seed=7)
    assert skipped == []
    return done


def _fingerprint(t: sg.SpecTraffic) -> list[tuple]:
    return [(c.method, c.url, c.status, c.req_body, c.resp_body, c.ts, c.template) for c in t.calls]


# --- tests -------------------------------------------------------------------


def test_deterministic_per_seed() -> None:
    for name, spec in SPECS.items():
        a = sg.generate(copy.deepcopy(spec), name, seed=11)
        b = sg.generate(copy.deepcopy(spec), name, seed=11)
        c = sg.generate(copy.deepcopy(spec), name, seed=12)
        assert _fingerprint(a) == _fingerprint(b)
        assert _fingerprint(a) != _fingerprint(c)


def test_paths_match_templates_and_base_paths(traffic: list[sg.SpecTraffic]) -> None:
    by_name = {t.name: t for t in traffic}
    for t in traffic:
        multi = {(op.method, op.template): op.multi for op in t.operations}
        for c in t.calls:
            rx = sg.template_regex(c.template, multi[(c.method, c.template)])
            assert rx.match(c.path), (c.template, c.path)
            assert "{" not in c.path and "}" not in c.path
    shop = by_name["bookshop"]
    assert {c.host for c in shop.calls} == {"shop.example.com"}
    assert all(c.template.startswith("/api/v2/") and c.path.startswith("/api/v2/") for c in shop.calls)
    assert all(c.scheme == "https" for c in shop.calls)
    cloud = by_name["cloud"]
    assert {c.host for c in cloud.calls} == {"eu.api.cloud.example"}
    assert all(c.template.startswith("/v1/") for c in cloud.calls)
    todo = by_name["tiny-todo"]
    assert {c.host for c in todo.calls} == {"tiny-todo.example"}
    search = [c for c in todo.calls if c.template == "/search"]
    assert search and all(c.query[0] == ("mode", "fast") and ("q" in dict(c.query)) for c in search)


def test_value_styles(traffic: list[sg.SpecTraffic]) -> None:
    by_name = {t.name: t for t in traffic}

    def values(t: sg.SpecTraffic, template_end: str, group: int = 1) -> list[str]:
        out = []
        for c in t.calls:
            if c.template.endswith(template_end) and c.status != 404:
                m = sg.template_regex(c.template, {"name"}).pattern.replace("[^/]+", "([^/]+)").replace(".+", "(.+)")
                mm = re.match(m, c.path)
                assert mm
                out.append(mm.group(group))
        return out

    shop, cloud = by_name["bookshop"], by_name["cloud"]
    slugs = values(shop, "/books/{slug}")
    assert slugs and all(re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)+", s) for s in slugs)
    handles = values(shop, "/posts/{postSlug}")
    assert handles and all(re.fullmatch(r"[A-Za-z0-9._-]+", h) for h in handles)
    kinds = values(shop, "/shelves/{kind}")
    assert kinds and set(kinds) <= {"fiction", "poetry", "history"}
    files = values(shop, "/files/{fileName}")
    assert files and all(re.fullmatch(r"[\w.-]+\.[a-z0-9]+(?:\.gz)?", f) for f in files)
    codes = values(shop, "/codes/{code}")
    assert codes and all(re.fullmatch(r"[A-Z]{3}-[0-9]{4}", c) for c in codes)
    users = values(shop, "/users/{userId}")
    assert users and all(u.isdigit() or u == "me" for u in users)
    orders = values(shop, "/orders/{orderId}", 2)
    assert orders and all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", o) for o in orders)
    names = values(cloud, "/{name}:start")
    assert names and all(re.fullmatch(r"projects/[^/]+/locations/[^/]+/instances/[^/]+", n) for n in names)
    emails = values(cloud, "/members/{email}")
    assert emails and all(re.fullmatch(r"[^@/]+@[^@/]+\.[a-z.]+", e) for e in emails)
    versions = values(cloud, "/releases/{version}")
    assert versions and all(re.fullmatch(r"v?\d+(?:\.\d+)*(?:-[a-z]+\.\d+)?|\d{4}-\d{2}-\d{2}", v) for v in versions)


def test_objects_are_reused_and_varied() -> None:
    t = sg.generate(_many_ops_spec(30), "wide", seed=3, scale=20)
    per_template: dict[str, list[str]] = collections.defaultdict(list)
    for c in t.calls:
        per_template[c.template].append(c.path)
    busy = [paths for paths in per_template.values() if len(paths) >= 40]
    assert busy
    for paths in busy:
        counts = collections.Counter(paths)
        assert len(counts) >= 5  # different objects get different values
        assert counts.most_common(1)[0][1] >= 3  # and the same object is read again


def test_ground_truth_adds_up(traffic: list[sg.SpecTraffic]) -> None:
    calls = sg._merge_by_time(traffic)
    truth = sg.truth_document(calls, traffic, seed=7, traffic_file="x.har", fmt="har")
    assert truth["total_calls"] == len(calls) == sum(len(t.calls) for t in traffic)
    assert sum(e["calls"] for e in truth["endpoints"]) == len(calls)
    assert [c["index"] for c in truth["calls"]] == list(range(len(calls)))
    per = collections.Counter((c["method"], c["host"], c["template"]) for c in truth["calls"])
    for e in truth["endpoints"]:
        assert e["calls"] == per[(e["method"], e["host"], e["path_template"])] >= 1
    n_ops = sum(len(t.operations) for t in traffic)
    assert len(truth["endpoints"]) == n_ops  # no two operations share a wire template here
    start = [e for e in truth["endpoints"] if e["path_template"] == "/v1/{name}:start"]
    assert start and start[0]["multi_segment_params"] == ["name"]
    assert all(a["index"] < b["index"] for a, b in zip(truth["calls"], truth["calls"][1:]))
    ts = [c.ts for c in calls]
    assert ts == sorted(ts) and ts[-1] - ts[0] > 3600 and ts[-1] - ts[0] <= 86400


def test_long_tailed_call_counts() -> None:
    t = sg.generate(_many_ops_spec(200), "wide", seed=5)
    counts = sorted(t.counts.values())
    assert len(counts) == 200 and min(counts) >= 1
    small = sum(1 for n in counts if n <= 5)
    assert small / len(counts) >= 0.6  # many endpoints get 1-5 calls
    assert counts[-1] >= 50  # a few get many
    assert counts[-1] >= 10 * counts[len(counts) // 2]


def test_missing_objects_and_errors_at_a_low_rate() -> None:
    t = sg.generate(_many_ops_spec(40), "wide", seed=9, scale=10, missing_rate=0.1)
    missing = [c for c in t.calls if c.nonexistent]
    assert missing and all(c.status == 404 for c in missing)
    found = {c.path for c in t.calls if not c.nonexistent}
    assert not any(c.path in found for c in missing)  # a never-used id
    body = json.loads(missing[0].resp_body)
    assert body["error"]["code"] == 404
    default = sg.generate(_many_ops_spec(40), "wide", seed=9, scale=10)
    bad = sum(1 for c in default.calls if c.status >= 400)
    assert 0 < bad < 0.1 * len(default.calls)


def test_response_ids_agree_with_the_path(traffic: list[sg.SpecTraffic]) -> None:
    shop = next(t for t in traffic if t.name == "bookshop")
    seen = 0
    for c in shop.calls:
        if c.template == "/api/v2/users/{userId}" and c.method == "GET" and c.status == 200:
            uid = c.path.rsplit("/", 1)[-1]
            if uid != "me":
                assert json.loads(c.resp_body)["id"] == int(uid)
                seen += 1
        if c.template.endswith("/orders/{orderId}") and c.status == 200:
            body = json.loads(c.resp_body)
            _, _, _, _, user, _, order = c.path.split("/")
            assert body["id"] == order
            if "userId" in body and user != "me":
                assert body["userId"] == int(user)
    assert seen


def test_har_is_valid_and_read_back(traffic: list[sg.SpecTraffic], tmp_path: Path) -> None:
    calls = sg._merge_by_time(traffic)
    path = tmp_path / "traffic.har"
    sg.write_har(calls, str(path))
    doc = json.loads(path.read_text())
    assert doc["log"]["version"] == "1.2"
    entries = doc["log"]["entries"]
    assert len(entries) == len(calls)
    for e in entries:
        assert {"request", "response", "startedDateTime", "time"} <= set(e)
        assert {"method", "url", "headers", "httpVersion"} <= set(e["request"])
        assert {"status", "headers", "content"} <= set(e["response"])
    fmt, records = read_file(str(path), None, ReadOptions())
    assert fmt == "har"
    got = [item for _, item in records]
    assert len(got) == len(calls) and all(isinstance(x, ApiCall) for x in got)
    for c, x in zip(calls, got):
        assert (x.request.method, x.request.host, x.request.path) == (c.method, c.host, c.path)
        assert x.request.query == c.query
        assert x.status == c.status
        assert abs(x.ts - c.ts) < 0.002
        if c.resp_type.startswith("application/json") and c.resp_body:
            assert x.response.json() == json.loads(c.resp_body)


def test_jsonl_is_read_back(traffic: list[sg.SpecTraffic], tmp_path: Path) -> None:
    calls = sg._merge_by_time(traffic)
    path = tmp_path / "traffic.jsonl"
    sg.write_jsonl(calls, str(path))
    fmt, records = read_file(str(path), None, ReadOptions())
    assert fmt == "jsonl"
    got = [item for _, item in records]
    assert len(got) == len(calls)
    for c, x in zip(calls, got):
        assert isinstance(x, ApiCall)
        assert (x.request.method, x.request.host, x.request.path, x.status) == (c.method, c.host, c.path, c.status)
        assert x.workload.route == ""  # the ground truth never leaks into the events


def test_cli_combined_and_per_spec(tmp_path: Path) -> None:
    src = tmp_path / "specs"
    (src / "sub").mkdir(parents=True)
    for name, spec in SPECS.items():
        (src / "sub" / f"{name}.json").write_text(json.dumps(spec))
    (src / "broken.json").write_text("{not json")
    (src / "notes.json").write_text(json.dumps({"hello": "world"}))
    out = tmp_path / "out"
    assert sg.main([str(src), str(out), "--seed", "4", "--combined", "--format", "jsonl"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["specs_processed"] == 3
    assert sorted(s["spec"] for s in summary["specs_skipped"]) == ["broken", "notes"]
    truth = json.loads((out / "traffic.truth.json").read_text())
    lines = (out / "traffic.jsonl").read_bytes().splitlines()
    assert len(lines) == truth["total_calls"] == summary["total_calls"] == len(truth["calls"])
    out2 = tmp_path / "out2"
    assert sg.main([str(src), str(out2), "--seed", "4", "--limit", "2"]) == 0
    hars = sorted(p.name for p in out2.glob("*.har"))
    assert len(hars) == 2 and len(list(out2.glob("*.truth.json"))) == 2
