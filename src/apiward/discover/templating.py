"""Endpoint templating: turn raw request paths into endpoint templates.

``/users/8812/orders/5`` -> ``/users/{userId}/orders/{orderId}``.

Learned online, one call at a time, per host, in a prefix tree of path
segments. A segment becomes a parameter on *evidence*, never on a single fixed
threshold:

- value shape: ints, uuids, hex/hashes, emails, dates, IPs, decimals, mixed
  ids (``ord_8f3k2``, ``A-12345``), long natural-language slugs and free text
  are parameters on sight ("strong" shapes); plain words and short slugs are
  "weak" and need more evidence;
- sibling structure: distinct weak values under the same prefix whose subtrees
  share literal segments (``/repos/alice/issues``, ``/repos/bob/issues``);
- cardinality over time (Good-Turing): how many distinct weak values a
  position has and how many were seen only once, for leaves and for values
  with the same structure below them (``/builds/{id}/<slug>/{n}``): an
  open-ended value set keeps producing singletons, a fixed set of resource
  names does not;
- parent context: after a plural collection noun (``users``) or a value an
  identifier is expected; after the root, ``api`` or a version (wherever it
  is) more evidence is needed; a literal POSTed to with ids below it is a
  collection whatever its noun;
- response shape (optional, :func:`response_shape` of 2xx JSON answers, per
  method): below a literal or a parameter, siblings whose subtrees answer
  alike at the same relative place share evidence of one parameter; after a
  version, object (not list) answers count too; siblings answering *unlike*
  (distinct schemas) are distinct resources and are never merged by the
  weak rules. A shape answered at more than two path depths is an envelope
  every endpoint shares (``{"data", "success"}``) and counts for nothing;
- coverage: values of one parameter reach the same endpoints; siblings
  that are called often yet never reach endpoints common among the others
  are distinct resources, and veto a weak merge (``coverage`` in the evidence);
  names below the siblings that vary from one to the next (each sibling's
  own collection names) are compared as one parameter;
- closed sets: a handful of leaf siblings each called again and again (30+
  calls each) are fixed names (pages, files, actions), never values;
- value forms: a strong parameter remembers the surface forms of its values
  (code prefix ``tm_``, mix of cases and digits); random ids that happen to
  read as words (``tm_lrqibzdfIe4``, ``MULVXkz707``) join it by form; a leaf
  word joins an open-ended weak slot when it gets no method the slot does
  not and is called no more than a value is;
- a compound resource name (3-5 lowercase words, no title words) is a weak
  word, not a title on sight; release numbers (``1.14.6``) are values below
  the top;
- numbered segments: a fixed word, a dash and varying numbers at one
  position (``page-3``, ``page-17``) -> ``page-{pageNumber}``, when the
  words there do not vary too (``amber-12``, ``cedar-7`` are slugs);
- formats: one stem in several extensions -> ``stem.{format}``; identifiers
  with several extensions -> ``{id}.{format}``; names each in its own format
  keep the extension in the value (``{file}``);
- literals that never merge: API versions (``v1``, ``v2beta1``, a date at the
  root), common API vocabulary (``me``, ``search``, ``export``...), server
  pages (``anadir.jsp``, ``index.php``: a script's file name is an endpoint),
  the ``never_merge`` list; known routes (``add_routes`` or a call's
  ``route``) always win, and ``overrides`` map a path glob to a fixed template;
- parameter names come from the collection noun before the value; a
  version segment never names one (``/accounts/v2/{accountId}``).

Merges are undone when later evidence contradicts them: a merge made on weak
evidence keeps each value's own subtree (calls, methods, answers below it)
while it has at most 32 values; when the values turn out to be a closed set,
or some of them miss the endpoints the others reach or answer unlike them,
those values are split back out as literals (and stay literal there).
:meth:`version` changes whenever seen paths may resolve otherwise, so that
callers (the inventory) re-key their per-endpoint state.

Every merge is recorded with its evidence (:meth:`Templater.explain`).

Cost: ``resolve``/``observe`` hit a bounded cache keyed by raw path (a dict
lookup; ``observe`` then replays the counters of the walk it took before, as
long as the tree kept its structure); a miss walks the tree, one dict lookup
per segment plus a few precompiled (and cached) regex matches for unseen
values, and names the walk's steps from a memo (naming depends on the steps
only). Re-deciding
structure (``_compile``) is amortised: it runs only after new structure or a
new response shape appeared, at most once per ``nodes / 8`` observations, and
only visits subtrees with something new (and values of a splittable merge
re-check it at 32, 64, 128... calls). About 30 µs per observe+resolve on the
real-spec benchmark (``bench/templating.py``). Memory is bounded whatever the
volume: strong values never create nodes; a position with more than
``max_children`` distinct literal children is forced to a parameter; each
parameter keeps a small sample, shape counts and a k-minimum-values distinct
count sketch.
"""

from __future__ import annotations

import bisect
import fnmatch
import re
import zlib
from collections import Counter, OrderedDict
from typing import Any, Iterator

from apiward.model.keyed import LRU, NO_CAP

__all__ = ["Templater", "response_shape", "segment_shape", "singular"]

# --------------------------------------------------------------------------- shapes

_RE_INT = re.compile(r"-?\d+")
_RE_DECIMAL = re.compile(r"-?\d+\.\d+")
_RE_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_RE_HEX = re.compile(r"[0-9a-fA-F]{8,}")
_RE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([Tt _].*)?|\d{4}/\d{2}/\d{2}|\d{2}-\d{2}-\d{4}")
_RE_EMAIL = re.compile(r"[^@\s/]+@[^@\s/]+\.[A-Za-z]{2,}")
_RE_IP = re.compile(r"\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F]{0,4}(:[0-9a-fA-F]{0,4}){2,7}")
_RE_VERSION = re.compile(r"[vV]\d+([._]\d+)*(-?(alpha|beta|preview|rc|dev|[a-z]{1,2})\d*)*|(alpha|beta)\d+")
_RE_DOTTED_VERSION = re.compile(r"\d+(\.\d+){1,3}")
_RE_API_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(-preview|-beta)?")
_RE_WORDNUM = re.compile(r"[A-Za-z]{1,12}[-_]?\d{1,3}|\d{1,2}[A-Za-z]{1,3}")  # oauth2, sha256, utf-8, 2fa, 3ds
_RE_DIGIT_RUN = re.compile(r"\d+")
_RE_WORD = re.compile(r"[A-Za-z]+")
_RE_SLUG = re.compile(r"[A-Za-z0-9]+([-_][A-Za-z0-9]+)+")
_RE_HAS_DIGIT = re.compile(r"\d")
_RE_DIGITS = re.compile(r"\d")
_RE_HAS_ALPHA = re.compile(r"[A-Za-z]")
_RE_FREE_TEXT = re.compile(r"%[0-9A-Fa-f]{2}|[\s+,;=~!*'()]")
_RE_TOKEN = re.compile(r"[A-Za-z0-9_\-]{20,}={0,2}")
_RE_EXT = re.compile(
    r"(.+?)(\.(?:json|xml|csv|tsv|html?|txt|pdf|png|jpe?g|gif|svg|webp|ico|atom|rss|ya?ml|zip|gz|tar|"
    r"js|css|mp3|mp4|wav|xlsx?|docx?|md|geojson|kml|ics|vcf|protobuf|pb|bin))",
    re.IGNORECASE,
)
_RE_RELEASE = re.compile(r"[-_]v?\d+(?:\.\d+)+")  # name-1.2.3: a release's version in a file name
_RE_VERB = re.compile(r"(.+?)(:[A-Za-z][A-Za-z0-9]*)")
_RE_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_RE_COMPOUND = re.compile(r"[a-z]{3,}(?:([-_])[a-z]{3,})(?:\1[a-z]{3,}){1,3}")  # 3-5 lowercase words, one separator
#: words of titles, not of compound resource names (``how-to-train-your-dragon``)
_TITLE_WORDS = frozenset("the and for you your how why what with from are not this that our was who can".split())
_RE_NUMBERED = re.compile(r"([a-z]{3,}(?:-[a-z]{3,})*-)(\d+)")  # page-17, series-18957

#: Shapes that make a segment a parameter on sight.
STRONG = frozenset({"int", "decimal", "uuid", "hex", "date", "email", "ip", "mixed", "nlslug", "text", "token"})
#: Shapes that name an identifier (the param gets an ``...Id`` name).
ID_SHAPES = frozenset({"int", "uuid", "hex", "mixed", "token"})

#: Words APIs use as literal path segments beside identifiers; never merged
#: into a parameter by weak evidence (a strong-shaped value is unaffected).
VOCAB = frozenset(
    """
    me self my mine current latest recent default all any none new create add update edit delete remove
    search find query lookup autocomplete suggest suggestions filter count stats statistics summary
    metrics report reports export import upload download batch bulk sync status health healthz ping
    info version versions metadata meta schema schemas config configuration settings preferences
    profile login logout signin signout signup register auth oauth token tokens refresh verify validate
    confirm reset password activate deactivate enable disable approve reject cancel archive unarchive
    restore publish unpublish preview history audit activity feed notifications callback callbacks
    webhook webhooks public private shared active inactive pending archived deleted available
    upcoming popular trending top featured random next previous first last check exists list
    details detail overview permissions roles members owners admin admins internal external
    start stop restart run execute submit retry clone copy move rename merge split lock unlock
    subscribe unsubscribe follow unfollow like unlike share invite accept decline join leave
    images image avatar thumbnail content contents raw data file files attachments logs events
    """.split()
)

_PLURAL_IRREGULAR = {
    "people": "person", "children": "child", "men": "man", "women": "woman", "mice": "mouse",
    "indices": "index", "matrices": "matrix", "vertices": "vertex", "data": "data", "media": "media",
    "criteria": "criterion", "analyses": "analysis", "series": "series", "species": "species",
    "news": "news", "status": "status", "address": "address", "radius": "radius",
}
_NOT_PLURAL_ENDINGS = ("ss", "us", "is", "news", "series", "status")


def singular(word: str) -> str:
    """Best-effort English singular of a (possibly camelCase) noun: ``categories`` -> ``category``."""
    lw = word.lower()
    if lw in _PLURAL_IRREGULAR:
        out = _PLURAL_IRREGULAR[lw]
        return word[0] + out[1:] if word[:1].isupper() else out
    if lw.endswith(_NOT_PLURAL_ENDINGS):
        return word
    if lw.endswith("ies") and len(lw) > 4:
        return word[:-3] + ("Y" if word[-1].isupper() else "y")
    if lw.endswith(("sses", "xes", "ches", "shes", "zzes", "uses")):
        return word[:-2]
    if lw.endswith("s") and len(lw) > 2:
        return word[:-1]
    return word


def _is_plural(word: str) -> bool:
    last = _RE_CAMEL.split(word)[-1].split("-")[-1].split("_")[-1].lower()
    if last in _PLURAL_IRREGULAR:
        return _PLURAL_IRREGULAR[last] != last
    return len(last) > 2 and last.endswith("s") and not last.endswith(_NOT_PLURAL_ENDINGS)


def _camel(word: str) -> str:
    parts = [p for p in re.split(r"[-_.\s]+", word) if p]
    if not parts:
        return ""
    first = parts[0]
    if first.isupper() and len(first) > 1 and len(parts) == 1:
        first = first.lower()
    else:
        first = first[0].lower() + first[1:]
    return first + "".join(p[0].upper() + p[1:] for p in parts[1:])


def segment_shape(seg: str) -> str:
    """Shape of one path segment value (without extension): ``int``, ``uuid``,
    ``hex``, ``date``, ``email``, ``ip``, ``decimal``, ``mixed``, ``nlslug``,
    ``text``, ``token`` (strong) or ``word``, ``wordnum``, ``slug``, ``dotted``,
    ``version``, ``other`` (weak)."""
    if not seg:
        return "other"
    if _RE_INT.fullmatch(seg):
        return "int"
    if _RE_VERSION.fullmatch(seg):
        return "version"
    if _RE_UUID.fullmatch(seg):
        return "uuid"
    if _RE_DATE.fullmatch(seg):
        return "date"
    if _RE_DECIMAL.fullmatch(seg):
        return "decimal"
    if _RE_IP.fullmatch(seg) and ("." in seg or seg.count(":") >= 2):
        return "ip"
    if "@" in seg and _RE_EMAIL.fullmatch(seg):
        return "email"
    if _RE_FREE_TEXT.search(seg):
        return "text"
    has_digit = _RE_HAS_DIGIT.search(seg) is not None
    if has_digit and _RE_HEX.fullmatch(seg):
        return "hex"
    if _RE_WORD.fullmatch(seg):
        return "token" if _random_letters(seg) else "word"
    if "." in seg and _RE_DOTTED.fullmatch(seg) and not _RE_DOTTED_VERSION.fullmatch(seg):
        return "dotted"  # info.0, com.example.app, Microsoft.Web
    if has_digit and _RE_HAS_ALPHA.search(seg):
        if len(seg) >= 5 and (_RE_CODE_ID.fullmatch(seg) or _RE_CAPS_CODE.fullmatch(seg)):
            return "mixed"  # FK364, MJKD17C4, VNWX1: capitals and digits, a code
        if _RE_WORDNUM.fullmatch(seg) or _readable(seg) or (
                len(_RE_DIGITS.findall(seg)) == 1 and seg.lower() == seg and len(seg) >= 5):
            return "wordnum"
        if _RE_DOTTED_VERSION.fullmatch(seg):
            return "version"
        if len(seg) <= 4:
            return "wordnum"  # G2M, x5c, b2b: too short to be an id on sight
        return "mixed"
    if _RE_DOTTED_VERSION.fullmatch(seg):
        return "semver"  # 1.14.6: literal at the root, a value elsewhere (on evidence)
    if _RE_SLUG.fullmatch(seg):
        if any(_random_letters(w) for w in _RE_SEP.split(seg)):
            return "mixed"  # xcg_YIwXQv
        words = seg.count("-") + seg.count("_") + 1
        return "nlslug" if words >= 4 or len(seg) >= 32 else "slug"
    if _RE_TOKEN.fullmatch(seg):
        return "token"
    if "." in seg:
        return "dotted"
    return "other"


