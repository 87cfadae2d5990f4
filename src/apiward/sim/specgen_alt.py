"""A second, independent OpenAPI-to-traffic generator (``specgen_alt``).

What it generates: from one OpenAPI 2.0 (Swagger) or 3.x document it makes a
day of plausible HTTP traffic against the API the document describes: for
every operation a long-tailed number of calls (most operations get a handful,
a few get hundreds) with concrete path values, query strings, headers,
credentials, JSON request bodies, and responses whose JSON is built from the
response schema with ids that agree with the path. A low rate of calls ask
for objects that do not exist (answered 404) or fail (4xx/5xx). Alongside the
traffic it writes the ground truth: for every call the spec's
``(method, path template)`` it came from, with the base path included as it
appears on the wire.

Why it exists: apiward's endpoint templating (recovering
``/users/{id}/orders/{orderId}`` from concrete paths) is tuned on traffic
from its own generator. This module was written without looking at that
generator or at the templater, with its own choices of value styles (integer
ids of many magnitudes, UUIDs, Mongo-style hex, Stripe-style prefixed
base62, Twilio-style SIDs, ULIDs, slugs, handles, e-mails, dates, versions,
file names, region and language codes, multi-segment resource names ...),
object reuse (a Pitman-Yor process per id pool, so a few objects are hot and
new ones keep appearing) and call counts, so that it serves as an
independent check on templating: traffic the templater was never tuned on.

Outputs: HAR 1.2 (``log.entries``) or apiward JSONL (one
:class:`apiward.model.call.ApiCall` per line), plus a ``*.truth.json`` file::

    {"endpoints": [{"method", "host", "path_template", "calls", ...}],
     "calls": [{"index", "method", "host", "template", ...}], ...}

Command line::

    python -m apiward.sim.specgen_alt SPEC_TAR_OR_DIR OUTDIR [--seed N]
        [--limit N] [--format har|jsonl] [--combined]

Deterministic for a given seed; no network access.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import json
import math
import os
import random
import re
import string
import sys
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from apiward.model.call import ApiCall, Peer, Request, Response, dumps

__all__ = [
    "GenCall",
    "Operation",
    "SpecTraffic",
    "generate",
    "generate_many",
    "iter_specs",
    "load_operations",
    "main",
    "template_regex",
    "truth_document",
    "write_har",
    "write_jsonl",
    "write_truth",
]

GENERATOR = "apiward.sim.specgen_alt"
VERSION = "1"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
DEFAULT_START = datetime(2024, 6, 4, tzinfo=UTC)
DAY = 86400.0

# --------------------------------------------------------------------------
# small deterministic helpers


def _rng(*parts: object) -> random.Random:
    """A Random seeded from the parts (stable across runs and processes)."""
    h = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


def _weighted(rng: random.Random, table: list[tuple[Any, float]]) -> Any:
    total = sum(w for _, w in table)
    x = rng.random() * total
    for item, w in table:
        x -= w
        if x < 0:
            return item
    return table[-1][0]


def _skewed_index(rng: random.Random, n: int, power: float = 2.0) -> int:
    """An index in ``range(n)`` skewed towards the front."""
    return min(n - 1, int(n * rng.random() ** power))


_B62 = string.digits + string.ascii_letters
_B62URL = _B62 + "-_"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_HEX = "0123456789abcdef"
_UPPER_ALNUM = string.ascii_uppercase + string.digits


def _chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


@functools.lru_cache(maxsize=8192)
def _tokens(name: str) -> tuple[str, ...]:
    """``userId`` -> ``[user, id]``, ``FILE_ID`` -> ``[file, id]``."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", s)
    return tuple(t for t in re.split(r"[^A-Za-z0-9]+", s.lower()) if t)


@functools.lru_cache(maxsize=8192)
def _entity(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower()) or "x"


_GENERIC = {"id", "name", "key", "uuid", "guid", "slug", "code", "identifier", "pk", "ref", "uid"}


def _qualified_entity(name: str, before: str) -> str:
    """The pool an object belongs to: a generic ``{id}`` is qualified by the
    collection before it (``/users/{id}`` -> ``user:id``)."""
    e = _entity(name)
    if e in _GENERIC:
        segs = [s for s in re.split(r"[/{}]", before) if s and not s.startswith(".")]
        if segs:
            return _entity(_singular(segs[-1])) + ":" + e
    return e


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "api"


def _singular(word: str) -> str:
    w = word
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "xes", "ches", "shes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


# --------------------------------------------------------------------------
# word lists (this module's own)

_WORDS = (
    "alpha amber apple atlas autumn aurora basil beacon birch blue bolt breeze bronze "
    "canyon cedar cherry cinder citrus clay cloud cobalt comet coral cosmos cotton crystal "
    "dawn delta desert drift dune echo ember falcon fern field flint forest fox frost galaxy "
    "garnet ginger glacier granite harbor hazel horizon indigo iris ivory jade jasper juniper "
    "kelp lagoon lark lava lemon lilac linen lotus lunar maple marble meadow mesa mint "
    "mist moss nebula north oak ocean olive onyx opal orbit orchid pebble pepper pine "
    "plum polar prairie quartz rain raven reef ridge river robin ruby saffron sage sand "
    "sapphire shadow sierra silver sky slate snow solar spark spruce star stone storm "
    "summit sun tango thunder tide timber topaz trail tundra valley velvet violet willow "
    "winter wolf zephyr"
).split()
_NOUNS = (
    "account agent alert app archive asset audit backup badge batch bill board book "
    "bucket budget build bundle cache campaign card cart case channel chart check "
    "cluster comment config contact contract coupon course dashboard dataset deal "
    "device digest doc domain draft event export feed file filter flow form gateway "
    "grant graph group hook image import index invoice issue item job journal key "
    "label lead ledger link list log map match media memo metric model monitor note "
    "offer order page panel payment plan policy pool post profile project queue quote "
    "record report repo request review role rule run schedule scope script segment "
    "sensor service session share sheet site snapshot space stage step store stream "
    "survey table tag task team template test ticket token topic track trip user "
    "vault video view volume webhook widget workflow zone"
).split()
_ADJ = (
    "quick lazy happy brave calm clever eager fancy gentle jolly kind lucky mighty nice "
    "proud silly witty bold bright cool fresh grand keen light loud neat prime rapid "
    "sharp smart solid swift tidy vivid warm wild young new old big small final first "
    "main test prod dev staging legacy shared private public internal weekly daily nightly"
).split()
_FIRST = (
    "alice bob carol dave erin frank grace heidi ivan judy kate liam mia noah olivia "
    "pablo quinn rosa sam tara umar vera wei xena yusuf zoe anna ben chloe diego elena "
    "felix gina hugo ines jonas kira leo maria nils omar petra rahul sofia tomas yuki"
).split()
_LAST = (
    "smith jones garcia miller davis lopez wilson anderson taylor thomas moore martin "
    "lee perez white harris clark lewis walker hall young king wright scott green baker "
    "adams nelson hill campbell mitchell roberts carter phillips evans turner torres "
    "parker collins edwards stewart morris murphy cook rogers morgan peterson cooper reed "
    "bailey bell kim chen nguyen patel mueller rossi novak silva"
).split()
_TLDS = ("com", "io", "net", "org", "co", "dev", "app", "de", "fr", "co.uk")
_MAILHOSTS = ("gmail.com", "outlook.com", "yahoo.com", "proton.me", "mail.example.com", "fastmail.fm")
_COUNTRIES = (
    "US GB DE FR ES IT NL BE SE NO DK FI PL CZ AT CH IE PT GR TR RU UA IN CN JP KR "
    "SG AU NZ CA MX BR AR CL CO PE ZA NG KE EG MA IL AE SA"
).split()
_COUNTRIES3 = "USA GBR DEU FRA ESP ITA NLD SWE NOR POL JPN KOR IND CHN AUS CAN MEX BRA ZAF".split()
_LANGS = "en de fr es it pt nl sv no da fi pl cs ru uk tr ar he hi zh ja ko id vi th".split()
_LOCALES = "en-US en-GB de-DE fr-FR es-ES es-MX it-IT pt-BR pt-PT nl-NL sv-SE ja-JP zh-CN zh-TW ko-KR pl-PL ru-RU tr-TR".split()
_CURRENCIES = "USD EUR GBP JPY CHF CAD AUD NZD SEK NOK DKK PLN CZK INR CNY BRL MXN ZAR".split()
_TICKERS = "AAPL MSFT GOOG AMZN TSLA NVDA META IBM ORCL INTC AMD NFLX SAP ADBE CRM UBER".split()
_REGIONS = {
    "aws": "us-east-1 us-east-2 us-west-1 us-west-2 eu-west-1 eu-west-2 eu-central-1 ap-south-1 ap-northeast-1 ap-southeast-2 sa-east-1 ca-central-1".split(),
    "gcp": "us-central1 us-east1 us-east4 us-west1 europe-west1 europe-west4 europe-north1 asia-east1 asia-northeast1 australia-southeast1 global".split(),
    "azure": "eastus eastus2 westus westus2 centralus northeurope westeurope uksouth francecentral germanywestcentral japaneast southeastasia".split(),
}
_FILE_EXTS = ("pdf", "jpg", "png", "csv", "txt", "json", "docx", "xlsx", "zip", "mp4", "tar.gz", "xml", "md", "gif")
_AZURE_TYPES = (
    ("Microsoft.Compute", "virtualMachines"), ("Microsoft.Storage", "storageAccounts"),
    ("Microsoft.Web", "sites"), ("Microsoft.Network", "virtualNetworks"),
    ("Microsoft.Sql", "servers"), ("Microsoft.KeyVault", "vaults"),
)
_USER_AGENTS = (
    "python-requests/2.31.0", "okhttp/4.12.0", "axios/1.6.7", "curl/8.4.0", "Go-http-client/2.0",
    "Java/17.0.9", "PostmanRuntime/7.36.1", "node-fetch/1.0", "aws-sdk-go/1.44.0",
    "google-api-python-client/2.108.0",
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0 Safari/537.36"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15"),
    "MyApp/3.2.1 (iPhone; iOS 17.2)",
    "Dalvik/2.1.0 (Linux; U; Android 14)", "Apache-HttpClient/4.5.14 (Java/11.0.21)",
)

# --------------------------------------------------------------------------
# value kinds and styles

# string id styles for id-like parameters with no stronger hint
_ID_STYLES: list[tuple[str, float]] = [
    ("num_small", 9), ("num_mid", 9), ("num_big", 8), ("snowflake", 3),
    ("uuid", 17), ("uuid_upper", 1.5), ("uuid_hex", 2.5), ("hex24", 7), ("hex_n", 4),
    ("prefixed", 8), ("base62", 7), ("ulid", 3), ("code", 4), ("tagged", 5),
]
_INT_STYLES: list[tuple[str, float]] = [("num_small", 5), ("num_mid", 4), ("num_big", 3), ("snowflake", 1)]


@dataclass
class Style:
    """How one entity's values look (fixed per spec and entity)."""

    kind: str
    opts: dict[str, Any] = field(default_factory=dict)


def _classify(name: str, schema: dict, host: str, glued: str = "") -> str:
    """A value kind from a parameter's schema, format and name.

    ``glued`` is the template text right before the placeholder when it is
    not a ``/`` (``page-{n}``, ``thumbnail.{ext}``)."""
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), None)
    fmt = str(schema.get("format") or "").lower()
    cloud = "google" if "google" in host else "azure" if "azure" in host else ""
    return _classify_cached(name, typ if isinstance(typ, str) else None, fmt, cloud, glued.endswith("."))


