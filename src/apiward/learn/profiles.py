"""What a parameter's values normally look like, and how far a value is
from that.

A :class:`ValueProfile` summarises the values one parameter of one endpoint
took: their kinds (int, uuid, email, text...), lengths, the punctuation
characters they use, their shapes (character classes with runs collapsed:
``"Jamón 42"`` -> ``"Aa 9"``), digests of the exact values when there are few (enums; values themselves
are never kept, so a profile does not become a store of secrets)
and numeric ranges. :meth:`ValueProfile.score` says how unusual a new value
is, from 0 (like the rest) to 1 (nothing like it), with the reasons.

Adapting to change: each kind, character, shape and enum value keeps a small
set of the actors that used it. A feature counts as normal once
``min(min_actors, actors seen on this parameter)`` distinct actors used it,
so a new format that many users send becomes normal, while a character or
value only one actor ever sent stays anomalous however often it repeats.

Secrets (``secret=True`` in :meth:`ValueProfile.score`, decided by the
caller from the parameter's name) whose values vary freely are random by
design: only over-long values and string-ending characters count there.

Cost: :func:`value_features` is cached for repeated values; learning a value
is a handful of dict updates (about 1 µs). Judging one is a few set lookups
when it is normal in every respect (:meth:`ValueProfile.normal`: each
categorical keeps the set of its features with full actor support, so
"all characters supported" is one subset test) and one lookup for a value
the profile already found normal (``ok``, in memory only, never saved);
the full :meth:`ValueProfile.score` with reasons runs only for the rest.
"""

from __future__ import annotations

import re
from itertools import groupby
from typing import Any

from apiward.learn.sketches import LogHistogram, Moments, SmallSet, key_hash

__all__ = ["ValueProfile", "Features", "value_features", "value_kind", "DANGEROUS_CHARS", "SECRET_SYNTAX_CHARS"]

#: Characters that carry syntax in SQL, shells, HTML, templates or paths.
DANGEROUS_CHARS = frozenset("'\"<>;()`|&$%{}[]\\\r\n\x00*=#!^~")
#: Characters that end a string or statement (quotes, ``;``, ``|``, angle
#: brackets, backslash, line breaks, NUL): the only ones whose novelty still
#: counts in a free-form secret. Password rules ask for ``!#$%&*?@``; a
#: quote breaking out of the query a secret is checked in does not follow.
SECRET_SYNTAX_CHARS = frozenset("'\"`;|<>\\\r\n\x00")

_SHAPE_TABLE = str.maketrans(
    {**{chr(c): "A" for c in range(65, 91)}, **{chr(c): "a" for c in range(97, 123)}, **{chr(c): "9" for c in range(48, 58)}}
)
_INT = re.compile(r"[+-]?\d{1,18}")
_FLOAT = re.compile(r"[+-]?(?:\d+[.,]\d*|\.\d+)(?:[eE][+-]?\d+)?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"(?:0x)?[0-9a-fA-F]{8,}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,}")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,15}://\S+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_DIGIT = re.compile(r"\d")
_MIXED = re.compile(r"[Aa]*(?:9[Aa]|[Aa]9)[Aa9]*")
_SHAPE_MAX = 24
_CACHE_MAX = 16384
#: Values a profile remembers as normal (in memory only).
OK_MAX = 256

Features = tuple[str, int, frozenset[str], str, str, int]  # kind, length, specials, shape, word shape, value digest


_CLASSES = frozenset("Aa9 ")
_NO_SPECIALS: frozenset[str] = frozenset()


def _kind_of(value: str, s: str, specials: frozenset[str]) -> str:
    """Kind from the value and its class-translated form ``s``."""
    if not value:
        return "empty"
    if not specials:
        # Only letters, digits and spaces: decide from the classes alone.
        if " " in s:
            return "text"
        if "A" not in s and "a" not in s and s.isascii():
            return "int" if len(value) <= 18 else "alnum"
        if value in ("true", "false", "True", "False"):
            return "bool"
        if "9" not in s:
            return "alpha"
        return "hex" if _HEX.fullmatch(value) else "alnum"
    v = value
    if _INT.fullmatch(v):
        return "int"
    if _FLOAT.fullmatch(v):
        return "float"
    if len(v) == 36 and _UUID.fullmatch(v):
        return "uuid"
    if _DATE.fullmatch(v):
        return "date"
    if "@" in v and _EMAIL.fullmatch(v):
        return "email"
    if "://" in v and _URL.fullmatch(v):
        return "url"
    if " " in v:
        return "text"
    if len(v) >= 16 and _B64.fullmatch(v) and _DIGIT.search(v):
        return "token"
    return "other"


