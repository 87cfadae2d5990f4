"""A safe codec for apiward's own state objects: no pickle.

State (baselines, inventory, templates, detectors' keyed records) is made of
apiward's classes, containers and scalars. :func:`dumps` turns such a graph
into MessagePack (via msgspec); :func:`loads` rebuilds it. Unlike pickle,
decoding never calls anything named by the data: the only classes it
instantiates are apiward's own (``apiward.*`` modules, looked up by name and
checked to be classes that are not exceptions), the containers listed
below, ``random.Random`` (restored from its integer state) and compiled
regular expressions. It creates objects without running their constructors
(``cls.__new__``) and restores their attributes through the class's own
``__setstate__`` or plain attribute assignment, as pickle's default does. A
tampered record can at worst hold odd values; it can never run code (and
the state store refuses records whose MAC does not match).

Format: ``[class names, value]`` or ``[class names, value, slot table]``;
class names are interned per record and referred to by index; the slot
table (``{"<index>": [slot names]}``) names, once per record, the slots of
the classes written positionally (kind 3: a schema tree is thousands of
nodes, and their slot names would be most of its bytes). A value is a scalar, a list, a string-keyed map, or a
one-key tag map::

    {"D": {str: v}}                   dict with string keys (any other map is a tag)
    {"d": [[k, v], ...]}              dict with other keys
    {"t": [...]}                      tuple
    {"i": "123..."}                   an integer beyond 64 bits
    {"s": [...]}  {"f": [...]}        set, frozenset
    {"o": [cls, [[k, v]...], attrs]}  dict subclass (OrderedDict, Counter, LRU...)
    {"q": [cls, maxlen, [...], attrs]} deque subclass (deque, Ring)
    {"dd": [factory, [[k, v]...]]}    defaultdict with a whitelisted factory
    {"x": [cls, 0, {str: v}]}         an apiward object whose state is a dict
    {"x": [cls, 1, [...]]}            ... whose state is a tuple
    {"x": [cls, 2, v]}                ... any other state
    {"x": [cls, 3, [...]]}            a slotted apiward object without state hooks:
                                      its slot values in the order the record's
                                      slot table names them (unset: absent)
    {"m": [cls, data]}                a msgspec Struct
    {"r": [version, [ints], gauss]}   random.Random
    {"re": [pattern, flags]}          a compiled regular expression

Shared references inside one value are not preserved (each occurrence is
encoded); the state store keeps shared objects as components of their own.
"""

from __future__ import annotations

import importlib
import operator
import random
import re
from collections import Counter, OrderedDict, defaultdict, deque
from typing import Any

import msgspec

__all__ = ["encode", "decode", "dumps", "loads", "CodecError"]


class CodecError(ValueError):
    """State data that does not decode into apiward's objects."""


_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1
_BUILTIN_DICTS: dict[str, type] = {"OrderedDict": OrderedDict, "Counter": Counter, "dict": dict}
_FACTORIES: dict[str, Any] = {"list": list, "set": set, "int": int, "dict": dict, "float": float, "deque": deque}
_classes: dict[str, type] = {}
_names: dict[type, str] = {}
_PLAIN = frozenset((str, float, bool, bytes, type(None)))
_FLAT = frozenset((str, int, float, bool, bytes, type(None)))  # what msgspec writes as it is (ints within 64 bits)


def _name(cls: type) -> str:
    n = _names.get(cls)
    if n is None:
        n = _names[cls] = f"{cls.__module__}:{cls.__qualname__}"
    return n


def _class(name: str) -> type:
    """An apiward class by ``module:qualname``; nothing else is allowed."""
    cls = _classes.get(name)
    if cls is not None:
        return cls
    if not isinstance(name, str):
        raise CodecError("malformed class name")
    mod, _, qual = name.partition(":")
    if not (mod == "apiward" or mod.startswith("apiward.")) or not qual or "<" in qual:
        raise CodecError(f"state names a class outside apiward: {name!r}")
    try:
        obj: Any = importlib.import_module(mod)
        for part in qual.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise CodecError(f"state names an unknown class {name!r}: {exc}") from None
    if not isinstance(obj, type) or issubclass(obj, BaseException):
        raise CodecError(f"state names {name!r}, which is not a state class")
    _classes[name] = obj
    return obj