@functools.lru_cache(maxsize=16384)
def _classify_cached(name: str, typ: str | None, fmt: str, host: str, glued_dot: bool) -> str:
    toks = _tokens(name)
    low = "".join(toks)
    last = toks[-1] if toks else ""
    if fmt in ("uuid", "guid"):
        return "uuid"
    if fmt == "date":
        return "date"
    if fmt == "date-time":
        return "datetime"
    if fmt == "email":
        return "email"
    if fmt in ("hostname", "idn-hostname"):
        return "domain"
    if fmt == "ipv4":
        return "ipv4"
    if typ == "number" and last in ("id", "key", "no", "number", "num") and fmt not in ("float", "double"):
        return "intid"  # ids typed "number" are integers in practice
    if typ == "number" or fmt in ("float", "double"):
        if low in ("lat", "latitude") or last == "lat":
            return "lat"
        if last in ("lon", "lng", "longitude", "long"):
            return "lon"
        return "float"
    if low in ("lat", "latitude"):
        return "lat"
    if low in ("lon", "lng", "longitude"):
        return "lon"
    if "uuid" in toks or "guid" in toks:
        return "uuid"
    if last in ("email", "mail") or low.endswith("email"):
        return "email"
    if typ == "integer" or fmt in ("int32", "int64"):
        if last in ("year", "yyyy"):
            return "year"
        if last in ("month", "mm"):
            return "month"
        if last in ("day", "dd"):
            return "day"
        if last in ("page", "pageno", "no", "num", "number", "index", "offset", "limit", "count", "amount", "size"):
            return "smallint"
        return "intid"
    # strings (or untyped) from here on
    if low in ("yyyy", "year"):
        return "year"
    if low in ("mm", "month"):
        return "month"
    if low in ("dd", "day"):
        return "day"
    if last == "sid" or low.endswith("sid"):
        return "sid"
    if last in ("date",) or low.endswith("date"):
        return "date"
    if last in ("timestamp", "time", "datetime"):
        return "datetime"
    if last == "letter":
        return "letter"
    if last in ("ext", "extension"):
        return "ext_nodot" if glued_dot else "ext"
    if last in ("format",) or low in ("outputformat", "fmt"):
        return "format"
    if last in ("country",) or low in ("countrycode", "isocountrycode", "country"):
        return "country"
    if last in ("lang", "language", "locale", "hl"):
        return "lang"
    if last in ("currency",) or low == "currencycode":
        return "currency"
    if last in ("symbol", "ticker"):
        return "ticker"
    if last in ("version", "ver", "release") or low == "apiversion":
        return "version"
    if last in ("filename", "file") and "id" not in toks or low in ("filename", "fname"):
        return "filename"
    if last in ("region", "location", "zone", "datacenter"):
        return "region"
    if last in ("token", "hash", "sha", "digest", "secret", "nonce", "etag", "signature", "session", "cursor"):
        return "token"
    if last in ("commit", "revision", "rev") or low in ("commitid", "sha1"):
        return "sha"
    if low in ("username", "user", "login", "handle", "owner", "screenname", "nick", "nickname",
               "author", "member", "uname", "account") or last in ("username", "login", "handle", "nickname"):
        return "handle"
    if low in ("packagename", "package", "bundleid", "appid") and "google" in host:
        return "package"
    if low in ("project", "projectid", "projectname") and "google" in host:
        return "project"
    if low == "subscriptionid" and "azure" in host:
        return "uuid"
    if last in ("slug", "permalink", "title") or low.endswith("slug"):
        return "slug"
    if last in ("domain", "host", "hostname", "fqdn"):
        return "domain"
    if last in ("ip", "ipaddress", "addr") or low == "ipaddress":
        return "ipv4"
    if last in ("phone", "msisdn", "phonenumber"):
        return "phone"
    if last in ("sku",):
        return "sku"
    if last in ("isbn", "ean", "upc", "barcode", "gtin"):
        return "isbn"
    if last in ("color", "colour"):
        return "color"
    if last in ("page", "pageno", "pagenumber") or low in ("pageno", "pagenum"):
        return "smallint"
    if last in ("number", "no", "num", "nr") and "phone" not in toks:
        return "numstr"
    if last in ("type", "kind", "category", "section", "class", "status", "state", "tag", "label",
                "topic", "keyword", "mode", "channel", "period", "scope", "view", "resource", "source",
                "group", "provider", "platform", "genre", "subresource", "field"):
        return "word"
    if last == "name" or low.endswith("name"):
        return "name"
    if last in ("id", "ids", "key", "uid", "ref", "code", "identifier", "pk") or low.endswith(("id", "key")):
        if last == "code" and len(toks) > 1 and toks[0] in ("promo", "coupon", "discount", "invite", "voucher"):
            return "code_upper"
        return "id"
    return "unknown"


def _pick_style(kind: str, entity: str, rng: random.Random, schema: dict, host: str) -> Style:
    """Decide how an entity's values look; called once per (spec, entity)."""
    if kind == "intid":
        fmt = str(schema.get("format") or "")
        st = _weighted(rng, _INT_STYLES)
        if fmt == "int32" and st == "snowflake":
            st = "num_big"
        return Style("id", {"style": st})
    if kind == "id":
        st = _weighted(rng, _ID_STYLES)
        return Style("id", _id_opts(st, entity, rng))
    if kind == "unknown":
        k = _weighted(rng, [("slug", 3), ("name", 3), ("word", 2), ("id", 4)])
        if k == "id":
            return _pick_style("id", entity, rng, schema, host)
        return _pick_style(k, entity, rng, schema, host)
    if kind == "name":
        flavor = _weighted(rng, [("kebab", 5), ("snake", 2), ("camel", 2), ("slug", 3), ("azure", 2 if "azure" in host else 0)])
        return Style("name", {"flavor": flavor})
    if kind == "sid":
        letters = [c for c in entity.upper() if c.isalpha()]
        prefix = "".join(letters[:2]) if len(letters) >= 2 else "SX"
        return Style("sid", {"prefix": prefix})
    if kind == "token":
        return Style("token", {"len": rng.choice((16, 20, 24, 32, 40, 43, 64)), "alpha": rng.choice((_B62, _B62URL, _HEX))})
    if kind == "country":
        return Style("country", {"form": _weighted(rng, [("upper", 6), ("lower", 3), ("alpha3", 1)])})
    if kind == "lang":
        return Style("lang", {"form": _weighted(rng, [("short", 5), ("locale", 4), ("locale_us", 1)])})
    if kind == "version":
        return Style("version", {"form": _weighted(rng, [("semver", 5), ("v", 3), ("date", 1), ("pre", 1), ("dotted", 2)])})
    if kind == "region":
        fam = "aws" if "amazon" in host else "gcp" if "google" in host else "azure" if "azure" in host else rng.choice(("aws", "gcp", "azure"))
        return Style("region", {"family": fam})
    if kind == "datetime":
        return Style("datetime", {"form": _weighted(rng, [("iso", 4), ("epoch", 2), ("compact", 1)])})
    if kind == "handle":
        return Style("handle", {})
    return Style(kind, {})


def _id_opts(st: str, entity: str, rng: random.Random) -> dict[str, Any]:
    opts: dict[str, Any] = {"style": st}
    if st == "hex_n":
        opts["len"] = rng.choice((8, 12, 16, 20, 32, 40))
    elif st == "prefixed":
        base = re.sub(r"(id|key|uid|ref)$", "", entity) or entity
        base = re.sub(r"[aeiou]", "", base[1:]) if len(base) > 4 else base[1:]
        opts["prefix"] = (entity[0] + base)[: rng.choice((2, 3, 4))] + rng.choice(("_", "_", "-"))
        opts["len"] = rng.choice((14, 16, 20, 24))
    elif st == "base62":
        opts["len"] = rng.choice((8, 10, 11, 12, 16, 22))
        opts["alpha"] = _B62URL if opts["len"] == 11 else _B62
    elif st == "code":
        opts["len"] = rng.choice((5, 6, 8, 10))
    elif st == "tagged":
        base = re.sub(r"(id|key|uid|ref|number|no)$", "", entity) or entity
        tag = base[:3] if len(base) >= 3 else base
        opts["tag"] = tag.upper() if rng.random() < 0.5 else tag
        opts["sep"] = rng.choice(("-", "-", "_"))
        opts["year"] = rng.random() < 0.3
        opts["digits"] = rng.choice((4, 5, 6, 8))
    return opts


def _gen(style: Style, rng: random.Random) -> str:
    """One fresh value in a style."""
    k = style.kind
    o = style.opts
    if k == "id":
        return _gen_id(o, rng)
    if k == "uuid":
        return _uuid(rng)
    if k == "sid":
        return o["prefix"] + _chars(rng, _HEX, 32)
    if k == "slug":
        return _slug(rng)
    if k == "name":
        return _resname(rng, o.get("flavor", "kebab"))
    if k == "handle":
        return _handle(rng)
    if k == "email":
        return _email(rng)
    if k == "date":
        return (datetime(2014, 1, 1) + timedelta(days=rng.randrange(4300))).strftime("%Y-%m-%d")
    if k == "datetime":
        dt = datetime(2018, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(200_000_000))
        form = o.get("form", "iso")
        if form == "epoch":
            return str(int(dt.timestamp()))
        if form == "compact":
            return dt.strftime("%Y%m%dT%H%M%SZ")
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    if k == "year":
        return str(rng.randint(1995, 2025))
    if k == "month":
        return f"{rng.randint(1, 12):02d}"
    if k == "day":
        return f"{rng.randint(1, 28):02d}"
    if k == "letter":
        return rng.choice(string.ascii_lowercase)
    if k == "smallint":
        return str(min(int(rng.paretovariate(1.2)), 400))
    if k == "numstr":
        return str(rng.randint(1, 10 ** rng.randint(2, 7)))
    if k == "float":
        return f"{rng.uniform(0, 500):.{rng.randint(1, 3)}f}"
    if k == "lat":
        return f"{rng.uniform(-60, 70):.{rng.randint(2, 5)}f}"
    if k == "lon":
        return f"{rng.uniform(-170, 175):.{rng.randint(2, 5)}f}"
    if k == "country":
        form = o.get("form", "upper")
        if form == "alpha3":
            return rng.choice(_COUNTRIES3)
        c = rng.choice(_COUNTRIES)
        return c.lower() if form == "lower" else c
    if k == "lang":
        form = o.get("form", "short")
        if form == "short":
            return rng.choice(_LANGS)
        loc = rng.choice(_LOCALES)
        return loc.replace("-", "_") if form == "locale_us" else loc
    if k == "currency":
        return rng.choice(_CURRENCIES)
    if k == "ticker":
        return rng.choice(_TICKERS)
    if k == "version":
        form = o.get("form", "semver")
        a, b, c = rng.randint(0, 12), rng.randint(0, 20), rng.randint(0, 30)
        if form == "v":
            return f"v{rng.randint(1, 4)}" if rng.random() < 0.7 else f"v{a}.{b}"
        if form == "date":
            return (datetime(2015, 1, 1) + timedelta(days=rng.randrange(3000))).strftime("%Y-%m-%d")
        if form == "pre":
            return f"{a}.{b}.{c}-{rng.choice(('alpha', 'beta', 'rc'))}.{rng.randint(1, 5)}"
        if form == "dotted":
            return f"{a}.{b}"
        return f"{a}.{b}.{c}"
    if k == "filename":
        return _filename(rng)
    if k == "region":
        return rng.choice(_REGIONS[o.get("family", "aws")])
    if k == "token":
        return _chars(rng, o.get("alpha", _B62), o.get("len", 32))
    if k == "sha":
        return _chars(rng, _HEX, rng.choice((7, 40, 40)))
    if k == "word":
        return rng.choice(_NOUNS) if rng.random() < 0.6 else rng.choice(_WORDS)
    if k == "domain":
        return f"{rng.choice(_WORDS)}{rng.choice(('', '-' + rng.choice(_NOUNS), str(rng.randint(1, 99))))}.{rng.choice(_TLDS)}"
    if k == "ipv4":
        return f"{rng.choice((10, 172, 192, 203, 198, 100))}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if k == "phone":
        return "+" + rng.choice(("1", "44", "49", "33", "91", "81")) + str(rng.randint(10 ** 8, 10 ** 10 - 1))
    if k == "sku":
        return rng.choice((
            f"SKU-{rng.randint(1000, 99999)}-{_chars(rng, string.ascii_uppercase, 2)}",
            f"{_chars(rng, string.ascii_uppercase, 2)}{rng.randint(100, 9999)}",
            f"{rng.choice(_NOUNS)}_{rng.choice(('monthly', 'yearly', 'basic', 'pro', 'premium'))}",
        ))
    if k == "isbn":
        return "978" + "".join(str(rng.randint(0, 9)) for _ in range(10))
    if k == "color":
        return _chars(rng, _HEX, 6)
    if k == "ext":
        return "." + rng.choice(("json", "xml", "csv", "html"))
    if k == "ext_nodot":
        return rng.choice(("png", "jpg", "gif", "pdf"))
    if k == "format":
        return rng.choice(("json", "xml", "csv"))
    if k == "code_upper":
        return _chars(rng, _UPPER_ALNUM, rng.choice((6, 8, 10)))
    if k == "project":
        return rng.choice((
            f"{rng.choice(_WORDS)}-{rng.choice(('prod', 'dev', 'staging', 'data', 'ml'))}-{rng.randint(1000, 999999)}",
            f"my-project-{rng.randint(10000, 99999)}",
            f"{rng.choice(_FIRST)}-{rng.choice(_NOUNS)}s",
        ))
    if k == "package":
        return f"{rng.choice(('com', 'org', 'io', 'net'))}.{rng.choice(_WORDS)}{rng.choice(('', 'soft', 'labs', 'apps'))}.{rng.choice(_NOUNS)}{rng.choice(('', 's', 'app', '.lite'))}"
    return _slug(rng)


