"""Object references, login forms and roles as the identity-aware detectors
see them: shared, cheap, allocation-light helpers.

- :func:`id_like` tells object ids (``42``, UUIDs, ``ord_8f3k2a``) from words.
- :func:`noun` names the kind of object a path segment or id field refers
  to (``/orders/{orderId}``, ``order_id`` and ``orderId`` all give ``order``),
  so an id listed by ``GET /orders`` and read by ``GET /orders/{id}`` is the
  same object.
- :func:`request_refs` pulls object references out of path parameters,
  query, top-level body fields and id headers; :func:`response_ids` pulls the
  ids of the objects a response returns (one object or a listing).
- :func:`login_fields` recognises a credential form (a password-like field
  plus a user-like field) from the request body alone.
- :func:`privileged` reads admin-ish roles from JWT claims.
- :func:`issued_token` / :func:`presented_tokens` / :class:`Followups` link
  the credential a response hands out to the later calls that present it
  (what a taken-over or escalated session did next); :func:`self_ids` reads
  the caller's own user id from its credential.

Nothing here depends on fixed paths: nouns come from the templates the
discover stage learned. :class:`LRU` is the bounded dict every detector uses
for keyed state.

Per-call facts several detectors need (endpoint and kind keys, object
references, the login-form verdict, whether the response issues a token,
the caller's role verdict) are computed once per call by
:class:`apiward.detect.facts.Facts` from the functions here; detectors read
them as ``facts(call, ctx).<name>``. Names detectors share (actor kinds,
credential field names, role words, token keys) live in
:mod:`apiward.detect.vocabulary`.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections import deque
from operator import itemgetter
from typing import Any

from apiward.detect.vocabulary import (
    ID_HEADERS,
    NEW_PASSWORD,
    PAGE_PARAMS,
    PASSWORD_NAMES,
    ROLE_CLAIMS,
    TOKEN_KEYS,
    UID_CLAIMS,
    USER_NAMES,
    admin_word,
)
from apiward.learn.sketches import LRU
from apiward.model.call import Actor, ApiCall
from apiward.model.context import Context, EndpointRef, SensitiveHit

__all__ = [
    "LRU",
    "Ring",
    "id_like",
    "noun",
    "field_noun",
    "endpoint_noun",
    "path_refs_of",
    "request_refs_of",
    "kind_key_of",
    "response_items",
    "response_ids",
    "login_fields",
    "privileged",
    "privileged_of",
    "digest",
    "ep_key",
    "is_success",
    "is_denied",
    "TOKEN_KEYS",
    "has_token",
    "PAGE_PARAMS",
    "issued_token",
    "presented_tokens",
    "token_claims",
    "Followups",
    "self_ids",
    "split_sensitive",
    "PII",
    "OWNED",
]


class Ring(deque):  # type: ignore[type-arg]
    """A deque capped at ``cap`` items (oldest dropped): recent events of one
    actor, for the ``event_ids`` of a finding. Pickles with its cap."""

    def __init__(self, cap: int = 32) -> None:
        super().__init__((), cap)

    def __reduce__(self) -> Any:
        return (self.__class__, (self.maxlen,), None, iter(self))

    push = deque.append


def ep_key(ctx: Context) -> str:
    """``ctx.endpoint.key`` (through the call's facts when it has them)."""
    f = ctx.facts
    return f.ep_key if f is not None else ctx.endpoint.key  # type: ignore[no-any-return]


_kind_keys: dict[str, str] = {}


def kind_key_of(endpoint: EndpointRef, ek: str) -> str:
    """``host|noun`` of the endpoint's last literal segment (the kind of
    object it serves; ``host|`` for ``/``), interned per endpoint key."""
    k = _kind_keys.get(ek)
    if k is None:
        k = endpoint.host + "|" + endpoint_noun(endpoint.template)
        if len(_kind_keys) >= 50_000:
            _kind_keys.clear()
        _kind_keys[ek] = k
    return k


def is_success(status: int) -> bool:
    return 200 <= status < 300


def is_denied(status: int) -> bool:
    return status == 401 or status == 403


_digests: dict[str, str] = {}
_digest_key = b""


def use_secret(secret: bytes) -> None:
    """Key every identifier digest (usernames, e-mails, tokens) with the
    install's secret, so state never holds a plain digest anyone could
    reproduce from a guessed value. The pipeline calls this at start; until
    then (tests, library use) digests are unkeyed."""
    global _digest_key
    key = hashlib.blake2b(secret, digest_size=32, person=b"apiward-ids").digest() if secret else b""
    if key != _digest_key:
        _digest_key = key
        _digests.clear()


def digest(value: str, salt: bytes = b"") -> str:
    """Short stable keyed digest (12 hex) so state never holds the raw value
    (see :func:`use_secret`); ``salt`` separates uses (a password digest never
    equals the same string's username digest). Recent unsalted values are
    memoised in memory (never saved): usernames repeat."""
    if salt:
        return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), key=_digest_key, salt=salt[:16],
                               digest_size=6).hexdigest()
    d = _digests.get(value)
    if d is None:
        d = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), key=_digest_key, digest_size=6).hexdigest()
        if len(_digests) >= 20_000:
            _digests.clear()
        _digests[value] = d
    return d