def _attrs(obj: Any) -> dict[str, Any]:
    """A container subclass's own attributes worth keeping: its
    ``_codec_attrs()`` when it defines one (an LRU keeps its bound, not its
    bookkeeping), else its ``__dict__``."""
    hook = getattr(obj, "_codec_attrs", None)
    if hook is not None:
        return dict(hook())
    d = getattr(obj, "__dict__", None)
    return dict(d) if d else {}


class _Encoder:
    """One record's encoding: class names interned; mappings whose ``id()``
    is in ``shells`` written without their items (the state store keeps
    those as records of their own).

    Speed (a spilled or checkpointed record is thousands of small objects):
    each type's handler is found once (:data:`_HANDLERS`) instead of by a
    chain of checks, class indexes are interned per type, and scalar leaves
    are written inline without a call."""

    __slots__ = ("names", "index", "shells", "tindex", "slots", "wide")

    def __init__(self, shells: frozenset[int] = frozenset(), wide: bool = False) -> None:
        self.wide = wide  # integers over 64 bits somewhere: every leaf checked
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.tindex: dict[type, int] = {}
        self.shells = shells
        self.slots: dict[str, list[str]] = {}  # class index -> slot names of positional (kind 3) objects

    def cls(self, t: type) -> int:
        i = self.tindex.get(t)
        if i is not None:
            return i
        n = _name(t) if not (t.__module__ == "collections" and t.__name__ in _BUILTIN_DICTS) else t.__name__
        i = self.index.get(n)
        if i is None:
            i = self.index[n] = len(self.names)
            self.names.append(n)
        self.tindex[t] = i
        return i

    def enc(self, obj: Any) -> Any:
        t = type(obj)
        if t in _PLAIN:
            return obj
        h = _HANDLERS.get(t)
        if h is None:
            h = _handler(t)
        return h(self, obj)

    def seq(self, items: Any) -> list[Any]:
        """A list of encoded items, scalars inline (most leaves). A list of
        scalars only (histogram counts, feature vectors) is checked in one
        C pass and written as it is; an integer over 64 bits in it makes
        msgspec refuse the record, which :func:`dumps` then writes again
        item by item (``wide``)."""
        if not self.wide and set(map(type, items)) <= _FLAT:
            return items if type(items) is list else list(items)
        enc = self.enc
        return [x if (tx := type(x)) in _PLAIN or (tx is int and _INT_MIN <= x <= _INT_MAX) else enc(x) for x in items]

    def smap(self, d: dict[str, Any]) -> dict[str, Any]:
        """A string-keyed map of encoded values, scalars inline."""
        enc = self.enc
        return {k: v if (tv := type(v)) in _PLAIN or (tv is int and _INT_MIN <= v <= _INT_MAX) else enc(v) for k, v in d.items()}


def _enc_int(e: _Encoder, obj: int) -> Any:
    return obj if _INT_MIN <= obj <= _INT_MAX else {"i": str(obj)}


def _enc_list(e: _Encoder, obj: list[Any]) -> Any:
    return e.seq(obj)


def _enc_dict(e: _Encoder, obj: dict[Any, Any]) -> Any:
    for k in obj:
        if type(k) is not str:
            enc = e.enc
            return {"d": [[k if (tk := type(k)) in _PLAIN or (tk is int and _INT_MIN <= k <= _INT_MAX) else enc(k),
                           v if (tv := type(v)) in _PLAIN or (tv is int and _INT_MIN <= v <= _INT_MAX) else enc(v)]
                          for k, v in obj.items()]}  # int keys (status codes, histogram buckets) and counts inline
    return {"D": e.smap(obj)}


def _enc_tuple(e: _Encoder, obj: tuple[Any, ...]) -> Any:
    return {"t": e.seq(obj)}


def _enc_set(e: _Encoder, obj: set[Any]) -> Any:
    return {"s": e.seq(obj)}


def _enc_frozenset(e: _Encoder, obj: frozenset[Any]) -> Any:
    return {"f": e.seq(obj)}