def _gen_id(o: dict, rng: random.Random) -> str:
    st = o.get("style", "uuid")
    if st == "num_small":
        return str(rng.randint(1, 2500))
    if st == "num_mid":
        return str(rng.randint(10_000, 999_999))
    if st == "num_big":
        return str(rng.randint(10_000_000, 2_147_000_000))
    if st == "snowflake":
        return str(rng.randint(10 ** 17, 9 * 10 ** 18))
    if st == "uuid":
        return _uuid(rng)
    if st == "uuid_upper":
        return _uuid(rng).upper()
    if st == "uuid_hex":
        return _uuid(rng).replace("-", "")
    if st == "hex24":
        return _chars(rng, _HEX, 24)
    if st == "hex_n":
        return _chars(rng, _HEX, o.get("len", 16))
    if st == "prefixed":
        return o.get("prefix", "id_") + _chars(rng, _B62, o.get("len", 16))
    if st == "base62":
        return _chars(rng, o.get("alpha", _B62), o.get("len", 12))
    if st == "ulid":
        return "01" + _chars(rng, "DEFGH", 1) + _chars(rng, _CROCKFORD, 23)
    if st == "code":
        return _chars(rng, _UPPER_ALNUM, o.get("len", 6))
    if st == "tagged":
        digits = str(rng.randint(10 ** (o.get("digits", 5) - 1), 10 ** o.get("digits", 5) - 1))
        sep = o.get("sep", "-")
        if o.get("year"):
            return f"{o.get('tag', 'ID')}{sep}{rng.randint(2016, 2025)}{sep}{digits}"
        return f"{o.get('tag', 'ID')}{sep}{digits}"
    return _uuid(rng)


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{rng.choice('89ab')}{h[17:20]}-{h[20:]}"


def _slug(rng: random.Random) -> str:
    form = rng.random()
    if form < 0.35:
        parts = [rng.choice(_ADJ), rng.choice(_NOUNS)]
        if rng.random() < 0.5:
            parts.append(rng.choice(_WORDS))
    elif form < 0.55:
        parts = [rng.choice(("my", "the", "our", "how-to", "why")), rng.choice(_ADJ), rng.choice(_NOUNS)]
        if rng.random() < 0.4:
            parts.append(str(rng.randint(2, 2025)))
    elif form < 0.75:
        parts = [f"{rng.choice(_FIRST)}{rng.randint(1, 99)}", rng.choice(_NOUNS), str(rng.randint(0, 30))]
    elif form < 0.9:
        parts = [rng.choice(_WORDS), rng.choice(_NOUNS), rng.choice(("q1", "q2", "q3", "q4", "v2", "final", "draft", "2023", "2024"))]
    else:
        parts = [rng.choice(_NOUNS), str(rng.randint(1, 9999))]
    return "-".join(parts)


def _resname(rng: random.Random, flavor: str) -> str:
    if flavor == "azure":
        return rng.choice((
            f"rg-{rng.choice(_WORDS)}-{rng.choice(('prod', 'dev', 'test', 'qa'))}-{rng.choice(('weu', 'eus', 'neu', 'wus2'))}",
            f"{rng.choice(_WORDS)}{rng.choice(_NOUNS)}{rng.randint(1, 999)}",
            f"{rng.choice(_NOUNS)}-{rng.choice(_WORDS)}-{rng.randint(1, 20):02d}",
        ))
    a, b = rng.choice(_WORDS), rng.choice(_NOUNS)
    if flavor == "snake":
        return f"{a}_{b}" + (f"_{rng.randint(1, 99)}" if rng.random() < 0.5 else "")
    if flavor == "camel":
        return a.capitalize() + b.capitalize() + (str(rng.randint(1, 9)) if rng.random() < 0.3 else "")
    if flavor == "slug":
        return _slug(rng)
    return rng.choice((
        f"{rng.choice(('prod', 'dev', 'test', 'stage'))}-{b}-{rng.randint(1, 40):02d}",
        f"{a}-{b}",
        f"{a}-{b}-{rng.randint(1, 999)}",
        f"{b}{rng.randint(1, 99)}",
        f"{rng.choice(_ADJ)}-{a}",
    ))


def _handle(rng: random.Random) -> str:
    f, l = rng.choice(_FIRST), rng.choice(_LAST)
    return rng.choice((
        f"{f}{rng.randint(1, 99)}", f"{f}.{l}", f"{f[0]}_{l}", f"{f}{l[0].upper()}",
        f"{f}", f"{l}{f[0]}{rng.randint(0, 9)}", f"{rng.choice(_ADJ)}-{rng.choice(_WORDS)}",
        f"{f}-{l}", f"{rng.choice(_WORDS)}{rng.randint(100, 9999)}",
    ))


def _email(rng: random.Random) -> str:
    f, l = rng.choice(_FIRST), rng.choice(_LAST)
    local = rng.choice((f"{f}.{l}", f"{f[0]}{l}", f"{f}{rng.randint(1, 99)}", f"{f}_{l}{rng.randint(1, 9)}"))
    host = rng.choice(_MAILHOSTS) if rng.random() < 0.6 else f"{rng.choice(_WORDS)}-{rng.choice(_NOUNS)}.{rng.choice(_TLDS)}"
    return f"{local}@{host}"


def _filename(rng: random.Random) -> str:
    ext = rng.choice(_FILE_EXTS)
    stem = rng.choice((
        f"{rng.choice(_NOUNS)}-{rng.randint(2019, 2025)}-{rng.choice(('q1', 'q2', 'q3', 'q4', '01', '06', '12'))}",
        f"IMG_{rng.randint(1000, 9999)}",
        f"{rng.choice(_NOUNS)}_{rng.choice(_NOUNS)}_{rng.randint(1, 300)}",
        f"{rng.choice(_WORDS)}",
        f"{rng.choice(_ADJ)}-{rng.choice(_NOUNS)}",
        f"scan{rng.randint(1, 99):03d}",
    ))
    return f"{stem}.{ext}"


# --------------------------------------------------------------------------
# regex patterns as constraints

try:  # CPython's regex parser: private but stable in 3.11+
    from re import _constants as _rc  # type: ignore[attr-defined]
    from re import _parser as _rp  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _rc = _rp = None  # type: ignore[assignment]

_SAFE_CHARS = string.ascii_lowercase + string.digits + string.ascii_uppercase + "-_.~"


def _from_pattern(pattern: str, rng: random.Random, max_extra: int = 10) -> str | None:
    """A string generated from a regular expression (``None`` if the
    pattern uses constructs this small generator does not know)."""
    if _rp is None:
        return None
    try:
        parsed = _rp.parse(pattern)
    except Exception:  # noqa: BLE001 - any pattern Python cannot parse is ignored
        return None
    out: list[str] = []

    def in_class(items: list, c: str) -> bool:
        neg = False
        hit = False
        for op, av in items:
            if op is _rc.NEGATE:
                neg = True
            elif op is _rc.LITERAL:
                hit = hit or c == chr(av)
            elif op is _rc.RANGE:
                hit = hit or av[0] <= ord(c) <= av[1]
            elif op is _rc.CATEGORY:
                hit = hit or _cat(av, c)
        return hit != neg

    def emit(items: Any, budget: list[int]) -> None:
        for op, av in items:
            if budget[0] <= 0:
                raise ValueError("too long")
            budget[0] -= 1
            if op is _rc.LITERAL:
                out.append(chr(av))
            elif op is _rc.NOT_LITERAL:
                out.append("a" if chr(av) != "a" else "b")
            elif op is _rc.ANY:
                out.append(rng.choice(string.ascii_lowercase + string.digits))
            elif op is _rc.IN:
                cands = [c for c in _SAFE_CHARS if in_class(av, c)]
                if not cands:
                    raise ValueError("empty class")
                alnum = [c for c in cands if c.isalnum()]
                out.append(rng.choice(alnum if alnum and rng.random() < 0.9 else cands))
            elif op is _rc.CATEGORY:
                cands = [c for c in _SAFE_CHARS if _cat(av, c)]
                if not cands:
                    raise ValueError("empty category")
                out.append(rng.choice(cands))
            elif op in (_rc.MAX_REPEAT, _rc.MIN_REPEAT) or str(op) == "POSSESSIVE_REPEAT":
                lo, hi, sub = av
                hi = min(hi, lo + max_extra)
                for _ in range(rng.randint(lo, max(lo, hi))):
                    emit(sub, budget)
            elif op is _rc.SUBPATTERN:
                emit(av[-1], budget)
            elif op is _rc.BRANCH:
                emit(rng.choice(av[1]), budget)
            elif op is _rc.AT or op in (_rc.ASSERT, _rc.ASSERT_NOT):
                continue
            else:
                raise ValueError(f"unsupported {op}")

    try:
        emit(parsed, [400])
    except (ValueError, IndexError, TypeError, AttributeError):
        return None
    return "".join(out)


def _cat(av: Any, c: str) -> bool:
    name = str(av)
    if name.endswith("NOT_DIGIT"):
        return not c.isdigit()
    if name.endswith("DIGIT"):
        return c.isdigit()
    if name.endswith("NOT_WORD"):
        return not (c.isalnum() or c == "_")
    if name.endswith("WORD"):
        return c.isalnum() or c == "_"
    if name.endswith("NOT_SPACE"):
        return not c.isspace()
    if name.endswith("SPACE"):
        return c.isspace()
    return False


def _compile(pattern: Any) -> re.Pattern | None:
    if not isinstance(pattern, str) or not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


# --------------------------------------------------------------------------
# the spec: refs, operations, base URL


class SpecDoc:
    """A spec document with local ``$ref`` resolution."""

    def __init__(self, doc: dict, name: str) -> None:
        self.doc = doc
        self.name = name
        self.oas3 = str(doc.get("openapi", "")).startswith("3")
        self._missing: set[str] = set()

    def lookup(self, ref: str) -> Any:
        if not ref.startswith("#"):
            self._missing.add(ref)
            return None
        cur: Any = self.doc
        for raw in ref[1:].split("/"):
            if raw == "":
                continue
            part = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                self._missing.add(ref)
                return None
        return cur

    def deref(self, node: Any) -> Any:
        """Follow a chain of ``$ref`` (cycle-safe); ``{}`` when unresolvable."""
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen:
                return {}
            seen.add(ref)
            target = self.lookup(ref)
            if not isinstance(target, dict):
                return {}
            node = target
        return node if node is not None else {}

    @property
    def unresolved_refs(self) -> list[str]:
        return sorted(self._missing)


@dataclass
class Operation:
    """One (method, path) of a spec, resolved for generation."""

    method: str  # upper case
    spec_path: str  # the key under ``paths``
    template: str  # wire template: base path + path, no query or fragment
    scheme: str
    host: str
    path_part: str  # the path part of the key (no base path)
    base_path: str
    params: list[dict]  # resolved, path-level merged with operation-level
    literal_query: list[tuple[str, str]]  # from a key like /x?view=agg&p={p}
    fragment: str  # AWS-style /#Action keys
    op_id: str
    body: tuple[str, dict] | None  # (media type, schema)
    form_params: list[dict]
    responses: dict[str, Any]  # code -> (media type, schema or None)
    produces: list[str]
    security: list[tuple[str, dict]]  # (scheme name, scheme) of the first requirement
    multi: set[str] = field(default_factory=set)

    def path_param(self, name: str) -> dict:
        for p in self.params:
            if p.get("in") == "path" and p.get("name") == name:
                return p
        return {"name": name, "in": "path", "required": True, "type": "string"}


_PH = re.compile(r"\{([^{}]*)\}")


def _placeholder_name(raw: str) -> str:
    return raw.lstrip("+#./;?&").rstrip("*")


def _param_schema(spec: SpecDoc, p: dict) -> dict:
    """The value schema of a parameter (OAS3 ``schema``, Swagger 2 inline)."""
    if isinstance(p.get("schema"), dict) and p.get("in") != "body":
        s = spec.deref(p["schema"])
        if "example" not in s and "example" in p:
            s = dict(s, example=p["example"])
        return s
    return p


def _merge_params(spec: SpecDoc, path_level: Any, op_level: Any) -> list[dict]:
    out: dict[tuple[str, str], dict] = {}
    for group in (path_level, op_level):
        if not isinstance(group, list):
            continue
        for raw in group:
            p = spec.deref(raw)
            if isinstance(p, dict) and p.get("name") is not None and p.get("in"):
                out[(str(p["in"]), str(p["name"]))] = p
    return list(out.values())


def _base_url(spec: SpecDoc, servers: Any, fallback_host: str) -> tuple[str, str, str]:
    """(scheme, host, base path)."""
    d = spec.doc
    if spec.oas3:
        url = ""
        if isinstance(servers, list) and servers and isinstance(servers[0], dict):
            srv = servers[0]
            url = str(srv.get("url") or "")
            variables = srv.get("variables") or {}
            for var, meta in variables.items() if isinstance(variables, dict) else []:
                value = ""
                if isinstance(meta, dict):
                    value = str(meta.get("default") or (meta.get("enum") or [""])[0])
                url = url.replace("{" + var + "}", value)
            url = re.sub(r"\{[^}]*\}", "v1", url)
        if "://" in url or url.startswith("//"):
            parts = urlsplit(url if "://" in url else "https:" + url)
            scheme = parts.scheme or "https"
            host = parts.netloc or fallback_host
            base = parts.path
        else:
            scheme, host, base = "https", fallback_host, url
    else:
        schemes = [s for s in d.get("schemes") or [] if isinstance(s, str)]
        scheme = "https" if "https" in schemes or not schemes else schemes[0]
        host = str(d.get("host") or "").strip() or fallback_host
        base = str(d.get("basePath") or "")
    host = host.rstrip("/")
    if ":" in host:
        h, _, port = host.rpartition(":")
        if port == "80" and scheme == "http" or port == "443" and scheme == "https":
            host = h
        elif port == "80" and scheme == "https" and not spec.oas3 and "http" in (d.get("schemes") or []):
            scheme, host = "http", h
    if base and not base.startswith("/"):
        base = "/" + base
    return scheme, host, base.rstrip("/")


