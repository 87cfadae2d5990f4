"""Synthesise realistic request paths from an OpenAPI 2.0/3.x spec.

For each path template, path parameters get plausible values from their name,
type, format, enum and bounds: integer ids with realistic ranges, uuids,
emails, dates, usernames, slugs made of words, sha hashes, country and
language codes, cloud regions, resource names, mixed vendor ids
(``ord_8f3k2``, ``A-12345``, ``AC`` + hex)... Each parameter draws from a
per-spec pool with Zipf-like reuse (the same account id recurs), endpoints
get Zipf-skewed traffic with a floor of a few calls each, and the calls are
shuffled.

What the spec documents is honoured: an enum, a format, an example
(values shaped like it), a date layout named in the description (``in
YYYYMMDD format``), "language code"; a parameter left bare in one operation
takes what a same-named parameter of another operation documents.

Values are generated from what the spec says about the parameter only, never
from how any templater decides. Values that equal a literal segment of the
same spec are redrawn (a real router would route them to that literal).

Each call also gets a response body skeleton built from the operation's 2xx
JSON schema in the spec (property names only, one array item), so that
consumers can compute a response *shape* as they would from real traffic; a
few calls are errors (no body), list calls sometimes return ``[]`` and objects
sometimes omit one optional property. No schema in the spec -> no body.

Cost: pure Python, ~100k paths/s; used by benchmarks and the simulator.
"""

from __future__ import annotations

import random
import re
import string
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

__all__ = ["Endpoint", "SpecTraffic", "load_endpoints", "generate"]

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

_WORDS = """
alpha amber apple atlas aurora autumn azure badger bamboo beacon birch blossom breeze bronze canyon
cedar cherry cinder citrus clover cobalt comet coral cosmos crimson crystal dawn delta desert drift
eagle echo ember falcon fern fjord flame forest fox galaxy garnet glacier granite harbor hazel horizon
indigo iris island ivory jade jasper juniper lagoon lantern lava lemon lilac linen lotus lunar maple
marble meadow mercury mesa mint mist monarch moss nebula nectar nova oak ocean olive onyx opal orbit
orchid pebble pepper pine planet plum polar prairie quartz quill raven reef ridge river robin ruby
saffron sage sapphire shadow sierra silver slate solar spruce stone storm summit sunset tango thunder
tiger timber topaz tulip tundra valley velvet violet willow winter zephyr zinc
""".split()
_FIRST = """alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil
trent victor walter xavier yvonne zoe liam emma noah ava mia lucas sofia ethan chloe mateo aria""".split()
_LAST = "smith jones garcia miller davis lopez wilson moore taylor thomas white harris clark lewis".split()
_TLDS = ["com", "org", "net", "io", "de", "co.uk"]
_COUNTRIES = "US GB DE FR ES IT NL BE SE NO DK FI PL PT IE AT CH CA MX BR AR JP CN IN AU NZ ZA KR SG".split()
_LANGS = "en de fr es it pt nl sv ja zh ko ru en-US en-GB pt-BR fr-CA".split()
_REGIONS = ("westus eastus eastus2 westeurope northeurope southeastasia us-east-1 us-west-2 eu-west-1 "
            "eu-central-1 ap-southeast-2 us-central1 europe-west1 asia-east1").split()
_CURRENCIES = "USD EUR GBP JPY CHF CAD AUD SEK NOK DKK".split()


@dataclass
class Param:
    name: str
    type: str = "string"
    format: str = ""
    enum: list[Any] = field(default_factory=list)
    pattern: str = ""
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""
    example: str = ""

    @property
    def few_values(self) -> bool:
        """A parameter with at most 3 possible values (enum or bounds)."""
        if self.enum:
            return len(self.enum) <= 3
        if self.type in ("integer", "number") and self.minimum is not None and self.maximum is not None:
            return self.maximum - self.minimum < 3
        return self.type == "boolean"


@dataclass
class Endpoint:
    method: str
    path: str  # the spec's template, query/fragment stripped
    params: dict[str, Param]
    #: skeleton of the 2xx JSON response from the spec's schema (top level and
    #: first array item only), ``None`` when the spec gives no schema
    response: Any = None
    #: top-level properties the schema does not mark required (may be omitted)
    optional: tuple[str, ...] = ()

    @property
    def few_valued(self) -> bool:
        return any(p.few_values for p in self.params.values())


