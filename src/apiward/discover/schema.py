"""Schema learning: what an endpoint's parameters and bodies look like.

A :class:`Node` summarises every value observed at one place (a query
parameter, ``user.address.zip`` in a response body, the items of an array):
type counts, a string format (email, uuid, date-time, ...), a small enum set
for low-cardinality strings, min/max for numbers, min/max length for strings
and arrays, how often it was present (required vs optional), one example and
first/last seen. :class:`BodySchema` is the tree of nodes of one body (the
request body, or the response body of one status code) and
:class:`ParamSet` the flat nodes of one parameter location.

Bounded memory whatever the volume: a body schema holds at most
``max_nodes`` nodes and ``max_depth`` levels, an enum at most ``ENUM_MAX``
short values, an array learns only its first ``ARRAY_SAMPLE`` items; extra
fields set ``overflow`` instead of growing the tree.

Cost: one dict look-up and a few integer updates per value; the string
format is checked with one precompiled regex per value (only the candidate
format first seen at that node). The inventory samples which calls are
learned, so this runs on a fraction of the traffic.

Examples never hold sensitive values: a value the classifier flagged, whose
key names a secret, or that looks like an email or JWT is kept only as a
token ``«class:digest»`` (keyed digest, so equal values still look equal).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "Node",
    "BodySchema",
    "ParamSet",
    "detect_format",
    "FORMATS",
    "ENUM_MAX",
    "Tokenizer",
]

ENUM_MAX = 12  # distinct values kept before a string stops being an enum
ENUM_VALUE_MAX = 40  # longer strings are never enum members
ARRAY_SAMPLE = 3  # items of each array that are learned
EXAMPLE_MAX = 64  # characters of an example kept
TYPE_WARMUP = 20  # observations before a new type counts as a type change

FORMATS: dict[str, re.Pattern[str]] = {
    "uuid": re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"),
    "date-time": re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?\Z"),
    "date": re.compile(r"\d{4}-\d{2}-\d{2}\Z"),
    "email": re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,}\Z"),
    "ipv4": re.compile(r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\Z"),
    "ipv6": re.compile(r"(?=.*:)[0-9a-fA-F:]{2,39}(?:%\w+)?\Z"),
    "uri": re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s]+\Z"),
}

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.")

# Key names whose values are secrets or regulated data: examples are tokens.
SECRET_KEYS = frozenset(
    {
        "password", "passwd", "pwd", "pass", "passphrase", "new_password", "old_password", "current_password",
        "secret", "client_secret", "token", "access_token", "refresh_token", "id_token", "api_key", "apikey",
        "auth", "authorization", "session", "sessionid", "session_id", "private_key", "ssn", "card_number",
        "cardnumber", "card", "pan", "cvv", "cvc", "cvv2", "pin", "iban", "account_number", "password_hash",
        "otp", "x-api-key", "api-key", "x-auth-token", "x-access-token", "cookie",
    }
)


def detect_format(s: str) -> str:
    """The JSON-schema format of ``s`` (``""`` when none). Cheap pre-checks
    on length and the first character pick at most two regexes."""
    n = len(s)
    if n < 2 or n > 320:
        return ""
    c = s[0]
    if n == 36 and s[8:9] == "-" and FORMATS["uuid"].match(s):
        return "uuid"
    if c.isdigit():
        if n == 10 and FORMATS["date"].match(s):
            return "date"
        if n >= 16 and s[4:5] == "-" and FORMATS["date-time"].match(s):
            return "date-time"
        if n <= 15 and s.count(".") == 3 and FORMATS["ipv4"].match(s):
            return "ipv4"
    if "@" in s and FORMATS["email"].match(s):
        return "email"
    if ":" in s:
        if "://" in s and FORMATS["uri"].match(s):
            return "uri"
        if n <= 45 and s.count(":") >= 2 and FORMATS["ipv6"].match(s):
            return "ipv6"
    return ""


class Tokenizer:
    """Keyed digests for redacted examples: ``«email:ab12cd»``."""

    __slots__ = ("key",)

    def __init__(self, key: bytes) -> None:
        self.key = key[:64]

    def __call__(self, value: Any, cls: str) -> str:
        d = hashlib.blake2b(str(value).encode("utf-8", "replace"), key=self.key, digest_size=3).hexdigest()
        return f"«{cls}:{d}»"


def _num_type(v: str) -> tuple[str, float | None]:
    """Type of a parameter value written as a string (query, path, header)."""
    if v.isdigit():
        return "integer", float(v) if len(v) < 16 else None
    if v[:1] == "-" and v[1:].isdigit():
        return "integer", float(v) if len(v) < 16 else None
    if v in ("true", "false"):
        return "boolean", None
    return "string", None


class Node:
    """Everything observed at one place. Plain slots object: small and fast
    to pickle."""

    __slots__ = (
        "n", "types", "fmt", "enum", "min", "max", "min_len", "max_len", "strings", "props", "objs",
        "items", "example", "first_seen", "last_seen", "change",
    )

    def __init__(self, ts: float = 0.0) -> None:
        self.n = 0  # times present
        self.types: dict[str, int] = {}
        self.fmt: str | None = None  # None: no string yet; "": no format
        # the strings seen while few: () until the first (an empty set is
        # 216 bytes, and most nodes are numbers, objects or arrays), None once over ENUM_MAX
        self.enum: set[str] | tuple[()] | None = ()
        self.min: float | None = None
        self.max: float | None = None
        self.min_len: int | None = None  # strings: characters; arrays: items
        self.max_len: int | None = None
        self.strings = 0
        self.props: dict[str, Node] | None = None
        self.objs = 0  # times this node held an object (for required)
        self.items: Node | None = None
        self.example: Any = None
        self.first_seen = ts
        self.last_seen = ts
        self.change: Any = None  # an open Change collecting distinct actors

    # -- scalar helpers -------------------------------------------------------
    def _string(self, s: str) -> None:
        self.strings += 1
        ln = len(s)
        if self.max_len is None or ln > self.max_len:
            self.max_len = ln
        if self.min_len is None or ln < self.min_len:
            self.min_len = ln
        fmt = self.fmt
        if fmt is None:
            self.fmt = detect_format(s)
        elif fmt and not FORMATS[fmt].match(s):
            self.fmt = ""
        enum = self.enum
        if enum is not None and s not in enum:
            if len(enum) >= ENUM_MAX or ln > ENUM_VALUE_MAX:
                self.enum = None
            elif type(enum) is tuple:
                self.enum = {s}
            else:
                enum.add(s)

    def _number(self, v: float) -> None:
        if self.min is None or v < self.min:
            self.min = v
        if self.max is None or v > self.max:
            self.max = v

    # -- views --------------------------------------------------------------
    @property
    def type(self) -> str:
        """The dominant non-null type (``integer`` folds into ``number``
        when both were seen)."""
        ts = {t: c for t, c in self.types.items() if t != "null"}
        if not ts:
            return "null" if self.types else ""
        if "integer" in ts and "number" in ts:
            ts["number"] += ts.pop("integer")
        return max(ts.items(), key=lambda kv: kv[1])[0]

    @property
    def nullable(self) -> bool:
        return "null" in self.types

    @property
    def format(self) -> str:
        return self.fmt or ""

    def enum_values(self, min_support: int = 3) -> list[str] | None:
        """The enum when the strings are low-cardinality: each value seen
        ``min_support`` times on average and no free-form format."""
        if self.enum is None or not self.enum or self.fmt:
            return None
        if self.strings < min_support * len(self.enum) or len(self.enum) > ENUM_MAX:
            return None
        return sorted(self.enum)

    def required_in(self, parent_objs: int) -> bool:
        return parent_objs > 0 and self.n >= parent_objs * 0.99

    def count_nodes(self) -> int:
        c = 1
        if self.props:
            c += sum(p.count_nodes() for p in self.props.values())
        if self.items is not None:
            c += self.items.count_nodes()
        return c

    def walk(self, path: str = "") -> list[tuple[str, Node]]:
        """``(dotted path, node)`` for this node and every descendant."""
        out: list[tuple[str, Node]] = [(path, self)]
        if self.props:
            for k, child in self.props.items():
                out.extend(child.walk(f"{path}.{k}" if path else k))
        if self.items is not None:
            out.extend(self.items.walk(path + "[]"))
        return out

    def to_dict(self) -> dict[str, Any]:
        """A compact, JSON-able summary (not JSON Schema: see openapi.py)."""
        d: dict[str, Any] = {"type": self.type, "count": self.n}
        if self.format:
            d["format"] = self.format
        if self.nullable:
            d["nullable"] = True
        ev = self.enum_values()
        if ev:
            d["enum"] = ev
        if self.min is not None:
            d["min"], d["max"] = self.min, self.max
        if self.max_len is not None:
            d["min_length"], d["max_length"] = self.min_len, self.max_len
        if self.example is not None:
            d["example"] = self.example
        d["first_seen"], d["last_seen"] = self.first_seen, self.last_seen
        return d


NewField = Callable[[str, "Node"], None]
TypeChange = Callable[[str, "Node", str], None]


class _Ctx:
    """Per-learn context handed down the walk (avoids long argument lists)."""

    __slots__ = ("schema", "ts", "sensitive", "tokenize", "on_new", "on_type", "actor")

    def __init__(self, schema: Any, ts: float, sensitive: dict[str, str], tokenize: Tokenizer | None,
                 on_new: NewField | None, on_type: TypeChange | None, actor: str) -> None:
        self.schema = schema
        self.ts = ts
        self.sensitive = sensitive
        self.tokenize = tokenize
        self.on_new = on_new
        self.on_type = on_type
        self.actor = actor


def _example(ctx: _Ctx, node: Node, path: str, key: str, value: Any) -> None:
    if isinstance(value, str):
        cls = ctx.sensitive.get(path)
        if cls is None:
            if key.lower() in SECRET_KEYS:
                cls = "secret"
            elif node.fmt == "email":
                cls = "email"
            elif value.startswith("eyJ") and _JWT.match(value):
                cls = "jwt"
        if cls is not None:
            node.example = ctx.tokenize(value, cls) if ctx.tokenize else f"«{cls}»"
        else:
            node.example = value[:EXAMPLE_MAX]
    elif key.lower() in SECRET_KEYS or path in ctx.sensitive:
        cls = ctx.sensitive.get(path, "secret")
        node.example = ctx.tokenize(value, cls) if ctx.tokenize else f"«{cls}»"
    else:
        node.example = value


def _learn(ctx: _Ctx, node: Node, v: Any, path: str, key: str, depth: int) -> None:
    node.n += 1
    node.last_seen = ctx.ts
    if node.change is not None:
        node.change.add_actor(ctx.actor)
    t = type(v)
    if t is str:
        tn = "string"
        if ctx.sensitive and path in ctx.sensitive:
            node.enum = None
        node._string(v)
    elif t is bool:
        tn = "boolean"
    elif t is int:
        tn = "integer"
        node._number(v)
    elif t is float:
        tn = "number"
        node._number(v)
    elif t is dict:
        tn = "object"
        node.objs += 1
        props = node.props
        if props is None:
            props = node.props = {}
        if depth < ctx.schema.max_depth:
            schema = ctx.schema
            ts = ctx.ts
            sensitive = ctx.sensitive
            for k, cv in v.items():
                child = props.get(k)
                cpath = None
                if child is None:
                    if schema.nodes >= schema.max_nodes:
                        schema.overflow += 1
                        continue
                    schema.nodes += 1
                    child = props[k] = Node(ts)
                    if k.lower() in SECRET_KEYS:
                        child.enum = None  # never keep secret values as enum members
                    if ctx.on_new is not None:
                        cpath = f"{path}.{k}" if path else k
                        ctx.on_new(cpath, child)
                ct = type(cv)
                # scalars inline (most values): the same steps as _learn, no call
                if ct is str:
                    ctn = "string"
                elif ct is int:
                    ctn = "integer"
                elif ct is float:
                    ctn = "number"
                elif ct is bool:
                    ctn = "boolean"
                elif cv is None:
                    ctn = "null"
                else:
                    _learn(ctx, child, cv, (f"{path}.{k}" if path else k) if cpath is None else cpath, k, depth + 1)
                    continue
                child.n += 1
                child.last_seen = ts
                if child.change is not None:
                    child.change.add_actor(ctx.actor)
                if ct is str:
                    if sensitive:
                        if cpath is None:
                            cpath = f"{path}.{k}" if path else k
                        if cpath in sensitive:
                            child.enum = None
                    # Node._string inline
                    child.strings += 1
                    ln = len(cv)
                    mx = child.max_len
                    if mx is None or ln > mx:
                        child.max_len = ln
                    mn = child.min_len
                    if mn is None or ln < mn:
                        child.min_len = ln
                    fmt = child.fmt
                    if fmt is None:
                        child.fmt = detect_format(cv)
                    elif fmt and not FORMATS[fmt].match(cv):
                        child.fmt = ""
                    enum = child.enum
                    if enum is not None and cv not in enum:
                        if len(enum) >= ENUM_MAX or ln > ENUM_VALUE_MAX:
                            child.enum = None
                        elif type(enum) is tuple:
                            child.enum = {cv}
                        else:
                            enum.add(cv)
                elif ctn != "boolean" and ctn != "null":
                    if child.min is None or cv < child.min:
                        child.min = cv
                    if child.max is None or cv > child.max:
                        child.max = cv
                types = child.types
                c = types.get(ctn)
                if c is None:
                    if ctx.on_type is not None and ctn != "null" and child.n > TYPE_WARMUP:
                        if cpath is None:
                            cpath = f"{path}.{k}" if path else k
                        ctx.on_type(cpath, child, ctn)
                    types[ctn] = 1
                else:
                    types[ctn] = c + 1
                if child.example is None and cv is not None:
                    if cpath is None:
                        cpath = f"{path}.{k}" if path else k
                    _example(ctx, child, cpath, k, cv)
        else:
            ctx.schema.overflow += 1
    elif t is list:
        tn = "array"
        ln = len(v)
        if node.max_len is None or ln > node.max_len:
            node.max_len = ln
        if node.min_len is None or ln < node.min_len:
            node.min_len = ln
        if v and depth < ctx.schema.max_depth:
            items = node.items
            ipath = path + "[]"
            if items is None:
                schema = ctx.schema
                if schema.nodes >= schema.max_nodes:
                    schema.overflow += 1
                else:
                    schema.nodes += 1
                    items = node.items = Node(ctx.ts)
            if items is not None:
                ts = ctx.ts
                for item in v[:ARRAY_SAMPLE]:
                    it = type(item)
                    # scalars inline, as in the object branch
                    if it is str:
                        itn = "string"
                    elif it is int:
                        itn = "integer"
                    elif it is float:
                        itn = "number"
                    elif it is bool:
                        itn = "boolean"
                    elif item is None:
                        itn = "null"
                    else:
                        _learn(ctx, items, item, ipath, key, depth + 1)
                        continue
                    items.n += 1
                    items.last_seen = ts
                    if items.change is not None:
                        items.change.add_actor(ctx.actor)
                    if it is str:
                        if ctx.sensitive and ipath in ctx.sensitive:
                            items.enum = None
                        items._string(item)
                    elif itn != "boolean" and itn != "null":
                        if items.min is None or item < items.min:
                            items.min = item
                        if items.max is None or item > items.max:
                            items.max = item
                    itypes = items.types
                    c = itypes.get(itn)
                    if c is None:
                        if ctx.on_type is not None and itn != "null" and items.n > TYPE_WARMUP:
                            ctx.on_type(ipath, items, itn)
                        itypes[itn] = 1
                    else:
                        itypes[itn] = c + 1
                    if items.example is None and item is not None:
                        _example(ctx, items, ipath, key, item)
    elif v is None:
        tn = "null"
    else:
        tn = "string"
    types = node.types
    c = types.get(tn)
    if c is None:
        if ctx.on_type is not None and tn != "null" and node.n > TYPE_WARMUP:
            ctx.on_type(path, node, tn)
        types[tn] = 1
    else:
        types[tn] = c + 1
    if node.example is None and v is not None and tn not in ("object", "array"):
        _example(ctx, node, path, key, v)


class BodySchema:
    """The learned schema of one body (request, or response for one status)."""

    __slots__ = ("root", "nodes", "max_nodes", "max_depth", "overflow", "samples", "content_types")

    def __init__(self, max_nodes: int = 256, max_depth: int = 8) -> None:
        self.root = Node()
        self.nodes = 1
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.overflow = 0  # fields dropped because of the caps
        self.samples = 0
        self.content_types: dict[str, int] = {}

    def learn(
        self,
        value: Any,
        ts: float,
        *,
        sensitive: dict[str, str] | None = None,
        tokenize: Tokenizer | None = None,
        on_new: NewField | None = None,
        on_type: TypeChange | None = None,
        actor: str = "",
    ) -> None:
        """Fold one parsed body in. ``sensitive`` maps dotted field paths the
        classifier flagged to a class; ``on_new(path, node)`` is called for
        each field never seen before and ``on_type(path, node, type)`` for a
        new type at a well-established field."""
        self.samples += 1
        if self.root.n == 0:
            self.root.first_seen = ts
        ctx = _Ctx(self, ts, sensitive or {}, tokenize, on_new, on_type, actor)
        _learn(ctx, self.root, value, "", "", 0)

    def has_new_top_keys(self, value: Any) -> bool:
        """Cheap check (no walk) whether a body brings a top-level field this
        schema has never seen; used to learn such calls even when sampled out."""
        if type(value) is not dict:
            return False
        props = self.root.props
        if props is None:
            return bool(value)
        if self.nodes >= self.max_nodes:
            return False
        for k in value:
            if k not in props:
                return True
        return False

    def fields(self) -> list[tuple[str, Node]]:
        return [(p, n) for p, n in self.root.walk("") if p]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"samples": self.samples, "type": self.root.type}
        if self.overflow:
            out["overflow"] = self.overflow
        fields = {}
        for path, node in self.fields():
            d = node.to_dict()
            fields[path] = d
        out["fields"] = fields
        return out


class ParamSet:
    """Flat parameters of one location (``query``, ``header``, ``cookie``,
    ``path``): name -> :class:`Node`, at most ``max_params`` names."""

    __slots__ = ("params", "max_params", "overflow", "samples")

    def __init__(self, max_params: int = 64) -> None:
        self.params: dict[str, Node] = {}
        self.max_params = max_params
        self.overflow = 0
        self.samples = 0  # calls learned at this location's endpoint

    def learn(
        self,
        items: list[tuple[str, str]] | tuple[tuple[str, str], ...],
        ts: float,
        *,
        sensitive: dict[str, str] | None = None,
        tokenize: Tokenizer | None = None,
        on_new: NewField | None = None,
        redact_all: bool = False,
        actor: str = "",
    ) -> None:
        """Fold in one call's ``(name, value)`` pairs (values are strings;
        integers and booleans written as strings are typed as such)."""
        self.samples += 1
        params = self.params
        seen: set[str] = set()
        for name, value in items:
            if name in seen:
                continue  # repeated parameter: count presence once
            seen.add(name)
            node = params.get(name)
            if node is None:
                if len(params) >= self.max_params:
                    self.overflow += 1
                    continue
                node = params[name] = Node(ts)
                if redact_all or name.lower() in SECRET_KEYS:
                    node.enum = None
                if on_new is not None:
                    on_new(name, node)
            node.n += 1
            node.last_seen = ts
            if node.change is not None:
                node.change.add_actor(actor)
            if sensitive and name in sensitive:
                node.enum = None
            tn, num = _num_type(value)
            node.types[tn] = node.types.get(tn, 0) + 1
            if num is not None:
                node._number(num)
            node._string(value)
            if node.example is None and value:
                cls = (sensitive or {}).get(name)
                if cls is None and (redact_all or name.lower() in SECRET_KEYS):
                    cls = "secret"
                if cls is None and node.fmt == "email":
                    cls = "email"
                if cls is not None:
                    node.example = tokenize(value, cls) if tokenize else f"«{cls}»"
                elif tn == "integer" and num is not None:
                    node.example = int(num)
                else:
                    node.example = value[:EXAMPLE_MAX]

    def required(self, name: str) -> bool:
        node = self.params.get(name)
        return node is not None and node.required_in(self.samples)

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for name, node in self.params.items():
            d = node.to_dict()
            # string stats of integer-typed params describe digits: keep only numbers
            if d["type"] != "string":
                d.pop("format", None)
                d.pop("enum", None) if d["type"] == "integer" else None
            d["required"] = node.required_in(self.samples)
            out[name] = d
        return out