_RE_CODE_ID = re.compile(r"(?=[A-Z0-9]*[A-Z])(?=(?:[A-Z]*\d){2})[A-Z0-9]+|(?=[A-Z0-9]*\d)[A-Z0-9]*\d[A-Z][A-Z0-9]*[A-Z0-9]")
_RE_CAPS_CODE = re.compile(r"[A-Z]{4,}\d+")
_RE_DOTTED = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)+")
_RE_SEP = re.compile(r"[-_]")
_RE_LOWER_RUN = re.compile(r"[a-z]+")
_RE_CASE_PIECE = re.compile(r"[A-Z]{2,}(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+")


def _readable(seg: str) -> bool:
    """Words with a few digits in them (``i18nRegions``, ``ec2Instances``,
    ``x509Certificates``), not a random id (``oJbnuQbf0rW``, ``W6VaqFRN4U``):
    at most two digit runs, a word piece of 4+ letters, few 1-2 letter
    pieces, capitals only as camelCase word starts (or a leading acronym)."""
    if len(_RE_DIGIT_RUN.findall(seg)) > 2:
        return False
    pieces = _RE_CASE_PIECE.findall(seg)
    if not pieces or max(map(len, pieces)) < 4:
        return False
    if sum(1 for p in pieces if len(p) <= 2) > 2:
        return False
    return not any(len(p) >= 2 and p.isupper() for p in pieces[1:])


def _random_letters(word: str) -> bool:
    """Letters that read as a random identifier (``EGvFCnCccRKHqtl``), not
    words or camelCase (``IncomingPhoneNumbers``): many short case pieces."""
    if len(word) < 8 or word.islower() or word.isupper():
        return False
    pieces = _RE_CASE_PIECE.findall(word)
    short = sum(1 for p in pieces if len(p) <= 2)
    if short >= 3 and short * 2 >= len(pieces):
        return True
    if sum(1 for p in pieces if len(p) >= 2 and p.isupper()) >= 2:
        return True  # XhvrYUCpgcxGVBLg: capitals in runs here and there, no acronym style
    lower_runs = _RE_LOWER_RUN.findall(word)
    return len(lower_runs) >= 2 and sum(map(len, lower_runs)) < 2.5 * len(lower_runs)


def _split_suffix(seg: str) -> tuple[str, str]:
    """``7.json`` -> (``7``, ``.json``); ``keys:decrypt`` -> (``keys``, ``:decrypt``)."""
    if "." in seg:
        m = _RE_EXT.fullmatch(seg)
        if m:
            stem = m.group(1)
            if "." in stem and (stem.lower().endswith(".tar") or _RE_RELEASE.search(stem)):
                return seg, ""  # pkg-1.0.tar.gz: a release file's name is the value, whole
            return stem, m.group(2)
    if ":" in seg:
        m = _RE_VERB.fullmatch(seg)
        if m and not _RE_IP.fullmatch(seg):
            return m.group(1), m.group(2)
    return seg, ""


# --------------------------------------------------------------------------- response shape


_SHAPE_BITS = 128


def response_shape(body: Any) -> int | None:
    """Cheap signature of a parsed JSON response body for templating: a
    128-bit set of the top-level keys of an object (one level into a
    single-key envelope such as ``{"data": [...]}``), or of the first item
    of an array, each key hashed to one bit. ``None`` for anything trivial
    (scalars, ``{}``, ``[]``, one plain key). Values never enter it, so calls
    of one endpoint agree whatever objects they return, and two shapes are
    compared by overlap (an omitted optional key barely changes it).
    Cost: one crc32 per top-level key."""
    bits = 0
    for _ in range(2):
        if isinstance(body, list):
            if not body:
                return None
            body = body[0]
            bits |= 1 << (zlib.crc32(b"[") % _SHAPE_BITS)
        if not isinstance(body, dict) or not body:
            return None
        if len(body) == 1:
            (k, v), = body.items()
            if isinstance(v, (dict, list)):
                bits |= 1 << (zlib.crc32(b"{" + str(k).encode("utf-8", "surrogatepass")) % _SHAPE_BITS)
                body = v
                continue
            return None
        break
    if not isinstance(body, dict) or len(body) < 2:
        return None
    keys = tuple(body)
    kb = _key_bits.get(keys)
    if kb is None:
        kb = 0
        for k in keys:
            kb |= 1 << (zlib.crc32(str(k).encode("utf-8", "surrogatepass")) % _SHAPE_BITS)
        if len(_key_bits) >= 4096:
            _key_bits.clear()
        _key_bits[keys] = kb
    return bits | kb


#: the bit of a list answer (top level, or in a one-key envelope)
_LIST_BIT = 1 << (zlib.crc32(b"[") % _SHAPE_BITS)

#: key tuple -> key bits: one endpoint answers with the same keys again and again
_key_bits: dict[tuple[Any, ...], int] = {}


def shapes_alike(a: int, b: int, threshold: float = 0.7) -> bool:
    """Two response shapes with mostly the same keys (Jaccard of key bits)."""
    if a == b:
        return True
    if a >> _SHAPE_BITS != b >> _SHAPE_BITS:
        return False  # answers of different methods
    mask = (1 << _SHAPE_BITS) - 1
    a &= mask
    b &= mask
    return (a & b).bit_count() >= threshold * (a | b).bit_count()


# --------------------------------------------------------------------------- tree

_KMV = 64  # k of the k-minimum-values distinct-count sketch
_MEMBERS = 32  # values of a weak merge that keep their own subtree (a 33rd makes it open-ended)
_SHADOW_NODES = 512  # nodes of those subtrees per parameter
#: calls of a value at which its weak merge is decided again (counts over time)
_RECHECK_AT = frozenset(1 << i for i in range(5, 21))
_RESP_MAX = 8  # response shapes kept per node
_SHAPES_MAX = 8192  # response shapes tracked per host
_SAMPLE = 5


class _Param:
    """What one parameter position has seen: bounded."""

    __slots__ = ("count", "shapes", "sample", "kmv", "rule", "evidence", "weak_ok", "forms", "members", "shadow_nodes",
                 "checked")

    def __init__(self, rule: str, weak_ok: bool) -> None:
        self.count = 0
        self.shapes: Counter[str] = Counter()
        self.sample: list[str] = []
        self.kmv: list[int] = []
        self.rule = rule
        self.evidence: dict[str, Any] = {}
        self.weak_ok = weak_ok
        #: surface forms of the first values (see :func:`_form`) -> count
        self.forms: dict[Any, int] = {}
        #: a merge made on weak evidence keeps each value's own subtree (calls,
        #: methods, answers below it) while it has at most ``_MEMBERS`` values,
        #: so that later evidence can split it; None: open-ended (irrevocable)
        self.members: dict[str, _Node] | None = None
        self.shadow_nodes = 0
        self.checked = 0  # calls at the last split check (checks are spaced geometrically)

    def add(self, value: str, shape: str, n: int = 1) -> None:
        if self.count < _FORMS_OF and shape in _FORM_SHAPES:
            forms = self.forms
            for f in _forms(value):
                if f in forms or len(forms) < 16:
                    forms[f] = forms.get(f, 0) + 1
            forms[None] = forms.get(None, 0) + 1
        self.count += n
        self.shapes[shape] += n
        if len(self.sample) < _SAMPLE and value not in self.sample:
            self.sample.append(value if shape != "email" else value[:1] + "***" + value[value.index("@"):])
        h = zlib.crc32(value.encode("utf-8", "surrogatepass"))
        kmv = self.kmv
        if len(kmv) < _KMV:
            i = bisect.bisect_left(kmv, h)
            if i == len(kmv) or kmv[i] != h:
                kmv.insert(i, h)
        elif h < kmv[-1]:
            i = bisect.bisect_left(kmv, h)
            if kmv[i] != h:
                kmv.insert(i, h)
                kmv.pop()

    def merge(self, other: "_Param") -> None:
        self.count += other.count
        self.shapes.update(other.shapes)
        for v in other.sample:
            if len(self.sample) < _SAMPLE and v not in self.sample:
                self.sample.append(v)
        self.kmv = sorted(set(self.kmv) | set(other.kmv))[:_KMV]
        self.weak_ok = self.weak_ok or other.weak_ok
        forms = self.forms_()
        for f, c in other.forms_().items():
            if f in forms or len(forms) < 16:
                forms[f] = forms.get(f, 0) + c

    def forms_(self) -> dict[Any, int]:
        try:
            return self.forms
        except AttributeError:  # pickled before forms were kept
            self.forms = {}
            return self.forms

    def form_match(self, stem: str) -> bool:
        """Does a weak-shaped value look like this (strong) parameter's values?
        Random ids sometimes read as words (``tm_lrqibzdfIe4``, ``MULVXkz707``);
        they share a code prefix with, or have the letters-and-digits mix of,
        a good part (a fifth) of the values seen."""
        forms = self.forms_()
        if "=" + stem in forms:
            return True  # a value its own caller named (see ``observe``'s ``caller``)
        total = forms.get(None, 0)
        if total < 3:
            return False
        for f in _forms(stem):
            if forms.get(f, 0) * 5 >= total and forms.get(f, 0) >= 2:
                return True
        return False

    def is_known(self, value: str) -> bool:
        """Did its own caller name ``value`` here (see :meth:`note_known`)?"""
        forms = self.forms_()
        return bool(forms.get("=")) and "=" + value in forms

    def note_known(self, value: str) -> bool:
        """Remember a value its caller named as its own (bounded): later
        calls naming it, by anyone, land on this parameter. True when new."""
        forms = self.forms_()
        key = "=" + value
        if key in forms or forms.get("=", 0) >= _KNOWN_MAX:
            return False
        forms[key] = 1
        forms["="] = forms.get("=", 0) + 1
        return True

    def distinct(self) -> int:
        """Estimated number of distinct values (exact below ``_KMV``)."""
        if len(self.kmv) < _KMV:
            return len(self.kmv)
        return int((_KMV - 1) * 4294967296 / (self.kmv[-1] + 1))

    def main_shape(self) -> str:
        shapes = self.shapes
        # the first most common, as Counter.most_common(1) (without its heap)
        return max(shapes, key=shapes.__getitem__) if shapes else "other"


class _Node:
    """A trie node: literal children by segment, parameter children by suffix."""

    __slots__ = ("lit", "par", "n", "ends", "param", "resp", "dirty", "fixed", "cid")

    def __init__(self, param: _Param | None = None) -> None:
        self.lit: dict[str, _Node] = {}
        self.par: dict[str, _Node] = {}
        self.n = 0
        self.ends: dict[str, int] = {}
        self.param = param
        #: response shapes of calls ending here -> count (at most ``_RESP_MAX`` shapes)
        self.resp: dict[int, int] | None = None
        #: something new below since the last decision (else it is skipped)
        self.dirty = True
        #: literal children split out of a merge: evidence says they are fixed
        self.fixed: set[str] | None = None
        #: this node roots a stored chunk of its host's tree (see :class:`_Chunk`): its id there, else 0
        self.cid = 0


#: nodes a stored chunk of a template tree holds at most (about; a node with
#: more small children than this keeps them)
_CHUNK = 256
_STUB = -1  # ``n`` of the stand-in a chunk writes for a child chunk
_MISSING: Any = object()


class _Chunk:
    """One stored record of a host's template tree: the subtree under
    ``root`` down to the next chunk roots, which it writes as stubs (they
    are records of their own). A host's tree was one record, rewritten
    whole at every checkpoint the host was called in (0.35 s for a host of
    5,000 endpoints); a call now dirties only the chunks on its path."""

    __slots__ = ("root", "nodes")

    def __init__(self, root: _Node, nodes: int = 0) -> None:
        self.root = root
        self.nodes = nodes

    def __getstate__(self) -> _Node:
        return _cut(self.root)

    def __setstate__(self, state: _Node) -> None:
        self.root = state
        self.nodes = 0

    def __deep_size__(self) -> int:
        """Bytes for the memory budget: the chunk's own nodes, not the
        chunks below it (which are entries of their own)."""
        return 400 * max(self.nodes, 1)


def _copy_node(src: _Node) -> _Node:
    dst = _Node.__new__(_Node)
    dst.n = src.n
    dst.ends = src.ends
    dst.param = src.param  # members' subtrees are written with their parameter, whole
    dst.resp = src.resp
    dst.dirty = src.dirty
    dst.fixed = src.fixed
    dst.cid = src.cid
    return dst


def _cut(root: _Node) -> _Node:
    """A shallow copy of ``root``'s chunk for writing: child chunk roots
    are replaced by stubs carrying their id."""
    top = _copy_node(root)
    stack = [(root, top)]
    while stack:
        src, dst = stack.pop()
        for name in ("lit", "par"):
            out: dict[str, _Node] = {}
            for k, c in getattr(src, name).items():
                if c.cid:
                    stub = _Node.__new__(_Node)
                    stub.n = _STUB
                    stub.cid = c.cid
                    out[k] = stub
                else:
                    cc = _copy_node(c)
                    out[k] = cc
                    stack.append((c, cc))
            setattr(dst, name, out)
    return top


