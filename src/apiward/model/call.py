"""The canonical API-call event: one request, its response, timing, network,
workload and the resolved actor.

Every reader converts its source format into :class:`ApiCall`; nothing
downstream knows where an event came from. Field-by-field documentation lives
in ``docs/event-schema.md``; keep the two in step.

Bodies are raw bytes and decode lazily, once (:meth:`Request.json`,
:meth:`Request.form`, ...), because most detectors never look at most bodies.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qsl

import msgspec
import orjson

__all__ = [
    "Actor",
    "ApiCall",
    "Message",
    "Peer",
    "Request",
    "Response",
    "Workload",
    "body_kind",
]

_MISSING = object()


_KINDS: dict[str, str] = {}  # content types repeat: classify each spelling once


def body_kind(content_type: str) -> str:
    """Classify a content type as ``json``, ``form``, ``multipart``, ``text``,
    ``xml`` or ``binary`` (``""`` when unknown). Memoised (bounded)."""
    kind = _KINDS.get(content_type)
    if kind is None:
        kind = _body_kind(content_type)
        if len(_KINDS) >= 1024:
            _KINDS.clear()
        _KINDS[content_type] = kind
    return kind


def _body_kind(content_type: str) -> str:
    ct = content_type.lower()
    if not ct:
        return ""
    if "json" in ct:
        return "json"
    if "x-www-form-urlencoded" in ct:
        return "form"
    if "multipart/" in ct:
        return "multipart"
    if "xml" in ct:
        return "xml"
    if ct.startswith("text/") or "javascript" in ct or "graphql" in ct:
        return "text"
    return "binary"


class Message(msgspec.Struct, kw_only=True, dict=True):
    """What requests and responses share: headers and a (possibly capped) body.

    ``headers`` keeps order and duplicates; names are lower-cased by readers.
    ``body`` holds at most the configured cap; ``truncated`` says the original
    was longer and ``body_size`` gives its full length. Binary bodies are not
    kept: ``body`` is empty, ``body_size`` and ``body_sha256`` describe them.
    """

    headers: list[tuple[str, str]] = []
    body: bytes = b""
    content_type: str = ""
    truncated: bool = False
    body_size: int = 0
    body_sha256: str | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        """First value of header ``name`` (case-insensitive)."""
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def kind(self) -> str:
        """Body kind from the content type, sniffed from the bytes if absent."""
        k = body_kind(self.content_type)
        if k or not self.body:
            return k
        first = self.body.lstrip()[:1]
        if first in (b"{", b"["):
            return "json"
        return "text"

    def json(self) -> Any:
        """The body parsed as JSON, or ``None`` when it is not valid JSON.

        Parsed once and cached; never raises on bad input."""
        cached = self.__dict__.get("_json", _MISSING)
        if cached is not _MISSING:
            return cached
        value: Any = None
        if self.body and self.kind == "json" and not self.truncated:
            try:
                value = orjson.loads(self.body)
            except orjson.JSONDecodeError:
                value = None
        self.__dict__["_json"] = value
        return value

    def form(self) -> list[tuple[str, str]]:
        """URL-encoded form fields (empty for other bodies)."""
        cached = self.__dict__.get("_form")
        if cached is not None:
            return cached
        fields: list[tuple[str, str]] = []
        if self.body and self.kind == "form":
            fields = parse_qsl(self.text(), keep_blank_values=True)
        self.__dict__["_form"] = fields
        return fields

    def multipart_fields(self) -> list[str]:
        """Names of the parts of a multipart body (values are not decoded)."""
        if self.kind != "multipart" or not self.body:
            return []
        names: list[str] = []
        for chunk in self.body.split(b"Content-Disposition:")[1:]:
            i = chunk.find(b'name="')
            if i >= 0:
                j = chunk.find(b'"', i + 6)
                if j > i:
                    names.append(chunk[i + 6 : j].decode("utf-8", "replace"))
        return names

    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        cached = self.__dict__.get("_text")
        if cached is None:
            cached = self.body.decode("utf-8", "replace")
            self.__dict__["_text"] = cached
        return cached

    def params(self) -> dict[str, Any]:
        """Top-level body fields from JSON objects or forms, for detectors
        that look at named parameters without caring about the encoding."""
        j = self.json()
        if isinstance(j, dict):
            return j
        f = self.form()
        if f:
            return dict(f)
        return {}


class Request(Message, kw_only=True, dict=True):
    """The HTTP request. ``path`` excludes the query string; ``query`` keeps
    order and repeated keys, values percent-decoded."""

    method: str = "GET"
    scheme: str = "http"
    host: str = ""
    path: str = "/"
    query: list[tuple[str, str]] = []
    cookies: dict[str, str] = {}
    http_version: str = "HTTP/1.1"

    def query_get(self, name: str) -> str | None:
        for k, v in self.query:
            if k == name:
                return v
        return None


class Response(Message, kw_only=True, dict=True):
    """The HTTP response (absent for request-only sources such as CSIC 2010)."""

    status: int = 0
    reason: str = ""


class Peer(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """A network endpoint."""

    ip: str = ""
    port: int = 0


class Workload(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Where the called service runs (Kubernetes metadata when known) and the
    route template the framework matched (``http.route``), which wins over
    learned templating."""

    namespace: str = ""
    service: str = ""
    pod: str = ""
    labels: dict[str, str] = {}
    route: str = ""


