"""A safe codec for apiward's own state objects: no pickle.

State (baselines, inventory, templates, detectors' keyed records) is made of
apiward's classes, containers and scalars. :func:`encode` turns such a graph
into plain data (lists, scalars, and one-key tag maps), which msgspec writes
as MessagePack; :func:`decode` rebuilds it. Unlike pickle, decoding never
calls anything named by the data: the only classes it instantiates are
apiward's own (``apiward.*`` modules, looked up by name and checked to be
classes that are not exceptions), the containers listed below, and
``random.Random`` (restored from its integer state). It creates them
without running their constructors (``cls.__new__``) and restores their
attributes through the class's own ``__setstate__`` or plain attribute
assignment, as pickle's default does. A tampered record can at worst hold
odd values; it can never run code.

Tags (a dict with exactly one key is a tag; plain dicts are always
encoded as the ``d`` tag, so no data dict is mistaken for one)::

    {"t": [...]}                      tuple
    {"i": "123..."}                   an integer beyond 64 bits
    {"s": [...]}  {"f": [...]}        set, frozenset
    {"d": [[k, v], ...]}              dict (keys of any encodable type)
    {"o": [cls, [[k, v]...], attrs]}  dict subclass (OrderedDict, Counter, LRU...)
    {"q": [cls, maxlen, [...], attrs]} deque subclass (deque, Ring)
    {"dd": [factory, [[k, v]...]]}    defaultdict with a whitelisted factory
    {"x": [cls, state]}               an apiward object (its __getstate__)
    {"m": [cls, data]}                a msgspec Struct
    {"r": [version, [ints], gauss]}   random.Random

Shared references inside one encoded value are not preserved (each
occurrence is encoded); callers that share objects across records (the
pipeline's shared trackers) record them once and re-link them on load.
"""

from __future__ import annotations

import importlib
import random
from collections import Counter, OrderedDict, defaultdict, deque
from typing import Any

import msgspec

__all__ = ["encode", "decode", "dumps", "loads", "CodecError"]


class CodecError(ValueError):
    """State data that does not decode into apiward's objects."""


_SCALARS = (str, float, bool, bytes, type(None))
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1
_BUILTIN_DICTS: dict[str, type] = {"OrderedDict": OrderedDict, "Counter": Counter, "dict": dict}
_BUILTIN_DEQUES: dict[str, type] = {"deque": deque}
_FACTORIES: dict[str, Any] = {"list": list, "set": set, "int": int, "dict": dict, "float": float, "deque": deque}
_classes: dict[str, type] = {}


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _class(name: str) -> type:
    """An apiward class by ``module:qualname``; nothing else is allowed."""
    cls = _classes.get(name)
    if cls is not None:
        return cls
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
    d = getattr(obj, "__dict__", None)
    return dict(d) if d else {}


def encode(obj: Any) -> Any:
    """Plain data for ``obj`` (see the module docstring for the tags)."""
    t = type(obj)
    if t in _SCALARS:
        return obj
    if t is int:
        return obj if _INT_MIN <= obj <= _INT_MAX else {"i": str(obj)}
    if t is list:
        return [encode(x) for x in obj]
    if t is dict:
        return {"d": [[encode(k), encode(v)] for k, v in obj.items()]}
    if t is tuple:
        return {"t": [encode(x) for x in obj]}
    if t is set:
        return {"s": [encode(x) for x in obj]}
    if t is frozenset:
        return {"f": [encode(x) for x in obj]}
    if isinstance(obj, msgspec.Struct):
        return {"m": [_name(t), msgspec.to_builtins(obj, builtin_types=(bytes,))]}
    if t is defaultdict:
        fac = obj.default_factory
        fname = next((n for n, f in _FACTORIES.items() if f is fac), None)
        if fname is None:
            raise CodecError(f"defaultdict with factory {fac!r} is not state")
        return {"dd": [fname, [[encode(k), encode(v)] for k, v in obj.items()]]}
    if isinstance(obj, dict):
        return {"o": [t.__name__ if t.__name__ in _BUILTIN_DICTS and t.__module__ == "collections" else _name(t),
                      [[encode(k), encode(v)] for k, v in obj.items()], encode(_attrs(obj))]}
    if isinstance(obj, deque):
        return {"q": ["deque" if t is deque else _name(t), obj.maxlen, [encode(x) for x in obj], encode(_attrs(obj))]}
    if t is random.Random:
        v, st, g = obj.getstate()
        return {"r": [v, list(st), g]}
    mod = t.__module__
    if mod == "apiward" or mod.startswith("apiward."):
        return {"x": [_name(t), encode(obj.__getstate__())]}
    raise CodecError(f"{t.__module__}.{t.__qualname__} is not state apiward can store")