def _spec_host_fallback(spec_name: str) -> str:
    return _slugify(spec_name.replace(".", "-")) + ".example"


def _media_schema(spec: SpecDoc, content: Any) -> tuple[str, dict | None]:
    """Pick a media type from an OAS3 ``content`` map: JSON first."""
    if not isinstance(content, dict) or not content:
        return "", None
    keys = list(content)
    pick = next((k for k in keys if "json" in k.lower()), None) or next(
        (k for k in keys if "form" in k.lower()), None) or keys[0]
    media = content.get(pick) or {}
    schema = media.get("schema") if isinstance(media, dict) else None
    return pick, spec.deref(schema) if isinstance(schema, dict) else None


def load_operations(doc: dict, spec_name: str = "") -> tuple[SpecDoc, list[Operation]]:
    """Every operation of a spec, resolved."""
    name = spec_name or str((doc.get("info") or {}).get("title") or "api")
    spec = SpecDoc(doc, name)
    fallback = _spec_host_fallback(name)
    paths = doc.get("paths") or {}
    sec_defs = (doc.get("securityDefinitions") if not spec.oas3 else (doc.get("components") or {}).get("securitySchemes")) or {}
    root_consumes = doc.get("consumes") or []
    root_produces = doc.get("produces") or []
    root_security = doc.get("security")
    ops: list[Operation] = []
    if not isinstance(paths, dict):
        return spec, ops
    for key, raw_item in paths.items():
        if not isinstance(key, str) or not isinstance(raw_item, dict) or key.startswith("x-"):
            continue
        item = spec.deref(raw_item) if "$ref" in raw_item else raw_item
        if not isinstance(item, dict):
            continue
        path_part, _, fragment = key.partition("#")
        path_part, _, qs = path_part.partition("?")
        if not path_part.startswith("/"):
            path_part = "/" + path_part
        literal_query = []
        for pair in qs.split("&") if qs else []:
            k, _, v = pair.partition("=")
            if k:
                literal_query.append((k, v))
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            servers = op.get("servers") or item.get("servers") or doc.get("servers")
            scheme, host, base = _base_url(spec, servers, fallback)
            params = _merge_params(spec, item.get("parameters"), op.get("parameters"))
            body: tuple[str, dict] | None = None
            form_params = [p for p in params if p.get("in") == "formData"]
            responses: dict[str, Any] = {}
            if spec.oas3:
                rb = spec.deref(op.get("requestBody")) if op.get("requestBody") else None
                if isinstance(rb, dict):
                    media, schema = _media_schema(spec, rb.get("content"))
                    if media:
                        body = (media, schema or {})
                produces = []
                for code, r in (op.get("responses") or {}).items():
                    r = spec.deref(r)
                    media, schema = _media_schema(spec, r.get("content") if isinstance(r, dict) else None)
                    if media and media not in produces:
                        produces.append(media)
                    responses[str(code)] = (media, schema)
            else:
                consumes = op.get("consumes") or root_consumes
                produces = list(op.get("produces") or root_produces)
                bp = next((p for p in params if p.get("in") == "body"), None)
                if bp is not None:
                    media = next((c for c in consumes if "json" in c.lower()), None) or (consumes[0] if consumes else "application/json")
                    body = (media, spec.deref(bp.get("schema")) if isinstance(bp.get("schema"), dict) else {})
                elif form_params:
                    multipart = any(p.get("type") == "file" for p in form_params) or any("multipart" in c for c in consumes)
                    body = ("multipart/form-data" if multipart else "application/x-www-form-urlencoded", {})
                media = next((c for c in produces if "json" in c.lower()), None) or (produces[0] if produces else "application/json")
                for code, r in (op.get("responses") or {}).items():
                    r = spec.deref(r)
                    schema = r.get("schema") if isinstance(r, dict) else None
                    responses[str(code)] = (media, spec.deref(schema) if isinstance(schema, dict) else None)
            security: list[tuple[str, dict]] = []
            req = op.get("security", root_security)
            if isinstance(req, list) and req and isinstance(req[0], dict):
                for sname in req[0]:
                    sdef = spec.deref(sec_defs.get(sname)) if isinstance(sec_defs, dict) else None
                    if isinstance(sdef, dict):
                        security.append((sname, sdef))
            elif isinstance(sec_defs, dict) and sec_defs and req is None:
                sname = next(iter(sec_defs))
                sdef = spec.deref(sec_defs[sname])
                if isinstance(sdef, dict):
                    security.append((sname, sdef))
            template = (base + path_part) if path_part != "/" or not base else base
            if not template:
                template = "/"
            o = Operation(
                method=method.upper(), spec_path=key, template=template, scheme=scheme, host=host,
                path_part=path_part, base_path=base, params=params, literal_query=literal_query,
                fragment=fragment, op_id=str(op.get("operationId") or f"{method} {key}"), body=body,
                form_params=form_params, responses=responses, produces=produces, security=security,
            )
            o.multi = _multi_segment_params(spec, o)
            ops.append(o)
    return spec, ops


_FMT_RE = re.compile(
    r"/?(?:[A-Za-z][\w.\-]*|\*|\{[^}/\s]+\})(?:/(?:[A-Za-z][\w.\-]*|\*|\{[^}/\s]+\}))+"
)


def _multi_segment_params(spec: SpecDoc, op: Operation) -> set[str]:
    """Path parameters whose values span several segments (``{+name}``,
    ``x-reservedExpansion``, ``x-ms-skip-url-encoding``, a pattern with a
    slash, Azure ``{resourceUri}``/``{scope}``)."""
    out: set[str] = set()
    for raw in _PH.findall(op.path_part):
        name = _placeholder_name(raw)
        p = op.path_param(name)
        schema = _param_schema(spec, p)
        pat = str(schema.get("pattern") or "")
        flagged = raw.startswith("+") or p.get("x-reservedExpansion") or p.get("x-ms-skip-url-encoding")
        slash_pattern = "/" in pat.replace("[^/]", "") and "^" in pat
        azure_id = name in ("resourceUri", "scope") or (
            name == "resourceId" and "fully qualified" in str(p.get("description", "")).lower())
        if flagged or slash_pattern or azure_id:
            out.add(name)
    return out


# --------------------------------------------------------------------------
# value pools


class _Pool:
    """Objects of one entity (under one parent): a Pitman-Yor process, so a
    few objects are read again and again and new ones keep appearing."""

    __slots__ = ("counts", "discount", "n", "theta", "values")

    def __init__(self, theta: float, discount: float) -> None:
        self.values: list[str] = []
        self.counts: list[int] = []
        self.theta = theta
        self.discount = discount
        self.n = 0


_CLOSED_KINDS = frozenset((
    "region", "country", "lang", "currency", "ticker", "year", "month", "day", "letter", "format",
    "ext", "ext_nodot", "smallint", "word",
))


_ME_ENTITIES = frozenset(("userid", "user", "accountid", "customerid", "user:id", "account:id", "customer:id"))


class Values:
    """Concrete values for one spec: entity styles, object pools, clients."""

    def __init__(self, spec: SpecDoc, seed: int, host: str) -> None:
        self.spec = spec
        self.seed = seed
        self.host = host
        self.rng = _rng(seed, spec.name, "values")
        self.styles: dict[tuple[str, str], Style] = {}
        self.pools: dict[tuple[str, str], _Pool] = {}
        self.known: dict[str, list[str]] = {}  # entity -> every value handed out
        self.seen: dict[str, set[str]] = {}
        self.me_alias = self._alias_rng().random() < 0.35

    def _alias_rng(self) -> random.Random:
        return _rng(self.seed, self.spec.name, "alias")

    def style(self, entity: str, kind: str, schema: dict) -> Style:
        key = (entity, kind)
        st = self.styles.get(key)
        if st is None:
            st = _pick_style(kind, entity, _rng(self.seed, self.spec.name, "style", entity, kind), schema, self.host)
            self.styles[key] = st
        return st

    def fresh(self, entity: str, style: Style, schema: dict, pattern: re.Pattern | None) -> str:
        """A value never handed out for this entity, meeting the schema."""
        seen = self.seen.setdefault(entity, set())
        rng = self.rng
        value = ""
        for _ in range(12):
            value = self._constrain(_gen(style, rng), schema, pattern, rng)
            if value not in seen:
                break
        else:
            if style.kind not in _CLOSED_KINDS:  # small vocabularies repeat; ids never do
                value = f"{value or entity}-{len(seen) + 1}"
        seen.add(value)
        return value

    def _constrain(self, value: str, schema: dict, pattern: re.Pattern | None, rng: random.Random) -> str:
        lo = schema.get("minLength")
        hi = schema.get("maxLength")
        if isinstance(hi, int) and hi > 0 and len(value) > hi:
            value = value[:hi].rstrip("-_.")
        if isinstance(lo, int) and len(value) < lo:
            value = value + _chars(rng, string.ascii_lowercase + string.digits, lo - len(value))
        if pattern is not None and not pattern.search(value):
            alt = _from_pattern(pattern.pattern, rng)
            if alt is None or not pattern.search(alt) or "/" in alt or not alt:
                return value  # cannot satisfy: keep the realistic value
            return alt
        return value

    def pool(self, entity: str, parent: str) -> _Pool:
        key = (entity, parent)
        p = self.pools.get(key)
        if p is None:
            r = _rng(self.seed, self.spec.name, "pool", entity, parent)
            if parent:
                p = _Pool(theta=r.uniform(0.5, 3.0), discount=r.uniform(0.1, 0.5))
            else:
                p = _Pool(theta=r.lognormvariate(1.3, 0.7), discount=r.uniform(0.2, 0.7))
            self.pools[key] = p
        return p

    def pick(self, entity: str, parent: str, make: Any) -> str:
        """An object from the entity's pool (Pitman-Yor); ``make()`` gives a
        new one."""
        p = self.pool(entity, parent)
        rng = self.rng
        k = len(p.values)
        if k == 0 or rng.random() * (p.n + p.theta) < p.theta + p.discount * k:
            v = make()
            p.values.append(v)
            p.counts.append(1)
            self.known.setdefault(entity, []).append(v)
        else:
            x = rng.random() * (p.n - p.discount * k)
            i = 0
            for i, c in enumerate(p.counts):
                x -= c - p.discount
                if x < 0:
                    break
            p.counts[i] += 1
            v = p.values[i]
        p.n += 1
        return v

    def known_value(self, entity: str) -> str | None:
        vals = self.known.get(entity)
        if not vals:
            return None
        return vals[_skewed_index(self.rng, len(vals), 1.5)]


# --------------------------------------------------------------------------
# generation


@dataclass
class GenCall:
    """One generated HTTP call and where it came from."""

    spec: str
    method: str
    scheme: str
    host: str
    path: str  # percent-decoded (except %2F), as apiward keeps it
    raw_path: str  # as sent
    query: list[tuple[str, str]]
    req_headers: list[tuple[str, str]]
    req_body: bytes
    req_type: str
    status: int
    resp_headers: list[tuple[str, str]]
    resp_body: bytes
    resp_type: str
    template: str
    spec_path: str
    op_id: str
    ts: float = 0.0
    duration_ms: float = 0.0
    client_ip: str = ""
    nonexistent: bool = False
    error: bool = False

    @property
    def url(self) -> str:
        q = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in self.query)
        return f"{self.scheme}://{self.host}{self.raw_path}" + (f"?{q}" if q else "")


@dataclass
class SpecTraffic:
    """The calls generated for one spec, with per-spec facts."""

    name: str
    calls: list[GenCall]
    operations: list[Operation]
    counts: dict[tuple[str, str, str], int]  # (method, host, template) -> calls
    unresolved_refs: list[str]
    version: str


@dataclass
class _Client:
    ip: str
    agent: str
    user: str
    secret: str
    jwt: str


_ERROR_CODES = (400, 401, 403, 404, 405, 409, 410, 422, 429, 500, 502, 503, 504)
_METHOD_WEIGHT = {"GET": 1.3, "POST": 0.8, "PUT": 0.55, "PATCH": 0.55, "DELETE": 0.4, "HEAD": 0.3, "OPTIONS": 0.2, "TRACE": 0.1}


def _call_count(rng: random.Random, method: str, spec_factor: float, scale: float, cap: int) -> int:
    """Long-tailed: Pareto(alpha=1.15) scaled per method and spec."""
    base = rng.paretovariate(1.15)
    n = int(base * _METHOD_WEIGHT.get(method, 0.5) * spec_factor * scale)
    return max(1, min(cap, n))