def value_kind(value: str) -> str:
    """A coarse type: ``empty``, ``bool``, ``int``, ``float``, ``uuid``,
    ``hex``, ``date``, ``email``, ``url``, ``alpha``, ``alnum``, ``token``
    (base64-ish), ``text`` (words with spaces) or ``other``."""
    return value_features(value)[0]


def word_shape(shape: str) -> str:
    """A coarser shape: each word becomes ``A`` (capitalised or upper),
    ``a`` (lower), ``9`` (digits) or ``x`` (letters and digits mixed, as in
    ids, tokens and passwords): ``"9a9a9"`` -> ``"x"``, ``"Aa Aa"`` -> ``"A A"``."""
    if "9" in shape and ("a" in shape or "A" in shape):
        shape = _MIXED.sub("x", shape)
    if "Aa" in shape:
        shape = shape.replace("Aa", "A")
    return shape


_cache: dict[str, Features] = {}


def value_features(value: str) -> Features:
    """``(kind, length, punctuation characters, shape, word shape, digest)``
    of a value (cached for values up to 256 characters).

    One ``str.translate`` to character classes feeds all three: the set of
    characters other than letters, digits and space, the kind, and the
    shape (runs of one class collapsed, at most 24 symbols)."""
    f = _cache.get(value)
    if f is not None:
        return f
    s = value.translate(_SHAPE_TABLE)
    chars = set(s)
    chars -= _CLASSES
    if chars:
        specials = frozenset(c for c in chars if not c.isalnum())
        if len(specials) != len(chars) or "\ufffd" in chars:  # non-ASCII letters or digits
            # U+FFFD stands for an undecodable byte, most often a letter.
            s = "".join(("A" if c.isupper() else "a") if c.isalpha() or c == "\ufffd" else ("9" if c.isdigit() else c) for c in s[:32])
    else:
        specials = _NO_SPECIALS
    shape = "".join([k for k, _ in groupby(s[:32])])
    if len(shape) > _SHAPE_MAX:
        shape = word_shape(shape)[:_SHAPE_MAX]
    n = len(value)
    f = (_kind_of(value, s, specials), n, specials, shape, word_shape(shape), key_hash(value) if n <= 64 else 0)
    if n <= 256:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[value] = f
    return f


class _Feature:
    """Count and supporting actors of one categorical feature value."""

    __slots__ = ("n", "actors")

    def __init__(self, cap: int) -> None:
        self.n = 0
        self.actors = SmallSet(cap)

    def __getstate__(self) -> tuple[Any, ...]:
        return (self.n, self.actors)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.n, self.actors = s