def decode(data: Any) -> Any:
    """The objects :func:`encode` described; raises :class:`CodecError`."""
    t = type(data)
    if t in _SCALARS or t is int:
        return data
    if t is list:
        return [decode(x) for x in data]
    if t is not dict or len(data) != 1:
        raise CodecError(f"malformed state value of type {t.__name__}")
    (tag, v), = data.items()
    try:
        if tag == "d":
            return {decode(k): decode(x) for k, x in v}
        if tag == "t":
            return tuple(decode(x) for x in v)
        if tag == "i":
            if not isinstance(v, str) or len(v) > 100:
                raise CodecError("bad integer")
            return int(v)
        if tag == "s":
            return {decode(x) for x in v}
        if tag == "f":
            return frozenset(decode(x) for x in v)
        if tag == "m":
            return msgspec.convert(v[1], _class(v[0]))
        if tag == "dd":
            fac = _FACTORIES.get(v[0])
            if fac is None:
                raise CodecError(f"defaultdict factory {v[0]!r} is not allowed")
            out: defaultdict[Any, Any] = defaultdict(fac)
            for k, x in v[1]:
                out[decode(k)] = decode(x)
            return out
        if tag == "o":
            cls = _BUILTIN_DICTS.get(v[0]) or _class(v[0])
            if not issubclass(cls, dict):
                raise CodecError(f"{v[0]!r} is not a mapping")
            base = OrderedDict if issubclass(cls, OrderedDict) else dict
            obj = cls.__new__(cls)
            base.__init__(obj)
            _restore_attrs(obj, decode(v[2]))
            put = base.__setitem__
            for k, x in v[1]:
                put(obj, decode(k), decode(x))
            return obj
        if tag == "q":
            cls = _BUILTIN_DEQUES.get(v[0]) or _class(v[0])
            if not issubclass(cls, deque):
                raise CodecError(f"{v[0]!r} is not a deque")
            maxlen = v[1]
            if maxlen is not None and (not isinstance(maxlen, int) or maxlen < 0):
                raise CodecError("bad deque bound")
            obj = cls.__new__(cls)
            deque.__init__(obj, (decode(x) for x in v[2]), maxlen)
            _restore_attrs(obj, decode(v[3]))
            return obj
        if tag == "r":
            r = random.Random()
            r.setstate((v[0], tuple(int(i) for i in v[1]), v[2]))
            return r
        if tag == "x":
            cls = _class(v[0])
            obj = cls.__new__(cls)
            state = decode(v[1])
            setstate = getattr(obj, "__setstate__", None)
            if setstate is not None:
                setstate(state)
            else:
                _default_setstate(obj, state)
            return obj
    except CodecError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
        raise CodecError(f"malformed state value ({tag!r}): {type(exc).__name__}: {exc}") from None
    raise CodecError(f"unknown state tag {tag!r}")


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


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()


def dumps(obj: Any) -> bytes:
    """``obj`` as MessagePack bytes."""
    return _enc.encode(encode(obj))


def loads(data: bytes) -> Any:
    """Inverse of :func:`dumps`; raises :class:`CodecError` on bad data."""
    try:
        raw = _dec.decode(data)
    except msgspec.DecodeError as exc:
        raise CodecError(f"undecodable state record: {exc}") from None
    return decode(raw)