def _absorb(dst: _Node, src: _Node) -> None:
    """Union ``src``'s subtree into ``dst`` (after a merge)."""
    dst.n += src.n
    dst.dirty = True
    for m, c in src.ends.items():
        dst.ends[m] = dst.ends.get(m, 0) + c
    if src.resp:
        if dst.resp is None:
            dst.resp = {}
        for r, c in src.resp.items():
            if r in dst.resp or len(dst.resp) < _RESP_MAX:
                dst.resp[r] = dst.resp.get(r, 0) + c
    for seg, ch in src.lit.items():
        d = dst.lit.get(seg)
        if d is None:
            dst.lit[seg] = ch
        else:
            _absorb(d, ch)
    for suf, ch in src.par.items():
        d = dst.par.get(suf)
        if d is None:
            dst.par[suf] = ch
        else:
            if d.param is not None and ch.param is not None:
                d.param.merge(ch.param)
            _absorb(d, ch)


def _clone(node: _Node) -> _Node:
    """A deep copy of a subtree's structure and counters (parameters' value
    statistics are shared: they only describe, never route)."""
    c = _Node(node.param)
    c.n = node.n
    c.ends = dict(node.ends)
    c.resp = dict(node.resp) if node.resp else None
    c.lit = {s: _clone(ch) for s, ch in node.lit.items()}
    c.par = {s: _clone(ch) for s, ch in node.par.items()}
    return c


def _size(node: _Node) -> int:
    return 1 + sum(_size(c) for c in node.lit.values()) + sum(_size(c) for c in node.par.values())


def _subtract(dst: _Node, src: _Node) -> None:
    """Take ``src``'s calls (one value's own subtree) out of ``dst`` (the
    merged subtree they were counted into): a split."""
    dst.n -= src.n
    dst.dirty = True
    for m, c in src.ends.items():
        left = dst.ends.get(m, 0) - c
        if left > 0:
            dst.ends[m] = left
        else:
            dst.ends.pop(m, None)
    if src.resp and dst.resp:
        for r, c in src.resp.items():
            left = dst.resp.get(r, 0) - c
            if left > 0:
                dst.resp[r] = left
            else:
                dst.resp.pop(r, None)
    for seg, ch in src.lit.items():
        d = dst.lit.get(seg)
        if d is None:  # merged below: the parameter took it
            d = dst.par.get(_split_suffix(seg)[1]) or dst.par.get("")
        if d is not None:
            _subtract(d, ch)
    for suf, ch in src.par.items():
        d = dst.par.get(suf)
        if d is not None:
            _subtract(d, ch)
    for k in [k for k, ch in dst.lit.items() if ch.n <= 0]:
        del dst.lit[k]
    for k in [k for k, ch in dst.par.items() if ch.n <= 0]:
        del dst.par[k]


def _count_nodes(node: _Node) -> int:
    """Nodes in the subtree under ``node`` (itself included), without recursion."""
    n = 0
    stack = [node]
    pop, extend = stack.pop, stack.extend
    while stack:
        nd = pop()
        n += 1
        if nd.lit:
            extend(nd.lit.values())
        if nd.par:
            extend(nd.par.values())
    return n


# --------------------------------------------------------------------------- routes

_RE_ROUTE_PARAM = re.compile(r"\{([^}/]*)\}|<(?:[^:>]+:)?([^>]+)>|(?<![^/]):([A-Za-z_][A-Za-z0-9_]*)")


def normalize_route(route: str) -> str:
    """``/users/:id`` and ``/users/<int:id>`` -> ``/users/{id}``; strips query and fragment."""
    route = route.split("?", 1)[0].split("#", 1)[0]
    if not route.startswith("/"):
        route = "/" + route
    return _RE_ROUTE_PARAM.sub(lambda m: "{" + (m.group(1) or m.group(2) or m.group(3) or "param") + "}", route)


class _Route:
    __slots__ = ("template", "regex", "names", "literals", "count")

    def __init__(self, template: str) -> None:
        self.template = template
        self.names: list[str] = []
        parts: list[str] = []
        pos = 0
        for m in re.finditer(r"\{([^}]*)\}", template):
            parts.append(re.escape(template[pos:m.start()]))
            self.names.append(m.group(1) or f"param{len(self.names) + 1}")
            parts.append("([^/]+?)")
            pos = m.end()
        parts.append(re.escape(template[pos:]))
        self.regex = re.compile("".join(parts) + "/?")
        # literal characters outrank parameters when several routes match
        self.literals = len(re.sub(r"\{[^}]*\}", "", template))
        self.count = 0

    def match(self, path: str) -> tuple[tuple[str, str], ...] | None:
        m = self.regex.fullmatch(path)
        if m is None:
            return None
        return tuple(zip(self.names, m.groups()))


def _route_params(template: str, path: str) -> tuple[tuple[str, str], ...]:
    got = _Route(template).match(path)
    return got or ()


# --------------------------------------------------------------------------- templater

_Result = tuple[str, tuple[tuple[str, str], ...]]