def _deref(spec: dict[str, Any], obj: Any) -> Any:
    seen = 0
    while isinstance(obj, dict) and "$ref" in obj and seen < 10:
        ref = obj["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return {}
        cur: Any = spec
        for part in ref[2:].split("/"):
            cur = cur.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(cur, dict) else {}
        obj = cur
        seen += 1
    return obj


def _param(spec: dict[str, Any], raw: dict[str, Any]) -> Param:
    sch = _deref(spec, raw.get("schema")) if "schema" in raw else raw
    if not isinstance(sch, dict):
        sch = {}
    enum = sch.get("enum") or raw.get("enum") or []
    return Param(
        name=str(raw.get("name", "")),
        type=str(sch.get("type") or raw.get("type") or "string"),
        format=str(sch.get("format") or raw.get("format") or ""),
        enum=[e for e in enum if e is not None] if isinstance(enum, list) else [],
        pattern=str(sch.get("pattern") or raw.get("pattern") or ""),
        minimum=sch.get("minimum", raw.get("minimum")),
        maximum=sch.get("maximum", raw.get("maximum")),
        description=str(raw.get("description") or sch.get("description") or ""),
        example=_example(raw, sch),
    )


def _example(raw: dict[str, Any], sch: dict[str, Any]) -> str:
    """A documented example value (``example``, ``x-example``, ``examples``), if scalar."""
    for src in (raw, sch):
        for key in ("example", "x-example", "default"):
            v = src.get(key)
            if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v):
                return str(v)
        ex = src.get("examples")
        if isinstance(ex, dict):
            for v in ex.values():
                v = v.get("value") if isinstance(v, dict) else v
                if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v):
                    return str(v)
    return ""


def _inherit(endpoints: list["Endpoint"]) -> None:
    """A path parameter documented in one operation (enum, format, pattern,
    example) and left bare in another of the same spec is the same thing:
    the bare one takes the documented metadata."""
    best: dict[str, Param] = {}
    for e in endpoints:
        for name, p in e.params.items():
            score = bool(p.enum) * 4 + bool(p.format) * 2 + bool(p.example) + bool(p.pattern)
            cur = best.get(name)
            if score and (cur is None or score > bool(cur.enum) * 4 + bool(cur.format) * 2 + bool(cur.example) + bool(cur.pattern)):
                best[name] = p
    for e in endpoints:
        for name, p in list(e.params.items()):
            b = best.get(name)
            if b is not None and b is not p and not (p.enum or p.format or p.pattern or p.example) and p.type == b.type:
                e.params[name] = Param(name, b.type, b.format, list(b.enum), b.pattern, b.minimum, b.maximum,
                                       p.description or b.description, b.example)


def clean_path(path: str) -> str:
    """The part of a spec path a client sends: no query, no fragment."""
    return path.split("?", 1)[0].split("#", 1)[0] or "/"


def load_endpoints(spec: dict[str, Any]) -> list[Endpoint]:
    """(method, path, path params) of every operation in an OpenAPI 2/3 spec."""
    out: dict[tuple[str, str], Endpoint] = {}
    base = ""
    if spec.get("swagger") and spec.get("basePath") not in (None, "", "/"):
        base = ""  # basePath is a server prefix; spec paths are compared without it
    for path, item in (spec.get("paths") or {}).items():
        item = _deref(spec, item)
        if not isinstance(item, dict):
            continue
        shared = [_deref(spec, p) for p in item.get("parameters", []) or []]
        for m in METHODS:
            op = item.get(m)
            if not isinstance(op, dict):
                continue
            params: dict[str, Param] = {}
            for raw in shared + [_deref(spec, p) for p in op.get("parameters", []) or []]:
                if isinstance(raw, dict) and raw.get("in") == "path":
                    params[str(raw.get("name"))] = _param(spec, raw)
            p = base + clean_path(path)
            if (m.upper(), p) not in out:
                body, optional = _response_skeleton(spec, op)
                out[(m.upper(), p)] = Endpoint(m.upper(), p, params, body, optional)
    eps = list(out.values())
    _inherit(eps)
    return eps


