"""``injection.payload``: injection payloads and out-of-profile values in
request parameters.

Looks at: every parameter of the request (path parameters and the raw path,
query, form and JSON body values recursively, cookies, the user-controlled
headers of :data:`apiward.learn.parameters.VALUE_HEADERS`) plus a cheap
``${``/CR-LF check of every other header. Values are decoded before
matching (percent-encoding repeatedly, ``%uXXXX``, ``\\uXXXX``/``\\xXX``,
``0x2e``-style hex, HTML entities, ``+`` as space; bounded to 4 rounds).

Techniques (evidence ``technique``; per-finding CWE and OWASP):
SQL injection (libinjection fingerprint, or stacked/union/time-based
patterns), NoSQL operators (``$ne``, ``$where``... as JSON keys, bracketed
query names or in values), XSS (libinjection, script/handler patterns), path
traversal and sensitive files, OS command injection, SSRF (URL values aimed
at loopback, private, link-local or metadata addresses, obfuscated IPs,
non-web schemes), log4j/JNDI lookups (also nested-lookup obfuscation),
server-side template injection, CRLF/header injection (log forging),
serialized objects (Python pickle, Java, PHP) and over-long values; then,
when ``ctx.baselines`` is there, values that deviate from the parameter's
learned profile (unseen characters, kind, length, enum value, shape) and
parameters an established endpoint never had (technique ``profile``);
probes for backup/sensitive files (``probe``) and, once new endpoints have
become rare on a host, calls to endpoints it never served
(``unseen_endpoint``; both tagged reconnaissance, T1595.003).

Adapting (a change many actors make is the app evolving; one actor's
deviation is scored): an unseen endpoint the API answers with 2xx is being
served, so it is not reported (unless it is a file probe or a debug or
diagnostic endpoint); one answered with an error, or with no response at
all (request-only data), is judged as before. A profile deviation with no
signature match that the API answered with 2xx, while the baselines are
learning, is deferred: kept in a bounded pending list and judged again once
``defer_seconds`` of event time have passed and its endpoint had
``defer_calls`` more calls; it is reported (with the original event ids,
emitted by the call that finds it due) only if fewer than ``min_actors``
distinct actors have made the same change by then. :meth:`InjectionPayload.flush`
judges what is still pending at the end of a stream. Secret parameters
(password, token, key... by name, with freely varying values) are not judged
by character class, kind or shape (:mod:`apiward.learn.profiles`).

Cost per event: about 8 µs on the DemoBank simulator's traffic
(``bench/baselines.py``), parameters extraction included. A value already
judged clean anywhere is one set lookup; an ASCII value of letters, digits
and ``_.,@-`` (no ``0x``, no serialized-object prefix) one regex match;
others cost a few µs the first time (decode, pre-screen regexes,
libinjection only when SQL/HTML syntax is present) and a dict lookup when
they repeat. Headers: value headers as parameters, the others tested
joined for ``$``/CR/LF/length. Profile scoring is a few set lookups per
parameter whose value is normal.

False-positive assumptions: textbook payload syntax does not occur in
normal values (O'Reilly, "select" as a word, ``3*4`` in a search, ``$12``
prices, file names with dots, public webhook URLs and long comments do not
match, see the tests). Free-text fields carrying code (a snippet-sharing
API) will match; disable the detector for those endpoints or raise
``min_profile_score``. Profile deviations are reported at lower severity
and confidence than signatures, and only once the endpoint has
``min_calls`` calls. Deferred deviations reach the analyst up to a day of
event time later (on a quiet endpoint), in exchange for no alert when a
deploy changes what every client sends.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any
from urllib.parse import unquote_to_bytes

import libinjection

from apiward.detect.vocabulary import RELEASE_ARCHIVE
from apiward.detect.base import DetectorBase
from apiward.detect.facts import facts
from apiward.learn.parameters import VALUE_HEADERS, secret_name
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

__all__ = ["InjectionPayload", "classify_value", "decode_value", "TECHNIQUES"]

#: technique -> (title, severity, CWE, OWASP API 2023 category)
TECHNIQUES: dict[str, tuple[str, str, str, str]] = {
    "jndi": ("Log4j/JNDI lookup injection", "critical", "CWE-917", "API8:2023"),
    "deserialization": ("Serialized object in a parameter", "high", "CWE-502", "API8:2023"),
    "ssti": ("Server-side template injection", "high", "CWE-94", "API8:2023"),
    "sqli": ("SQL injection", "high", "CWE-89", "API8:2023"),
    "nosqli": ("NoSQL operator injection", "high", "CWE-943", "API8:2023"),
    "xss": ("Cross-site scripting payload", "medium", "CWE-79", "API8:2023"),
    "cmdi": ("OS command injection", "critical", "CWE-78", "API8:2023"),
    "traversal": ("Path traversal", "high", "CWE-22", "API8:2023"),
    "ssrf": ("Server-side request forgery", "high", "CWE-918", "API7:2023"),
    "crlf": ("CRLF / header injection (log forging)", "medium", "CWE-93", "API8:2023"),
    "overflow": ("Over-long or format-string value", "medium", "CWE-120", "API8:2023"),
    "probe": ("Probe for backup or sensitive files", "medium", "CWE-538", "API8:2023"),
    "unseen_endpoint": ("Request to an endpoint the API never served", "low", "CWE-200", "API9:2023"),
    "profile": ("Out-of-profile parameter value", "low", "CWE-20", "API8:2023"),
}

#: Techniques that are reconnaissance rather than exploitation.
_RECON = {"probe": ("T1595.003", "reconnaissance"), "unseen_endpoint": ("T1595.003", "reconnaissance")}

# -- decoding -----------------------------------------------------------------------
_PCT_U = re.compile(r"%u([0-9a-fA-F]{4})")
_BS_U = re.compile(r"\\u([0-9a-fA-F]{4})|\\x([0-9a-fA-F]{2})")
_HEX_0X = re.compile(r"0x(2[ef]|5c|3c|3e|27|22)", re.I)
_HEX_0X_MAP = {"2e": ".", "2f": "/", "5c": "\\", "3c": "<", "3e": ">", "27": "'", "22": '"'}
_ENTITY = re.compile(r"&#?\w{1,8};?")


def _pct(s: str) -> str:
    raw = unquote_to_bytes(s.replace("+", " "))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def decode_value(value: str, rounds: int = 4) -> str:
    """Undo the encodings attackers stack to slip past filters (bounded)."""
    v = value
    for _ in range(rounds):
        prev = v
        if "%" in v:
            if "%u" in v or "%U" in v:
                v = _PCT_U.sub(lambda m: chr(int(m.group(1), 16)), v)
            v = _pct(v)
        if "\\" in v:
            v = _BS_U.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), v)
        if "&" in v and _ENTITY.search(v):
            v = html.unescape(v)
        if "0x" in v or "0X" in v:
            v = _HEX_0X.sub(lambda m: _HEX_0X_MAP[m.group(1).lower()], v)
        if v == prev:
            break
    return v


# -- signatures -------------------------------------------------------------------------
_I = re.I | re.S
# Values made only of these characters skip pattern matching.
_PLAIN = re.compile(r"[\w .,@+\-]*")
# ... and ASCII ones of these (no space or ``+``), with no ``0x`` and no
# serialized prefix, carry nothing at all: the scan skips them before any
# cache. ASCII classes on purpose: ``\w`` costs a Unicode lookup per
# character; other values take the full path, which gives the same verdict.
_SAFE = re.compile(r"[A-Za-z0-9_.,@\-]*")
_SAFE_PATH = re.compile(r"[A-Za-z0-9_./\-]*")
_PLAIN_PATH = re.compile(r"[\w./\-]*")
_JNDI_LOOKUP = re.compile(r"\$\{(?:lower:|upper:|::-|env:[^:}]{0,40}:-|sys:[^:}]{0,40}:-|date:'?)([^{}$]{0,20}?)'?\}", re.I)
_JNDI = re.compile(r"\$\{\s*(?:jndi|j\W*n\W*d\W*i)\s*:|\$\{\s*(?:ldaps?|rmi|dns|iiop|corba|nds|nis)\s*:|\$\{\$\{", re.I)
_SSTI = re.compile(
    r"\{\{[^}]{0,200}(?:__\w+__|\w\s*\(|\d\s*[-*+/%]\s*\d|\bconfig\b|\bself\b|\brequest\b|\blipsum\b|\bcycler\b|\bjoiner\b)[^}]{0,200}\}\}"
    r"|\{%[^%]{0,200}%\}"
    r"|\$\{\s*\d+\s*[-*+/%]\s*\d+\s*\}"
    r"|\$\{[^}]{0,200}(?:getClass|Runtime|T\(|\bnew\s+java|\.exec\()"
    r"|#\{\s*\d+\s*[-*+/%]\s*\d+\s*\}"
    r"|<%=?[^%]{0,300}%>"
    r"|__globals__|__builtins__|__subclasses__|__mro__",
    _I,
)
_SQL_EXTRA = re.compile(
    r"\bunion(?:\s|/\*.*?\*/|\()+(?:all\s+|distinct\s+)?select\b"
    r"|;\s*(?:drop|delete|insert|update|select|shutdown|exec|declare|create|alter|truncate)\s"
    r"|\b(?:sleep|pg_sleep|benchmark)\s*\(\s*\d"
    r"|\bwaitfor\s+delay\b"
    r"|['\")]\s*(?:or|and|\|\||&&)\s+[\w'\"(]+\s*(?:=|<>|!=|like\b|>|<|\bis\b)"
    r"|['\")]\s*(?:--|#|/\*)"
    r"|\binformation_schema\b|\bxp_cmdshell\b|\bsysobjects\b|\bsysdatabases\b|\bextractvalue\s*\(|\bupdatexml\s*\("
    r"|\b(?:or|and)\s+\d+\s*=\s*\d+\s*(?:--|#|$)"
    r"|\(\s*select\b|\bcase\s+when\b.{1,200}?\bthen\b|\b(?:iif|elt|char|chr|concat|exp|regexp_substring|generate_series|make_set|dbms_pipe\.receive_message)\s*\(.{0,40}?(?:\d\s*=\s*\d|select|0x[0-9a-f]|~)"
    r"|\border\s+by\s+\d+\s*(?:--|#)",
    _I,
)
# Plain values (letters, digits, spaces, ``.,@+-``) can still carry SQL.
_SQL_PLAIN = re.compile(r"\bunion\s+(?:all\s+|distinct\s+)?select\b|\border\s+by\s+\d+\s*--|\bselect\s+.{1,60}\s+from\s+.{1,60}(?:--|\bwhere\b)|--\s*$|\b(?:or|and)\s+\d+\s+(?:between|like)\b", re.I)
_CMD_PLAIN = re.compile(r"^\s*(?:ping|nslookup|wget|curl|nc|netstat)(?:\.exe)?\s+-\w", re.I)
_SQL_HINT = re.compile(r"['\"`;()]|--|/\*|#|\b(?:or|and|union|select|sleep|waitfor|like)\b", re.I)
_NOSQL_OPS = r"(?:ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|expr|or|and|not|nor|elemMatch|size|type|all|function|accumulator)"
_NOSQL_NAME = re.compile(r"(?:^|[.\[])\$" + _NOSQL_OPS + r"\]?$")
_NOSQL_VALUE = re.compile(
    r"[{\[,]\s*[\"']?\$" + _NOSQL_OPS + r"[\"']?\s*[:\]]|\$where\b|\bthis\.\w+\s*(?:==|!=|\.match\()|';\s*return\s|\bdb\.\w+\.(?:find|drop)",
    re.I,
)
_XSS = re.compile(
    r"<\s*/?\s*script\b|\b(?:java|vb|live|mocha)script\s*:|\bmocha\s*:|<[^>]{0,200}?[\s/\"'+]on[a-z]{3,20}\s*=|<\s*(?:iframe|svg|object|embed|applet|meta|base)\b"
    r"|\bexpression\s*\(|\bdocument\.(?:cookie|location|write)|\b(?:alert|prompt|confirm)\s*\(|\bdata:text/html",
    _I,
)
_HTML_HINT = re.compile(r"[<>]|script|on\w+\s*=|expression|document\.|alert|prompt|confirm|mocha", re.I)
_TRAVERSAL = re.compile(
    r"(?:^|[/\\=:])\.{2,}(?:[/\\]|$)|[/\\]\.{3,}|(?:[/\\]\.){3,}[/\\]?|\.\.[/\\]"
    r"|/etc/(?:passwd|shadow|hosts|group|issue)\b|\b(?:boot|win|system)\.ini\b|[a-z]:\\+windows\\"
    r"|/proc/self/|\bfile:/{2,}|\x00|\{file\}|\bWEB-INF\b|\.htpasswd\b|\bweb\.xml\b|\bglobal\.asa\b|\betc/?passwd\b|[a-z]:[/\\]*inetpub",
    _I,
)
# Unambiguous command names: any argument may follow.
_CMD_STRONG = (
    r"(?:whoami|uname|wget|curl|ncat|netcat|bash|zsh|ksh|python[23]?|perl|ruby|php|ping|nslookup|chmod|chown|powershell|"
    r"ipconfig|ifconfig|printenv|telnet|tftp|systeminfo|certutil|bitsadmin|mkfifo|busybox|netstat|usr/bin/\w+|bin/\w+)"
)
# Short names that are also words ("; id card"): need a command-like next token.
_CMD_WEAK = r"(?:cat|ls|id|pwd|nc|sh|rm|echo|cmd|net|sleep|dir|kill|ps|env|ssh|dig|type)"
_CMD_SEP = r"(?:[;&|\n`]|\$\(|\|\||&&)\s*(?:/?(?:usr/)?(?:s?bin/)?)?"
_CMDI = re.compile(
    _CMD_SEP + _CMD_STRONG + r"(?:\.exe)?(?=$|[\s;&|`)<>'\"+,])"
    r"|" + _CMD_SEP + _CMD_WEAK + r"(?:\.exe)?(?=$|[;&|`)<>'\"+,]|\s*$|\s+[-/.$\d~'\"*%]|\s+[a-z]:)"
    r"|\$\([^)]{1,200}\)|`[^`]{1,200}`|\b(?:/bin/(?:ba)?sh|cmd\.exe|powershell(?:\.exe)?)\b"
    r"|<!--\s*#\s*(?:exec|include)\b|\b(?:system|passthru|shell_exec|popen|proc_open|exec)\s*\(\s*['\"]"
    r"|(?:^|[|&;+\s])dir[+\s]+[a-z]:",
    _I,
)
_CRLF_ANY = re.compile(r"[\r\n]")
_CRLF_HEADER = re.compile(r"(?:\r\n|\n|\r)\s*(?:set-cookie|location|content-type|content-length|refresh|x-[\w-]+|http/1\.[01])\s*:", re.I)
_URL = re.compile(r"^\s*([a-z][a-z0-9+.-]{0,15}):(?://|\\\\)(?:[^@/?#\\]*@)?(\[[^\]]*\]|[^:/?#\\\s]*)", re.I)
_SSRF_SCHEMES = frozenset({"gopher", "dict", "file", "ldap", "ldaps", "jar", "netdoc", "tftp", "phar", "expect", "sftp"})
_PRIVATE_HOST = re.compile(
    r"^(?:localhost|localhost\.localdomain|.*\.localhost|.*\.internal|.*\.local|metadata|instance-data|kubernetes\.default(?:\.svc)?.*"
    r"|127\.\d+\.\d+\.\d+|0\.0\.0\.0|0|10\.\d+\.\d+\.\d+|192\.168\.\d+\.\d+|172\.(?:1[6-9]|2\d|3[01])\.\d+\.\d+"
    r"|169\.254\.\d+\.\d+|100\.100\.100\.200|\[[0:]*:?1?\]|\[::\]|\[f[cd][0-9a-f:]*\]|\[fe80:[0-9a-f:]*\]|\[::ffff:[0-9a-f.:]+\])$",
    re.I,
)
_OBFUSCATED_IP = re.compile(r"^(?:\d{8,10}|0x[0-9a-f]{6,8}|0[0-7]{1,4}(?:\.0?[0-7]{0,4}){1,3}|(?:0x[0-9a-f]{1,2}\.){1,3}0x[0-9a-f]{1,2})$", re.I)
_DESER_B64 = re.compile(r"^(?:rO0AB|gASV|gAJ[jdjc]|gAN[jdc]|gAR|KGRw|Y19f|Y29z|Y3Bvc2l4|AAEAAAD/////)[A-Za-z0-9+/_-]{8,}={0,2}$")
_DESER_FIRST = frozenset("rgKYAaO")
_DESER_TEXT = re.compile(r"^(?:aced0005|O:\d{1,4}:\"[\w\\]{1,100}\":\d{1,4}:\{|a:\d{1,4}:\{[isbdO]:)", re.I)
_FORMAT = re.compile(r"(?:%[0-9]*[nsxp]){4,}|(?:%\d+\$[nsx]){2,}")
_RUN = re.compile(r"(.)\1{199,}", re.S)
_PROBE = re.compile(
    r"(?:\.(?:bak|backup|old|orig|save|sav|swp|swo|tmp|temp|copy|inc|dist|cfg|conf|config|ini|log|sql|sqlite|db|mdb|dump|tar|tgz|gz|zip|rar|7z)|~|\.\d)$"
    r"|(?:^|/)\.(?:git|svn|hg|env|ds_store|htaccess|htpasswd|aws|ssh|bash_history|idea|vscode)(?:/|$)"
    r"|(?:^|/)(?:web\.config|WEB-INF|META-INF|phpinfo\.php|server-status|wp-config\.php|\.well-known/security\.txt~)(?:/|$)",
    re.I,
)
# Diagnostic and debug endpoints (generic recon word lists): an unseen one
# is worth a look even when the API serves it.
_DIAGNOSTIC = re.compile(
    r"(?:^|/)(?:_?debug|actuator|heapdump|threaddump|jolokia|phpinfo(?:\.php)?|server-(?:status|info)|_profiler|elmah(?:\.axd)?|trace\.axd"
    r"|graphiql|console|__debug__|debug-?info|diagnostics?)(?:/|$)",
    re.I,
)
# A Host (authority) as RFC 9110 allows it: a DNS name or address and an
# optional numeric port. Anything else (``localhost:8080.old``, spaces,
# slashes, a suffix on the port) is a crafted request.
_VALID_HOST = re.compile(r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})?)(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})?)*\.?(?::\d{1,5})?|\[[0-9A-Fa-f:.]+(?:%\w+)?\](?::\d{1,5})?")
_host_ok: dict[str, bool] = {}
_URLISH_NAMES = re.compile(r"url|uri|link|href|src|callback|webhook|redirect|return|next|dest|target|host|domain|site|endpoint|feed|image|avatar|proxy", re.I)

_CMD_HINT = re.compile(r"[;&|`\n]|\$\(|/bin/|cmd\.exe|powershell|<!--|\(\s*['\"]|dir[+\s]", re.I)
_TRAVERSAL_HINT = re.compile(r"\.\.|/etc/|\.ini\b|:\\|/proc/|file:|\x00|\{file\}|web-inf|\.htpasswd|/\./|passwd|web\.xml|global\.asa|inetpub", re.I)
_urlish_cache: dict[str, bool] = {}
# classify_value is pure: repeated values (user agents, enums) cost one lookup.
_classify_cache: dict[tuple[str, str, bool], tuple[str | None, dict[str, Any]]] = {}
# Values classify_value finds nothing in whatever their location and name
# (judged as a URL-named query parameter, the strictest place; no CR/LF;
# at most 256 characters): user agents, enum values, repeated ids.
_clean_cache: set[str] = set()
_CACHE_MAX = 16384
_EMPTY: frozenset[str] = frozenset()

Match = tuple[str, dict[str, Any]]


def _urlish(name: str) -> bool:
    """Whether a parameter name suggests a URL value (cached per name)."""
    r = _urlish_cache.get(name)
    if r is None:
        r = bool(name) and _URLISH_NAMES.search(name) is not None
        if len(_urlish_cache) > 4096:
            _urlish_cache.clear()
        _urlish_cache[name] = r
    return r


def _sqli(d: str) -> Match | None:
    if not _SQL_HINT.search(d):
        return None
    r = libinjection.is_sql_injection(d)
    if r["is_sqli"]:
        return "sqli", {"matched": "libinjection", "fingerprint": r["fingerprint"]}
    m = _SQL_EXTRA.search(d)
    if m:
        return "sqli", {"matched": "pattern", "pattern": m.group(0)[:60]}
    return None


def _xss(d: str) -> Match | None:
    if not _HTML_HINT.search(d):
        return None
    m = _XSS.search(d)
    if m:
        return "xss", {"matched": "pattern", "pattern": m.group(0)[:60]}
    if "<" in d and libinjection.is_xss(d)["is_xss"]:
        return "xss", {"matched": "libinjection"}
    return None


def _ssrf(d: str, urlish_name: bool) -> Match | None:
    m = _URL.match(d)
    if m is None:
        if urlish_name and ("." in d or "[" in d):
            host = d.strip().split("/", 1)[0].rsplit(":", 1)[0] if not d.strip().startswith("[") else d.strip().split("]", 1)[0] + "]"
            if _PRIVATE_HOST.match(host) or _OBFUSCATED_IP.match(host):
                return "ssrf", {"matched": "internal host", "host": host[:100]}
        return None
    scheme, host = m.group(1).lower(), m.group(2)
    if scheme in _SSRF_SCHEMES:
        return "ssrf", {"matched": "scheme", "scheme": scheme, "host": host[:100]}
    if _PRIVATE_HOST.match(host):
        return "ssrf", {"matched": "internal host", "host": host[:100]}
    if _OBFUSCATED_IP.match(host):
        return "ssrf", {"matched": "obfuscated address", "host": host[:100]}
    return None


def _deserialization(v: str) -> Match | None:
    if len(v) < 12:
        return None
    if _DESER_B64.match(v):
        return "deserialization", {"matched": "serialized object (base64)", "prefix": v[:8]}
    if _DESER_TEXT.match(v):
        return "deserialization", {"matched": "serialized object", "prefix": v[:12]}
    return None


def classify_value(value: str, location: str = "query", name: str = "", *, max_len: int = 4096) -> tuple[str | None, dict[str, Any]]:
    """The injection technique a single value carries, or ``None``.

    ``location`` (``path``, ``query``, ``body``, ``cookie``, ``header``)
    matters for CR/LF (suspicious in single-line places, only header-like
    in bodies) and length limits; ``name`` hints URL-valued parameters for
    SSRF. Evidence names the technique's match (libinjection fingerprint or
    pattern) and whether decoding was needed.

    >>> classify_value("1' OR '1'='1")[0]
    'sqli'
    >>> classify_value("O'Reilly")[0] is None
    True
    """
    if not value:
        return None, {}
    n = len(value)
    if n >= 16 and value[0] in _DESER_FIRST:
        hit0 = _deserialization(value)
        if hit0 is not None:
            technique, extra = hit0
            return technique, {"decoded": False, **extra, "cwe": TECHNIQUES[technique][2]}
    if n <= 512 and "0x" not in value and _PLAIN.fullmatch(value):
        if " " in value or "+" in value:
            m = _SQL_PLAIN.search(value)
            if m:
                return "sqli", {"decoded": False, "matched": "pattern", "pattern": m.group(0)[:60], "cwe": "CWE-89"}
            if _CMD_PLAIN.match(value):
                return "cmdi", {"decoded": False, "matched": "pattern", "pattern": value[:60], "cwe": "CWE-78"}
        return None, {}
    if n > 16384:
        value = value[:16384]
    d = decode_value(value)
    ev: dict[str, Any] = {"decoded": d != value}
    hit: Match | None = None
    if "$" in d:
        if "${" in d:
            s = d
            for _ in range(6):
                t = _JNDI_LOOKUP.sub(r"\1", s)
                if t == s:
                    break
                s = t
            if _JNDI.search(s) or _JNDI.search(d):
                hit = "jndi", {"matched": "jndi lookup"}
        if hit is None and _NOSQL_VALUE.search(d):
            hit = "nosqli", {"matched": "operator in value"}
    if hit is None and ("{" in d or "<%" in d or "__" in d):
        m = _SSTI.search(d)
        if m:
            hit = "ssti", {"matched": "pattern", "pattern": m.group(0)[:60]}
    if hit is None and _HTML_HINT.search(d):
        m = _XSS.search(d)
        if m:
            hit = "xss", {"matched": "pattern", "pattern": m.group(0)[:60]}
    if hit is None:
        hit = _sqli(d)
    if hit is None and _NOSQL_VALUE.search(d):
        hit = "nosqli", {"matched": "operator in value"}
    if hit is None and _CMD_HINT.search(d):
        m = _CMDI.search(d)
        if m:
            hit = "cmdi", {"matched": "pattern", "pattern": m.group(0)[:60]}
    if hit is None and _TRAVERSAL_HINT.search(d):
        m = _TRAVERSAL.search(d)
        if m:
            hit = "traversal", {"matched": "pattern", "pattern": m.group(0)[:60]}
    if hit is None and "<" in d:
        hit = _xss(d)
    if hit is None and (":" in d or "." in d or "[" in d):
        hit = _ssrf(d, _urlish(name))
    if hit is None and ("\r" in d or "\n" in d):
        if location == "body":
            m = _CRLF_HEADER.search(d)
        else:
            m = _CRLF_ANY.search(d)
        if m:
            hit = "crlf", {"matched": "line break" if location != "body" else "header after line break"}
    if hit is None:
        limit = max_len if location in ("path", "query", "cookie", "header") else max_len * 16
        if n > limit:
            hit = "overflow", {"matched": "length", "length": n, "limit": limit}
        elif n >= 200 and _RUN.search(value):
            hit = "overflow", {"matched": "repeated character run", "length": n}
        elif "%" in value and _FORMAT.search(value):
            hit = "overflow", {"matched": "format string"}
    if hit is None:
        return None, {}
    technique, extra = hit
    ev.update(extra)
    ev["cwe"] = TECHNIQUES[technique][2]
    return technique, ev


def _probe(path: str) -> bool:
    """Whether the path asks for a backup or sensitive file (:data:`_PROBE`;
    every name it knows has a dot, tilde or hyphen, tested first); versioned
    release archives (:data:`~apiward.detect.vocabulary.RELEASE_ARCHIVE`) are not."""
    if not ("." in path or "~" in path or "-" in path) or _PROBE.search(path) is None:
        return False
    return RELEASE_ARCHIVE.search(path.rpartition("/")[2]) is None


def _clean(value: str) -> None:
    if len(_clean_cache) >= _CACHE_MAX:
        _clean_cache.clear()
    _clean_cache.add(value)


def _judge(value: str, loc: str, name: str, max_len: int) -> tuple[str | None, dict[str, Any]]:
    """:func:`classify_value` through the memo caches (values up to 256
    characters); a clean verdict that holds in any place also enters
    ``_clean_cache``, which the scan checks before anything else. The
    evidence returned is the caller's to keep."""
    if len(value) > 256:
        return classify_value(value, loc, name, max_len=max_len)
    urlish = _urlish(name)
    ck = (value, loc, urlish)
    cached = _classify_cache.get(ck)
    if cached is None:
        cached = classify_value(value, loc, name, max_len=max_len)
        # Clean wherever it appears: judged as a URL parameter, or plain
        # (then neither location nor name mattered); no line breaks.
        if cached[0] is None and max_len >= 256 and "\r" not in value and "\n" not in value:
            if urlish or ("0x" not in value and _PLAIN.fullmatch(value)):
                _clean(value)
        if len(_classify_cache) >= 8192:
            _classify_cache.clear()
        _classify_cache[ck] = cached
    elif cached[0] is None and max_len >= 256 and "\r" not in value and "\n" not in value:
        # Seen clean before here: worth asking whether it is clean anywhere
        # (judged as a URL parameter) once, so later calls skip the cache.
        if classify_value(value, "query", "url", max_len=max_len)[0] is None:
            _clean(value)
    t, ev = cached
    return (t, dict(ev)) if t is not None else cached