class _Categorical:
    """A capped map of feature value -> :class:`_Feature`.

    ``full`` holds the keys whose supporting actors reached ``support_cap``
    (the profile's ``min_actors``): once the profile needs that many actors,
    "is this feature normal?" is one set lookup (``specials <= full`` for a
    whole set of characters). Derived state, rebuilt when unpickled."""

    __slots__ = ("items", "cap", "overflow", "support_cap", "full", "_rate_n", "_rate")

    def __init__(self, cap: int, support_cap: int) -> None:
        self.items: dict[Any, _Feature] = {}
        self.cap = cap
        self.overflow = 0
        self.support_cap = support_cap
        # keys with full support; () until the first (an empty set is 216
        # bytes, and a profile has five of these: most never fill one)
        self.full: set[Any] | tuple[()] = ()
        self._rate_n = -1
        self._rate = 1.0

    def novelty(self, total: int) -> float:
        """Good-Turing estimate of the chance that the next value shows a
        feature value not seen (or not yet normal) before: (values seen
        once or by fewer actors than needed, plus overflow) / ``total``.
        Cached until ``total`` grows by 10%."""
        if total <= 0:
            return 1.0
        if self._rate_n < 0 or total > self._rate_n * 1.1 or total < self._rate_n:
            cap = self.support_cap
            once = sum(1 for f in self.items.values() if f.n == 1 or len(f.actors) < cap)
            self._rate = (once + self.overflow) / total
            self._rate_n = total
        return self._rate

    def add(self, key: Any, actor: int | None, w: int = 1) -> None:
        f = self.items.get(key)
        if f is None:
            if len(self.items) >= self.cap:
                self.overflow += w
                return
            f = self.items[key] = _Feature(self.support_cap)
        f.n += w
        if actor is None:
            return  # counted, but no actor vouches for it
        acts = f.actors.items
        if len(acts) < self.support_cap and actor not in acts:
            acts.append(actor)
            if len(acts) >= self.support_cap:
                full = self.full
                if type(full) is tuple:
                    self.full = {key}
                else:
                    full.add(key)

    def supported(self, key: Any, needed: int) -> bool:
        f = self.items.get(key)
        return f is not None and len(f.actors.items) >= needed

    def __getstate__(self) -> tuple[Any, ...]:
        # Flat: ``[key, count, actor cap, m, actor 1..m, key, ...]``, all
        # scalars, instead of an object pair per feature. Profiles are most
        # of a baselines record, and records are encoded at every
        # checkpoint and spill: scalars are written and read back inline.
        flat: list[Any] = []
        add = flat.extend
        for k, f in self.items.items():
            a = f.actors
            acts = a.items
            add((k, f.n, a.cap, len(acts)))
            add(acts)
        return (flat, self.cap, self.overflow, self.support_cap)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        items, self.cap, self.overflow, self.support_cap = s
        if type(items) is list:
            feats: dict[Any, _Feature] = {}
            new_f, new_s = _Feature.__new__, SmallSet.__new__
            i, end = 0, len(items)
            while i < end:
                f = new_f(_Feature)
                f.n = items[i + 1]
                a = f.actors = new_s(SmallSet)
                a.cap = items[i + 2]
                m = items[i + 3]
                if type(m) is not int or m < 0:
                    raise ValueError("malformed feature list")
                j = i + 4 + m
                a.items = items[i + 4:j]
                feats[items[i]] = f
                i = j
            items = feats
        self.items = items  # (a dict of features: states saved before the flat form)
        self._rate_n, self._rate = -1, 1.0
        cap = self.support_cap
        self.full = {k for k, f in self.items.items() if len(f.actors.items) >= cap} or ()



def _within(items: Any, full: Any) -> bool:
    """``items <= full`` where ``full`` may still be the empty ``()``."""
    return items <= full if type(full) is not tuple else not items

def _surprise(rate: float, strong: float) -> float:
    """Score of an unseen feature value given how often unseen values
    occur normally (``rate``): ``strong`` when novelty is rare, less as
    novelty is common, 0 when one value in 20 is new anyway."""
    if rate < 0.002:
        return strong
    if rate < 0.01:
        return strong - 0.25
    if rate < 0.05:
        return strong - 0.4
    return 0.0