def _schema_of_response(spec: dict[str, Any], op: dict[str, Any]) -> Any:
    """The schema of the first 2xx response of an operation (OpenAPI 2 or 3)."""
    responses = op.get("responses")
    if not isinstance(responses, dict):
        return None
    for code in sorted(str(k) for k in responses):
        if not code.startswith("2"):
            continue
        r = _deref(spec, responses.get(code, responses.get(int(code) if code.isdigit() else code)))
        if not isinstance(r, dict):
            continue
        if "schema" in r:
            return _deref(spec, r["schema"])
        content = r.get("content")
        if isinstance(content, dict):
            for ct, media in content.items():
                if "json" in str(ct) and isinstance(media, dict) and "schema" in media:
                    return _deref(spec, media["schema"])
        return None
    return None


def _props(spec: dict[str, Any], sch: Any, depth: int = 0) -> tuple[dict[str, Any], set[str], Any]:
    """(properties, required names, items schema) of a schema, following
    ``$ref``, ``allOf`` (merged) and ``oneOf``/``anyOf`` (first branch)."""
    sch = _deref(spec, sch)
    if not isinstance(sch, dict) or depth > 8:
        return {}, set(), None
    props: dict[str, Any] = {}
    required: set[str] = set()
    items = None
    for part in sch.get("allOf") or []:
        p, r, i = _props(spec, part, depth + 1)
        props.update(p)
        required |= r
        items = items or i
    for key in ("oneOf", "anyOf"):
        alts = sch.get(key)
        if isinstance(alts, list) and alts:
            p, r, i = _props(spec, alts[0], depth + 1)
            props.update(p)
            required |= r
            items = items or i
    if isinstance(sch.get("properties"), dict):
        props.update(sch["properties"])
    if isinstance(sch.get("required"), list):
        required |= {str(x) for x in sch["required"]}
    if sch.get("type") == "array" or "items" in sch:
        items = sch.get("items")
    return props, required, items


def _response_skeleton(spec: dict[str, Any], op: dict[str, Any]) -> tuple[Any, tuple[str, ...]]:
    """A JSON skeleton of the operation's 2xx response: an object with the
    schema's top-level property names (values: nested skeletons one level
    down), or a one-item array of such an object. Only what the spec says."""
    sch = _schema_of_response(spec, op)
    if sch is None:
        return None, ()
    props, required, items = _props(spec, sch)
    if props:
        body: dict[str, Any] = {}
        for k, v in props.items():
            sub, _, sub_items = _props(spec, v, 1)
            if sub:
                body[str(k)] = {str(x): 0 for x in sub}
            elif sub_items is not None:
                ip, _, _ = _props(spec, sub_items, 1)
                body[str(k)] = [{str(x): 0 for x in ip}] if ip else [0]
            else:
                body[str(k)] = 0
        return body, tuple(sorted(str(k) for k in props if str(k) not in required))
    if items is not None:
        ip, req, _ = _props(spec, items, 1)
        if ip:
            return [{str(x): 0 for x in ip}], ()
        return [0], ()
    return None, ()