class Actor(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """Who made the call, as resolved by :mod:`apiward.ingest.actor`.

    ``key`` is what detectors and hunts key on (``user:alice``,
    ``apikey:3f9a...``, ``session:1c2d...``, ``ip:203.0.113.9``). ``user`` is
    the principal's name when one is known, ``ip`` the real client address
    after trusted-proxy handling. Secrets (tokens, keys, session ids) are
    never kept here, only keyed digests of them.
    """

    key: str = ""
    kind: str = ""  # user | apikey | session | basic | ip | anonymous
    user: str = ""
    ip: str = ""
    user_agent: str = ""
    auth_scheme: str = ""  # bearer | basic | apikey | cookie | ""
    jwt_alg: str = ""
    jwt_claims: dict[str, Any] = {}
    token_id: str = ""  # keyed digest of the credential, to tell tokens apart

    @property
    def display(self) -> str:
        """A name a person recognises: ``alice (203.0.113.9)``."""
        if self.user:
            who = self.user
        elif self.kind in ("ip", "anonymous", "") and self.ip:
            return self.ip
        else:
            who = self.key or "anonymous"
        if self.ip and self.ip not in who:
            return f"{who} ({self.ip})"
        return who


class ApiCall(msgspec.Struct, kw_only=True, gc=False):
    """One API call. ``id`` is apiward's own and stable: unique per capture
    for live traffic, ``<file name>#<0-based record index>`` for files
    (a request id the traffic carries is ``request_id``, never the key). ``ts`` is the request start
    as Unix seconds (UTC), ``duration_ms`` the time to the full response."""

    id: str
    ts: float = 0.0
    duration_ms: float | None = None
    request: Request
    response: Response | None = None
    src: Peer = msgspec.field(default_factory=Peer)
    dst: Peer = msgspec.field(default_factory=Peer)
    workload: Workload = msgspec.field(default_factory=Workload)
    actor: Actor = msgspec.field(default_factory=Actor)
    source: str = ""  # the reader that produced it: har, jsonl, csic, ...
    extra: dict[str, str] = {}
    request_id: str = ""  # the client's or a gateway's request id (X-Request-Id), kept as data, never as the key

    @property
    def status(self) -> int:
        """Response status, 0 when there is no response."""
        return self.response.status if self.response is not None else 0


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ApiCall)


def dumps(call: ApiCall) -> bytes:
    """apiward's JSONL wire form of one event (bodies base64-encoded)."""
    return _encoder.encode(call)


def loads(data: bytes | str) -> ApiCall:
    """Inverse of :func:`dumps`; raises ``msgspec.ValidationError`` or
    ``msgspec.DecodeError`` on bad input."""
    return _decoder.decode(data)
