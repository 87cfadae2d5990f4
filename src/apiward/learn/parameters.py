"""The named values of a request, flattened once per call.

Baselines learn from them and detectors (injection, ...) judge them, so they
are extracted once and cached on the request (as ``Message.json`` caches its
parse). A parameter is ``(location, name, value)``:

- ``path``: the endpoint's path parameters (``userId`` -> ``42``) when the
  template has any;
- ``query``: query-string pairs (already percent-decoded by readers);
- ``body``: form fields, or JSON leaves named by dotted paths with ``[]`` for
  array items (``items[].sku``); non-string leaves become their JSON text;
- ``cookie``: cookies by name;
- ``header``: a few headers that carry user-controlled text
  (:data:`VALUE_HEADERS`).

Bounded: at most :data:`MAX_PARAMS` parameters and :data:`MAX_DEPTH` JSON
levels per call. Headers come last, so :func:`profiled_params` (everything
but headers, what per-parameter profiles learn and judge) is a prefix of
:func:`call_params`; both are cached on the request.

Cost: under 1 µs for a call with a few parameters (JSON parse excluded;
``Message.json`` caches it), then one dict lookup.

:func:`secret_name` tells parameters that carry secrets (passwords, keys,
tokens) by name: their values are high-entropy by design, so judging them
by character classes or shapes means nothing.
"""

from __future__ import annotations

import re
from typing import Any

from apiward.model.call import ApiCall

__all__ = ["Param", "call_params", "profiled_params", "secret_name", "VALUE_HEADERS", "MAX_PARAMS", "MAX_DEPTH"]

Param = tuple[str, str, str]

MAX_PARAMS = 256
MAX_DEPTH = 12

#: Headers whose values are user-controlled text worth judging.
VALUE_HEADERS = frozenset(
    {
        "user-agent",
        "referer",
        "origin",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-real-ip",
        "x-client-ip",
        "x-original-url",
        "x-rewrite-url",
        "x-api-version",
        "true-client-ip",
        "forwarded",
        "via",
        "accept-language",
    }
)


# The last segment of a parameter name (``user.credentials.newPassword`` ->
# ``newPassword``) holding a secret word: password, passphrase, passwd, pwd,
# pass (as a whole word), pin, secret, token, api key, private/access key,
# credential, otp, salt.
_SECRET = re.compile(
    r"pass(?:word|wd|phrase|code)|pwd|secret|token|api[_-]?key|(?:private|access|secret)[_-]?key|credential|\botp\b|(?:^|[_-])(?:pass|pin|otp|salt)(?:$|[_-])",
    re.I,
)
_secret_cache: dict[str, bool] = {}


def secret_name(name: str) -> bool:
    """Whether a parameter's name says it carries a secret (cached per name).

    >>> secret_name("password"), secret_name("user.newPassword"), secret_name("pwdA")
    (True, True, True)
    >>> secret_name("passenger_count"), secret_name("compass"), secret_name("sort")
    (False, False, False)
    """
    r = _secret_cache.get(name)
    if r is None:
        last = name.rsplit(".", 1)[-1].replace("[]", "")
        r = _SECRET.search(last) is not None
        if len(_secret_cache) >= 4096:
            _secret_cache.clear()
        _secret_cache[name] = r
    return r


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return repr(value)


def _flatten(value: Any, prefix: str, out: list[Param], depth: int) -> None:
    """Append the leaves of a JSON container (strings tested first: they
    are most leaves; only containers recurse)."""
    if depth >= MAX_DEPTH:
        return
    if type(value) is dict:
        dotted = prefix + "." if prefix else ""
        pairs: Any = value.items()
    else:
        name = prefix + "[]"
        pairs = [(None, v) for v in value[:64]]
    for k, v in pairs:
        if len(out) >= MAX_PARAMS:
            return
        if k is not None:
            name = dotted + (k if type(k) is str else str(k))
        t = type(v)
        if t is str:
            out.append(("body", name, v))
        elif t is dict or t is list:
            _flatten(v, name, out, depth + 1)
        else:
            out.append(("body", name, _scalar(v)))


def call_params(call: ApiCall, path_params: tuple[tuple[str, str], ...] = (), *, base: list[Param] | None = None) -> list[Param]:
    """The call's parameters, :data:`VALUE_HEADERS` included. ``base``: its
    :func:`profiled_params` when the caller has them already (the call's
    facts keep both, see :mod:`apiward.detect.facts`)."""
    out = profiled_params(call, path_params) if base is None else base
    hdrs = [("header", k, v) for k, v in call.request.headers if k in VALUE_HEADERS]
    if hdrs:
        out = out + hdrs
        if len(out) > MAX_PARAMS:
            del out[MAX_PARAMS:]
    return out


def profiled_params(call: ApiCall, path_params: tuple[tuple[str, str], ...] = ()) -> list[Param]:
    """The call's parameters other than headers, what per-parameter
    profiles learn and judge. Headers are left to who needs them (injection
    scans them in its own pass), so this never walks the header list."""
    req = call.request
    out: list[Param] = [("path", k, v) for k, v in path_params] if path_params else []
    if req.query:
        out += [("query", k, v) for k, v in req.query]
    if req.body:
        j = req.json()  # parsed once per call and cached; None when not JSON
        if j is not None:
            t = type(j)
            if t is dict or t is list:
                _flatten(j, "", out, 0)
            else:
                out.append(("body", "", j if t is str else _scalar(j)))
        elif req.kind == "form":
            out += [("body", k, v) for k, v in req.form()]
    if req.cookies:
        out += [("cookie", k, v) for k, v in req.cookies.items()]
    if len(out) > MAX_PARAMS:
        del out[MAX_PARAMS:]
    return out