def _classify_path(path: str) -> tuple[str | None, dict[str, Any]]:
    """Techniques that show in the path itself (traversal, probes, and the
    payload techniques when the path holds more than path characters)."""
    if _PLAIN_PATH.fullmatch(path):
        if ".." in path or "/." in path:
            m = _TRAVERSAL.search(path)
            if m:
                return "traversal", {"matched": "pattern", "pattern": m.group(0)[:60], "cwe": TECHNIQUES["traversal"][2]}
        return None, {}
    return classify_value(path, "path", "")


#: A pending (deferred) profile finding: due time, actor key, actor display,
#: service, host, endpoint name, endpoint key, event ids, first and last
#: seen, the profile hits ``(location, name, value, evidence, score)`` and
#: the endpoint's call count when it was deferred.
_MAX_WAIT = 24  # a deferral lasts at most this many windows
_Pending = list


class InjectionPayload(DetectorBase):
    """Signatures plus learned per-parameter profiles (see module doc).

    ``min_profile_score``: profile deviations below it are not reported;
    ``min_calls``: an endpoint's calls before its profiles judge;
    ``max_len``: value length counted as over-long in single-line places;
    ``profiles``: set False to use signatures only;
    ``defer_seconds``, ``defer_calls``: a profile deviation the API
    answered with 2xx waits for other actors to make the same change at
    least this long (event time) and until its endpoint had this many more
    calls (a quiet endpoint needs longer to show adoption; at most
    24 windows), then is reported only if they did not (``defer_seconds``
    0: report at once);
    ``max_pending``: bound on deviations waiting (the oldest is judged at
    once when full)."""

    id = "injection.payload"
    title = "Injection payload in a request"
    severity = "high"
    owasp = "API8:2023"
    attack = "T1190"
    tactic = "initial-access"
    cwe = "CWE-74"
    description = "SQL/NoSQL/command/template/JNDI injection, XSS, traversal, SSRF, CRLF and out-of-profile values."

    # Defaults for states saved before these knobs existed.
    defer_seconds = 3600.0
    defer_calls = 20
    max_pending = 1024

    def __init__(
        self,
        *,
        min_profile_score: float = 0.6,
        min_calls: int = 30,
        max_len: int = 4096,
        profiles: bool = True,
        defer_seconds: float = 3600.0,
        defer_calls: int = 20,
        max_pending: int = 1024,
    ) -> None:
        if not 0.0 <= min_profile_score <= 1.0:
            raise ValueError("min_profile_score must be within 0..1")
        if defer_seconds < 0 or defer_calls < 0 or max_pending < 1:
            raise ValueError("defer_seconds and defer_calls must be >= 0, max_pending >= 1")
        self.min_profile_score = min_profile_score
        self.min_calls = min_calls
        self.max_len = max_len
        self.profiles = profiles
        self.defer_seconds = defer_seconds
        self.defer_calls = defer_calls
        self.max_pending = max_pending
        self._pending: dict[str, _Pending] = {}  # finding key -> pending, oldest first
        self._next_due = math.inf

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_pending" not in state:
            self._pending = {}
            self._next_due = math.inf

    def scan(self, call: ApiCall, ctx: Context) -> list[tuple[str, str, str, str, dict[str, Any], float]]:
        """All matches in a call: ``(technique, location, name, value,
        evidence, confidence)``, signatures first. Used by :meth:`score_one`
        and by evaluations that need the raw score."""
        out: list[tuple[str, str, str, str, dict[str, Any], float]] = []
        req = call.request
        max_len = self.max_len
        signed: set[tuple[str, str]] | None = None
        host = req.host
        ok = _host_ok.get(host)
        if ok is None:
            ok = not host or len(host) <= 300 and _VALID_HOST.fullmatch(host) is not None
            if len(_host_ok) >= 4096:
                _host_ok.clear()
            _host_ok[host] = ok
        if not ok:
            out.append(("probe", "header", "host", host[:200], {"matched": "malformed host", "cwe": "CWE-20"}, 0.8))
        path = req.path
        if _SAFE_PATH.fullmatch(path) and ".." not in path and "/." not in path:
            t = None
        else:
            t, ev = _classify_path(path)
        if t is None:
            raw = call.extra.get("raw_path") if call.extra else None
            if raw and raw != path:
                t, ev = _classify_path(raw)
        if t is not None:
            out.append((t, "path", "", path, ev, 0.9))
        clean = _clean_cache if max_len >= 256 else _EMPTY
        safe = _SAFE.fullmatch
        fx = facts(call, ctx)
        params = fx.params
        for loc, name, value in params:
            if "$" in name and _NOSQL_NAME.search(name):
                out.append(("nosqli", loc, name, value, {"matched": "operator key", "cwe": "CWE-943"}, 0.9))
                if signed is None:
                    signed = set()
                signed.add((loc, name))
                continue
            if value in clean:
                continue
            n = len(value)
            if n <= 512 and "0x" not in value and (n < 16 or value[0] not in _DESER_FIRST) and safe(value):
                continue
            t, ev = _judge(value, loc, name, max_len)
            if t is not None:
                out.append((t, loc, name, value, ev, 0.9 if ev.get("matched") != "length" else 0.7))
                if signed is None:
                    signed = set()
                signed.add((loc, name))
        # Headers: the user-controlled ones (VALUE_HEADERS) as parameters;
        # the others only for ${ lookups, line breaks and over-long values,
        # tested on all of them joined, then one by one when any shows
        # (one-character ``in`` tests: a longer needle costs far more).
        others = []
        for k, v in req.headers:
            if k in VALUE_HEADERS:
                if v in clean:
                    continue
                n = len(v)
                if n <= 512 and "0x" not in v and (n < 16 or v[0] not in _DESER_FIRST) and safe(v):
                    continue
                t, ev = _judge(v, "header", k, max_len)
                if t is not None:
                    out.append((t, "header", k, v, ev, 0.9 if ev.get("matched") != "length" else 0.7))
            else:
                others.append(v)
        if others:
            joined = "".join(others)
            if "$" in joined or "\n" in joined or "\r" in joined or len(joined) > max_len:
                for k, v in req.headers:
                    if k in VALUE_HEADERS or k == "cookie":
                        continue
                    if "${" in v or "\n" in v or "\r" in v or len(v) > max_len:
                        t, ev = classify_value(v, "header", k, max_len=max_len)
                        if t is not None:
                            out.append((t, "header", k, v, ev, 0.9))
        bl = ctx.baselines
        if bl is not None and hasattr(bl, "endpoint_stats"):
            stats = bl.endpoint_stats(fx.ep_key)
            if stats is None:
                if not out:
                    hit = self._unseen_endpoint(bl, ctx, _probe(path), call.response.status if call.response is not None else 0)
                    if hit is not None:
                        out.append(hit)
            elif self.profiles and params and stats.calls >= self.min_calls and hasattr(bl, "score_params"):
                for loc, name, value, s, reasons in bl.score_params(call, ctx, min_calls=self.min_calls, params=params, stats=stats):
                    if signed is None or (loc, name) not in signed:
                        out.append(("profile", loc, name, value, {"reasons": reasons, "cwe": "CWE-20"}, s))
        elif not out and _probe(path):
            out.append(("probe", "path", "", path, {"matched": "backup or sensitive file name", "cwe": "CWE-538"}, 0.6))
        return out

    def _unseen_endpoint(
        self, bl: Any, ctx: Context, probe: bool, status: int = 0
    ) -> tuple[str, str, str, str, dict[str, Any], float] | None:
        """A call to an endpoint the baselines never saw, judged by how
        settled the host is: probes for backup/sensitive files always, other
        new endpoints only once new endpoints have become rare, and only
        when the API did not serve them: a 2xx answer means the endpoint
        exists (the API grew), an error means someone is guessing; served
        debug or diagnostic endpoints (:data:`_DIAGNOSTIC`) count. Without
        a response (request-only data, ``status`` 0) the call is judged as
        a guess."""
        path = ctx.endpoint.template
        if probe:
            return ("probe", "path", "", path, {"matched": "backup or sensitive file name", "cwe": "CWE-538"}, 0.8)
        if 200 <= status < 300 and _DIAGNOSTIC.search(path) is None:
            return None
        host = bl.host_stats(ctx.endpoint.host) if hasattr(bl, "host_stats") else None
        if host is None or host.calls < self.min_calls * 10:
            return None
        p = host.novelty
        conf = 0.75 - 5.0 * p
        if "{" in path and ctx.mode != "detect":
            # A parameterised template the baselines lack is most often the
            # templater merging paths it saw before, not a new endpoint
            # (frozen templates in detect mode never merge).
            conf -= 0.2
        conf = round(conf, 3)
        if conf <= 0.3:
            return None
        ev = {"matched": "unseen endpoint", "novelty": round(p, 5), "host_endpoints": host.endpoints, "cwe": "CWE-200"}
        return ("unseen_endpoint", "path", "", path, ev, conf)

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        due = self._emit_due(call.ts, ctx.baselines) if call.ts >= self._next_due else None
        hits = self.scan(call, ctx)
        if not hits:
            return due or []
        found: list[Finding] = []
        seen: set[str] = set()
        profile_hits = []
        for technique, loc, name, value, ev, conf in hits:
            if technique == "profile":
                if conf >= self.min_profile_score:
                    profile_hits.append((loc, name, value, ev, conf))
                continue
            if technique in seen or len(found) >= 4 or conf < self.min_profile_score and technique == "unseen_endpoint":
                continue
            seen.add(technique)
            title, sev, cwe, owasp = TECHNIQUES[technique]
            evidence = {"technique": technique, "location": loc, "parameter": name, "value": value[:200], **ev}
            where = f"{loc} parameter {name!r}" if name else loc
            f = self.finding(
                call,
                ctx,
                summary=f"{title} in {where}",
                evidence=evidence,
                confidence=conf,
                severity=sev,
                key=f"{self.id}|{call.actor.key}|{ctx.endpoint.key}|{technique}",
                title=title,
            )
            f.cwe = cwe
            f.owasp = owasp
            if technique in _RECON:
                f.attack, f.tactic = _RECON[technique]
            found.append(f)
        if profile_hits and not found:
            profile_hits.sort(key=lambda h: -h[4])
            ep = ctx.endpoint
            rec: _Pending = [
                0.0, call.actor.key, call.actor.display, ep.service, ep.host, ep.name, facts(call, ctx).ep_key,
                [call.id], call.ts, call.ts, profile_hits, 0,
            ]
            if self._deferrable(call, ctx):
                found.extend(self._defer(rec, ctx.baselines))
            else:
                found.append(self._profile_finding(rec, profile_hits))
        if due:
            found.extend(due)
        return found

    # -- deferred profile findings ---------------------------------------------
    def _deferrable(self, call: ApiCall, ctx: Context) -> bool:
        """Whether a profile deviation waits for other actors: the API
        answered it with 2xx (the change works, so it may be the app's),
        the baselines are learning (so other actors' use can show), and
        deferring is on."""
        resp = call.response
        return (
            self.defer_seconds > 0
            and resp is not None
            and 200 <= resp.status < 300
            and ctx.mode != "detect"
            and ctx.baselines is not None
        )

    def _defer(self, rec: _Pending, bl: Any) -> list[Finding]:
        """Queue a deviation (merged with the same actor's pending one on
        the same parameter); judge the oldest at once when the queue is
        full."""
        pending = self._pending
        top = rec[10][0]
        key = f"{self.id}|{rec[1]}|{rec[6]}|profile|{top[0]}:{top[1]}"
        cur = pending.get(key)
        if cur is not None:
            if len(cur[7]) < 64:
                cur[7].append(rec[7][0])
            cur[9] = rec[9]
            return []
        out: list[Finding] = []
        if len(pending) >= self.max_pending:
            oldest = next(iter(pending))
            f = self._judge_pending(pending.pop(oldest), bl)
            if f is not None:
                out.append(f)
        rec[0] = rec[8] + self.defer_seconds
        ep = bl.endpoint_stats(rec[6]) if hasattr(bl, "endpoint_stats") else None
        rec[11] = ep.calls if ep is not None else 0
        pending[key] = rec
        if rec[0] < self._next_due:
            self._next_due = rec[0]
        return out

    def _emit_due(self, now: float, bl: Any) -> list[Finding]:
        """Judge the pending deviations whose window has passed (those
        whose endpoint had too few calls since wait a quarter window more,
        up to ``_MAX_WAIT`` windows)."""
        pending = self._pending
        out: list[Finding] = []
        window = self.defer_seconds
        for key in list(pending):
            rec = pending[key]
            if rec[0] > now:
                continue
            if self.defer_calls and now < rec[8] + _MAX_WAIT * window and hasattr(bl, "endpoint_stats"):
                ep = bl.endpoint_stats(rec[6])
                if ep is not None and ep.calls - rec[11] < self.defer_calls:
                    rec[0] = now + window / 4
                    continue
            del pending[key]
            f = self._judge_pending(rec, bl)
            if f is not None:
                out.append(f)
        self._next_due = min((r[0] for r in pending.values()), default=math.inf)
        return out

    def _judge_pending(self, rec: _Pending, bl: Any) -> Finding | None:
        """The finding for a pending deviation, or None when enough distinct
        actors have made the same change since (the app evolved): an unseen
        parameter that ``min_actors`` actors now send, a value whose
        characters, kind and shape they now share."""
        still = [h for h in rec[10] if self._still_odd(bl, rec[6], h)]
        if not still:
            return None
        f = self._profile_finding(rec, still)
        f.evidence["deferred_seconds"] = self.defer_seconds
        return f

    def _still_odd(self, bl: Any, ep_key: str, hit: tuple[str, str, str, dict[str, Any], float]) -> bool:
        loc, name, value, ev, _ = hit
        prof = bl.param_profile(ep_key, loc, name) if bl is not None and hasattr(bl, "param_profile") else None
        if prof is None:
            return True  # nothing to judge by (no baselines, or evicted)
        if ev["reasons"] == ["unseen parameter"]:
            return len(prof.actors) < prof.min_actors
        return prof.score(value, min_n=self.min_calls, secret=secret_name(name))[0] >= self.min_profile_score

    def flush(self, baselines: Any = None) -> list[Finding]:
        """Judge every pending deviation now (end of a stream or a replay),
        against ``baselines``; returns the findings that still stand."""
        pending, self._pending, self._next_due = self._pending, {}, math.inf
        out = [self._judge_pending(rec, baselines) for rec in pending.values()]
        return [f for f in out if f is not None]

    def _profile_finding(self, rec: _Pending, hits: list[tuple[str, str, str, dict[str, Any], float]]) -> Finding:
        """One finding for a call's profile deviations (the strongest named,
        the others listed)."""
        loc, name, value, ev, conf = hits[0]
        title, sev, cwe, _ = TECHNIQUES["profile"]
        evidence = {
            "technique": "profile",
            "location": loc,
            "parameter": name,
            "value": value[:200],
            "reasons": ev["reasons"],
            "cwe": cwe,
            "others": [f"{h[0]}:{h[1]}" for h in hits[1:6]],
        }
        return Finding(
            key=f"{self.id}|{rec[1]}|{rec[6]}|profile|{loc}:{name}",
            detector=self.id,
            title=title,
            severity="medium" if conf >= 0.8 else sev,
            confidence=conf,
            owasp=self.owasp,
            attack=self.attack,
            tactic=self.tactic,
            cwe=cwe,
            actor=rec[1],
            actor_display=rec[2],
            service=rec[3],
            host=rec[4],
            endpoint=rec[5],
            event_ids=list(rec[7]),
            first_seen=rec[8],
            last_seen=rec[9],
            summary=f"{loc} parameter {name!r} out of its learned profile: {'; '.join(ev['reasons'][:3])}",
            evidence=evidence,
        )