class Templater:
    """Online endpoint templater (see module docstring).

    >>> t = Templater()
    >>> for p in ("/users/8812/orders/5", "/users/17/orders/9"):
    ...     t.observe("GET", "api", p)
    >>> t.resolve("GET", "api", "/users/3/orders/44")
    ('/users/{userId}/orders/{orderId}', (('userId', '3'), ('orderId', '44')))
    """

    def __init__(
        self,
        *,
        overrides: dict[str, str] | None = None,
        never_merge: list[str] | None = None,
        max_children: int = 256,
        cache_size: int = 65536,
        max_depth: int = 32,
    ) -> None:
        self.overrides = dict(overrides or {})
        self.never_merge = frozenset(never_merge or ())
        self.max_children = max_children
        self.cache_size = cache_size
        self.max_depth = max_depth
        self._override_rx = [(re.compile(fnmatch.translate(g)), normalize_route(t)) for g, t in self.overrides.items()]
        #: each host's tree (live; stored as chunks in ``_roots``)
        self._trees: dict[str, _Node] = {}
        #: the stored chunks of the trees, by (host, chunk id) (see :class:`_Chunk`);
        #: a checkpoint writes those a call or a decision touched
        self._roots: LRU[Any, _Chunk] = LRU(NO_CAP)
        #: per host: the chunk ids touched since the last checkpoint, None: all (re-chunk)
        self._touched: dict[str, set[int] | None] = {}
        self._cids: dict[str, set[int]] = {}  # per host: the chunk ids stored
        self._next_cid: dict[str, int] = {}
        self._routes: dict[str, dict[str, _Route]] = {}
        self._route_cache: dict[tuple[str, str], _Route | None] = {}
        self._cache: dict[tuple[str, str], _Result] = {}
        self._nodes = 0
        self._new_nodes = 0
        self._ops_since = 0
        self._merges = 0
        self._specific: frozenset[int] = frozenset()
        self._specific_of: dict[str, frozenset[int]] = {}
        #: per host: response shape -> bit set of the path depths it answered at
        self._shape_depths: dict[str, dict[int, int]] = {}
        self._resp_hosts: set[str] = set()
        #: (host, path) -> (nodes walked, (param, value, shape) adds) of paths seen
        #: again: replayed by ``observe`` while the tree keeps its structure
        #: (cleared on any change)
        self._walks: dict[tuple[str, str], tuple[list[_Node], list[tuple[_Param, str, str]]]] = {}
        #: the last observed walk as resolve steps (literals and strong parameters
        #: only), with the compile count then: resolve names it without walking
        self._last: tuple[tuple[str, str], list[Any], list[str], int] | None = None
        self._compiles = 0
        #: per host: bumped whenever a merge or split changes how seen paths resolve
        self._versions: dict[str, int] = {}
        self._route_version = 0
        self._splits = 0
        self._host_calls = 0  # calls of the host being decided (scratch)
        #: the last splits: (reason, values)
        self._split_log: list[tuple[str, list[str]]] = []

    def settle(self) -> None:
        """Decide now on any evidence not decided on yet (``resolve`` does
        this lazily, amortised)."""
        if self._new_nodes:
            self._compile()

    def version(self, host: str) -> int:
        """Structure version of ``host``'s templates: it changes whenever a
        path seen before may now resolve to another template (a merge, a
        split, new known routes). Cheap: callers re-key their state only
        when it moved (see :meth:`Inventory.consolidate`)."""
        return self._versions.get(host, 0) + self._route_version

    # ----------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        self._sync_chunks()
        state = {k: getattr(self, k) for k in self.__dict__}
        for k in ("_trees", "_touched", "_cids", "_next_cid"):
            state.pop(k, None)  # rebuilt from the chunks (see _after_restore)
        state["_cache"] = {}
        state["_route_cache"] = {}
        state["_walks"] = {}
        state["_last"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_specific", frozenset())
        self.__dict__.setdefault("_specific_of", {})
        self.__dict__.setdefault("_shape_depths", {})
        self.__dict__.setdefault("_resp_hosts", set())
        self._walks = {}
        self._last = None
        self.__dict__.setdefault("_compiles", 0)
        self.__dict__.setdefault("_versions", {})
        self.__dict__.setdefault("_route_version", 0)
        self.__dict__.setdefault("_splits", 0)
        self.__dict__.setdefault("_host_calls", 0)
        self.__dict__.setdefault("_split_log", [])
        self._stitch()  # a state store fills ``_roots`` later: then _after_restore stitches

    def _after_restore(self) -> None:
        """Called by :func:`apiward.state.parts.restore` once the stored
        chunks are back: the trees are put together from them."""
        self._stitch()

    # ----------------------------------------------------------------- chunks
    def _stitch(self) -> None:
        """Rebuild each host's tree from its stored chunks (stubs replaced
        by the chunks they name). A whole tree stored under the host's name
        (state from before chunks) is taken as it is and re-chunked at the
        next checkpoint."""
        self._trees = {}
        self._touched = {}
        self._cids = {}
        self._next_cid = {}
        by_host: dict[str, dict[int, _Chunk]] = {}
        legacy: list[str] = []
        for key, v in OrderedDict.items(self._roots):
            if isinstance(key, str):
                legacy.append(key)
                self._trees[key] = v  # type: ignore[assignment]
            else:
                by_host.setdefault(key[0], {})[key[1]] = v
        for host, stored in by_host.items():
            chunks = {cid: ch.root for cid, ch in stored.items()}
            for cid, node in chunks.items():
                node.cid = cid
            for ch in stored.values():
                stack = [ch.root]
                while stack:
                    n = stack.pop()
                    ch.nodes += 1
                    for d in (n.lit, n.par):
                        for k, c in d.items():
                            if c.n == _STUB:
                                real = chunks.get(c.cid)
                                if real is None:  # not stored (cannot happen short of damage): an empty node
                                    real = _Node(None)
                                d[k] = real
                            else:
                                stack.append(c)
            root = chunks.get(1)
            if root is not None:
                self._trees[host] = root
                self._cids[host] = set(chunks)
                self._next_cid[host] = max(chunks) + 1
        for host in legacy:
            del self._roots[host]  # the next checkpoint deletes it and writes the chunks
            self._touched[host] = None
        self._upgrade_nodes(list(self._trees.values()))
        for host in legacy:
            self._trees[host].cid = 1

    @staticmethod
    def _upgrade_nodes(trees: list[_Node]) -> None:
        """Attributes trees from older apiward lack."""
        stack = list(trees)
        while stack:
            n = stack.pop()
            try:
                n.dirty
            except AttributeError:
                n.dirty = True
                n.resp = None
            try:
                n.cid
            except AttributeError:
                n.cid = 0
            if n.param is not None and not hasattr(n.param, "forms"):
                n.param.forms = {}  # state written before values' forms were kept
            if n.param is not None and not hasattr(n.param, "members"):
                n.param.members = None  # ... before merges could be split
                n.param.shadow_nodes = 0
                n.param.checked = 0
            if not hasattr(n, "fixed"):
                n.fixed = None
            stack.extend(n.lit.values())
            stack.extend(n.par.values())
            if n.param is not None and n.param.members:
                stack.extend(n.param.members.values())

    def _touch_all(self, host: str) -> None:
        """``host``'s structure may have changed (a decision, an overflow):
        re-chunk it and write every chunk at the next checkpoint."""
        self._touched[host] = None

    def _touch(self, host: str, walked: list[_Node]) -> None:
        """A call counted on ``walked``: the chunks on its path changed."""
        t = self._touched.get(host, _MISSING)
        if t is None:
            return
        if t is _MISSING:
            t = self._touched[host] = set()
        for n in walked:
            if n.cid:
                t.add(n.cid)  # type: ignore[union-attr]

    def _sync_chunks(self) -> None:
        """Bring the stored chunks up to date with what was touched."""
        if not self._touched:
            return
        roots = self._roots
        for host, touched in self._touched.items():
            tree = self._trees.get(host)
            if tree is None:
                continue
            stored = self._cids.setdefault(host, set())
            if touched is None:
                live = self._rechunk(host, tree)
                for cid in stored - set(live):
                    del roots[(host, cid)]
                for cid, (node, size) in live.items():
                    key = (host, cid)
                    ch = OrderedDict.get(roots, key)
                    if ch is not None and ch.root is node:
                        ch.nodes = size
                        roots.changed(key)
                    else:
                        roots[key] = _Chunk(node, size)
                self._cids[host] = set(live)
            else:
                for cid in touched:
                    if cid in stored:
                        roots.changed((host, cid))
        self._touched = {}

    def _rechunk(self, host: str, root: _Node) -> dict[int, tuple[_Node, int]]:
        """Cut ``host``'s tree into chunks of about :data:`_CHUNK` nodes:
        chunk roots stay where they were (their records are rewritten only
        when touched); a node whose inline subtree grew past the bound has
        its largest inline children made chunk roots. Nodes under a weak
        parameter's members are written with it, never chunk roots."""
        root.cid = 1
        order: list[_Node] = []
        stack = [root]
        while stack:
            n = stack.pop()
            order.append(n)
            stack.extend(n.lit.values())
            stack.extend(n.par.values())
        inline: dict[int, int] = {}
        live: dict[int, tuple[_Node, int]] = {}
        nxt = self._next_cid.get(host, 2)
        for n in reversed(order):  # children before their parents
            size = 1
            p = n.param
            if p is not None and p.members:
                size += self._members_size(p)
            kids = []
            for c in (*n.lit.values(), *n.par.values()):
                if not c.cid:
                    k = inline[id(c)]
                    size += k
                    kids.append((k, c))
            if size > _CHUNK and kids:
                kids.sort(key=lambda kc: -kc[0])
                for k, c in kids:
                    if size <= _CHUNK or k < 8:
                        break
                    c.cid = nxt
                    nxt += 1
                    live[c.cid] = (c, k)
                    size -= k
            if n.cid and n is not root:
                live[n.cid] = (n, size)
            inline[id(n)] = size
        live[1] = (root, inline[id(root)])
        self._next_cid[host] = nxt
        return live

    @staticmethod
    def _members_size(p: _Param) -> int:
        """Nodes of a weak parameter's member subtrees (made plain nodes:
        they are written with the parameter)."""
        size = 0
        stack = list(p.members.values()) if p.members else []
        while stack:
            n = stack.pop()
            n.cid = 0
            size += 1
            stack.extend(n.lit.values())
            stack.extend(n.par.values())
        return size

    def add_routes(self, routes: list[str], host: str = "") -> None:
        """Known templates (a provided spec, ``http.route``); they win over learning."""
        table = self._routes.setdefault(host, {})
        for r in routes:
            t = normalize_route(r)
            if t not in table:
                table[t] = _Route(t)
        self._route_version += 1
        self._route_cache.clear()
        self._cache.clear()
        self._walks.clear()

    def _match_route(self, host: str, path: str) -> tuple[_Route, tuple[tuple[str, str], ...]] | None:
        key = (host, path)
        if key in self._route_cache:
            r = self._route_cache[key]
            return None if r is None else (r, r.match(path) or ())
        got = self._match_route_scan(host, path)
        if len(self._route_cache) >= self.cache_size:
            self._route_cache.clear()
        self._route_cache[key] = None if got is None else got[0]
        return got

    def _match_route_scan(self, host: str, path: str) -> tuple[_Route, tuple[tuple[str, str], ...]] | None:
        best: tuple[_Route, tuple[tuple[str, str], ...]] | None = None
        for h in (host, ""):
            table = self._routes.get(h)
            if not table:
                continue
            for r in table.values():
                got = r.match(path)
                if got is not None and (best is None or r.literals > best[0].literals):
                    best = (r, got)
            if best is not None:
                return best
        return None

    # ----------------------------------------------------------------- learning
    def observe(
        self, method: str, host: str, path: str, *, route: str = "", response_shape: int | None = None,
        caller: str = "",
    ) -> None:
        """Learn from one call. Cheap when the raw path was seen before.

        ``caller``: the authenticated principal's name, when known. A path
        segment naming the caller (``/alice/calendar`` or
        ``/users/alice/settings`` called by alice) is an identifier whatever
        its shape: a name at that place is a value of a parameter.

        ``response_shape`` (see :func:`response_shape`) is the shape of a 2xx
        JSON response, when there is one: siblings answering alike are
        evidence of one parameter, siblings answering differently of
        distinct resources."""
        self._ops_since += 1
        path = path.split("?", 1)[0]
        if route:
            t = normalize_route(route)
            table = self._routes.setdefault(host, {})
            r = table.get(t)
            if r is None:
                r = table[t] = _Route(t)
                self._route_version += 1
                self._cache.clear()
                self._route_cache.clear()
                self._walks.clear()
            r.count += 1
            return
        if self._routes and self._match_route(host, path) is not None:
            return
        key = (host, path)
        hit = self._walks.get(key)
        if hit is not None and not (caller and caller in path):  # (a caller named in it: walk, it may teach)
            # seen before and the tree kept its structure: the walk would take
            # the same nodes and add the same values; replay its counters
            walked, adds, leaves, sh_walked, roots = hit
            self._touch(host, walked)  # counters change in place: the chunks on the path
            for n in walked:
                n.n += 1
            for n in sh_walked:
                n.n += 1
            recheck = False
            for n in roots:
                if n.n in _RECHECK_AT:
                    recheck = True
            if recheck:  # counts over time are evidence too: decide again
                self._new_nodes += 1
                for n in walked:
                    n.dirty = True
            for p, v, sh in adds:
                p.add(v, sh)
            self._last = None
            self._observed(method, host, walked, walked[-1], response_shape, False, leaves)
            return
        root = self._trees.get(host)
        if root is None:
            root = self._trees[host] = _Node()
            root.cid = 1
            self._touched[host] = None
            self._nodes += 1
        node = root
        node.n += 1
        never = self.never_merge
        top: str | None = None  # None: at the root; "": after a parameter; else the previous literal
        walked = [root]
        adds: list[tuple[_Param, str, str]] = []
        fresh = False
        replayable = True  # same nodes and adds next time, unless the tree changes
        steps: list[Any] | None = []  # what resolve would walk (see _name_walk), None: something else
        values: list[str] = []
        segs = _segments(path, self.max_depth)
        shadows: list[tuple[_Param, _Node, int]] | None = None  # (weak param, value's subtree, next segment)
        for depth, seg in enumerate(segs):
            child = node.lit.get(seg)
            if child is not None:
                if caller and seg == caller and "" in node.par and (
                        _mergeable(*_stem_shape(seg)) or (top and _is_plural(top))):
                    # a literal its own caller names, beside a parameter: one of its values
                    slot = node.par[""].param
                    if slot is not None and slot.note_known(seg):
                        self._new_nodes += 1
                        fresh = True
                if steps is not None:
                    if child.param is None:
                        steps.append(seg)
                    else:
                        steps = None
            else:
                if steps is not None and (seg[:1] == "." or "." in seg or ":" in seg or "-" in seg):
                    steps = None  # formats, verbs, numbered segments: resolve walks them
                stem, suf = _split_suffix(seg)
                if suf[:1] == ".":
                    child = node.lit.get(stem + _FMT)  # Calls.{format}
                    if child is not None:
                        node = child
                        node.n += 1
                        walked.append(node)
                        top = ""
                        continue
                m = _RE_NUMBERED.fullmatch(stem) if "-" in stem else None  # needs a dash
                if m is not None:
                    child = node.lit.get(m.group(1) + _NUM + suf)  # page-{pageNumber}.atom
                    if child is not None:
                        child.param.add(m.group(2), "int")  # type: ignore[union-attr]
                        adds.append((child.param, m.group(2), "int"))  # type: ignore[arg-type]
                        node = child
                        node.n += 1
                        walked.append(node)
                        top = ""
                        continue
                shape = self._shape(stem, depth, node, top is None or (bool(top) and _is_top_literal(top)))
                named_caller = False
                if stem in never or seg in never:
                    shape = "literal"
                elif caller and stem == caller and shape not in STRONG and (
                        _mergeable(stem, shape) or (top and "" in node.par and _is_plural(top) and shape == "word")):
                    # an identifier, whatever it looks like (a user named like an API
                    # word, /accounts/admin, only where a collection already takes values)
                    shape, named_caller = "mixed", True
                if suf[:1] == "." and suf not in node.par and _FMT in node.par:
                    suf = _FMT
                elif suf and suf not in node.par and "" in node.par and node.par[""].param.weak_ok:  # type: ignore[union-attr]
                    stem, suf, shape = seg, "", segment_shape(seg)
                if shape in STRONG:
                    child = node.par.get(suf)
                    if child is None:
                        child = node.par[suf] = _Node(_Param("shape", weak_ok=False))
                        child.param.evidence = {"shape": shape}  # type: ignore[union-attr]
                        self._nodes += 1
                        self._cache.clear()
                        fresh = True
                    child.param.add(stem, shape)  # type: ignore[union-attr]
                    adds.append((child.param, stem, shape))  # type: ignore[arg-type]
                    if named_caller and child.param.note_known(stem):  # type: ignore[union-attr]
                        self._cache.clear()  # it resolved as a literal until now
                    members = child.param.members  # type: ignore[union-attr]
                    if members is not None:  # a weak merge's values: each keeps its subtree
                        m = members.get(seg)
                        if m is None:
                            if len(members) >= _MEMBERS:
                                child.param.members = None  # type: ignore[union-attr]  # open-ended
                            else:
                                m = members[seg] = _Node()
                                child.param.shadow_nodes += 1  # type: ignore[union-attr]
                            fresh = True
                        if m is not None:
                            if shadows is None:
                                shadows = []
                            shadows.append((child.param, m, depth + 1))  # type: ignore[arg-type]
                    if steps is not None:
                        if suf or child.param.weak_ok:  # type: ignore[union-attr]
                            steps = None
                        else:
                            steps.append(child.param)
                            values.append(stem)
                else:
                    pc = node.par.get(suf)
                    if pc is not None and pc.param is not None and ((_mergeable(stem, shape) and (
                            pc.param.weak_ok or pc.param.form_match(stem))) or pc.param.is_known(stem)):
                        child = pc
                        steps = None
                        pp = pc.param
                        if not pp.weak_ok:
                            replayable = False  # joined by form: decided per call
                        pp.add(stem, shape)
                        adds.append((pp, stem, shape))
                        members = pp.members
                        if members is not None:
                            m = members.get(seg)
                            if m is None:
                                if len(members) >= _MEMBERS:
                                    pp.members = None  # open-ended: no split any more
                                    fresh = True
                                else:
                                    m = members[seg] = _Node()
                                    pp.shadow_nodes += 1
                                    fresh = True
                            if m is not None:
                                if shadows is None:
                                    shadows = []
                                shadows.append((pp, m, depth + 1))
                    else:
                        child = node.lit[seg] = _Node()
                        self._nodes += 1
                        self._new_nodes += 1
                        fresh = True
                        if steps is not None:
                            steps.append(seg)
                        if len(node.lit) > self.max_children:
                            replayable = False
                            steps = None
                            self._overflow(node, seg, host)
                            child = node.lit.get(seg) or node.par.get(suf) or child
            node = child
            node.n += 1
            walked.append(node)
            top = seg if node.param is None else ""  # decided lazily: _is_top_literal(top)
        leaves: list[_Node] = []
        sh_walked: list[_Node] = []
        roots: list[_Node] = []
        if shadows is not None:
            for pp, m, start in shadows:
                if pp.members is None:
                    continue
                m.n += 1
                roots.append(m)
                if m.n in _RECHECK_AT:
                    self._new_nodes += 1
                    fresh = True
                sh = self._shadow(pp, m, segs, start, adds)
                if sh is None:
                    fresh = True
                    continue
                walked_sh, created = sh
                sh_walked.append(m)
                sh_walked.extend(walked_sh)
                leaves.append(walked_sh[-1] if walked_sh else m)
                fresh = fresh or created
            if fresh:
                replayable = False
        self._last = None if steps is None else (key, steps, values, self._compiles)
        self._touch(host, walked)
        if fresh:
            self._walks.clear()  # new structure: earlier walks may go elsewhere now
        if replayable and key in self._cache:  # resolved before: likely to come again
            if len(self._walks) >= self.cache_size:
                self._walks.clear()
            self._walks[key] = (walked, adds, leaves, sh_walked, roots)
        self._observed(method, host, walked, node, response_shape, fresh, leaves)

    def _shadow(self, p: _Param, member: _Node, segs: list[str], start: int,
                adds: list[tuple[_Param, str, str]]) -> tuple[list[_Node], bool] | None:
        """Follow the rest of a path in one value's own subtree of a weak
        parameter (see ``_Param.members``): literal segments as literals,
        strong-shaped ones as parameters. None when the parameter's subtrees
        grew past their bound (it is then open-ended: never split)."""
        out: list[_Node] = []
        created = False
        cur = member
        for seg in segs[start:]:
            nxt = cur.lit.get(seg)
            if nxt is None:
                stem, suf = _stem_shape(seg)[0], _split_suffix(seg)[1]
                shape = _stem_shape(seg)[1]
                if shape in STRONG:
                    nxt = cur.par.get(suf)
                    if nxt is None:
                        nxt = cur.par[suf] = _Node(_Param("shape", weak_ok=False))
                        nxt.param.evidence = {"shape": shape}  # type: ignore[union-attr]
                        p.shadow_nodes += 1
                        created = True
                    nxt.param.add(stem, shape)  # type: ignore[union-attr]
                    adds.append((nxt.param, stem, shape))  # type: ignore[arg-type]
                else:
                    if p.shadow_nodes >= _SHADOW_NODES:
                        p.members = None
                        return None
                    nxt = cur.lit[seg] = _Node()
                    p.shadow_nodes += 1
                    created = True
            nxt.n += 1
            out.append(nxt)
            cur = nxt
        return out, created

    def _observed(self, method: str, host: str, walked: list[_Node], node: _Node,
                  response_shape: int | None, fresh: bool, leaves: list[_Node] | None = None) -> None:
        """The end of ``observe``: count the method and response shape at the
        leaf (and at the leaves of the values' own subtrees, ``leaves``)."""
        if not node.ends:
            fresh = True
        node.ends[method] = node.ends.get(method, 0) + 1
        if leaves:
            for lf in leaves:
                lf.ends[method] = lf.ends.get(method, 0) + 1
                if response_shape:
                    r = response_shape | (_method_tags.get(method) or _method_tag(method))
                    resp = lf.resp
                    if resp is None:
                        resp = lf.resp = {}
                    if r in resp or len(resp) < _RESP_MAX:
                        resp[r] = resp.get(r, 0) + 1
        if response_shape:
            # one endpoint answers per method: keep the method with the shape
            response_shape |= _method_tags.get(method) or _method_tag(method)
            resp = node.resp
            if resp is None:
                resp = node.resp = {}
            c = resp.get(response_shape)
            if c is not None:
                resp[response_shape] = c + 1
            elif len(resp) < _RESP_MAX:
                resp[response_shape] = 1
                self._new_nodes += 1  # new evidence: worth a re-decision
                self._resp_hosts.add(host)
                fresh = True
                depths = self._shape_depths.get(host)
                if depths is None:
                    depths = self._shape_depths[host] = {}
                d = depths.get(response_shape)
                if d is not None or len(depths) < _SHAPES_MAX:
                    depths[response_shape] = (d or 0) | (1 << min(len(walked) - 1, 62))
        if fresh:
            for n in walked:
                n.dirty = True

    def _shape(self, stem: str, depth: int, parent: _Node, top: bool = False) -> str:
        shape = _shape_cache.get(stem)
        if shape is None:
            shape = segment_shape(stem)
            if len(_shape_cache) > 100_000:
                _shape_cache.clear()
            _shape_cache[stem] = shape
        if shape == "nlslug" and (top or (_RE_COMPOUND.fullmatch(stem) and _TITLE_WORDS.isdisjoint(_RE_SEP.split(stem)))):
            # /time_entry_value_types at the top, /payment-method-transaction-log
            # anywhere: a compound resource name reads like a short title; it
            # needs evidence (a title position keeps bringing new values)
            return "slug"
        if shape == "int" and len(stem) <= 2 and depth == 0:
            return "version"  # /2/tweets, /1/...
        if shape == "semver":
            # 1.14.6: an API version at the top, a release number elsewhere
            return "version" if depth == 0 or top else "decimal"
        if shape == "date" and depth == 0:
            return "version"  # /2015-02-01/file-systems
        if shape == "decimal" and depth == 0 and _RE_SHORT_DECIMAL.fullmatch(stem):
            return "version"  # /2.0/files
        return shape

    def _overflow(self, node: _Node, seg: str, host: str = "") -> None:
        """Too many distinct literals at one position: an open-ended value set."""
        self._walks.clear()
        self._versions[host] = self._versions.get(host, 0) + 1
        self._touch_all(host)
        weak = [s for s in node.lit if _mergeable(*_stem_shape(s))]
        self._merge(node, weak, "overflow", {"distinct_literals": len(node.lit)})

    # ----------------------------------------------------------------- deciding
    def _maybe_compile(self) -> None:
        if self._new_nodes and self._ops_since * 8 >= self._nodes:
            self._compile()

    def _compile(self) -> None:
        """Re-decide weak positions from the evidence gathered so far."""
        self._new_nodes = 0
        self._ops_since = 0
        self._compiles += 1
        self._walks.clear()  # merges move nodes and values
        before = self._merges
        for host, root in self._trees.items():
            if host in self._resp_hosts or host not in self._specific_of:
                # shapes answered at one or two depths name an endpoint; a shape
                # answered at many depths is an envelope every endpoint shares
                depths = self._shape_depths.get(host, {})
                self._specific_of[host] = frozenset(r for r, d in depths.items() if d.bit_count() <= 2)
            self._specific = self._specific_of[host]
            self._host_calls = root.n
            if not root.dirty:
                continue  # nothing new under this host since it was last decided
            self._touch_all(host)  # deciding changes nodes in place (merges, splits, flags)
            m0 = self._merges
            count0 = _count_nodes(root)
            for _ in range(3):
                if not self._decide(root, "", "root", 0):
                    break
            if self._merges != m0:
                self._versions[host] = self._versions.get(host, 0) + 1
                # merges fold subtrees together: the node count falls by what
                # this host lost (hosts not decided keep theirs: no full walk)
                self._nodes = max(0, self._nodes - (count0 - _count_nodes(root)))
        self._resp_hosts.clear()
        self._specific = frozenset()
        if self._merges != before:
            self._cache.clear()

    def _decide(self, node: _Node, parent_text: str, parent_kind: str, depth: int) -> bool:
        """Post-order: deeper positions first, so that a parent compares
        sibling subtrees that are already templated. Subtrees with nothing
        new since the last decision are skipped. True when something merged
        below (the caller decides again)."""
        if not node.dirty:
            return False
        m = self._merges
        for seg, ch in node.lit.items():
            if ch.dirty:
                if _stem_shape(seg)[1] == "version" or seg.lower() in ("api", "rest", "services") or (
                        parent_kind == "root" and _RE_SHORT_DECIMAL.fullmatch(seg)):
                    # resource names follow a version, wherever it is; values
                    # there need the evidence asked after the root
                    self._decide(ch, seg, "version", depth + 1)
                else:
                    self._decide(ch, seg, "literal", depth + 1)
        recheck = [suf for suf, ch in node.par.items()
                   if ch.dirty and ch.param is not None and ch.param.members and ch.param.weak_ok
                   and ch.n >= ch.param.checked + max(4, ch.param.checked >> 1)]
        for ch in node.par.values():
            if ch.dirty:
                self._decide(ch, "", "param", depth + 1)
        for suf in recheck:
            self._check_split(node, suf)
        exts = [suf for suf in node.par if suf.startswith(".") and suf != _FMT]
        if len(exts) >= 2 or (exts and _FMT in node.par):
            self._merge_extensions(node, exts)
        self._merge_numbered(node)
        self._merge_formats(node)
        if len(node.lit) >= 2 or (node.lit and node.par):
            self._decide_here(node, parent_text, parent_kind, depth)
        node.dirty = changed = self._merges != m
        return changed

    def _decide_here(self, node: _Node, parent_text: str, parent_kind: str, depth: int) -> None:
        fixed = node.fixed or ()
        slot = node.par.get("")
        if slot is not None and slot.param is not None and slot.param.forms_().get("=", 0):
            forms = slot.param.forms_()
            named = [s for s in node.lit if "=" + s in forms and s not in fixed and s not in self.never_merge]
            if named:  # literals their own callers named: values of the slot
                self._merge(node, named, "caller", {"named_by_caller": len(named)}, keep_strong=True)
        cands = [s for s in node.lit if _mergeable(*_stem_shape(s)) and s not in self.never_merge and s not in fixed]
        if len(cands) >= 2:
            cands = _drop_namespaced(cands)
        if len(cands) < 2 and not (cands and node.par):
            return
        strong_sibling = any(p.param is not None and not p.param.weak_ok for p in node.par.values())
        weak_slot = next((p for p in node.par.values() if p.param is not None and p.param.weak_ok), None)
        top = parent_kind in ("root", "version")
        cands = [s for s in cands if not _collection_like(s, node.lit[s], parent_kind)]
        strong_slot = node.par.get("")
        if strong_slot is not None and strong_slot.param is not None and not strong_slot.param.weak_ok:
            # literals seen before the slot knew its values' forms
            p = strong_slot.param
            join = [s for s in cands if _split_suffix(s)[1] == "" and p.form_match(s)]
            ok, resp_ev = self._answers_agree([node.lit[s] for s in join], strong_slot)
            if join and ok:
                self._merge(node, join, "value-form", {"joined": len(join), **resp_ev}, keep_strong=True)
                cands = [s for s in cands if s not in join]
            if strong_slot.lit or strong_slot.par:
                # a value with the slot's own structure below it (/scores/weekly-lava/comments
                # beside /scores/{id}/comments): one more value of the slot
                # (a plural word there names a sub-collection; a slug ending in one
                # (rosa-drafts) is a value)
                join = [x for x in cands if (node.lit[x].lit or node.lit[x].par)
                        and not (_RE_WORD.fullmatch(_stem_shape(x)[0]) and _is_plural(_stem_shape(x)[0]))
                        and _within(node.lit[x], strong_slot)]
                if join:
                    join = [x for x in join if self._answers_agree([node.lit[x], strong_slot])[0]]
                if join:
                    self._merge(node, join, "joins-structure", {"joined": len(join), "parent": parent_text or parent_kind})
                    cands = [s for s in cands if s not in join]
        if weak_slot is not None:
            # a position already known to take words: a non-vocabulary word with
            # the slot's structure joins it
            # (parameter positions count: the slot already shows values go here);
            # so does a leaf word when the slot is clearly open-ended, the word
            # gets no method the slot does not, and it is called no more than
            # a value is (a fixed resource there is called again and again)
            slot_sig = _signature_keys(weak_slot, self._specific, params=True)
            sp = weak_slot.param
            assert sp is not None
            distinct = sp.distinct()
            per_value = weak_slot.n / max(1, distinct)
            slot_methods = weak_slot.ends.keys()
            join = []
            for x in cands:
                ch = node.lit[x]
                if ch.lit or ch.par or ch.resp:
                    if _signature_keys(ch, self._specific, params=True) & slot_sig:
                        join.append(x)
                        continue
                if (not ch.lit and not ch.par and distinct >= 8 and ch.ends and ch.ends.keys() <= slot_methods
                        and ch.n <= max(3.0, 4 * per_value) and not _is_plural(_stem_shape(x)[0])):
                    join.append(x)
            if join:
                ok, resp_ev = self._answers_agree([node.lit[x] for x in join] + [weak_slot])
                if not ok:  # one by one
                    join = [x for x in join if self._answers_agree([node.lit[x], weak_slot])[0]]
                    ok = bool(join)
                if ok:
                    self._merge(node, join, "joins-slot", {"slot_values": distinct, **resp_ev})
            cands = [x for x in cands if x not in join]
        with_sub = [s for s in cands if node.lit[s].lit or node.lit[s].par]
        plural_cands = [s for s in with_sub if _is_plural(_stem_shape(s)[0])]
        # /v1/payments, /rankings/schools: collection names, not values; but a
        # few words of a value set that happen to end in "s" (atlas, cosmos)
        # are no collection names when most of their siblings are not plural
        if top or (len(plural_cands) < 8 and len(plural_cands) * 2 >= len(with_sub)):
            cands = [s for s in cands if s not in plural_cands]
        if top:  # (also before anything was called below them)
            cands = [s for s in cands if not _is_plural(_stem_shape(s)[0])]
        plural = parent_kind == "literal" and _is_plural(parent_text)
        if parent_kind == "literal":
            need = 2 if plural else 3
        elif parent_kind == "param":
            need = 3
        else:  # root, api, version
            need = 4
        if strong_sibling:
            need = max(need, 4)
        # 1) structure: siblings whose subtrees share literal segments
        parent_of = {s: s for s in cands}

        def find(x: str) -> str:
            while parent_of[x] != x:
                parent_of[x] = parent_of[parent_of[x]]
                x = parent_of[x]
            return x

        buckets: dict[Any, str] = {}
        # answering alike is evidence below a literal or a parameter; at the
        # top every collection may answer with the same list envelope
        # (object answers still count after a version: a collection answers
        # a list, one object of a parameter answers like its siblings;
        # after a version only: right under the root a whole API's resources
        # may answer with one generic object)
        if parent_kind == "version":
            specific = frozenset(r for r in self._specific if not r & _LIST_BIT)
        else:
            specific = frozenset() if top else self._specific
        sigs: dict[str, set[Any]] = {}
        for s in cands:
            ch = node.lit[s]
            # a name directly followed by ids reads as a collection: answering
            # alike (a generic object) is not enough, shared literal structure is
            idc = any(p.param is not None and not p.param.weak_ok for p in ch.par.values())
            keys = sigs[s] = _signature_keys(ch, frozenset() if idc else specific)
            for k in keys:
                o = buckets.setdefault(k, s)
                if o != s:
                    ra, rb = find(o), find(s)
                    if ra != rb and _alike(sigs[o], keys):
                        parent_of[ra] = rb
        groups: dict[str, list[str]] = {}
        for s in cands:
            groups.setdefault(find(s), []).append(s)
        merged: set[str] = set()
        for members in groups.values():
            if len(members) < 2:
                continue
            if len(members) >= need or len(members) >= 8:
                ok, resp_ev = self._answers_agree([node.lit[s] for s in members])
                if not ok:
                    continue
                ev = {"shared_structure": len(members), "needed": need, "parent": parent_text or parent_kind, **resp_ev}
                self._merge(node, members, "sibling-structure", ev)
                merged.update(members)
        # 2) cardinality: an open-ended set of values, leaves or siblings with
        # the same structure below (parameters included: /builds/{id}/<slug>/{n})
        rest = [x for x in cands if x not in merged]
        if top or parent_kind == "param":
            # collection names (and sub-collections of an object) are plural
            # nouns; a value is rarely one
            rest = [x for x in rest if not _is_plural(_stem_shape(x)[0])]
        leaves = [x for x in rest if not node.lit[x].lit and not node.lit[x].par]
        groups2: list[list[str]] = [leaves] if len(leaves) >= 2 else []
        # values with structure below them: after a value or a plural
        # collection only (a fixed set of resources under a singular noun,
        # /object/<resource>/{id}, looks open-ended while each is new)
        inner = [x for x in rest if x not in leaves] if parent_kind == "param" or plural else []
        if len(inner) >= 2:
            parent_of = {x: x for x in inner}
            buckets = {}
            for x in inner:
                for key in _signature_keys(node.lit[x], params=True):
                    o = buckets.setdefault(key, x)
                    if o != x:
                        ra, rb = find(o), find(x)
                        if ra != rb:
                            parent_of[ra] = rb
            by_root: dict[str, list[str]] = {}
            for x in inner:
                by_root.setdefault(find(x), []).append(x)
            groups2.extend(g for g in by_root.values() if len(g) >= 2)
        for group in groups2:
            self._cardinality(node, group, group is leaves, parent_text, parent_kind, plural, strong_sibling,
                              weak_slot)

    def _cardinality(self, node: _Node, group: list[str], is_leaves: bool, parent_text: str, parent_kind: str,
                     plural: bool, strong_sibling: bool, weak_slot: _Node | None) -> None:
        """Good-Turing: f1/n estimates how often the next call brings a new
        value; a fixed set of resource names drives it to zero as calls
        accumulate, an open-ended set of values keeps it high."""
        k = len(group)
        n = sum(node.lit[x].n for x in group)
        f1 = sum(1 for x in group if node.lit[x].n == 1)
        if weak_slot is not None and weak_slot.ends:
            need, open_ended = 3, f1 * 4 >= n
        elif plural and not strong_sibling:
            need, open_ended = 3, f1 * 10 >= 2 * n or n < 4 * k
        elif parent_kind == "literal":
            need, open_ended = (4 if plural else 6), f1 * 10 >= 3 * n
        elif parent_kind == "param":
            # after a value: actions and sub-resources are a small set
            # called again and again, values keep coming
            need, open_ended = 6, f1 * 10 >= 4 * n
        else:
            # after the root or a version: the API must have been exercised
            # well beyond these values before singletons say "open-ended"
            # (or so many values, nearly all seen once, that no API has that
            # many resource names there)
            need, open_ended = 8, f1 * 10 >= 5 * n and (self._host_calls >= 3 * n or (k >= 24 and f1 * 10 >= 7 * n))
        if not is_leaves:
            need = max(need, 4)
        if k < need or not open_ended:
            return
        ok, resp_ev = self._answers_agree([node.lit[x] for x in group])
        if ok:
            ev = {("distinct_leaves" if is_leaves else "distinct_values"): k, "singletons": f1, "calls": n,
                  "needed": need, "parent": parent_text or parent_kind, **resp_ev}
            self._merge(node, group, "leaf-cardinality" if is_leaves else "cardinality", ev)

    def _check_split(self, node: _Node, suf: str) -> None:
        """Undo (part of) a merge made on weak evidence when later evidence
        contradicts it: the values form a closed set (every one called again
        and again, as fixed pages or resources are), or some values never
        reach the endpoints the others commonly reach, or answer unlike
        them. The contradicting values get their own subtrees back as
        literals (and stay literal at this position: ``node.fixed``)."""
        pn = node.par.get(suf)
        if pn is None or pn.param is None or not pn.param.members:
            return
        p = pn.param
        p.checked = pn.n
        members = p.members
        assert members is not None
        names = list(members)
        nodes = [members[x] for x in names]
        reason = ""
        out: list[str] = []
        if _closed_set(nodes):
            out, reason = names, "closed-set"
        else:
            checked, misses = _coverage_misses(nodes)
            if checked and len(misses) * 10 >= checked * _COVERAGE_VETO and len(misses) >= 2:
                out, reason = [names[i] for i in misses], "coverage"
            else:
                # one value alone can contradict the merge when its miss is
                # far beyond chance (a resource among values)
                checked, misses = _coverage_misses(nodes, p_miss=_SPLIT_P)
                if misses and len(misses) * 2 < checked:
                    out, reason = [names[i] for i in misses], "coverage"
            if not out and self._specific:
                bad = _answer_outliers([_answers(x, self._specific) for x in nodes])
                if bad:
                    out, reason = [names[i] for i in bad], "response-shapes"
        if reason == "coverage":
            out = _not_narrower(out, names, nodes)
        if not out:
            return
        if len(out) >= len(names) - 1:
            out = names  # one value left is no parameter
        for x in out:
            m = members.pop(x)
            _subtract(pn, m)
            p.count = max(0, p.count - m.n)
            m.dirty = True
            m.param = None
            d = node.lit.get(x)
            if d is None:
                node.lit[x] = m
            else:
                _absorb(d, m)
            if node.fixed is None:
                node.fixed = set()
            node.fixed.add(x)
        if not members:
            del node.par[suf]
        else:
            p.evidence = {**p.evidence, "split": {"reason": reason, "values": sorted(out)[:10]}}
        self._split_log.append((reason, sorted(out)[:10]))
        if len(self._split_log) > 64:
            del self._split_log[:32]
        self._merges += 1
        self._splits += 1
        self._cache.clear()

    def _answers_agree(self, nodes: list[_Node], slot: _Node | None = None) -> tuple[bool, dict[str, Any]]:
        """Do these sibling subtrees answer alike where they answer at the same
        place, and does each cover the endpoints the others get? Unlike
        answers veto a merge (distinct resources), and so do well-called
        siblings that never reach endpoints common in the others (values of
        one parameter reach the same endpoints). The counts go into the
        evidence. ``slot``: the parameter they would join, if any."""
        ev: dict[str, Any] = {}
        if _closed_set(nodes):
            ev["closed_set"] = {"values": len(nodes), "calls": sum(x.n for x in nodes)}
            return False, ev
        group = nodes if slot is None else nodes + [slot]
        checked, missing = _coverage(group)
        if checked:
            ev["coverage"] = {"siblings_checked": checked, "missing_common_endpoints": missing}
            if missing * 10 >= checked * _COVERAGE_VETO and missing >= 2:
                return False, ev
        if not self._specific:
            return True, ev
        comparable, unlike = _answer_conflicts([_answers(n, self._specific) for n in group])
        if not comparable:
            return True, ev
        ev["response_shapes"] = {"pairs_alike": comparable - unlike, "pairs_unlike": unlike}
        return unlike * 2 < comparable, ev

    def _merge(self, node: _Node, segs: list[str], rule: str, evidence: dict[str, Any], keep_strong: bool = False) -> None:
        by_suffix: dict[str, list[str]] = {}
        whole: set[str] = set()
        sufs = [_split_suffix(s)[1] for s in segs]
        plain = "" in node.par or "" in sufs
        counts = Counter(sufs)
        for s, suf in zip(segs, sufs):
            if suf[:1] == ":" and suf not in node.par and plain and counts[suf] == 1:
                # a ``:suffix`` only one value has, beside plain values: part of the value
                # (``account:alice`` beside ``account:temp-12``), not a custom verb (``{id}:cancel``)
                suf = ""
                whole.add(s)
            by_suffix.setdefault(suf, []).append(s)
        for suf, group in by_suffix.items():
            target = node.par.get(suf)
            if target is None:
                target = node.par[suf] = _Node(_Param(rule, weak_ok=True))
                target.param.evidence = dict(evidence)  # type: ignore[union-attr]
                if rule in _SPLITTABLE:
                    target.param.members = {}  # type: ignore[union-attr]
            p = target.param
            assert p is not None
            if rule not in _SPLITTABLE:
                p.members = None
            if keep_strong:
                if rule not in p.rule:
                    p.rule = f"{p.rule}+{rule}"
                p.evidence = {**p.evidence, "joined_by": rule, **evidence}
            elif not p.weak_ok:
                p.weak_ok = True
                p.evidence = {**p.evidence, "joined_by": rule, **evidence}
                p.rule = f"{p.rule}+{rule}"
            siblings = [s for s in node.lit if s not in group]
            p.evidence["literal_siblings"] = sorted(siblings)[:10]
            for s in group:
                child = node.lit.pop(s)
                stem, shape = (s, segment_shape(s)) if s in whole else _stem_shape(s)
                p.add(stem, shape, max(1, child.n))
                child.param = None
                members = p.members
                if members is not None:
                    size = _size(child)
                    if len(members) < _MEMBERS and p.shadow_nodes + size <= _SHADOW_NODES:
                        members[s] = _clone(child)
                        p.shadow_nodes += size
                    else:
                        p.members = None
                _absorb(target, child)
        self._merges += 1
        self._cache.clear()

    def _merge_numbered(self, node: _Node) -> None:
        """``page-3.atom``, ``page-17.atom``: a word and a number in one
        segment, the word fixed and the number varying, is a literal prefix
        and a parameter (``page-{pageNumber}.atom``). Value diversity
        decides: the numbers vary (two distinct ones after the same lowercase
        word) while the words do not (at most two words at the position);
        when the words vary too (``amber-12``, ``cedar-7``, ``ember-3``) the
        whole segment is one value (a slug) and is left to the other rules.
        Ids with a code prefix (``INV-0042``, ``cus_8f3k``) are not of this
        form."""
        groups: dict[str, list[str]] = {}
        for seg in node.lit:
            stem, suf = _split_suffix(seg)
            m = _RE_NUMBERED.fullmatch(stem) if "-" in stem else None
            if m is not None:
                groups.setdefault(m.group(1) + _NUM + suf, []).append(seg)
        if not groups:
            return
        words = {k.split(_NUM, 1)[0] for k in groups} | {k.split(_NUM, 1)[0] for k in node.lit if _NUM in k}
        for key, segs in groups.items():
            target = node.lit.get(key)
            if target is None:
                if len(segs) < 2 or len(words) > 2:
                    continue
                target = node.lit[key] = _Node(_Param("numbered-segment", weak_ok=False))
                target.param.evidence = {"prefix": key.split(_NUM, 1)[0], "distinct_numbers": len(segs)}  # type: ignore[union-attr]
            for seg in segs:
                ch = node.lit.pop(seg)
                num = _RE_NUMBERED.fullmatch(_split_suffix(seg)[0]).group(2)  # type: ignore[union-attr]
                target.param.add(num, "int", max(1, ch.n))  # type: ignore[union-attr]
                ch.param = None
                _absorb(target, ch)
            self._merges += 1
            self._cache.clear()

    def _merge_formats(self, node: _Node) -> None:
        """``Calls.json``, ``Calls.csv``: one resource in several formats, the
        extension is a parameter (``Calls.{format}``)."""
        by_stem: dict[str, list[str]] = {}
        for seg in node.lit:
            stem, suf = _split_suffix(seg)
            if suf[:1] == "." and not seg.endswith(_FMT):
                by_stem.setdefault(stem, []).append(seg)
        for stem, segs in by_stem.items():
            target = node.lit.get(stem + _FMT)
            if len(segs) < 2 and target is None:
                continue
            if target is None:
                target = node.lit[stem + _FMT] = _Node(_Param("format-extension", weak_ok=True))
                target.param.evidence = {"formats": sorted(_split_suffix(s)[1] for s in segs)}  # type: ignore[union-attr]
            for seg in segs:
                ch = node.lit.pop(seg)
                target.param.add(_split_suffix(seg)[1][1:], "word", max(1, ch.n))  # type: ignore[union-attr]
                _absorb(target, ch)
            self._merges += 1
            self._cache.clear()

    def _merge_extensions(self, node: _Node, exts: list[str]) -> None:
        """``{file}.pdf`` and ``{file}.png`` at one position: the extension is
        part of the value (``{file}``) when each value comes in one format;
        when the same values come in several formats (``AC12.json``,
        ``AC12.csv``), or the values are identifiers rather than names, it is
        a parameter of its own (``{id}.{format}``)."""
        params = [node.par[e].param for e in exts if node.par[e].param is not None]
        hashes = [set(p.kmv) for p in params]  # type: ignore[union-attr]
        ids = all(p.main_shape() in ID_SHAPES for p in params)  # type: ignore[union-attr]
        if _FMT in node.par or ids or _values_recur(hashes):
            target = node.par.get(_FMT)
            if target is None:
                target = node.par[_FMT] = _Node(_Param("format-extension", weak_ok=False))
                target.param.evidence = {"formats": sorted(exts), "same_values_in_several_formats": True}  # type: ignore[union-attr]
            assert target.param is not None
            for suf in exts:
                ch = node.par.pop(suf)
                if ch.param is not None:
                    target.param.merge(ch.param)
                ch.param = None
                _absorb(target, ch)
            self._merges += 1
            self._cache.clear()
            return
        if sum(len(h) for h in hashes) < 8:
            return  # too few values yet to tell file names from formats
        target = node.par.get("")
        if target is None:
            target = node.par[""] = _Node(_Param("extensions-vary", weak_ok=True))
            target.param.evidence = {"extensions": sorted(exts)}  # type: ignore[union-attr]
        assert target.param is not None
        target.param.weak_ok = True
        target.param.members = None
        for suf in exts:
            ch = node.par.pop(suf)
            if ch.param is not None:
                target.param.merge(ch.param)
            ch.param = None
            _absorb(target, ch)
        self._merges += 1
        self._cache.clear()

    # ----------------------------------------------------------------- resolving
    def resolve(self, method: str, host: str, path: str, *, route: str = "") -> _Result:
        """Template and path parameters of one call: ``("/users/{userId}", (("userId", "8812"),))``."""
        path = path.split("?", 1)[0]
        if route:
            t = normalize_route(route)
            return t, _route_params(t, path)
        key = (host, path)
        hit = self._cache.get(key)
        if hit is not None and not self._new_nodes:
            return hit
        if self._new_nodes:
            self._maybe_compile()
            hit = self._cache.get(key)
            if hit is not None:
                return hit
        last = self._last
        if last is not None and last[0] == key and last[3] == self._compiles and not self._routes and not self._override_rx:
            res = _name_walk(last[1], last[2])  # just observed, nothing decided since
        else:
            res = self._resolve(host, path)
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[key] = res
        return res

    def _resolve(self, host: str, path: str) -> _Result:
        """Walk the tree to one step per segment (a literal, or a parameter
        with its main shape), then name the steps (memoised per sequence of
        steps: naming depends on nothing else)."""
        for rx, tmpl in self._override_rx:
            if rx.match(path):
                return tmpl, _route_params(tmpl, path)
        if self._routes:
            got = self._match_route(host, path)
            if got is not None:
                return got[0].template, got[1]
        node: _Node | None = self._trees.get(host)
        steps: list[Any] = []  # str: literal; ("F", stem): stem.{format}; ("N", prefix, key); ("P", shape, suffix)
        values: list[str] = []
        never = self.never_merge
        top = True
        for depth, seg in enumerate(_segments(path, self.max_depth)):
            nxt = node.lit.get(seg) if node is not None else None
            if nxt is not None:
                steps.append(seg)
                node = nxt
                top = _is_top_literal(seg)
                continue
            stem, suf = _split_suffix(seg)
            fmt = ""
            if suf[:1] == "." and node is not None:
                nxt = node.lit.get(stem + _FMT)
                if nxt is not None:
                    steps.append(("F", stem))
                    values.append(suf[1:])
                    node, top = nxt, False
                    continue
                if suf not in node.par and _FMT in node.par:
                    fmt, suf = suf, _FMT
            if node is not None:
                m = _RE_NUMBERED.fullmatch(stem) if "-" in stem else None
                if m is not None:
                    key = m.group(1) + _NUM + suf
                    nxt = node.lit.get(key)
                    if nxt is not None:
                        steps.append(("N", m.group(1), key))
                        values.append(m.group(2))
                        node, top = nxt, False
                        continue
            if suf and node is not None and suf not in node.par and "" in node.par:
                # an unknown ``:suffix`` where a plain parameter is learned: the whole segment is
                # the candidate value (``account:alice`` beside ``account:temp-12``), judged below
                stem, suf = seg, ""
            pn = node.par.get(suf) if node is not None else None
            shape = ""
            if pn is not None and pn.param is not None and not pn.param.weak_ok:
                shape = self._shape(stem, depth, node, top)  # type: ignore[arg-type]
                if shape not in STRONG and not (_mergeable(stem, shape) and stem not in never
                                                and pn.param.form_match(stem)) and not pn.param.is_known(stem):
                    pn = None
            elif pn is not None:
                shape = segment_shape(stem)
                if (not _mergeable(stem, shape) or stem in never) and not pn.param.is_known(stem):  # type: ignore[union-attr]
                    pn = None
            if pn is None:
                node = None
                if not shape:
                    shape = self._shape(stem, depth, _EMPTY, top)
                if shape not in STRONG or stem in never or seg in never:
                    steps.append(seg)
                    top = _is_top_literal(seg)
                    continue
                main = shape
            else:
                node = pn
                main = pn.param.main_shape()  # type: ignore[union-attr]
            steps.append(("P", main, suf))
            values.append(stem)
            if suf == _FMT:
                values.append(fmt[1:] or _split_suffix(seg)[1][1:])
            top = False
        skey = tuple(steps)
        named = _named.get(skey)
        if named is None:
            named = _name_steps(skey)
            if len(_named) >= 16384:
                _named.clear()
            _named[skey] = named
        template, names = named
        return template, tuple(zip(names, values))

    # ----------------------------------------------------------------- reporting
    def templates(self) -> list[tuple[str, str, str]]:
        """All endpoints seen: (host, method, template), learned and routed."""
        self._compile()
        out: set[tuple[str, str, str]] = set()
        for host, root in self._trees.items():
            for tmpl, node, _ in self._walk(root):
                for m in node.ends:
                    out.add((host, m, tmpl))
        for host, table in self._routes.items():
            for r in table.values():
                if r.count:
                    out.add((host, "*", r.template))
        return sorted(out)

    def explain(self) -> list[dict[str, Any]]:
        """Every parameter position with the evidence that made it one."""
        self._compile()
        out: list[dict[str, Any]] = []
        for host, root in self._trees.items():
            for tmpl, node, position in self._walk(root):
                p = node.param
                if p is None:
                    continue
                out.append({
                    "host": host,
                    "template": tmpl,
                    "position": position,
                    "param": tmpl.rsplit("{", 1)[1].split("}", 1)[0],
                    "rule": p.rule,
                    "shapes": dict(p.shapes),
                    "cardinality": p.distinct(),
                    "count": p.count,
                    "sample": list(p.sample),
                    "evidence": dict(p.evidence),
                })
        return out

    def _walk(self, root: _Node) -> Iterator[tuple[str, _Node, int]]:  # noqa: C901
        stack: list[tuple[_Node, list[str], str, bool, set[str]]] = [(root, [], "", False, set())]
        while stack:
            node, segs, prev, prev_param, names = stack.pop()
            for seg, ch in node.lit.items():
                if seg.endswith(_FMT):
                    fname = _unique("format", names)
                    s2 = segs + [seg[: -len(_FMT)] + ".{" + fname + "}"]
                    yield "/" + "/".join(s2), ch, len(segs) if ch.param is not None else -1
                    stack.append((ch, s2, seg[: -len(_FMT)], False, names | {fname}))
                    continue
                if _NUM in seg:
                    nname = _unique(_numbered_name(seg.split(_NUM, 1)[0]), names)
                    s2 = segs + [seg.replace(_NUM, "{" + nname + "}")]
                    yield "/" + "/".join(s2), ch, len(segs)
                    stack.append((ch, s2, "", True, names | {nname}))
                    continue
                s2 = segs + [seg]
                yield "/" + "/".join(s2), ch, -1
                stack.append((ch, s2, *_naming_prev(seg, prev, prev_param), names))
            for suf, ch in node.par.items():
                nparams = sum(1 for s in segs if s.startswith("{"))
                name = _param_name(prev, prev_param, ch.param.main_shape() if ch.param else "other",
                                   len(segs), nparams + 1, names)
                if suf == _FMT:
                    fname = _unique("format", names | {name})
                    s2 = segs + ["{" + name + "}.{" + fname + "}"]
                    names2 = names | {name, fname}
                else:
                    s2 = segs + ["{" + name + "}" + suf]
                    names2 = names | {name}
                yield "/" + "/".join(s2), ch, len(segs)
                stack.append((ch, s2, "", True, names2))


_EMPTY = _Node()
_FMT = ".{}"  # key of a format parameter: node.par[_FMT] is {id}.{format}, node.lit[stem + _FMT] is stem.{format}
_NUM = "{#}"  # in a literal key: ``page-{#}.atom`` is ``page-{pageNumber}.atom``


def _values_recur(hashes: list[set[int]]) -> bool:
    """Do the value samples of several positions share values?"""
    seen: set[int] = set()
    for h in hashes:
        if seen & h:
            return True
        seen |= h
    return False


_FORMS_OF = 256  # values whose forms are counted per parameter
_KNOWN_MAX = 1024  # values named by their own caller, kept per parameter
_FORM_SHAPES = frozenset({"mixed", "token", "hex", "wordnum", "slug", "word"})
_RE_CODE_PREFIX = re.compile(r"([a-z]{2,5}|[A-Z]{2,5})_(?=.)")
_RE_LOWER = re.compile(r"[a-z]")
_RE_UPPER = re.compile(r"[A-Z]")


def _forms(value: str) -> tuple[Any, ...]:
    """Surface forms of an id-like value: its code prefix (``cus_``) and
    its mix of lower case, upper case and digits when it has letters and
    digits and 6+ characters. Plain words have no form."""
    out: list[Any] = []
    m = _RE_CODE_PREFIX.match(value)
    if m is not None:
        out.append(m.group(0))
    if len(value) >= 6 and _RE_HAS_DIGIT.search(value) and _RE_HAS_ALPHA.search(value):
        out.append((_RE_LOWER.search(value) is not None, _RE_UPPER.search(value) is not None))
    return tuple(out)


def _numbered_name(prefix: str) -> str:
    """``page-`` -> ``pageNumber``."""
    return (_camel(prefix.strip("-_")) or "param") + "Number"


def _unique(base: str, used: set[str]) -> str:
    name, i = base, 2
    while name in used:
        name = f"{base}{i}"
        i += 1
    return name
_TOP_WORDS = frozenset({"api", "apis", "rest", "services", "service", "public", "private", "internal"})


def _is_top_literal(seg: str) -> bool:
    """A literal after which resource names (not values) come: a version or ``api``."""
    got = _top_cache.get(seg)
    if got is None:
        got = seg.lower() in _TOP_WORDS or _stem_shape(seg)[1] == "version" or bool(_RE_SHORT_DECIMAL.fullmatch(seg))
        if len(_top_cache) > 100_000:
            _top_cache.clear()
        _top_cache[seg] = got
    return got


_top_cache: dict[str, bool] = {}
_RE_SHORT_DECIMAL = re.compile(r"\d{1,2}\.\d{1,2}")  # 2.0, 1.1: a version at the root


def _segments(path: str, max_depth: int) -> list[str]:
    segs = [s for s in path.split("/") if s]
    if len(segs) > max_depth:
        segs = segs[: max_depth - 1] + ["/".join(segs[max_depth - 1:])]
    return segs


_stem_cache: dict[str, tuple[str, str]] = {}
_shape_cache: dict[str, str] = {}


def _stem_shape(seg: str) -> tuple[str, str]:
    got = _stem_cache.get(seg)
    if got is None:
        stem = _split_suffix(seg)[0]
        got = (stem, segment_shape(stem))
        if len(_stem_cache) > 100_000:
            _stem_cache.clear()
        _stem_cache[seg] = got
    return got


def _collection_like(seg: str, node: _Node, parent_kind: str) -> bool:
    """``/v1/payments/{id}``: a plural noun (or any word right under the root
    or a version, or one that is POSTed to) directly followed by an
    identifier names a collection."""
    if not any(p.param is not None and not p.param.weak_ok for p in node.par.values()):
        return False
    # POST to it and ids below it: HTTP's create-in-a-collection, whatever the noun
    return parent_kind in ("root", "version") or _is_plural(_split_suffix(seg)[0]) or "POST" in node.ends


_RE_NAMESPACED = re.compile(r"([A-Za-z][A-Za-z0-9_]{2,})\.([a-z][a-z0-9]*(?:_[a-z0-9]+)+|[a-z]+[A-Z][A-Za-z]*|[A-Z][A-Za-z0-9]+)")


def _drop_namespaced(cands: list[str]) -> list[str]:
    """Names in one namespace (``air_rest_services.get_download``,
    ``air_rest_services.get_map``; ``Microsoft.Web``, ``Microsoft.Sql``):
    siblings sharing the part before the dot, with a compound or
    capitalised word after it, are the procedures of an RPC-style API or
    the providers of a platform: fixed names, never values."""
    prefixes: dict[str, int] = {}
    for c in cands:
        if "." in c:
            m = _RE_NAMESPACED.fullmatch(c)
            if m is not None:
                prefixes[m.group(1)] = prefixes.get(m.group(1), 0) + 1
    if not prefixes or max(prefixes.values()) < 2:
        return cands
    out = []
    for c in cands:
        m = _RE_NAMESPACED.fullmatch(c) if "." in c else None
        if m is None or prefixes[m.group(1)] < 2:
            out.append(c)
    return out


def _mergeable(stem: str, shape: str) -> bool:
    """May this weak value become a parameter value on evidence? Never API
    versions, API vocabulary, or server pages (``anadir.jsp``, ``index.php``:
    a script's file name names an endpoint, never a value)."""
    return (shape != "version" and stem.lower() not in VOCAB and shape != "literal" and "{" not in stem
            and not ("." in stem and _RE_PAGE.fullmatch(stem)))


#: server-side pages: the file name is the endpoint
_RE_PAGE = re.compile(r"[^.]+\.(?:jsp|jspx|jsf|php[345]?|phtml|aspx?|ashx|asmx|axd|cgi|pl|do|action|cfm|shtml|nsf)",
                      re.IGNORECASE)


def _main_shapes(node: _Node) -> list[int]:
    """Response shapes of at least a fifth of the calls ending at ``node``."""
    resp = node.resp
    if not resp:
        return []
    total = sum(resp.values())
    return [r for r, c in resp.items() if c * 5 >= total]


def _signature_keys(node: _Node, specific: frozenset[int] = frozenset(), depth: int = 4, limit: int = 48,
                    params: bool = False) -> set[Any]:
    """Structure below a node: (suffix length, position, literal) triples of
    its literal-bearing suffixes, and ("r", suffix length, shape) for the
    specific response shapes answered below it. Siblings sharing a key share
    structure (or answer like one another)."""
    keys: set[Any] = set()
    suffixes: list[tuple[str, ...]] = []
    stack: list[tuple[_Node, tuple[str, ...]]] = [(node, ())]
    while stack and len(suffixes) < limit:
        cur, suf = stack.pop()
        if cur.resp and specific:
            for r in _main_shapes(cur):
                if r in specific:
                    keys.add(("r", suf, r))
        if suf and cur.ends:
            suffixes.append(suf)
        if len(suf) >= depth:
            if suf not in suffixes:
                suffixes.append(suf)
            continue
        for seg, ch in cur.lit.items():
            stack.append((ch, suf + (seg,)))
        for sfx, ch in cur.par.items():
            stack.append((ch, suf + ("{}" + sfx,)))
    for suf in suffixes:
        n = len(suf)
        for i, tok in enumerate(suf):
            if tok.startswith("{}"):
                if params:
                    keys.add((n, i, tok))
            elif not _is_top_literal(tok):
                # (a version or "api" below siblings says they are APIs of
                # their own, /fitness/v1, /youtube/v3, not values)
                keys.add((n, i, tok))
    return keys


def _within(value: _Node, slot: _Node, depth: int = 4, limit: int = 32) -> bool:
    """Do most endpoints below ``value`` (up to ``depth`` segments on) exist
    below ``slot`` too? A value of the slot reaches the slot's endpoints; a
    resource of its own has endpoints of its own. Exact walks, so a slot
    holding thousands of endpoints is matched as well as a small one."""
    found = total = 0
    stack: list[tuple[_Node, _Node | None, int]] = [(value, slot, 0)]
    while stack and total < limit:
        cur, mirror, d = stack.pop()
        if d and cur.ends:
            total += 1
            if mirror is not None and mirror.ends:
                found += 1
        if d >= depth:
            continue
        for seg, ch in cur.lit.items():
            m = None
            if mirror is not None:
                m = mirror.lit.get(seg)
                if m is None:
                    m = mirror.par.get(_split_suffix(seg)[1]) or mirror.par.get("")
            stack.append((ch, m, d + 1))
        for sfx, ch in cur.par.items():
            stack.append((ch, mirror.par.get(sfx) if mirror is not None else None, d + 1))
    return total > 0 and found * 2 > total


def _alike(a: set[Any], b: set[Any]) -> bool:
    """Do two siblings share most of their structure (half the keys of the
    smaller)? Values of one parameter have the same endpoints below them;
    different resources (or APIs) share a word or two at most."""
    common = len(a & b)
    return common * 2 >= min(len(a), len(b))


def _answers(node: _Node, specific: frozenset[int], depth: int = 3, limit: int = 32) -> dict[tuple[str, ...], list[int]]:
    """Specific response shapes answered below a node, by relative suffix."""
    out: dict[tuple[str, ...], list[int]] = {}
    stack: list[tuple[_Node, tuple[str, ...]]] = [(node, ())]
    while stack and len(out) < limit:
        cur, suf = stack.pop()
        if cur.resp:
            got = [r for r in _main_shapes(cur) if r in specific]
            if got:
                out[suf] = got
        if len(suf) < depth:
            for seg, ch in cur.lit.items():
                stack.append((ch, suf + (seg,)))
            for sfx, ch in cur.par.items():
                stack.append((ch, suf + ("{}" + sfx,)))
    return out


_SPLITTABLE = frozenset({"sibling-structure", "leaf-cardinality", "cardinality", "joins-slot"})
_COVERAGE_VETO = 3  # tenths of checked siblings missing common endpoints that veto a merge
_COVERAGE_P = 0.01  # a miss this unlikely under "one parameter" counts
_SPLIT_P = 1e-5  # ... and this unlikely splits one value out of a merge on its own


def _profile(node: _Node, depth: int = 3, limit: int = 64) -> dict[tuple[Any, ...], int]:
    """Calls ending below a node by (relative suffix, method)."""
    out: dict[tuple[Any, ...], int] = {}
    stack: list[tuple[_Node, tuple[str, ...]]] = [(node, ())]
    while stack and len(out) < limit:
        cur, suf = stack.pop()
        for m, c in cur.ends.items():
            out[(suf, m)] = c
        if len(suf) < depth:
            for seg, ch in cur.lit.items():
                stack.append((ch, suf + (seg,)))
            for sfx, ch in cur.par.items():
                stack.append((ch, suf + ("{}" + sfx,)))
    return out


def _unify(profs: list[dict[tuple[Any, ...], int]]) -> list[dict[tuple[Any, ...], int]]:
    """Profiles made comparable across siblings, position by position below
    each sibling's first segment: where some sibling's subtree has a
    parameter after a relative prefix (``collections/{}``), the literals
    there in the others are read as that parameter; where the siblings put
    three or more different literals, those that fewer than half of them
    have (``collections/journal``, ``collections/todo``: values each subtree
    saw too few of to merge on its own) are read as one parameter. Literals
    most siblings share (``records``) stay. Without this, one heavily used
    value's own names below it make the other values "miss" endpoints."""
    depth = max((len(suf) for pr in profs for suf, _m in pr), default=0)
    cur = [{(tuple(suf), m): c for (suf, m), c in pr.items()} for pr in profs]
    for i in range(1, depth):
        params: dict[tuple[str, ...], str] = {}
        holders: dict[tuple[str, ...], dict[str, set[int]]] = {}
        for j, pr in enumerate(cur):
            for suf, _m in pr:
                if len(suf) <= i:
                    continue
                seg = suf[i]
                if seg.startswith("{}"):
                    params.setdefault(suf[:i], seg)
                else:
                    holders.setdefault(suf[:i], {}).setdefault(seg, set()).add(j)
        repl: dict[tuple[tuple[str, ...], str], str] = {}
        for prefix, segs in holders.items():
            p = params.get(prefix)
            if p is not None:
                for seg in segs:
                    repl[(prefix, seg)] = p
            elif len(segs) >= 3:
                having = len(set().union(*segs.values()))
                for seg, js in segs.items():
                    if len(js) * 2 < having:
                        repl[(prefix, seg)] = "{}"
        if not repl:
            continue
        nxt = []
        for pr in cur:
            q: dict[tuple[Any, ...], int] = {}
            for (suf, m), c in pr.items():
                if len(suf) > i:
                    r = repl.get((suf[:i], suf[i]))
                    if r is not None:
                        suf = suf[:i] + (r,) + suf[i + 1:]
                k = (suf, m)
                q[k] = q.get(k, 0) + c
            nxt.append(q)
        cur = nxt
    return cur


def _coverage(nodes: list[_Node], cap: int = 48) -> tuple[int, int]:
    """(siblings checked, siblings missing an endpoint the others make common):
    if they were values of one parameter, each call of a value would reach
    the endpoints in proportion to their share among the others, so a value
    with ``n`` calls misses an endpoint of share ``p`` with chance ``(1-p)^n``;
    misses rarer than ``_COVERAGE_P`` count."""
    profs = _unify([_profile(n) for n in nodes[:cap]])
    if len(profs) < 2:
        return 0, 0
    total: dict[tuple[Any, ...], int] = {}
    for pr in profs:
        for k, c in pr.items():
            total[k] = total.get(k, 0) + c
    grand = sum(total.values())
    checked = missing = 0
    for pr in profs:
        n = sum(pr.values())
        rest = grand - n
        if n < 3 or rest <= 0:
            continue
        checked += 1
        for k, c in total.items():
            if k in pr:
                continue
            share = c / rest
            if share < 1.0 and (1.0 - share) ** n < _COVERAGE_P:
                missing += 1
                break
    return checked, missing


def _not_narrower(out: list[str], names: list[str], nodes: list[_Node], rich: int = 3) -> list[str]:
    """The values of ``out`` (missing endpoints the others reach) that are
    not merely used more narrowly: a value reaching several endpoints below
    it, every one of which the others reach too (a shared catalogue that
    customers only read, a collection one team only appends to), is a value
    called by fewer kinds of caller, not a resource of its own; a resource
    of its own reaches endpoints of its own, or only itself."""
    profs = _unify([_profile(n) for n in nodes[:48]])
    if len(profs) < len(names):
        return out
    keep = []
    for x in out:
        i = names.index(x)
        mine = {k for k in profs[i] if k[0]}
        others: set[Any] = set()
        for j, pr in enumerate(profs):
            if j != i:
                others.update(pr)
        if len(mine) >= rich and mine <= others:
            continue
        keep.append(x)
    return keep


def _coverage_misses(nodes: list[_Node], cap: int = 48, p_miss: float = 0.01) -> tuple[int, list[int]]:
    """As :func:`_coverage`, with the indices of the siblings that miss
    (with chance below ``p_miss`` under "one parameter")."""
    profs = _unify([_profile(n) for n in nodes[:cap]])
    if len(profs) < 2:
        return 0, []
    total: dict[tuple[Any, ...], int] = {}
    for pr in profs:
        for k, c in pr.items():
            total[k] = total.get(k, 0) + c
    grand = sum(total.values())
    checked = 0
    misses: list[int] = []
    for i, pr in enumerate(profs):
        n = sum(pr.values())
        rest = grand - n
        if n < 3 or rest <= 0:
            continue
        checked += 1
        for k, c in total.items():
            if k not in pr and (1.0 - c / rest) ** n < p_miss and c < rest:
                misses.append(i)
                break
    return checked, misses


_CLOSED_MAX = 24  # a closed set of fixed names is small
_CLOSED_MIN_CALLS = 30  # ... and each of them is called again and again


def _closed_set(nodes: list[_Node]) -> bool:
    """Counts over time: a handful of leaf siblings each called many times
    (and no value called rarely) is a fixed set of names (pages, files,
    actions), not values of a parameter, which keep bringing new, rarely
    repeated values. Siblings with structure below them are left to the
    structure, coverage and response evidence."""
    k = len(nodes)
    if k < 2 or k > _CLOSED_MAX:
        return False
    for x in nodes:
        if x.n < _CLOSED_MIN_CALLS or x.lit or x.par:
            return False  # values sharing structure below are values, however often called
    return True


def _answer_outliers(profiles: list[dict[tuple[str, ...], list[int]]], cap: int = 24) -> list[int]:
    """Siblings answering unlike most of those they can be compared with,
    when answers disagree overall (see :func:`_answer_conflicts`)."""
    ps = profiles[:cap]
    comparable = [0] * len(ps)
    unlike = [0] * len(ps)
    for i in range(len(ps)):
        a = ps[i]
        if not a:
            continue
        for j in range(i + 1, len(ps)):
            b = ps[j]
            common = a.keys() & b.keys() if b else ()
            if not common:
                continue
            comparable[i] += 1
            comparable[j] += 1
            if any(_unlike(a[suf], b[suf]) for suf in common):
                unlike[i] += 1
                unlike[j] += 1
    pairs = sum(comparable) // 2
    conflicts = sum(unlike) // 2
    if not pairs or conflicts * 2 < pairs:
        return []
    return [i for i in range(len(ps)) if comparable[i] >= 2 and unlike[i] * 2 > comparable[i]]


def _answer_conflicts(profiles: list[dict[tuple[str, ...], list[int]]], cap: int = 24) -> tuple[int, int]:
    """(pairs answering at a common suffix, of which answering unlike) among
    the first ``cap`` profiles: distinct resources answer with distinct shapes."""
    comparable = conflicts = 0
    ps = [p for p in profiles if p][:cap]
    for i in range(len(ps)):
        a = ps[i]
        for j in range(i + 1, len(ps)):
            b = ps[j]
            common = a.keys() & b.keys()
            if not common:
                continue
            comparable += 1
            for suf in common:
                if _unlike(a[suf], b[suf]):
                    conflicts += 1
                    break
    return comparable, conflicts


def _unlike(xs: list[int], ys: list[int]) -> bool:
    """Some method answers differently at both places (shapes carry their method tag)."""
    methods = {x >> _SHAPE_BITS for x in xs} & {y >> _SHAPE_BITS for y in ys}
    for m in methods:
        if not any(shapes_alike(x, y) for x in xs if x >> _SHAPE_BITS == m for y in ys if y >> _SHAPE_BITS == m):
            return True
    return False


_method_tags: dict[str, int] = {}


def _method_tag(method: str) -> int:
    """The method as bits above the shape bits."""
    tag = _method_tags.get(method)
    if tag is None:
        tag = _method_tags[method] = (1 + zlib.crc32(method.encode()) % 4093) << _SHAPE_BITS
    return tag


_name_cache: dict[tuple[str, bool, str, bool, int], str] = {}


_named: dict[tuple[Any, ...], tuple[str, tuple[str, ...]]] = {}


def _name_walk(steps: list[Any], values: list[str]) -> _Result:
    """``_resolve``'s answer for a walk ``observe`` just took: literals (str)
    and strong parameters (their main shape is read now)."""
    skey = tuple(s if type(s) is str else ("P", s.main_shape(), "") for s in steps)
    named = _named.get(skey)
    if named is None:
        named = _name_steps(skey)
        if len(_named) >= 16384:
            _named.clear()
        _named[skey] = named
    return named[0], tuple(zip(named[1], values))


def _name_steps(steps: tuple[Any, ...]) -> tuple[str, tuple[str, ...]]:
    """Template and parameter names of a resolved walk (see ``Templater._resolve``)."""
    out: list[str] = []
    names_list: list[str] = []
    names: set[str] = set()
    prev = ""
    prev_param = False
    for depth, st in enumerate(steps):
        if type(st) is str:
            out.append(st)
            prev, prev_param = _naming_prev(st, prev, prev_param)
            continue
        kind = st[0]
        if kind == "F":
            name = _unique("format", names)
            names.add(name)
            names_list.append(name)
            out.append(st[1] + ".{" + name + "}")
            prev, prev_param = st[1], False
            continue
        if kind == "N":
            name = _unique(_numbered_name(st[1]), names)
            names.add(name)
            names_list.append(name)
            out.append(st[2].replace(_NUM, "{" + name + "}"))
            prev, prev_param = "", True
            continue
        _, main, suf = st
        name = _param_name(prev, prev_param, main, depth, len(names_list) + 1, names)
        names.add(name)
        names_list.append(name)
        if suf == _FMT:
            fname = _unique("format", names)
            names.add(fname)
            names_list.append(fname)
            out.append("{" + name + "}.{" + fname + "}")
        else:
            out.append("{" + name + "}" + suf)
        prev, prev_param = "", True
    return "/" + "/".join(out), tuple(names_list)


def _naming_prev(seg: str, prev: str, prev_param: bool) -> tuple[str, bool]:
    """What names a parameter after literal ``seg``: the segment itself,
    unless it is an API version or ``api`` (``/accounts/v2/{accountId}``:
    the noun before it names the value; ``/v2/{id}``: nothing does)."""
    if _is_top_literal(seg):
        return (prev, prev_param) if prev and not prev_param else ("", False)
    return seg, False


def _param_name(prev: str, prev_param: bool, shape: str, depth: int, index: int, used: set[str]) -> str:
    key = (prev, prev_param, shape, depth == 0, index)
    base = _name_cache.get(key)
    if base is None:
        base = _param_base(prev, prev_param, shape, depth, index)
        if len(_name_cache) > 65536:
            _name_cache.clear()
        _name_cache[key] = base
    if base not in used:
        return base
    return _unique(base, used)


def _param_base(prev: str, prev_param: bool, shape: str, depth: int, index: int) -> str:
    if prev and not prev_param:
        base = _camel(singular(_split_suffix(prev)[0]))
        if not base or not base[0].isalpha():
            base = "id" if shape in ID_SHAPES else f"param{index}"
        elif shape in ID_SHAPES:
            base += "Id"
        elif shape == "email" and "mail" not in base.lower():
            base += "Email"
        elif shape == "date" and "date" not in base.lower():
            base += "Date"
    elif depth == 0:
        base = {"email": "email", "date": "date", "slug": "slug", "nlslug": "slug",
                "word": "name", "dotted": "name", "text": "query"}.get(shape, "id")
    else:
        base = "id" if index == 1 and shape in ID_SHAPES else f"param{index}"
    return base