class _Values:
    """Plausible values for one parameter, with a Zipf-skewed reuse pool."""

    def __init__(self, p: Param, rng: random.Random, forbidden: set[str]) -> None:
        self.p = p
        self.rng = rng
        self.forbidden = forbidden
        self.kind = self._kind()
        size = self._pool_size()
        self.pool: list[str] = []
        tries = 0
        while len(self.pool) < size and tries < size * 20:
            tries += 1
            v = self._fresh()
            if v not in forbidden and v not in self.pool and v != "":
                self.pool.append(v)
        if not self.pool:
            self.pool = [self._fresh()]
        self.weights = [1.0 / (i + 1) ** 0.8 for i in range(len(self.pool))]

    def _kind(self) -> str:
        p, n = self.p, self.p.name.lower().replace("-", "_")
        if p.enum:
            return "enum"
        if p.type == "boolean":
            return "bool"
        d = p.description
        if d:
            m = _RE_DATE_FMT.search(d)
            if m is not None:
                self._datefmt = m.group(1)
                return "datefmt"
            if _RE_LANG_DESC.search(d):
                return "lang"
        if p.example and not p.format and p.type == "string":
            return "example"
        if p.format in ("uuid", "guid") or "uuid" in n or "guid" in n:
            return "uuid"
        if p.format == "email" or "email" in n:
            return "email"
        if p.format == "date" or n in ("date", "day") or n.endswith(("_date", "date")):
            return "date"
        if p.format == "date-time" or n.endswith(("time", "timestamp")):
            return "datetime"
        if p.type not in ("integer", "number") and (n.endswith(("_id", "id")) and n not in ("paid", "void")):
            return "id"
        if n in ("yyyy", "yy", "year"):
            return "year"
        if n in ("mm", "month"):
            return "month"
        if n in ("dd", "day"):
            return "dayofmonth"
        if n.endswith("letter") or n in ("letter", "initial"):
            return "letter"
        if n.endswith(("kind", "type", "category", "status", "mode", "format", "class", "section", "period")):
            return "category"
        if p.type in ("integer", "number"):
            if "year" in n:
                return "year"
            if n in ("month",):
                return "month"
            if n in ("lat", "lon", "lng", "latitude", "longitude"):
                return "coord"
            return "int" if p.type == "integer" else "number"
        if n in ("lat", "lon", "lng", "latitude", "longitude"):
            return "coord"
        if any(w in n for w in ("sha", "hash", "commit", "digest", "checksum", "etag")):
            return "sha"
        if "country" in n or n in ("iso_country_code", "isocountrycode", "cc"):
            return "country"
        if "currency" in n:
            return "currency"
        if n in ("lang", "language", "locale", "lang_code", "languagecode") or n.endswith("language"):
            return "lang"
        if n in ("location", "region", "zone") or n.endswith(("location", "region", "zone")):
            return "region"
        if any(w == n or n.endswith(w) for w in ("username", "user", "owner", "login", "screen_name", "handle",
                                                  "author", "member", "org", "organization")):
            return "username"
        if any(w in n for w in ("slug", "title", "permalink", "article")):
            return "slug"
        if "domain" in n or "host" in n:
            return "domain"
        if n in ("ip", "ipaddress", "ip_address") or n.endswith("_ip"):
            return "ip"
        if "phone" in n or n.endswith("number") and "phone" in n:
            return "phone"
        if any(w in n for w in ("file", "path", "filename")):
            return "filename"
        if "version" in n:
            return "version"
        if n in ("year",):
            return "year"
        if n in ("page", "pageno", "page_no", "limit", "offset", "count", "size", "number", "num"):
            return "smallint"
        if n == "id" or n.endswith(("id", "_id", "key", "sid", "token", "code", "ref", "number", "no")):
            return "id"
        if n.endswith("name") or n in ("name", "project", "repo", "repository", "app", "bucket", "table",
                                        "container", "queue", "topic", "channel", "tag", "label", "group",
                                        "team", "workspace", "database", "index", "collection", "space"):
            return "name"
        return "word"

    def _pool_size(self) -> int:
        k = self.kind
        if k == "enum":
            return len(self.p.enum)
        if k == "bool":
            return 2
        if k == "datefmt" and self._datefmt in ("MM", "DD"):
            return self.rng.randint(3, 12)
        if k in ("country", "currency", "lang", "region", "month", "letter"):
            return self.rng.randint(3, 12)
        if k in ("year", "smallint", "version", "category", "dayofmonth"):
            return self.rng.randint(3, 8)
        return self.rng.choice((8, 20, 50, 200, 1000))

    def _fresh(self) -> str:
        r, k, p = self.rng, self.kind, self.p
        if k == "enum":
            return str(r.choice(p.enum))
        if k == "datefmt":
            f = self._datefmt
            out = f.replace("YYYY", str(r.randint(2015, 2025))).replace("MM", f"{r.randint(1, 12):02d}")
            return out.replace("DD", f"{r.randint(1, 28):02d}").replace("HH", f"{r.randint(0, 23):02d}")
        if k == "example":
            return _like(p.example, r)
        if k == "bool":
            return r.choice(("true", "false"))
        if k == "uuid":
            return str(uuid.UUID(int=r.getrandbits(128), version=4))
        if k == "email":
            return f"{r.choice(_FIRST)}.{r.choice(_LAST)}{r.choice(['', str(r.randint(1, 99))])}@example.{r.choice(_TLDS)}"
        if k == "date":
            return f"{r.randint(2015, 2025)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}"
        if k == "datetime":
            return f"{r.randint(2015, 2025)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:00:00Z"
        if k == "year":
            return str(r.randint(1990, 2025))
        if k == "month":
            return f"{r.randint(1, 12):02d}"
        if k == "dayofmonth":
            return f"{r.randint(1, 28):02d}"
        if k == "letter":
            return r.choice(string.ascii_lowercase)
        if k == "category":
            return r.choice(_WORDS)
        if k == "coord":
            return f"{r.uniform(-80, 80):.4f}"
        if k in ("int", "number"):
            lo = int(p.minimum) if isinstance(p.minimum, (int, float)) else 1
            hi = int(p.maximum) if isinstance(p.maximum, (int, float)) else 10 ** getattr(self, "_mag", 0)
            if not isinstance(p.maximum, (int, float)):
                if not hasattr(self, "_mag"):
                    self._mag = r.choice((2, 3, 4, 5, 6, 7, 9))
                hi = 10 ** self._mag
            return str(r.randint(lo, max(lo, hi)))
        if k == "smallint":
            return str(r.randint(1, 50))
        if k == "sha":
            return "%040x" % r.getrandbits(160)
        if k == "country":
            return r.choice(_COUNTRIES)
        if k == "currency":
            return r.choice(_CURRENCIES)
        if k == "lang":
            return r.choice(_LANGS)
        if k == "region":
            return r.choice(_REGIONS)
        if k == "username":
            style = r.random()
            a, b = r.choice(_FIRST), r.choice(_LAST)
            if style < 0.4:
                return a + b[: r.randint(1, 3)]
            if style < 0.7:
                return f"{a}_{b}"
            return f"{a}{r.randint(1, 999)}"
        if k == "slug":
            return "-".join(r.choice(_WORDS) for _ in range(r.randint(2, 6)))
        if k == "domain":
            return f"{r.choice(_WORDS)}.{r.choice(_TLDS)}"
        if k == "ip":
            return f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"
        if k == "phone":
            return f"+1{r.randint(2000000000, 9999999999)}"
        if k == "filename":
            return f"{r.choice(_WORDS)}-{r.randint(1, 99)}.{r.choice(['pdf', 'png', 'txt', 'csv', 'jpg'])}"
        if k == "version":
            return f"{r.randint(1, 5)}.{r.randint(0, 20)}.{r.randint(0, 9)}"
        if k == "id":
            if not hasattr(self, "_idstyle"):
                self._idstyle = r.choice(("int", "int", "uuid", "prefixed", "objectid", "base62", "dashed", "hexsid"))
                self._prefix = "".join(r.choice(string.ascii_lowercase) for _ in range(r.randint(2, 4)))
                self._mag = r.choice((3, 4, 5, 6, 8))
            s = self._idstyle
            if s == "int":
                return str(r.randint(1, 10 ** self._mag))
            if s == "uuid":
                return str(uuid.UUID(int=r.getrandbits(128), version=4))
            if s == "prefixed":
                return self._prefix + "_" + "".join(r.choice(string.ascii_letters + string.digits) for _ in range(r.randint(6, 14)))
            if s == "objectid":
                return "%024x" % r.getrandbits(96)
            if s == "base62":
                return "".join(r.choice(string.ascii_letters + string.digits) for _ in range(r.randint(10, 22)))
            if s == "dashed":
                return f"{self._prefix[0].upper()}-{r.randint(10000, 99999)}"
            return self._prefix[:2].upper() + "%032x" % r.getrandbits(128)
        if k == "name":
            style = r.random()
            if style < 0.4:
                return "-".join(r.choice(_WORDS) for _ in range(r.randint(1, 3)))
            if style < 0.7:
                return f"{r.choice(_WORDS)}-{r.choice(['prod', 'dev', 'test', 'staging'])}-{r.randint(1, 20):02d}"
            return r.choice(_WORDS) + r.choice(_WORDS).capitalize()
        # unknown string: a word or two
        return r.choice(_WORDS) if r.random() < 0.6 else f"{r.choice(_WORDS)}-{r.choice(_WORDS)}"

    def draw(self) -> str:
        return self.rng.choices(self.pool, self.weights)[0]