class ValueProfile:
    """The learned profile of one parameter (see the module docstring).

    >>> p = ValueProfile()
    >>> for i in range(200):
    ...     p.learn(str(1000 + i), actor=i)
    >>> p.score("1234")[0]
    0.0
    >>> s, why = p.score("1' OR '1'='1")
    >>> s > 0.8, why[0].startswith("unseen characters")
    (True, True)
    """

    __slots__ = ("n", "actors", "kinds", "chars", "shapes", "words", "values", "length", "lengths", "numbers", "min_actors", "_need", "ok")
    _STATE = __slots__[:-1]  # ``ok`` is a memo: never saved (it holds values)

    def __init__(self, min_actors: int = 3, enum_cap: int = 64, shape_cap: int = 48) -> None:
        self.n = 0
        self.min_actors = min_actors
        self._need = 0
        self.actors = SmallSet(min_actors)  # only "at least min_actors" matters
        self.kinds = _Categorical(16, min_actors)
        self.chars = _Categorical(64, min_actors)
        self.shapes = _Categorical(shape_cap, min_actors)
        self.words = _Categorical(shape_cap, min_actors)
        self.values = _Categorical(enum_cap, min_actors)
        self.length = Moments()
        self.lengths = LogHistogram()
        self.numbers = Moments()
        # Values found normal once the profile needs its full min_actors: they
        # stay normal as it learns (support, ranges and feature sets only
        # grow), so a repeat costs one lookup. In memory only, bounded.
        self.ok: set[str] | tuple[()] = ()  # () until the first (most profiles never hold one)

    # -- learning -------------------------------------------------------------
    def learn(self, value: str, actor: int | None = 0, weight: int = 1) -> None:
        """Fold one value in; ``actor`` is a stable hash of who sent it
        (``None``: counted, but no actor vouches for its features).
        ``weight`` > 1 when the value stands for that many (a sampled normal
        value, see :class:`~apiward.learn.baselines.Baselines`): counts and
        moments grow by it, actor support by the one actor."""
        f = _cache.get(value)
        kind, length, specials, shape, word, vh = f if f is not None else value_features(value)
        w = weight
        self.n += w
        if self._need < self.min_actors and actor is not None:
            self.actors.add(actor)
            a = len(self.actors)
            self._need = self.min_actors if a >= self.min_actors else max(1, a)
        self.kinds.add(kind, actor, w)
        if specials:
            add = self.chars.add
            for c in specials:
                add(c, actor, w)
        if self.shapes.overflow == 0:
            self.shapes.add(shape, actor, w)
        if self.words.overflow == 0:
            self.words.add(word, actor, w)
        values = self.values
        if length <= 64:
            if values.overflow == 0 or vh in values.items:
                values.add(vh, actor, w)
        else:
            values.overflow += w
        if w == 1:
            self.length.add(length)
            self.lengths.add(length)
        else:
            self.length.add_weighted(length, w)
            self.lengths.add_weighted(length, w)
        if kind == "int" or kind == "float":
            try:
                x = float(value.replace(",", "."))
            except ValueError:
                pass
            else:
                if w == 1:
                    self.numbers.add(x)
                else:
                    self.numbers.add_weighted(x, w)

    # -- questions ------------------------------------------------------------
    def needed(self) -> int:
        """Distinct actors a feature needs to count as normal:
        ``min_actors``, or fewer while the parameter has had fewer actors."""
        return max(1, self._need)

    @property
    def is_enum(self) -> bool:
        """Few distinct values, new ones rare (Good-Turing below 1%)."""
        return self.values.overflow == 0 and self.n >= 30 and self.values.novelty(self.n) < 0.01

    def normal(self, value: str, min_n: int = 20) -> bool:
        """True when ``value`` is like the rest in every respect the profile
        judges, so :meth:`score` would say 0: a known value, or (once the
        parameter has had ``min_actors`` actors) characters, kind, word
        shape, shape and enum value all supported, length within the
        learned range and numbers within theirs. A few set lookups; False
        means "ask :meth:`score`", not "abnormal"."""
        if self.n < min_n:
            return True
        f = _cache.get(value)
        return self._normal(value, f if f is not None else value_features(value), min_n)

    def normal_memo(self, value: str, f: Features, min_n: int) -> bool:
        """:meth:`_normal`, remembering values found normal for good (see
        ``ok``); callers check ``value in profile.ok`` first."""
        if not self._normal(value, f, min_n):
            return False
        if self._need >= self.min_actors and len(value) <= 256:
            kind = f[0]
            if (kind != "int" and kind != "float") or self.numbers.n >= min_n:
                ok = self.ok
                if type(ok) is tuple:
                    self.ok = {value}
                else:
                    if len(ok) >= OK_MAX:
                        ok.clear()
                    ok.add(value)
        return True

    def _normal(self, value: str, f: Features, min_n: int) -> bool:
        kind, length, specials, shape, word, vh = f
        values = self.values
        need = self._need
        if need >= self.min_actors:
            if vh in values.full:
                return True
            if values.overflow == 0 or kind not in self.kinds.full or (specials and not _within(specials, self.chars.full)):
                return False
            if (self.words.overflow == 0 and word not in self.words.full) or (self.shapes.overflow == 0 and shape not in self.shapes.full):
                return False
        else:
            # Young parameter (fewer actors than min_actors): a value as
            # many actors as the parameter had sent before is normal.
            fv = values.items.get(vh)
            return fv is not None and len(fv.actors.items) >= max(1, need)
        ln = self.length
        if length > ln.hi or length < ln.lo:
            return False
        if kind == "int" or kind == "float":
            nums = self.numbers
            if nums.n >= min_n:
                span = max(nums.hi - nums.lo, 1.0)
                try:
                    x = float(value.replace(",", "."))
                except ValueError:
                    return False
                if x > nums.hi + span or x < nums.lo - span:
                    return False
        return True

    def free_form(self) -> bool:
        """Whether the parameter's own values vary freely: many distinct
        values (the enum sketch overflowed or new values are common) in
        several word shapes. What a secret looks like from the outside."""
        words = self.words
        if not (words.overflow or len(words.items) >= 3):
            return False
        values = self.values
        return values.overflow > 0 or values.novelty(self.n) >= 0.1

    def score(self, value: str, min_n: int = 20, secret: bool = False) -> tuple[float, list[str]]:
        """How unusual ``value`` is for this parameter: ``(0..1, reasons)``.

        0 until ``min_n`` values were learned (an immature profile does not
        judge). The score is the strongest single deviation, raised a little
        when several agree.

        ``secret``: the parameter carries a secret by name (password, key,
        token: :func:`~apiward.learn.parameters.secret_name`). When its own
        values vary freely (:meth:`free_form`) only an over-long value or
        a new string- or statement-ending character
        (:data:`SECRET_SYNTAX_CHARS`) counts: characters, kind, shape and
        value of a secret are random by design. A fixed-format secret (an API key
        always 32 hex digits) is judged like any parameter.

        Two deviations are discounted as the natural growth of an API: a
        short integer id growing a digit (``999`` -> ``1000``) when the
        number range is learned (judged by the range instead), and a new member of an
        enum that looks like the others (same kind, characters, word shape
        and shape, not longer than the longest) scores at most 0.55."""
        n = self.n
        if n < min_n:
            return 0.0, []
        f = _cache.get(value)
        if f is None:
            f = value_features(value)
        if self._normal(value, f, min_n):
            return 0.0, []
        kind, length, specials, shape, word, vh = f
        need = self._need if self._need > 0 else 1
        if secret and self.free_form():
            return self._score_secret(length, specials)
        scores: list[float] = []
        reasons: list[str] = []
        unseen_chars = False
        if specials:
            unseen = [c for c in specials if not self.chars.supported(c, need)]
            if unseen:
                unseen_chars = True
                unseen.sort()
                rate = self.chars.novelty(n)
                if any(c in DANGEROUS_CHARS for c in unseen):
                    sc = max(0.7, _surprise(rate, 0.9))
                else:
                    sc = _surprise(rate, 0.75)
                if sc:
                    scores.append(sc)
                    reasons.append("unseen characters " + "".join(unseen)[:16].encode("unicode_escape").decode())
        kind_ok = self.kinds.supported(kind, need)
        if not kind_ok:
            sc = _surprise(self.kinds.novelty(n), 0.8)
            if sc:
                top = max(self.kinds.items.items(), key=lambda kv: kv[1].n)[0] if self.kinds.items else "?"
                scores.append(sc)
                reasons.append(f"kind {kind} unseen (usually {top})")
        ln = self.length
        hi = ln.hi
        if length > hi:
            if ln.std < 0.5:
                # Fixed-length parameter (codes, ids): any change counts,
                # but a short integer id's length follows its magnitude
                # (999 -> 1000), which the number range judges. Longer
                # fixed-length numbers are codes (cards, accounts, phones).
                if not (kind == "int" and hi <= 6 and "1" <= value[:1] <= "9" and self.numbers.n >= min_n):
                    scores.append(0.7)
                    reasons.append(f"length {length}, always {int(hi)} before")
            else:
                # Well beyond the longest value learned and far in the tail.
                z = ln.z(length)
                if z > 4.0 and length > 1.25 * hi:
                    scores.append(min(0.95, 0.45 + 0.05 * z))
                    reasons.append(f"length {length} above max {int(hi)}")
        elif length < ln.lo:
            if ln.std < 0.1 or length == 0:
                scores.append(0.65)
                reasons.append(f"length {length} below min {int(ln.lo)}")
        words_ok = self.words.overflow > 0 or self.words.supported(word, need)
        if self.values.overflow == 0 and not self.values.supported(vh, need):
            sc = _surprise(self.values.novelty(n), 0.8)
            if sc:
                if (
                    kind_ok
                    and not unseen_chars
                    and words_ok
                    and (self.shapes.overflow > 0 or self.shapes.supported(shape, need))
                    and 0 < length <= hi
                ):
                    sc = min(sc, 0.55)  # a new member that looks like the others
                scores.append(sc)
                reasons.append(f"value not among {len(self.values.items)} known values")
        elif not words_ok:
            sc = _surprise(self.words.novelty(n), 0.8)
            if sc:
                scores.append(sc)
                reasons.append(f"word shape {word!r} unseen")
        elif self.shapes.overflow == 0 and not self.shapes.supported(shape, need):
            sc = _surprise(self.shapes.novelty(n), 0.65)
            if sc:
                scores.append(sc)
                reasons.append(f"shape {shape!r} unseen")
        if (kind == "int" or kind == "float") and self.numbers.n >= min_n:
            lo, hi_n = self.numbers.lo, self.numbers.hi
            span = max(hi_n - lo, 1.0)
            try:
                x = float(value.replace(",", "."))
            except ValueError:
                x = lo
            if x > hi_n + span or x < lo - span:
                scores.append(0.5)
                reasons.append(f"number {value[:20]} outside [{lo:g}, {hi_n:g}]")
        if not scores:
            return 0.0, []
        scores.sort(reverse=True)
        s = scores[0]
        for extra in scores[1:]:
            s += (1.0 - s) * extra * 0.3
        return round(min(s, 1.0), 3), reasons

    def _score_secret(self, length: int, specials: frozenset[str]) -> tuple[float, list[str]]:
        """:meth:`score` for a free-form secret: over-long values, and
        characters of :data:`SECRET_SYNTAX_CHARS` fewer than ``min_actors``
        actors used in it."""
        scores: list[float] = []
        reasons: list[str] = []
        need = self.needed()
        ctl = sorted(c for c in specials if c in SECRET_SYNTAX_CHARS and not self.chars.supported(c, need))
        if ctl:
            scores.append(0.8)
            reasons.append("unseen characters " + "".join(ctl).encode("unicode_escape").decode())
        ln = self.length
        if length > ln.hi:
            z = ln.z(length)
            if z > 4.0 and length > 1.25 * ln.hi:
                scores.append(min(0.95, 0.45 + 0.05 * z))
                reasons.append(f"length {length} above max {int(ln.hi)}")
        if not scores:
            return 0.0, []
        return max(scores), reasons

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary for inventories and evidence."""
        return {
            "n": self.n,
            "actors_at_least": len(self.actors),
            "kinds": {k: f.n for k, f in sorted(self.kinds.items.items(), key=lambda kv: -kv[1].n)},
            "chars": "".join(sorted(self.chars.items)),
            "length": self.length.to_dict(),
            "enum_values": len(self.values.items) if self.is_enum else None,
            "shapes": len(self.shapes.items) if not self.shapes.overflow else "many",
            "numbers": self.numbers.to_dict() if self.numbers.n else None,
        }

    def __getstate__(self) -> tuple[Any, ...]:
        return tuple(getattr(self, s) for s in self._STATE)

    def __setstate__(self, s: tuple[Any, ...]) -> None:
        self.ok = ()
        for k, v in zip(self._STATE, s):
            setattr(self, k, v)