class _Generator:
    def __init__(self, spec: SpecDoc, ops: list[Operation], seed: int, opts: dict) -> None:
        self.spec = spec
        self.ops = ops
        self.seed = seed
        self.opts = opts
        self.rng = _rng(seed, spec.name, "calls")
        host = ops[0].host if ops else ""
        self.values = Values(spec, seed, host)
        self.error_rate = opts.get("error_rate", 0.015)
        self.missing_rate = opts.get("missing_rate", 0.02)
        self.clients = self._clients()
        self._client = self.clients[0]
        self.children = self._collection_children()
        # AWS query protocol (EC2, IAM, ...): no consumes; Action/Version in a form body
        self.aws_query = "amazon" in host and not spec.doc.get("consumes")

    # --- clients and credentials

    def _clients(self) -> list[_Client]:
        r = _rng(self.seed, self.spec.name, "clients")
        n = max(1, min(40, int(r.paretovariate(0.9)) + 1))
        out = []
        for _ in range(n):
            ip = r.choice((
                f"203.0.113.{r.randint(1, 254)}", f"198.51.100.{r.randint(1, 254)}",
                f"192.0.2.{r.randint(1, 254)}", f"10.{r.randint(0, 40)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
            ))
            user = _handle(r)
            secret = _chars(r, _B62, r.choice((24, 32, 40)))
            header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
            payload = _b64url(json.dumps({"sub": user, "iss": "https://auth.example", "iat": 1717459200 + r.randint(0, 99999),
                                          "scope": "read write"}, separators=(",", ":")).encode())
            jwt = f"{header}.{payload}.{_chars(r, _B62URL, 43)}"
            out.append(_Client(ip, r.choice(_USER_AGENTS), user, secret, jwt))
        return out

    def _collection_children(self) -> dict[str, tuple[str, str, dict]]:
        """Collection path -> (entity, name, schema) of its item placeholder,
        so a POST to ``/users`` creates an id later read at ``/users/{id}``."""
        out: dict[str, tuple[str, str, dict]] = {}
        for op in self.ops:
            m = re.match(r"^(.*)/\{([^{}/]+)\}$", op.path_part)
            if m and _placeholder_name(m.group(2)) not in op.multi:
                name = _placeholder_name(m.group(2))
                p = op.path_param(name)
                schema = _param_schema(self.spec, p)
                if schema.get("enum") or p.get("enum"):
                    continue
                ent = _qualified_entity(name, m.group(1).rsplit("}", 1)[-1] + "/")
                out.setdefault(m.group(1) or "/", (ent, name, schema))
        return out

    # --- path values

    def _kind_style(self, op: Operation, name: str, entity: str, glued: str) -> tuple[dict, dict, Style, str | None]:
        """(param, schema, style, example) of a single-segment placeholder."""
        p = op.path_param(name)
        schema = _param_schema(self.spec, p)
        kind = _classify(name, schema, op.host, glued)
        example = _example(p, schema)
        if kind == "unknown" and example is not None:
            kind = _kind_from_example(example)
        return p, schema, self.values.style(entity, kind, schema), example

    def _path_value(self, op: Operation, name: str, entity: str, parent: str, glued: str) -> str:
        """The value of one path placeholder."""
        p = op.path_param(name)
        schema = _param_schema(self.spec, p)
        enum = schema.get("enum") or p.get("enum")
        if isinstance(enum, list) and enum:
            vals = [("true" if v is True else "false" if v is False else str(v)) for v in enum if v is not None]
            if vals:
                return vals[_skewed_index(self.rng, len(vals), 1.6)]
        if name in op.multi:
            return self._resource_path(op, name, p)
        p, schema, style, example = self._kind_style(op, name, entity, glued)
        pattern = _compile(schema.get("pattern"))

        def make() -> str:
            if example is not None and entity not in self.values.seen:
                self.values.seen.setdefault(entity, set()).add(example)
                return example
            return self.values.fresh(entity, style, schema, pattern)

        if self.values.me_alias and entity in _ME_ENTITIES and self.rng.random() < 0.06:
            return "me"
        if style.kind in ("year", "month", "day", "letter", "currency", "ticker", "format", "ext", "ext_nodot", "smallint"):
            # small closed sets: drawn directly, no object identity
            v = _gen(style, self.rng)
            return v if pattern is None or pattern.search(v) else make()
        return self.values.pick(entity, parent, make)

    def _resource_path(self, op: Operation, name: str, p: dict) -> str:
        """A multi-segment value: ``projects/acme-prod-12/locations/us-east1/keyRings/k``."""
        desc = str(p.get("description") or "")
        formats = [f for f in _FMT_RE.findall(desc) if ("*" in f or "{" in f)]
        rng = self.rng
        if formats:
            segs = formats[_skewed_index(rng, len(formats), 1.2)].lstrip("/").split("/")
        elif "azure" in op.host or name in ("resourceUri", "scope"):
            prov, typ = _AZURE_TYPES[_skewed_index(rng, len(_AZURE_TYPES), 1.5)]
            if name == "scope" and rng.random() < 0.5:
                segs = ["subscriptions", "*"] + (["resourceGroups", "*"] if rng.random() < 0.5 else [])
            else:
                segs = ["subscriptions", "*", "resourceGroups", "*", "providers", prov, typ, "*"]
        else:
            colls = _collections_from_op_id(op.op_id)
            if not colls:
                colls = ["projects", "locations", self._coll_word(name)]
            verb = op.op_id.rsplit(".", 1)[-1] if "." in op.op_id else ""
            if (name == "parent" or verb in ("list", "create")) and len(colls) > 1:
                colls = colls[:-1]
            segs = []
            for c in colls:
                segs += [c, "*"]
        out = []
        parent = ""
        for i, seg in enumerate(segs):
            if seg == "*" or (seg.startswith("{") and seg.endswith("}")):
                if seg == "*":
                    coll = segs[i - 1] if i else name
                    ent = _entity(_singular(coll))
                    low = coll.lower()
                    if low in ("projects",) and "google" in op.host:
                        kind = "project"
                    elif low in ("locations", "regions", "zones"):
                        kind = "region"
                    elif low == "subscriptions":
                        kind = "uuid"
                    elif low == "resourcegroups":
                        kind = "name"
                    elif low in ("versions", "cryptokeyversions", "revisions"):
                        kind = "smallint"
                    else:
                        r = _rng(self.seed, self.spec.name, "rescoll", ent).random()
                        kind = "name" if r < 0.6 else "id"
                else:
                    coll = seg[1:-1]
                    ent = _entity(coll)
                    kind = _classify(coll, {}, op.host)
                    if kind == "unknown":
                        kind = "name"
                style = self.values.style(ent, kind, {})
                if kind == "smallint":
                    v = str(rng.randint(1, 12))
                else:
                    v = self.values.pick(ent, parent, lambda ent=ent, style=style: self.values.fresh(ent, style, {}, None))
                parent = v
                out.append(v)
            else:
                out.append(seg)
        return "/".join(out)

    def _is_object(self, op: Operation, name: str) -> bool:
        """Does the placeholder name an object (not an enum, a year, a format ...)?"""
        p = op.path_param(name)
        schema = _param_schema(self.spec, p)
        if schema.get("enum") or p.get("enum"):
            return False
        return name in op.multi or _classify(name, schema, op.host) not in _CLOSED_KINDS

    def _coll_word(self, name: str) -> str:
        r = _rng(self.seed, self.spec.name, "collword", name)
        return r.choice(_NOUNS) + "s"

    # --- building one call

    def _concrete_path(self, op: Operation, missing: bool) -> tuple[str, str, dict[str, str], str | None]:
        """(decoded path, raw path, values by entity, the missing value)."""
        pieces = re.split(r"(\{[^{}]*\})", op.path_part)
        names = [_placeholder_name(x[1:-1]) for x in pieces if x.startswith("{") and x.endswith("}")]
        # the placeholder that gets a never-seen id when asking for a missing object
        target = None
        if missing:
            for n in reversed(names):
                p = op.path_param(n)
                s = _param_schema(self.spec, p)
                if not (s.get("enum") or p.get("enum")) and n not in op.multi:
                    target = n
                    break
        dec, raw = [], []
        bound: dict[str, str] = {}
        parent = ""
        missing_value = None
        prev_text = ""
        for piece in pieces:
            if piece.startswith("{") and piece.endswith("}"):
                name = _placeholder_name(piece[1:-1])
                glued = "" if prev_text.endswith("/") or not prev_text else prev_text
                entity = _qualified_entity(name, prev_text)
                if name == target:
                    _, schema, style, _ = self._kind_style(op, name, entity, glued)
                    value = self.values.fresh(entity, style, schema, _compile(schema.get("pattern")))
                    missing_value = value
                else:
                    value = self._path_value(op, name, entity, parent, glued)
                bound[entity] = value
                bound[_entity(name)] = value
                parent = value
                if name in op.multi:
                    dec.append(value)
                    raw.append(quote(value, safe="/-._~!$&'()*+,;=:@"))
                else:
                    dec.append(value.replace("/", "%2F"))
                    raw.append(quote(value, safe="-._~!$&'()*+,;=:@"))
                prev_text = ""
            else:
                dec.append(piece)
                raw.append(quote(piece, safe="/-._~!$&'()*+,;=:@%"))
                prev_text = piece
        base = op.base_path
        d = base + "".join(dec) if op.path_part != "/" or not base else base
        r = base + "".join(raw) if op.path_part != "/" or not base else base
        return d or "/", r or "/", bound, missing_value

    def _query(self, op: Operation, client: _Client, bound: dict[str, str]) -> list[tuple[str, str]]:
        rng = self.rng
        out: list[tuple[str, str]] = []
        for k, v in op.literal_query:
            m = _PH.fullmatch(v)
            if m:
                p = next((x for x in op.params if x.get("name") == _placeholder_name(m.group(1))), {"name": m.group(1)})
                out.append((k, self._scalar(str(p.get("name")), _param_schema(self.spec, p), bound)))
            else:
                out.append((k, v))
        literal = {k for k, _ in out}
        optional = 0
        n_optional = sum(1 for p in op.params if p.get("in") == "query" and not p.get("required"))
        p_optional = min(0.2, 1.0 / max(1, n_optional))
        for p in op.params:
            if p.get("in") != "query" or p.get("name") in literal:
                continue
            name = str(p["name"])
            if not p.get("required"):
                if optional >= 3 or rng.random() > p_optional:
                    continue
                optional += 1
            schema = _param_schema(self.spec, p)
            if schema.get("type") == "array":
                items = self.spec.deref(schema.get("items") or {})
                vals = [self._scalar(name, items, bound) for _ in range(rng.randint(1, 3))]
                fmt = p.get("collectionFormat") or ("multi" if schema.get("explode", True) and self.spec.oas3 else "csv")
                if fmt == "multi":
                    out.extend((name, v) for v in vals)
                else:
                    sep = {"ssv": " ", "tsv": "\t", "pipes": "|"}.get(str(fmt), ",")
                    out.append((name, sep.join(vals)))
            else:
                out.append((name, self._scalar(name, schema, bound)))
        for _, sdef in op.security:
            if sdef.get("type") == "apiKey" and sdef.get("in") == "query":
                kname = str(sdef.get("name") or "api_key")
                out = [(k, v) for k, v in out if k != kname] + [(kname, client.secret)]
        return out

    def _scalar(self, name: str, schema: dict, bound: dict[str, str]) -> str:
        """A query/header/form value."""
        rng = self.rng
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            v = enum[_skewed_index(rng, len(enum), 1.4)]
            return "true" if v is True else "false" if v is False else str(v)
        ex = _example(schema, schema)
        if ex is not None and rng.random() < 0.3:
            return ex
        if schema.get("default") is not None and rng.random() < 0.3:
            d = schema["default"]
            return "true" if d is True else "false" if d is False else str(d)
        typ = schema.get("type")
        low = _entity(name)
        if typ == "boolean":
            return rng.choice(("true", "false"))
        if low in ("limit", "pagesize", "perpage", "count", "size", "maxresults", "top", "amount", "per_page", "pagelimit"):
            return str(rng.choice((10, 20, 25, 50, 100)))
        if low in ("page", "pageno", "pagenumber", "pagenum"):
            return str(min(int(rng.paretovariate(1.5)), 50))
        if low in ("offset", "skip", "start", "from"):
            return str(rng.choice((0, 0, 10, 20, 50, 100, 200)))
        if low in ("q", "query", "search", "term", "keyword", "keywords", "text", "filter", "s"):
            return " ".join(rng.choice(_WORDS + _NOUNS) for _ in range(rng.randint(1, 2)))
        if low in ("sort", "orderby", "sortby", "order"):
            return rng.choice(("name", "-created_at", "updated", "date", "asc", "desc", "id"))
        if low in ("fields", "select", "include", "expand"):
            return ",".join(rng.sample(["id", "name", "status", "items", "owner", "created"], rng.randint(1, 3)))
        if low in ("key", "apikey", "accesstoken", "token", "oauthtoken", "bearertoken"):
            return self._client.secret
        if low in ("callback", "jsonp"):
            return ""  # usually left empty
        if bound.get(low):
            return bound[low]
        minimum, maximum = schema.get("minimum"), schema.get("maximum")
        if typ in ("integer", "number") and (minimum is not None or maximum is not None):
            lo = int(minimum) if isinstance(minimum, (int, float)) else 0
            hi = int(maximum) if isinstance(maximum, (int, float)) else lo + 1000
            return str(rng.randint(lo, max(lo, hi)))
        kind = _classify(name, schema, self.values.host)
        if kind in ("id", "intid", "sid", "handle", "uuid"):
            known = self.values.known_value(low)
            if known is not None and rng.random() < 0.7:
                return known
        if kind in ("unknown", "name"):
            kind = "word" if typ != "integer" else "smallint"
        if kind == "intid":
            return str(rng.randint(1, 100000))
        style = self.values.style(low, kind, schema)
        return _gen(style, rng)

    def _headers(self, op: Operation, client: _Client, body_type: str) -> list[tuple[str, str]]:
        rng = self.rng
        h: list[tuple[str, str]] = [("Host", op.host), ("User-Agent", client.agent)]
        accept = next((m for m in op.produces if "json" in m), None) or (op.produces[0] if op.produces else "application/json")
        h.append(("Accept", accept if rng.random() < 0.8 else "*/*"))
        auth_done = False
        for _, sdef in op.security:
            t = sdef.get("type")
            if t == "apiKey" and sdef.get("in") == "header":
                hname = str(sdef.get("name") or "X-API-Key")
                if hname.lower() == "authorization":
                    h.append(("Authorization", f"Bearer {client.secret}" if "amazon" not in op.host
                              else f"AWS4-HMAC-SHA256 Credential=AKIA{_chars(rng, _UPPER_ALNUM, 16)}/20240604/us-east-1/svc/aws4_request, SignedHeaders=host;x-amz-date, Signature={_chars(rng, _HEX, 64)}"))
                    auth_done = True
                elif hname.lower() != "cookie":
                    h.append((hname, client.secret))
                else:
                    h.append(("Cookie", f"session={client.secret}"))
            elif t == "apiKey" and sdef.get("in") == "cookie":
                h.append(("Cookie", f"{sdef.get('name') or 'session'}={client.secret}"))
            elif (t == "basic" or (t == "http" and str(sdef.get("scheme", "")).lower() == "basic")) and not auth_done:
                h.append(("Authorization", "Basic " + base64.b64encode(f"{client.user}:{client.secret[:12]}".encode()).decode()))
                auth_done = True
            elif t in ("oauth2", "openIdConnect", "http") and not auth_done:
                h.append(("Authorization", f"Bearer {client.jwt}"))
                auth_done = True
            if auth_done:
                break
        for p in op.params:
            if p.get("in") != "header":
                continue
            name = str(p["name"])
            low = name.lower()
            if low in ("authorization", "content-type", "accept", "host", "user-agent", "cookie"):
                continue
            if not p.get("required") and rng.random() > 0.1:
                continue
            if low == "action" and op.fragment:
                value = op.fragment
            elif low == "version":
                value = str((self.spec.doc.get("info") or {}).get("version") or "1")
            elif low == "x-amz-date":
                value = "20240604T" + f"{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}Z"
            else:
                value = self._scalar(name, _param_schema(self.spec, p), {})
            h.append((name, value))
        if op.fragment and "amazon" in op.host and not self.aws_query:
            target = re.sub(r"[^A-Za-z0-9]", "", (self.spec.doc.get("info") or {}).get("title") or "Service")
            h.append(("X-Amz-Target", f"{target}_{str((self.spec.doc.get('info') or {}).get('version') or '').replace('-', '')}.{op.fragment}"))
        if body_type:
            h.append(("Content-Type", body_type))
        h.append(("X-Request-Id", _uuid(rng)))
        return h

    def _request_body(self, op: Operation, bound: dict[str, str]) -> tuple[bytes, str]:
        if op.body is None:
            return b"", ""
        media, schema = op.body
        rng = self.rng
        if "x-www-form-urlencoded" in media or "multipart" in media:
            fields: list[tuple[str, str]] = []
            if op.form_params:
                for p in op.form_params:
                    if not p.get("required") and rng.random() < 0.5:
                        continue
                    if p.get("type") == "file":
                        fields.append((str(p["name"]), "@" + _filename(rng)))
                    else:
                        fields.append((str(p["name"]), self._scalar(str(p["name"]), p, bound)))
            elif isinstance(schema, dict):
                obj = _Sampler(self, "req").sample(schema)
                if isinstance(obj, dict):
                    fields = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in obj.items()]
            if op.fragment and not any(k == "Action" for k, _ in fields) and "amazon" in op.host:
                fields = [("Action", op.fragment), ("Version", str((self.spec.doc.get("info") or {}).get("version") or ""))] + fields
            if "multipart" in media:
                boundary = "----specgenalt" + _chars(rng, _HEX, 16)
                parts = []
                for k, v in fields:
                    if v.startswith("@"):
                        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; filename="{v[1:]}"\r\n'
                                     f"Content-Type: application/octet-stream\r\n\r\n{_chars(rng, _B62, 24)}\r\n")
                    else:
                        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n')
                return ("".join(parts) + f"--{boundary}--\r\n").encode(), f"multipart/form-data; boundary={boundary}"
            return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in fields).encode(), "application/x-www-form-urlencoded"
        if op.fragment and self.aws_query:
            # AWS query protocol: Action and Version in a form body
            body = {"Action": op.fragment, "Version": str((self.spec.doc.get("info") or {}).get("version") or "")}
            extra = _Sampler(self, "req").sample(schema) if schema else None
            if isinstance(extra, dict):
                for k, v in list(extra.items())[:6]:
                    if isinstance(v, (str, int, float, bool)):
                        body[k] = str(v)
            return "&".join(f"{quote(k, safe='')}={quote(str(v), safe='')}" for k, v in body.items()).encode(), "application/x-www-form-urlencoded"
        value = _Sampler(self, "req", bound).sample(schema) if schema else {}
        if value is None:
            value = {}
        ct = media if "json" in media else "application/json"
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(), ct

    def _success_code(self, op: Operation) -> int:
        codes = [c for c in op.responses if c.isdigit() and 200 <= int(c) < 300]
        if codes:
            if op.method == "POST" and "201" in codes:
                return 201
            if op.method == "DELETE" and "204" in codes:
                return 204
            return int(codes[0])
        return {"POST": 201 if self.rng.random() < 0.5 else 200, "DELETE": 204}.get(op.method, 200)

    def _error_code(self, op: Operation) -> int:
        declared = [int(c) for c in op.responses if c.isdigit() and int(c) in _ERROR_CODES and int(c) != 404]
        if declared and self.rng.random() < 0.7:
            return self.rng.choice(declared)
        return _weighted(self.rng, [(400, 5), (401, 3), (403, 2), (409, 1), (422, 2), (429, 2), (500, 2), (502, 1), (503, 1)])

    def _response(self, op: Operation, path: str, status: int, bound: dict[str, str], last_entity: str | None,
                  created: str | None, missing_value: str | None) -> tuple[bytes, str, list[tuple[str, str]]]:
        rng = self.rng
        media, schema = op.responses.get(str(status)) or (None, None)
        if media is None and (status >= 400 or not any(c.isdigit() and 200 <= int(c) < 300 for c in op.responses)):
            media, schema = op.responses.get("default") or (None, None)
        if not media:
            media = next((m for m in op.produces if "json" in m), None) or (op.produces[0] if op.produces else "application/json")
        ext = _EXT_MEDIA.get(path.rsplit(".", 1)[-1].lower()) if "." in path.rsplit("/", 1)[-1] else None
        if ext is not None:  # /Calls.json, /Calls.csv: the extension decides
            media = ext
        headers: list[tuple[str, str]] = []
        body: bytes = b""
        if status == 204 or op.method == "HEAD" or status == 304:
            pass
        elif status >= 400:
            value = None
            if isinstance(schema, dict) and schema and rng.random() < 0.6:
                value = _Sampler(self, "resp").sample(schema)
            if not isinstance(value, dict):
                value = {"error": {"code": status, "status": HTTPStatus(status).phrase.upper().replace(" ", "_"),
                                   "message": _error_message(status, missing_value)}}
            body = json.dumps(value, separators=(",", ":")).encode()
            media = "application/json"
        elif "json" in media.lower() or not media:
            value = _Sampler(self, "resp", bound).sample(schema) if isinstance(schema, dict) and schema else None
            if value is None:
                value = self._small_json(op, bound, last_entity, created)
            value = _bind_ids(value, bound, last_entity, created)
            body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        else:
            body = _non_json_body(media, bound, rng)
        if body:
            headers.append(("Content-Type", media if status < 400 else "application/json"))
        headers.append(("Content-Length", str(len(body))))
        headers.append(("X-Request-Id", _uuid(rng)))
        if status == 201 and created is not None:
            coll = op.path_part.rstrip("/")
            headers.append(("Location", f"{op.base_path}{coll}/{quote(created, safe='')}"))
        if status == 429:
            headers.append(("Retry-After", str(rng.choice((1, 5, 30, 60)))))
        return body, media if body else "", headers

    def _small_json(self, op: Operation, bound: dict[str, str], last_entity: str | None, created: str | None) -> Any:
        rng = self.rng
        if op.method == "GET" and not op.path_part.rstrip("/").endswith("}"):
            child = self.children.get(op.path_part.rstrip("/") or "/")
            items = []
            for _ in range(rng.randint(0, 4)):
                ident = (self.values.known_value(child[0]) if child else None) or str(rng.randint(1, 99999))
                items.append({"id": ident, "name": _slug(rng)})
            return {"items": items, "total": len(items) + rng.randint(0, 40), "next": None}
        if created is not None:
            return {"id": created, "status": "created"}
        if last_entity and bound.get(last_entity):
            return {"id": bound[last_entity], "name": _resname(rng, "kebab"),
                    "updated_at": _gen(Style("datetime", {"form": "iso"}), rng)}
        return {"ok": True}

    def build(self, op: Operation) -> GenCall:
        rng = self.rng
        client = self.clients[_skewed_index(rng, len(self.clients), 1.8)]
        has_params = bool(_PH.search(op.path_part))
        missing = has_params and op.method in ("GET", "PUT", "PATCH", "DELETE", "HEAD") and rng.random() < self.missing_rate
        path, raw_path, bound, missing_value = self._concrete_path(op, missing)
        if missing_value is None:
            missing = False
        names = [_placeholder_name(x) for x in _PH.findall(op.path_part)]
        tail = op.path_part.rsplit("}", 1)[-1] if names else "/"
        last_entity = _entity(names[-1]) if names and "/" not in tail and self._is_object(op, names[-1]) else None
        self._client = client
        error = not missing and rng.random() < self.error_rate
        created = None
        if missing:
            status = 404
        elif error:
            status = self._error_code(op)
        else:
            status = self._success_code(op)
            if op.method == "POST" and not op.path_part.rstrip("/").endswith("}"):
                child = self.children.get(op.path_part.rstrip("/") or "/")
                if child:
                    ent, cname, cschema = child
                    kind = _classify(cname, cschema, op.host)
                    if kind not in ("unknown", "smallint", "year", "month", "day", "letter", "format", "ext", "ext_nodot"):
                        style = self.values.style(ent, kind, cschema)
                        parent = bound.get(_entity(names[-1]), "") if names else ""
                        created = self.values.fresh(ent, style, cschema, _compile(cschema.get("pattern")))
                        pool = self.values.pool(ent, parent)
                        pool.values.append(created)
                        pool.counts.append(1)
                        pool.n += 1
                        self.values.known.setdefault(ent, []).append(created)
        query = self._query(op, client, bound)
        req_body, req_type = self._request_body(op, bound)
        headers = self._headers(op, client, req_type)
        resp_body, resp_type, resp_headers = self._response(op, path, status, bound, last_entity, created, missing_value)
        if status >= 500:
            dur = rng.lognormvariate(math.log(400), 0.8)
        else:
            dur = rng.lognormvariate(math.log(35 + 0.004 * len(resp_body)), 0.6)
        return GenCall(
            spec=self.spec.name, method=op.method, scheme=op.scheme, host=op.host, path=path, raw_path=raw_path,
            query=query, req_headers=headers, req_body=req_body, req_type=req_type, status=status,
            resp_headers=resp_headers, resp_body=resp_body, resp_type=resp_type, template=op.template,
            spec_path=op.spec_path, op_id=op.op_id, duration_ms=round(dur, 2), client_ip=client.ip,
            nonexistent=missing, error=error,
        )