@dataclass
class SpecTraffic:
    """Generated calls: ``calls`` is a list of (method, path, endpoint index);
    ``bodies[i]`` is the JSON response body skeleton of call ``i`` (``None``:
    an error, an empty list or no schema in the spec)."""

    endpoints: list[Endpoint]
    calls: list[tuple[str, str, int]]
    bodies: list[Any] = field(default_factory=list)


_RE_PARAM = re.compile(r"\{([^}]*)\}")
#: a date layout named in a parameter's description ("in YYYYMMDD format")
_RE_DATE_FMT = re.compile(r"\b(YYYY[-/]?MM[-/]?DD(?:[T ]?HH)?|YYYY[-/]?MM|YYYY|MM|DD)\b")
_RE_LANG_DESC = re.compile(r"\blanguage code\b", re.IGNORECASE)
_RE_RUNS = re.compile(r"%[0-9A-Fa-f]{2}|[A-Za-z]+|\d+|[^A-Za-z\d%]+|%")


def _like(example: str, r: random.Random) -> str:
    """A value shaped like a documented example: letter runs become words
    (keeping their capitalisation), digit runs other digits of the same
    length, separators stay (``Are_You_the_One%3F`` -> ``Iris_Oak_the_Fox%3F``)."""
    out = []
    for run in _RE_RUNS.findall(example):
        if run[:1] == "%":
            out.append(run)  # an escaped character stays what it is
        elif run.isdigit():
            out.append("".join(r.choice(string.digits) for _ in run))
        elif run.isalpha():
            if len(run) <= 2 and len(example) > 6:
                out.append(run)  # short connecting words and codes
                continue
            w = r.choice(_WORDS)
            out.append(w.upper() if run.isupper() and len(run) > 1 else w.capitalize() if run[0].isupper() else w)
        else:
            out.append(run)
    return "".join(out)