def _enc_struct(e: _Encoder, obj: Any) -> Any:
    return {"m": [e.cls(type(obj)), msgspec.to_builtins(obj, builtin_types=(bytes,))]}


def _enc_defaultdict(e: _Encoder, obj: defaultdict[Any, Any]) -> Any:
    fac = obj.default_factory
    fname = next((n for n, f in _FACTORIES.items() if f is fac), None)
    if fname is None:
        raise CodecError(f"defaultdict with factory {fac!r} is not state")
    enc = e.enc
    return {"dd": [fname, [[enc(k), enc(v)] for k, v in obj.items()]]}


def _enc_mapping(e: _Encoder, obj: dict[Any, Any]) -> Any:
    enc = e.enc
    items = [] if id(obj) in e.shells else [[enc(k), enc(v)] for k, v in obj.items()]
    return {"o": [e.cls(type(obj)), items, enc(_attrs(obj))]}


def _enc_deque(e: _Encoder, obj: deque[Any]) -> Any:
    t = type(obj)
    enc = e.enc
    return {"q": [-1 if t is deque else e.cls(t), obj.maxlen, [enc(x) for x in obj], enc(_attrs(obj))]}


def _enc_random(e: _Encoder, obj: random.Random) -> Any:
    v, st, g = obj.getstate()
    return {"r": [v, list(st), g]}


def _enc_pattern(e: _Encoder, obj: re.Pattern[Any]) -> Any:
    return {"re": [obj.pattern, obj.flags]}


def _enc_object(e: _Encoder, obj: Any) -> Any:
    """An apiward object: its ``__getstate__()``, tagged by its shape."""
    st = obj.__getstate__()
    ts = type(st)
    if ts is tuple:
        return {"x": [e.cls(type(obj)), 1, e.seq(st)]}
    if ts is dict:
        for k in st:
            if type(k) is not str:
                break
        else:
            return {"x": [e.cls(type(obj)), 0, e.smap(st)]}
    return {"x": [e.cls(type(obj)), 2, e.enc(st)]}


class _Slotted:
    """How a slotted apiward class with no state hooks is written
    positionally: its slot names, and one C call getting them all."""

    __slots__ = ("names", "get")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = list(names)
        self.get = operator.attrgetter(*names) if len(names) > 1 else (lambda o, g=operator.attrgetter(names[0]): (g(o),))

    def __call__(self, e: _Encoder, obj: Any) -> Any:
        try:
            values = self.get(obj)
        except AttributeError:  # a slot never set: by name, as pickle would
            return _enc_object(e, obj)
        i = e.cls(type(obj))
        k = str(i)
        if k not in e.slots:
            e.slots[k] = self.names
        return {"x": [i, 3, e.seq(values)]}


def _slot_names(t: type) -> tuple[str, ...] | None:
    """All slot names of ``t`` when its instances are slots only (no
    ``__dict__``) and it keeps Python's default state hooks; else None."""
    if getattr(t, "__getstate__", None) is not object.__getstate__ or hasattr(t, "__setstate__") or hasattr(t, "__reduce__") and t.__reduce__ is not object.__reduce__:
        return None
    if getattr(t, "__dictoffset__", 1) != 0 or getattr(t, "__weakrefoffset__", 0) != 0:
        return None
    names: list[str] = []
    for c in reversed(t.__mro__):
        sl = c.__dict__.get("__slots__", ())
        for n in (sl,) if isinstance(sl, str) else sl:
            if n not in ("__dict__", "__weakref__") and n not in names:
                if n.startswith("__") and not n.endswith("__"):
                    return None  # a mangled private slot: keep the general path
                names.append(n)
    return tuple(names) or None


def _enc_refused(e: _Encoder, obj: Any) -> Any:
    t = type(obj)
    raise CodecError(f"{t.__module__}.{t.__qualname__} is not state apiward can store")


def _handler(t: type) -> Any:
    """How values of type ``t`` are written (found once per type, in the
    order the format gives precedence to)."""
    if issubclass(t, msgspec.Struct):
        h: Any = _enc_struct
    elif t is defaultdict:
        h = _enc_defaultdict
    elif issubclass(t, dict):
        h = _enc_mapping
    elif issubclass(t, deque):
        h = _enc_deque
    elif t is random.Random:
        h = _enc_random
    elif t is re.Pattern:
        h = _enc_pattern
    elif t.__module__ == "apiward" or t.__module__.startswith("apiward."):
        names = _slot_names(t)
        h = _Slotted(names) if names else _enc_object
    else:
        return _enc_refused  # not cached: an error path
    _HANDLERS[t] = h
    return h