_EXT_MEDIA = {
    "json": "application/json", "xml": "application/xml", "csv": "text/csv", "html": "text/html",
    "txt": "text/plain", "atom": "application/atom+xml", "kml": "application/vnd.google-earth.kml+xml",
    "jpg": "image/jpeg", "png": "image/png", "gif": "image/gif", "mp3": "audio/mpeg", "wav": "audio/wav",
    "yaml": "application/yaml",
}


def _b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def _error_message(status: int, missing_value: str | None) -> str:
    if status == 404:
        return f"resource {missing_value!r} not found" if missing_value else "not found"
    return {400: "invalid request", 401: "authentication required", 403: "permission denied",
            409: "conflict with the current state", 422: "validation failed", 429: "rate limit exceeded",
            500: "internal error", 502: "bad gateway", 503: "service unavailable"}.get(status, HTTPStatus(status).phrase)


def _non_json_body(media: str, bound: dict[str, str], rng: random.Random) -> bytes:
    m = media.lower()
    ident = next(iter(bound.values()), str(rng.randint(1, 999)))
    if "xml" in m:
        return f"<?xml version=\"1.0\"?><result><id>{ident}</id><status>ok</status></result>".encode()
    if "csv" in m:
        return f"id,name,value\n{ident},{rng.choice(_WORDS)},{rng.randint(1, 100)}\n".encode()
    if "html" in m:
        return f"<html><body><h1>{rng.choice(_WORDS)}</h1><p>{ident}</p></body></html>".encode()
    if m.startswith("text/") or "yaml" in m:
        return f"{rng.choice(_WORDS)} {ident}\n".encode()
    return b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(24))