# -- ids --------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_TOKENISH = re.compile(r"[A-Za-z0-9_-]{6,64}")
_HAS_DIGIT = re.compile(r"\d")
_id_memo: dict[str, bool] = {}


def id_like(value: Any) -> bool:
    """Whether ``value`` looks like an object id: an integer (1-19 digits),
    a UUID, or a 6-64 character token mixing letters and digits."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    if not isinstance(value, str):
        return False
    n = len(value)
    if n == 0 or n > 64:
        return False
    if value.isdigit():
        return n <= 19
    r = _id_memo.get(value)
    if r is None:
        r = (n >= 32 and _UUID.fullmatch(value) is not None) or (
            n >= 6 and _TOKENISH.fullmatch(value) is not None and _HAS_DIGIT.search(value) is not None
        )
        if len(_id_memo) >= 50_000:
            _id_memo.clear()
        _id_memo[value] = r
    return r


_VERSION = re.compile(r"v\d+(?:\.\d+)*|api|rest|public|private|internal|json|graphql")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_noun_cache: dict[str, str] = {}


def noun(word: str) -> str:
    """The singular, lower-case, alphanumeric form of a path segment or
    field stem: ``Orders`` -> ``order``, ``categories`` -> ``category``."""
    n = _noun_cache.get(word)
    if n is not None:
        return n
    w = _NON_ALNUM.sub("", _CAMEL.sub("_", word).lower())
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "xes", "ches", "shes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        w = w[:-1]
    if len(_noun_cache) < 50_000:
        _noun_cache[word] = w
    return w


_ID_SUFFIX = re.compile(r"^([A-Za-z][A-Za-z0-9]*?)(?:[_-](?:id|uuid|guid)|Id|ID|Uuid|UUID|Guid)$")
_field_cache: dict[str, str | None] = {}


def field_noun(name: str) -> str | None:
    """For an id-carrying field name, the noun it refers to: ``orderId`` and
    ``order_id`` -> ``order``; ``id`` -> ``""`` (the enclosing object);
    ``None`` when the name does not carry an id."""
    r = _field_cache.get(name, 0)
    if r != 0:
        return r  # type: ignore[return-value]
    out: str | None
    if name.lower() in ("id", "uuid", "guid", "_id", "pk"):
        out = ""
    else:
        m = _ID_SUFFIX.match(name)
        out = noun(m.group(1)) if m and len(m.group(1)) >= 2 else None
    if len(_field_cache) < 50_000:
        _field_cache[name] = out
    return out


_ep_cache: dict[str, tuple[str, dict[str, str]]] = {}


def _template_info(template: str) -> tuple[str, dict[str, str]]:
    """(noun of the last literal segment, {param name: noun of the literal
    segment before it})."""
    info = _ep_cache.get(template)
    if info is not None:
        return info
    last = ""
    params: dict[str, str] = {}
    for seg in template.split("/"):
        if not seg:
            continue
        if seg[0] == "{" and seg[-1] == "}":
            name = seg[1:-1]
            fn = field_noun(name)
            params[name] = last or (fn or noun(name))
            continue
        if _VERSION.fullmatch(seg.lower()):
            continue
        last = noun(seg)
    info = (last, params)
    if len(_ep_cache) < 20_000:
        _ep_cache[template] = info
    return info


def endpoint_noun(template: str) -> str:
    """Noun of the last literal segment of a template (``/users/{id}/orders``
    -> ``order``); ``""`` for ``/``."""
    return _template_info(template)[0]


def path_refs_of(endpoint: EndpointRef) -> list[tuple[str, str]]:
    """``(noun, value)`` for each id-like path parameter."""
    pp = endpoint.path_params
    if not pp:
        return []
    params = _template_info(endpoint.template)[1]
    return [(params.get(name) or noun(name), value) for name, value in pp if id_like(value)]


_first = itemgetter(0)


def request_refs_of(call: ApiCall, ctx: Context, prefs: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """``(location, noun, value)`` for each object reference of a request:
    id-like path parameters (``prefs``), id-named query parameters and
    top-level body fields (``orderId=7``), and id headers (``x-account-id``)."""
    out: list[tuple[str, str, str]] = [("path", n, v) for n, v in prefs]
    req = call.request
    if req.query:
        fc = _field_cache
        for k, v in req.query:
            fn = fc.get(k, 0)
            if fn == 0:
                fn = field_noun(k)
            if fn is not None and id_like(v):
                out.append(("query", fn or endpoint_noun(ctx.endpoint.template), v))
    if req.body and req.method in ("POST", "PUT", "PATCH", "DELETE"):
        params = req.params()
        for k, v in params.items():
            if isinstance(k, str):
                fn = field_noun(k)
                if fn and id_like(v):  # the bare "id" of a body is the object being written
                    out.append(("body", fn, str(v)))
    if not ID_HEADERS.isdisjoint(map(_first, req.headers)):  # the scan runs in C; id headers are rare
        for k, v in req.headers:
            if k in ID_HEADERS and id_like(v):
                out.append(("header", noun(k[2:-3]), v))
    return out


def response_items(doc: Any, cap: int = 500) -> tuple[list[dict[str, Any]], bool]:
    """The objects a JSON response returns and whether it is a listing:
    a top-level list, or an object wrapping one list of objects
    (``{"items": [...], "total": 3}``), or a single object."""
    if isinstance(doc, list):
        return [d for d in doc[:cap] if isinstance(d, dict)], True
    if isinstance(doc, dict):
        for v in doc.values():
            if isinstance(v, list) and v and isinstance(v[0], dict):
                return [d for d in v[:cap] if isinstance(d, dict)], True
        return [doc], False
    return [], False


def response_ids(doc: Any, cap: int = 500) -> tuple[list[str], bool]:
    """Ids of the objects a response returns (their ``id``-like field) and
    whether the response is a listing."""
    items, listing = response_items(doc, cap)
    ids = []
    for it in items:
        v = it.get("id")
        if v is None:
            v = it.get("uuid") or it.get("_id")
        if v is not None and id_like(v):
            ids.append(str(v))
    return ids, listing


# -- credentials ------------------------------------------------------------

_form_shapes: dict[tuple[Any, ...], tuple[tuple[Any, ...], tuple[Any, ...]] | None] = {}


def _form_shape(keys: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """For a body's field names: (password-like fields, user-like fields in
    preference order), or ``None`` when it can not be a credential pair."""
    pwd = tuple(k for k in keys if isinstance(k, str) and k.lower() in PASSWORD_NAMES)
    if not pwd or any(isinstance(k, str) and NEW_PASSWORD.search(k) for k in keys):
        return None
    lower = {k.lower(): k for k in keys if isinstance(k, str)}
    users = tuple(lower[n] for n in USER_NAMES if n in lower)
    return pwd, users


def login_fields(params: dict[str, Any]) -> tuple[str, str, str] | None:
    """``(username, password, username field)`` when a body carries a
    credential pair: a password-like field and a user-like field. Password
    changes (``new_password``/``old_password``) are not credential pairs.
    The field names are judged once per set of names (forms repeat)."""
    if not params or len(params) > 12:
        return None
    keys = tuple(params)
    shape = _form_shapes.get(keys, 0)
    if shape == 0:
        shape = _form_shape(keys)
        if len(_form_shapes) >= 5_000:
            _form_shapes.clear()
        _form_shapes[keys] = shape
    if shape is None:
        return None
    pwd: str | None = None
    for k in shape[0]:
        v = params[k]
        if isinstance(v, str):
            pwd = v
            break
    if pwd is None:
        return None
    for key in shape[1]:
        v = params[key]
        if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v):
            return str(v), pwd, key
    return None


def basic_credentials(call: ApiCall) -> tuple[str, str] | None:
    """``(username, password)`` of the request's HTTP Basic credentials (RFC
    7617), or ``None``. Only called for calls whose actor used Basic."""
    auth = call.request.header("authorization")
    if not auth:
        return None
    scheme, _, value = auth.strip().partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    value = value.strip()
    try:
        raw = binascii.a2b_base64(value + "=" * (-len(value) % 4)).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    user, sep, pwd = raw.partition(":")
    return (user, pwd) if sep and user else None


def has_token(call: ApiCall) -> bool:
    """Whether a response hands out a credential: a token-named field (top
    level or one level down) or a ``Set-Cookie`` header."""
    resp = call.response
    if resp is None:
        return False
    for k, _ in resp.headers:
        if k == "set-cookie":
            return True
    doc = resp.json()
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in TOKEN_KEYS and v:
                return True
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    if k2 in TOKEN_KEYS and v2:
                        return True
    return False


# -- roles ------------------------------------------------------------------

def _flatten(v: Any, out: list[str]) -> None:
    if isinstance(v, str):
        out.extend(v.replace(",", " ").split())
    elif isinstance(v, (list, tuple)):
        for x in v:
            _flatten(x, out)
    elif isinstance(v, dict):
        for x in v.values():
            _flatten(x, out)
    elif v is True:
        out.append("true")


def roles(claims: dict[str, Any]) -> frozenset[str]:
    """Role tokens from JWT claims (``role``, ``roles``, ``scope``, ``groups``,
    ``is_admin``...), lower-cased; empty when there are none."""
    if not claims:
        return frozenset()
    out: list[str] = []
    for c in ROLE_CLAIMS:
        v = claims.get(c)
        if v is None:
            continue
        if c in ("is_admin", "admin"):
            if v is True or v in ("true", "1", 1):
                out.append("admin")
            continue
        _flatten(v, out)
    return frozenset(x.lower() for x in out)


def privileged(claims: dict[str, Any]) -> bool | None:
    """``True`` when the claims carry an admin-ish role, ``False`` when they
    carry roles and none is admin-ish, ``None`` when they carry no roles."""
    r = roles(claims)
    if not r:
        return None
    return any(admin_word(x) for x in r)


_priv_by_token: dict[str, bool | None] = {}
_UNSET: Any = object()


def privileged_of(actor: Actor) -> bool | None:
    """:func:`privileged` of the actor's JWT claims, memoised per credential
    (keyed by ``token_id``, a digest of the token: the same token always has
    the same claims)."""
    claims = actor.jwt_claims
    if not claims:
        return None
    tid = actor.token_id
    p = _priv_by_token.get(tid, _UNSET) if tid else _UNSET
    if p is _UNSET:
        p = privileged(claims)
        if tid:
            if len(_priv_by_token) >= 50_000:
                _priv_by_token.clear()
            _priv_by_token[tid] = p
    return p  # type: ignore[no-any-return]


# -- sessions ---------------------------------------------------------------


def issued_token(call: ApiCall) -> str:
    """The credential a response hands out: a token-named field (top level
    or one level down), else the first ``Set-Cookie`` pair; ``""`` if none."""
    resp = call.response
    if resp is None:
        return ""
    doc = resp.json() if resp.body else None
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in TOKEN_KEYS and isinstance(v, str) and v:
                return v
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    if k2 in TOKEN_KEYS and isinstance(v2, str) and v2:
                        return v2
    for k, v in resp.headers:
        if k == "set-cookie":
            return v.partition(";")[0].strip()
    return ""


def presented_tokens(call: ApiCall) -> list[str]:
    """Credentials a request presents: the bearer token and cookie pairs."""
    out: list[str] = []
    for k, v in call.request.headers:
        if k == "authorization":
            scheme, _, tok = v.partition(" ")
            if tok and scheme.lower() in ("bearer", "token"):
                out.append(tok.strip())
        elif k == "cookie":
            out.extend(p.strip() for p in v.split(";") if "=" in p)
    return out


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT (unverified), ``{}`` when ``token`` is not one."""
    parts = token.split(".")
    if len(parts) != 3 or len(parts[1]) > 4096:
        return {}
    import base64

    import orjson

    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        doc = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}