_HANDLERS: dict[type, Any] = {int: _enc_int, list: _enc_list, dict: _enc_dict, tuple: _enc_tuple, set: _enc_set,
                              frozenset: _enc_frozenset}


class _Decoder:
    """One record's decoding. Classes are resolved once per record;
    scalar leaves are taken as they are, without a call."""

    __slots__ = ("names", "classes", "slots")

    def __init__(self, names: list[Any], slots: Any = None) -> None:
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CodecError("malformed class table")
        self.names = names
        self.classes: list[type | None] = [None] * len(names)
        if slots is not None and (not isinstance(slots, dict) or not all(
                isinstance(v, list) and all(isinstance(n, str) and not n.startswith("__") for n in v) for v in slots.values())):
            raise CodecError("malformed slot table")
        self.slots: dict[str, list[str]] = slots or {}

    def cls(self, i: Any) -> type:
        if type(i) is int and 0 <= i < len(self.classes):
            c = self.classes[i]
            if c is not None:
                return c
        if not isinstance(i, int) or not 0 <= i < len(self.names):
            raise CodecError("bad class reference")
        n = self.names[i]
        c = _BUILTIN_DICTS.get(n) or _class(n)
        self.classes[i] = c
        return c

    def seq(self, data: Any) -> list[Any]:
        """Decoded items of a list, scalars as they are."""
        dec = self.dec
        return [x if type(x) in _SCALARS else dec(x) for x in data]

    def dec(self, data: Any) -> Any:
        t = type(data)
        if t in _SCALARS:
            return data
        if t is list:
            dec = self.dec
            return [x if type(x) in _SCALARS else dec(x) for x in data]
        if t is not dict or len(data) != 1:
            raise CodecError(f"malformed state value of type {t.__name__}")
        (tag, v), = data.items()
        dec = self.dec
        try:
            if tag == "x":
                cls = self.cls(v[0])
                obj = cls.__new__(cls)
                kind, payload = v[1], v[2]
                if kind == 1:
                    state: Any = tuple([x if type(x) in _SCALARS else dec(x) for x in payload])
                elif kind == 3:
                    names = self.slots.get(str(v[0]))
                    if names is None or len(names) != len(payload):
                        raise CodecError(f"{cls.__name__}: slot values without their names")
                    setattr_ = object.__setattr__
                    for name, x in zip(names, payload):
                        try:
                            setattr_(obj, name, x if type(x) in _SCALARS else dec(x))
                        except AttributeError:
                            pass  # a slot this apiward no longer has
                    return obj
                elif kind == 0:
                    state = {k: x if type(x) in _SCALARS else dec(x) for k, x in payload.items()}
                else:
                    state = dec(payload)
                setstate = getattr(obj, "__setstate__", None)
                if setstate is not None:
                    setstate(state)
                else:
                    _default_setstate(obj, state)
                return obj
            if tag == "D":
                return {k: x if type(x) in _SCALARS else dec(x) for k, x in v.items()}
            if tag == "t":
                return tuple([x if type(x) in _SCALARS else dec(x) for x in v])
            if tag == "d":
                return {dec(k): dec(x) for k, x in v}
            if tag == "s":
                return {x if type(x) in _SCALARS else dec(x) for x in v}
            if tag == "f":
                return frozenset([x if type(x) in _SCALARS else dec(x) for x in v])
            if tag == "i":
                if not isinstance(v, str) or len(v) > 100:
                    raise CodecError("bad integer")
                return int(v)
            if tag == "m":
                return msgspec.convert(v[1], self.cls(v[0]))
            if tag == "o":
                cls = self.cls(v[0])
                if not issubclass(cls, dict):
                    raise CodecError(f"{cls.__name__} is not a mapping")
                base = OrderedDict if issubclass(cls, OrderedDict) else dict
                obj = cls.__new__(cls)
                base.__init__(obj)
                _restore_attrs(obj, dec(v[2]))
                put = base.__setitem__
                for k, x in v[1]:
                    put(obj, dec(k), dec(x))
                init = getattr(obj, "_codec_init", None)
                if init is not None:
                    init()
                return obj
            if tag == "q":
                cls = deque if v[0] == -1 else self.cls(v[0])
                if not issubclass(cls, deque):
                    raise CodecError(f"{cls.__name__} is not a deque")
                maxlen = v[1]
                if maxlen is not None and (not isinstance(maxlen, int) or maxlen < 0):
                    raise CodecError("bad deque bound")
                obj = cls.__new__(cls)
                deque.__init__(obj, (dec(x) for x in v[2]), maxlen)
                _restore_attrs(obj, dec(v[3]))
                return obj
            if tag == "dd":
                fac = _FACTORIES.get(v[0])
                if fac is None:
                    raise CodecError(f"defaultdict factory {v[0]!r} is not allowed")
                out: defaultdict[Any, Any] = defaultdict(fac)
                for k, x in v[1]:
                    out[dec(k)] = dec(x)
                return out
            if tag == "r":
                r = random.Random()
                r.setstate((v[0], tuple(int(i) for i in v[1]), v[2]))
                return r
            if tag == "re":
                if not isinstance(v[0], (str, bytes)) or not isinstance(v[1], int):
                    raise CodecError("bad pattern")
                return re.compile(v[0], v[1] & ~re.UNICODE if isinstance(v[0], bytes) else v[1])
        except CodecError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, re.error) as exc:
            raise CodecError(f"malformed state value ({tag!r}): {type(exc).__name__}: {exc}") from None
        raise CodecError(f"unknown state tag {tag!r}")