def generate(
    spec: dict[str, Any],
    *,
    seed: int = 0,
    min_calls: int = 5,
    calls_per_endpoint: float = 20.0,
    zipf_s: float = 1.1,
    error_rate: float = 0.05,
) -> SpecTraffic:
    """Traffic for every operation: ``min_calls`` each plus a Zipf-skewed share
    of ``calls_per_endpoint * n`` more, shuffled."""
    rng = random.Random(seed)
    endpoints = load_endpoints(spec)
    literals = {s for e in endpoints for s in e.path.split("/") if s and "{" not in s}
    pools: dict[str, _Values] = {}

    def values(p: Param) -> _Values:
        key = f"{p.name}|{p.type}|{p.format}|{len(p.enum)}"
        v = pools.get(key)
        if v is None:
            v = pools[key] = _Values(p, random.Random(rng.getrandbits(64)), literals)
        return v

    order = list(range(len(endpoints)))
    rng.shuffle(order)
    extra = calls_per_endpoint * len(endpoints)
    weights = [1.0 / (rank + 1) ** zipf_s for rank in range(len(order))]
    total = sum(weights) or 1.0
    calls: list[tuple[tuple[str, str, int], Any]] = []
    body_rng = random.Random(seed ^ 0x5EED)  # bodies never disturb the path draws
    for rank, idx in enumerate(order):
        ep = endpoints[idx]
        n = min_calls + int(round(extra * weights[rank] / total))
        for _ in range(n):
            calls.append(((ep.method, _fill(ep, values), idx), _body(ep, body_rng, error_rate)))
    rng.shuffle(calls)
    return SpecTraffic(endpoints, [c for c, _ in calls], [b for _, b in calls])


def _body(ep: Endpoint, rng: random.Random, error_rate: float) -> Any:
    """One call's response body: the skeleton, sometimes an error (no body
    shape), an empty list, or an object with one optional property left out
    (serialisers that drop nulls)."""
    body = ep.response
    if body is None or rng.random() < error_rate:
        return None
    if isinstance(body, list):
        return [] if rng.random() < 0.1 else body
    if ep.optional and rng.random() < 0.2:
        drop = rng.choice(ep.optional)
        return {k: v for k, v in body.items() if k != drop}
    return body


def _fill(ep: Endpoint, values: Any) -> str:
    def sub(m: re.Match[str]) -> str:
        p = ep.params.get(m.group(1)) or Param(m.group(1))
        return values(p).draw()

    return _RE_PARAM.sub(sub, ep.path)


def iter_specs(tar_path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, spec) for each JSON spec in a tar.gz."""
    import json
    import tarfile

    with tarfile.open(tar_path) as tf:
        for m in sorted(tf.getmembers(), key=lambda m: m.name):
            if m.isfile() and m.name.endswith(".json"):
                f = tf.extractfile(m)
                if f is not None:
                    yield m.name, json.loads(f.read())