def self_ids(call: ApiCall) -> list[str]:
    """Ids the caller's own credential says are its own user record: the
    ``uid``-like claims of its JWT, or its ``sub`` when that is id-like."""
    claims = call.actor.jwt_claims
    if not claims:
        return []
    out = []
    for c in UID_CLAIMS:
        v = claims.get(c)
        if v is not None and id_like(v):
            out.append(str(v))
    sub = claims.get("sub")
    if sub is not None and id_like(sub) and str(sub) not in out:
        out.append(str(sub))
    return out


class Followups:
    """Calls made with a credential that a flagged call handed out.

    ``watch(call, key)`` remembers the token ``call``'s response issued (as a
    digest) for ``ttl`` seconds and at most ``max_calls`` later calls;
    ``match(call)`` returns the finding key a later call made with that
    token belongs to. Cost: a dict look-up on the caller's token id per
    call; the request's credentials are read only for calls from an address
    a watched token was issued to. Pickles."""

    def __init__(self, ttl: float = 3600.0, max_calls: int = 50, cap: int = 10_000) -> None:
        self.ttl = ttl
        self.max_calls = max_calls
        self._tok: LRU[str, list[Any]] = LRU(cap)
        self._ip: LRU[str, float] = LRU(cap)
        self._tid: LRU[str, list[Any]] = LRU(cap)
        self._act: LRU[str, list[Any]] = LRU(cap)

    def watch(self, call: ApiCall, key: str, *, token: str = "", ttl: float | None = None) -> bool:
        token = token or issued_token(call)
        if not token:
            return False
        until = call.ts + (self.ttl if ttl is None else ttl)
        self._tok.put(digest(token), [key, until, self.max_calls])
        ip = call.actor.ip or call.src.ip
        if ip:
            self._ip.put(ip, max(until, self._ip.get(ip, 0.0)))
        return True

    def watch_actor(self, call: ApiCall, key: str, ttl: float | None = None) -> None:
        """Follow the caller (its actor key, whatever token it uses) from now on."""
        self._act.put(call.actor.key, [key, call.ts + (self.ttl if ttl is None else ttl), self.max_calls])

    def match(self, call: ApiCall) -> str | None:
        actor = call.actor
        tid = actor.token_id
        e = self._act.get(actor.key) if self._act else None  # the caller itself, watched since its latest deed
        if e is None and tid:
            e = self._tid.get(tid)
        if e is None:
            if not self._ip:
                return None
            until = self._ip.get(actor.ip or call.src.ip)
            if until is None or call.ts > until:
                return None
            for tok in presented_tokens(call):
                e = self._tok.get(digest(tok))
                if e is not None:
                    if tid:
                        self._tid.put(tid, e)
                    break
            else:
                return None
        if call.ts > e[1] or e[2] <= 0:
            return None
        e[2] -= 1
        return e[0]