#: what msgpack decodes that is a value as it is (a dict is a tag, a list a list)
_SCALARS = frozenset((str, int, float, bool, bytes, type(None)))


def _restore_attrs(obj: Any, attrs: Any) -> None:
    if attrs:
        if not isinstance(attrs, dict):
            raise CodecError("malformed attributes")
        for k, x in attrs.items():
            if not isinstance(k, str) or k.startswith("__"):
                raise CodecError(f"bad attribute name {k!r}")
            object.__setattr__(obj, k, x)


def _default_setstate(obj: Any, state: Any) -> None:
    """What pickle does without ``__setstate__``: a dict of attributes, or
    ``(dict or None, slots dict)``."""
    slots = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
    if state:
        _restore_attrs(obj, state)
    if slots:
        _restore_attrs(obj, slots)


def encode(obj: Any, shells: frozenset[int] = frozenset(), *, wide: bool = False) -> list[Any]:
    """``[class names, value]`` for ``obj``; mappings whose ``id()`` is in
    ``shells`` are written without their items. ``wide``: check every
    integer for the 64-bit range (the result then never holds one beyond it)."""
    e = _Encoder(shells, wide)
    body = e.enc(obj)
    return [e.names, body, e.slots] if e.slots else [e.names, body]


def decode(data: Any) -> Any:
    """The objects :func:`encode` described; raises :class:`CodecError`."""
    if not isinstance(data, list) or len(data) not in (2, 3):
        raise CodecError("malformed state record")
    return _Decoder(data[0], data[2] if len(data) == 3 else None).dec(data[1])


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()


def dumps(obj: Any, shells: frozenset[int] = frozenset()) -> bytes:
    """``obj`` as MessagePack bytes (``shells``: see :func:`encode`)."""
    t = type(obj)
    if t is str or (t is int and _INT_MIN <= obj <= _INT_MAX):
        return _enc.encode([[], obj])  # a key (most records' keys): what encode() gives, without an encoder
    try:
        return _enc.encode(encode(obj, shells))
    except OverflowError:  # an integer over 64 bits in a list of scalars: tag it
        return _enc.encode(encode(obj, shells, wide=True))


def loads(data: bytes) -> Any:
    """Inverse of :func:`dumps`; raises :class:`CodecError` on bad data."""
    try:
        raw = _dec.decode(data)
    except msgspec.DecodeError as exc:
        raise CodecError(f"undecodable state record: {exc}") from None
    return decode(raw)