def _example(p: dict, schema: dict) -> str | None:
    for src in (p, schema):
        for key in ("x-example", "example"):
            v = src.get(key)
            if isinstance(v, (str, int, float)) and not isinstance(v, bool) and str(v) and "/" not in str(v):
                return str(v)
    return None


def _kind_from_example(ex: str) -> str:
    if re.fullmatch(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", ex):
        return "uuid"
    if re.fullmatch(r"-?\d+\.\d+", ex):
        return "float"
    if re.fullmatch(r"\d+", ex):
        return "id"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", ex):
        return "date"
    if "@" in ex:
        return "email"
    if re.fullmatch(r"[a-z]+(?:-[a-z0-9]+)+", ex):
        return "slug"
    if re.fullmatch(r"[a-z]+", ex):
        return "name"
    return "id"


def _collections_from_op_id(op_id: str) -> list[str]:
    """``cloudkms.projects.locations.keyRings.get`` -> ``[projects, locations, keyRings]``."""
    parts = op_id.split(".")
    if len(parts) < 3:
        return []
    return [p for p in parts[1:-1] if p and p[0].islower()]


# --------------------------------------------------------------------------
# schema sampling


class _Sampler:
    """JSON values from a schema; bounded in depth and size, cycle-safe."""

    def __init__(self, gen: _Generator, mode: str, bound: dict[str, str] | None = None) -> None:
        self.gen = gen
        self.spec = gen.spec
        self.rng = gen.rng
        self.mode = mode
        self.bound = bound or {}
        self.budget = 160

    def sample(self, schema: Any, depth: int = 0, stack: tuple[str, ...] = (), name: str = "") -> Any:
        self.budget -= 1
        if not isinstance(schema, dict) or self.budget < 0 or depth > 6:
            return None
        while isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            if ref in stack:
                return None
            stack = stack + (ref,)
            target = self.spec.lookup(ref)
            if not isinstance(target, dict):
                return None
            schema = target
        rng = self.rng
        if "allOf" in schema and isinstance(schema["allOf"], list):
            merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
            for part in schema["allOf"]:
                part = self._resolve(part, stack)
                if not isinstance(part, dict):
                    continue
                if "allOf" in part:
                    part = self._flatten_allof(part, stack, 0)
                merged["properties"].update(part.get("properties") or {})
                merged["required"] += list(part.get("required") or [])
                for k in ("type", "items", "enum", "format", "additionalProperties", "example"):
                    if k in part and k != "type":
                        merged.setdefault(k, part[k])
                if part.get("type") and part.get("type") != "object" and not merged["properties"]:
                    merged["type"] = part["type"]
            merged["properties"].update(schema.get("properties") or {})
            schema = merged
        for key in ("oneOf", "anyOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                return self.sample(schema[key][_skewed_index(rng, len(schema[key]), 1.5)], depth, stack, name)
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[_skewed_index(rng, len(enum), 1.4)]
        typ = schema.get("type")
        if isinstance(typ, list):
            typ = next((t for t in typ if t != "null"), "string")
        if typ is None:
            typ = "object" if "properties" in schema or "additionalProperties" in schema else "array" if "items" in schema else None
        if typ in ("string", "integer", "number", "boolean") and "example" in schema and rng.random() < 0.25:
            ex = schema["example"]
            if isinstance(ex, (str, int, float, bool)):
                return ex
        if typ == "object":
            return self._object(schema, depth, stack)
        if typ == "array":
            if depth > 3:
                return []
            n = _weighted(rng, [(0, 1), (1, 4), (2, 3), (3, 2)])
            return [v for v in (self.sample(schema.get("items") or {}, depth + 1, stack, name) for _ in range(n)) if v is not None]
        if typ is None:
            if "example" in schema and isinstance(schema["example"], (dict, list)) and self.budget > 40:
                return schema["example"]
            typ = "string"
        return self._leaf(typ, schema, name)

    def _resolve(self, part: Any, stack: tuple[str, ...]) -> Any:
        seen = set(stack)
        while isinstance(part, dict) and isinstance(part.get("$ref"), str):
            if part["$ref"] in seen:
                return None
            seen.add(part["$ref"])
            part = self.spec.lookup(part["$ref"])
        return part

    def _flatten_allof(self, schema: dict, stack: tuple[str, ...], depth: int) -> dict:
        out: dict[str, Any] = {"properties": dict(schema.get("properties") or {}), "required": list(schema.get("required") or [])}
        if depth > 5:
            return out
        for part in schema.get("allOf") or []:
            part = self._resolve(part, stack)
            if isinstance(part, dict):
                sub = self._flatten_allof(part, stack, depth + 1) if "allOf" in part else part
                out["properties"].update(sub.get("properties") or {})
                out["required"] += list(sub.get("required") or [])
        return out

    def _object(self, schema: dict, depth: int, stack: tuple[str, ...]) -> Any:
        rng = self.rng
        props = schema.get("properties") or {}
        out: dict[str, Any] = {}
        if isinstance(props, dict) and props:
            required = [k for k in schema.get("required") or [] if k in props]
            rest = [k for k in props if k not in required]
            keep = max(0, min(len(rest), (14 if depth == 0 else 6) - len(required)))
            if depth > 2:
                keep = min(keep, 2)
            chosen = set(required) | set(rest[:keep] if rng.random() < 0.5 else rng.sample(rest, keep))
            if depth == 0:  # ids that tie the object to the path are always there
                chosen |= {k for k in props if _entity(k) in _ID_KEYS or _entity(k) in self.bound}
            for k in props:
                if k not in chosen:
                    continue
                sub = props[k]
                if isinstance(sub, dict) and "$ref" not in sub:
                    if self.mode == "req" and sub.get("readOnly"):
                        continue
                    if self.mode == "resp" and sub.get("writeOnly"):
                        continue
                v = self.sample(sub, depth + 1, stack, k)
                if v is not None or rng.random() < 0.1:
                    out[k] = v
                if self.budget < 0:
                    break
        else:
            ap = schema.get("additionalProperties")
            if isinstance(ap, dict) and depth < 4:
                for _ in range(rng.randint(1, 2)):
                    out[rng.choice(_NOUNS)] = self.sample(ap, depth + 1, stack)
            elif "example" in schema and isinstance(schema["example"], dict):
                return schema["example"]
        return out

    def _leaf(self, typ: str, schema: dict, name: str) -> Any:
        rng = self.rng
        fmt = str(schema.get("format") or "").lower()
        ent = _entity(name) if name else ""
        if ent and ent in self.bound and self.mode == "req" and rng.random() < 0.5:
            return _typed(self.bound[ent], typ)
        if typ == "boolean":
            return rng.random() < 0.5
        if typ in ("integer", "number"):
            lo, hi = schema.get("minimum"), schema.get("maximum")
            if isinstance(lo, (int, float)) or isinstance(hi, (int, float)):
                a = int(lo) if isinstance(lo, (int, float)) else 0
                b = int(hi) if isinstance(hi, (int, float)) else a + 1000
                v: Any = rng.randint(a, max(a, b))
            else:
                kind = _classify(name or "value", schema, self.gen.values.host) if name else "smallint"
                if kind == "intid":
                    known = self.gen.values.known_value(ent)
                    v = int(known) if known and known.isdigit() else rng.randint(1, 10 ** rng.randint(3, 9))
                elif kind in ("year",):
                    v = rng.randint(2000, 2025)
                elif name.lower().endswith(("at", "time", "timestamp")):
                    v = 1_600_000_000 + rng.randrange(130_000_000)
                else:
                    v = min(int(rng.paretovariate(0.9)), 100000)
            if typ == "number" and rng.random() < 0.7:
                return round(v + rng.random(), 2)
            return v
        # strings
        if fmt == "date-time":
            return _gen(Style("datetime", {"form": "iso"}), rng)
        if fmt == "date":
            return _gen(Style("date"), rng)
        if fmt == "email":
            return _email(rng)
        if fmt in ("uuid", "guid"):
            return _uuid(rng)
        if fmt in ("uri", "url"):
            return f"https://{_gen(Style('domain'), rng)}/{_slug(rng)}"
        if fmt == "byte":
            return base64.b64encode(bytes(rng.randrange(256) for _ in range(12))).decode()
        if fmt in ("binary", "password"):
            return _chars(rng, _B62, 12)
        if not name:
            return rng.choice(_WORDS)
        low = name.lower()
        if low in ("description", "summary", "message", "comment", "text", "body", "note", "notes", "content"):
            return " ".join(rng.choice(_WORDS + _NOUNS + _ADJ) for _ in range(rng.randint(3, 9))).capitalize() + "."
        if low in ("url", "href", "link", "self", "uri", "website", "homepage") or low.endswith("url"):
            return f"https://{_gen(Style('domain'), rng)}/{_slug(rng)}"
        kind = _classify(name, schema, self.gen.values.host)
        if kind in ("id", "sid", "uuid", "handle", "intid"):
            known = self.gen.values.known_value(ent)
            if known is not None and rng.random() < 0.6:
                return known
            return _gen(self.gen.values.style(ent, kind, schema), rng)
        if kind == "unknown":
            if low in ("firstname", "givenname"):
                return rng.choice(_FIRST).capitalize()
            if low in ("lastname", "familyname", "surname"):
                return rng.choice(_LAST).capitalize()
            return rng.choice(_WORDS) if rng.random() < 0.7 else _slug(rng)
        if kind == "name" and low in ("name", "displayname", "fullname"):
            return f"{rng.choice(_FIRST).capitalize()} {rng.choice(_LAST).capitalize()}" if rng.random() < 0.4 else _resname(rng, "kebab")
        return _gen(self.gen.values.style(ent or "value", kind, schema), rng)


def _typed(value: str, typ: str) -> Any:
    if typ == "integer" and value.lstrip("-").isdigit():
        return int(value)
    if typ == "number":
        try:
            return float(value)
        except ValueError:
            return value
    return value


_ID_KEYS = ("id", "uuid", "guid", "key", "_id")


def _bind_ids(value: Any, bound: dict[str, str], last_entity: str | None, created: str | None) -> Any:
    """Make a response object agree with the path: ``userId`` fields get the
    path's user id, the top-level ``id`` the last placeholder's value (or
    the id of an object just created)."""
    if not isinstance(value, dict):
        return value
    targets = [value]
    for wrap in ("data", "result", "item", "resource", "object"):
        inner = value.get(wrap)
        if isinstance(inner, dict):
            targets.append(inner)
    for obj in targets:
        top_id = None
        for k in list(obj):
            ek = _entity(k)
            v = obj[k]
            if isinstance(v, (dict, list)):
                continue
            if ek in bound and ek not in _ID_KEYS:
                obj[k] = _typed(bound[ek], "integer" if isinstance(v, int) and not isinstance(v, bool) else "string")
            elif ek in _ID_KEYS and top_id is None:
                top_id = k
        if top_id is not None:
            ident = created if created is not None else (bound.get(last_entity) if last_entity else None)
            if ident is not None:
                old = obj[top_id]
                obj[top_id] = _typed(ident, "integer" if isinstance(old, int) and not isinstance(old, bool) else "string")
    return value


# --------------------------------------------------------------------------
# scheduling


def generate(doc: dict, spec_name: str = "", seed: int = 0, *, scale: float = 1.0, cap: int = 1200,
             start: datetime = DEFAULT_START, error_rate: float = 0.015, missing_rate: float = 0.02) -> SpecTraffic:
    """Traffic for one spec: calls in time order over one day."""
    spec, ops = load_operations(doc, spec_name)
    name = spec.name
    gen = _Generator(spec, ops, seed, {"error_rate": error_rate, "missing_rate": missing_rate})
    rng = _rng(seed, name, "counts")
    spec_factor = rng.lognormvariate(0.0, 0.5)
    plan: list[int] = []
    for i, op in enumerate(ops):
        plan += [i] * _call_count(rng, op.method, spec_factor, scale, cap)
    order = _rng(seed, name, "order")
    order.shuffle(plan)
    # a little locality: some calls are immediately followed by a re-read
    calls: list[GenCall] = []
    counts: dict[tuple[str, str, str], int] = {}
    for i in plan:
        op = ops[i]
        c = gen.build(op)
        calls.append(c)
        key = (op.method, op.host, op.template)
        counts[key] = counts.get(key, 0) + 1
    _stamp(calls, _rng(seed, name, "time"), start)
    info = doc.get("info") or {}
    return SpecTraffic(name, calls, ops, counts, spec.unresolved_refs, str(doc.get("openapi") or doc.get("swagger") or "") + f" ({info.get('version', '')})")


def _stamp(calls: list[GenCall], rng: random.Random, start: datetime) -> None:
    """Increasing timestamps over one day, busier during working hours."""
    t0 = start.timestamp()
    times = []
    for _ in calls:
        while True:
            x = rng.random()
            hour = x * 24
            density = 0.25 + 0.75 * math.exp(-((hour - 14.0) ** 2) / (2 * 3.5 ** 2))
            if rng.random() < density:
                break
        times.append(t0 + x * DAY)
    times.sort()
    for c, t in zip(calls, times):
        c.ts = round(t, 3)


def generate_many(specs: Iterable[tuple[str, Any]], seed: int = 0, limit: int = 0,
                  **kw: Any) -> tuple[list[SpecTraffic], list[dict]]:
    """Traffic for many specs (at most ``limit`` when given); returns
    (per-spec traffic, skipped specs with reasons)."""
    done: list[SpecTraffic] = []
    skipped: list[dict] = []
    for name, doc in specs:
        if limit and len(done) >= limit:
            break
        reason = _unsupported(doc)
        if reason:
            skipped.append({"spec": name, "reason": reason})
            continue
        try:
            t = generate(doc, name, seed, **kw)
        except RecursionError:
            skipped.append({"spec": name, "reason": "recursion limit while resolving the spec"})
            continue
        if not t.calls:
            skipped.append({"spec": name, "reason": "no operations under paths"})
            continue
        done.append(t)
    return done, skipped


def _unsupported(doc: Any) -> str:
    if isinstance(doc, Exception):
        return f"unreadable: {doc}"
    if not isinstance(doc, dict):
        return "not a JSON/YAML object"
    v = str(doc.get("openapi") or doc.get("swagger") or "")
    if not v:
        return "no 'openapi' or 'swagger' version field"
    if not v.startswith(("2", "3")):
        return f"unsupported version {v}"
    if not isinstance(doc.get("paths"), dict) or not doc["paths"]:
        return "no paths"
    return ""


# --------------------------------------------------------------------------
# reading specs


def _decode_spec(data: bytes, name: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        if name.endswith((".yaml", ".yml")):
            try:
                import yaml

                return yaml.safe_load(data)
            except Exception as yexc:  # noqa: BLE001 - reported as a skip reason
                return ValueError(f"YAML: {yexc}")
        return ValueError(f"JSON: {exc}")


def _spec_name(path: str) -> str:
    name = re.sub(r"\.(json|ya?ml)$", "", path)
    name = re.sub(r"^(\./)?(specs/)?", "", name)
    return name


def iter_specs(source: str) -> Iterator[tuple[str, Any]]:
    """``(name, document)`` for every spec in a ``.tar.gz``, a folder or one
    file, sorted by name. Unreadable files yield an exception as document."""
    exts = (".json", ".yaml", ".yml")
    if os.path.isdir(source):
        files = []
        for root, _, names in os.walk(source):
            for n in names:
                if n.endswith(exts):
                    files.append(os.path.join(root, n))
        for path in sorted(files):
            with open(path, "rb") as f:
                yield _spec_name(os.path.relpath(path, source)), _decode_spec(f.read(), path)
    elif tarfile.is_tarfile(source):
        with tarfile.open(source, "r:*") as tar:
            members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(exts)), key=lambda m: m.name)
            for m in members:
                f = tar.extractfile(m)
                if f is not None:
                    yield _spec_name(m.name), _decode_spec(f.read(), m.name)
    else:
        with open(source, "rb") as f:
            yield _spec_name(os.path.basename(source)), _decode_spec(f.read(), source)


# --------------------------------------------------------------------------
# writers


def _iso(ts: float) -> str:
    sec, ms = divmod(round(ts * 1000), 1000)
    return datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


def _date_header(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def _har_body(body: bytes, media: str) -> dict:
    try:
        return {"text": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(body).decode(), "encoding": "base64"}


def har_entry(c: GenCall) -> dict:
    """One HAR 1.2 entry for a call."""
    status = c.status
    req: dict[str, Any] = {
        "method": c.method,
        "url": c.url,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": [{"name": k, "value": v} for k, v in c.req_headers],
        "queryString": [{"name": k, "value": v} for k, v in c.query],
        "headersSize": -1,
        "bodySize": len(c.req_body),
    }
    if c.req_body:
        req["postData"] = {"mimeType": c.req_type, **_har_body(c.req_body, c.req_type)}
    content = {"size": len(c.resp_body), "mimeType": c.resp_type or "x-unknown"}
    if c.resp_body:
        content.update(_har_body(c.resp_body, c.resp_type))
    wait = round(c.duration_ms * 0.8, 2)
    return {
        "startedDateTime": _iso(c.ts),
        "time": c.duration_ms,
        "request": req,
        "response": {
            "status": status,
            "statusText": HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "",
            "httpVersion": "HTTP/1.1",
            "cookies": [],
            "headers": [{"name": "Date", "value": _date_header(c.ts)}] + [{"name": k, "value": v} for k, v in c.resp_headers],
            "content": content,
            "redirectURL": next((v for k, v in c.resp_headers if k == "Location"), ""),
            "headersSize": -1,
            "bodySize": len(c.resp_body),
        },
        "cache": {},
        "timings": {"send": round(c.duration_ms * 0.05, 2), "wait": wait,
                    "receive": round(c.duration_ms - wait - round(c.duration_ms * 0.05, 2), 2)},
        "_spec": c.spec,
    }


def write_har(calls: list[GenCall], path: str) -> None:
    """Write calls as a HAR 1.2 file (streamed, one entry at a time)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"log":{"version":"1.2","creator":{"name":"apiward-specgen-alt","version":"' + VERSION + '"},"entries":[\n')
        for i, c in enumerate(calls):
            if i:
                f.write(",\n")
            f.write(json.dumps(har_entry(c), ensure_ascii=False, separators=(",", ":")))
        f.write("\n]}}\n")


def api_call(c: GenCall, ident: str) -> ApiCall:
    """The :class:`ApiCall` for a generated call."""
    rh = [(k.lower(), v) for k, v in c.req_headers]
    cookies: dict[str, str] = {}
    for k, v in rh:
        if k == "cookie":
            for part in v.split(";"):
                n, sep, val = part.strip().partition("=")
                if sep and n:
                    cookies[n] = val
    req = Request(
        method=c.method, scheme=c.scheme, host=c.host, path=c.path, query=list(c.query), headers=rh,
        cookies=cookies, body=c.req_body, content_type=c.req_type, body_size=len(c.req_body),
    )
    resp_headers = [("date", _date_header(c.ts))] + [(k.lower(), v) for k, v in c.resp_headers]
    resp = Response(
        status=c.status, reason=HTTPStatus(c.status).phrase if c.status in HTTPStatus._value2member_map_ else "",
        headers=resp_headers, body=c.resp_body, content_type=c.resp_type, body_size=len(c.resp_body),
    )
    port = 443 if c.scheme == "https" else 80
    if ":" in c.host:
        _, _, p = c.host.rpartition(":")
        if p.isdigit():
            port = int(p)
    extra = {"raw_path": c.raw_path} if c.raw_path != c.path else {}
    return ApiCall(id=ident, ts=c.ts, duration_ms=c.duration_ms, request=req, response=resp,
                   src=Peer(ip=c.client_ip), dst=Peer(port=port), source="specgen-alt", extra=extra)


def write_jsonl(calls: list[GenCall], path: str) -> None:
    """Write calls as apiward JSONL (``<file name>#<index>`` ids)."""
    base = os.path.basename(path)
    with open(path, "wb") as f:
        for i, c in enumerate(calls):
            f.write(dumps(api_call(c, f"{base}#{i}")))
            f.write(b"\n")


def truth_document(calls: list[GenCall], traffics: list[SpecTraffic], seed: int, traffic_file: str = "",
                   fmt: str = "") -> dict:
    """Ground truth: endpoints with call counts, and per-call templates."""
    endpoints: dict[tuple[str, str, str], dict] = {}
    for t in traffics:
        for op in t.operations:
            key = (op.method, op.host, op.template)
            e = endpoints.get(key)
            if e is None:
                e = endpoints[key] = {"method": op.method, "host": op.host, "path_template": op.template, "calls": 0,
                                      "specs": [], "spec_paths": [], "operation_ids": [], "multi_segment_params": []}
            if t.name not in e["specs"]:
                e["specs"].append(t.name)
            e["spec_paths"].append(op.spec_path)
            e["operation_ids"].append(op.op_id)
            for m in sorted(op.multi):
                if m not in e["multi_segment_params"]:
                    e["multi_segment_params"].append(m)
    per_call = []
    for i, c in enumerate(calls):
        endpoints[(c.method, c.host, c.template)]["calls"] += 1
        per_call.append({"index": i, "method": c.method, "host": c.host, "template": c.template,
                         "path": c.path, "status": c.status, "spec": c.spec, "spec_path": c.spec_path,
                         **({"nonexistent": True} if c.nonexistent else {})})
    return {
        "generator": GENERATOR,
        "version": VERSION,
        "seed": seed,
        "traffic_file": traffic_file,
        "format": fmt,
        "specs": [{"name": t.name, "version": t.version, "operations": len(t.operations), "calls": len(t.calls),
                   "unresolved_refs": t.unresolved_refs} for t in traffics],
        "total_calls": len(calls),
        "endpoints": sorted(endpoints.values(), key=lambda e: (e["host"], e["path_template"], e["method"])),
        "calls": per_call,
    }


def write_truth(doc: dict, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))


def template_regex(template: str, multi: Iterable[str] = ()) -> re.Pattern:
    """A regex matching concrete (decoded) paths of a template: each
    ``{param}`` matches one non-empty segment piece, multi-segment ones any
    text."""
    multi = set(multi)
    out = []
    for piece in re.split(r"(\{[^{}]*\})", template):
        if piece.startswith("{") and piece.endswith("}"):
            name = _placeholder_name(piece[1:-1])
            out.append(".+" if name in multi or piece.startswith("{+") else "[^/]+")
        else:
            out.append(re.escape(piece))
    return re.compile("^" + "".join(out) + "$")


def _merge_by_time(traffics: list[SpecTraffic]) -> list[GenCall]:
    tagged = [(c.ts, si, ci, c) for si, t in enumerate(traffics) for ci, c in enumerate(t.calls)]
    tagged.sort(key=lambda x: (x[0], x[1], x[2]))
    return [x[3] for x in tagged]


# --------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m apiward.sim.specgen_alt", description=__doc__.split("\n\n")[0])
    ap.add_argument("source", help="a .tar.gz of specs, a folder of specs, or one spec file (JSON or YAML)")
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="stop after N usable specs (in name order)")
    ap.add_argument("--format", choices=("har", "jsonl"), default="har")
    ap.add_argument("--combined", action="store_true", help="one traffic file for all specs instead of one per spec")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every call count")
    ap.add_argument("--cap", type=int, default=1200, help="most calls for one operation")
    ap.add_argument("--start", default=DEFAULT_START.strftime("%Y-%m-%d"), help="the day the traffic starts (UTC)")
    args = ap.parse_args(argv)
    t_start = time.monotonic()
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    os.makedirs(args.outdir, exist_ok=True)
    traffics, skipped = generate_many(iter_specs(args.source), args.seed, limit=args.limit, scale=args.scale,
                                      cap=args.cap, start=start)
    ext = args.format
    writer = write_har if ext == "har" else write_jsonl
    files = []
    if args.combined:
        calls = _merge_by_time(traffics)
        out = os.path.join(args.outdir, f"traffic.{ext}")
        writer(calls, out)
        write_truth(truth_document(calls, traffics, args.seed, os.path.basename(out), ext), os.path.join(args.outdir, "traffic.truth.json"))
        files.append(out)
    else:
        for t in traffics:
            stem = re.sub(r"[^A-Za-z0-9.\-]+", "_", t.name)
            out = os.path.join(args.outdir, f"{stem}.{ext}")
            writer(t.calls, out)
            write_truth(truth_document(t.calls, [t], args.seed, os.path.basename(out), ext), os.path.join(args.outdir, f"{stem}.truth.json"))
            files.append(out)
    total = sum(len(t.calls) for t in traffics)
    endpoints = len({k for t in traffics for k in t.counts})
    elapsed = time.monotonic() - t_start
    summary = {
        "generator": GENERATOR, "seed": args.seed, "source": args.source, "format": ext, "combined": args.combined,
        "specs_processed": len(traffics), "specs_skipped": skipped, "total_calls": total,
        "operations": sum(len(t.operations) for t in traffics), "endpoints": endpoints,
        "seconds": round(elapsed, 2), "files": [os.path.basename(f) for f in files],
        "per_spec": [{"spec": t.name, "operations": len(t.operations), "endpoints": len(t.counts), "calls": len(t.calls)} for t in traffics],
    }
    with open(os.path.join(args.outdir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    print(f"specs processed: {len(traffics)}; skipped: {len(skipped)}; calls: {total}; "
          f"endpoints: {endpoints}; {elapsed:.1f}s -> {args.outdir}")
    for s in skipped:
        print(f"  skipped {s['spec']}: {s['reason']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