# -- sensitive data -----------------------------------------------------------------

_RESP_LOCS = frozenset({"response_body", "error_body"})
_REQ_LOCS = frozenset({"request_body", "query", "path"})
#: Personal-data classes, and those that identify one person (whose are they?).
PII = frozenset({"email", "phone", "ssn", "credit_card", "card_cvv", "iban", "national_id", "date_of_birth", "address", "health"})
OWNED = frozenset({"email", "phone", "ssn", "credit_card", "iban", "national_id"})


def split_sensitive(hits: list[SensitiveHit]) -> tuple[list[Any], set[str], set[str], list[Any], set[str], list[str]]:
    """One pass over a call's sensitive hits: (response hits, their classes,
    personal value digests in the response, owned-class response hits, value
    digests the request sent, owned-class value digests the request sent)."""
    resp: list[Any] = []
    classes: set[str] = set()
    pii: set[str] = set()
    owned: list[Any] = []
    sent: set[str] = set()
    req_owned: list[str] = []
    for h in hits:
        loc = h.location
        if loc in _RESP_LOCS:
            resp.append(h)
            cls = h.cls
            classes.add(cls)
            if cls in OWNED:
                owned.append(h)
            if cls in PII and h.value_hash:
                pii.add(h.value_hash)
        elif loc in _REQ_LOCS and h.value_hash:
            sent.add(h.value_hash)
            if h.cls in OWNED:
                req_owned.append(h.value_hash)
    return resp, classes, pii, owned, sent, req_owned
