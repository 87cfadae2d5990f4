"""Saving and restoring the pipeline's stateful parts through the store.

Every part is built from the configuration at every start (so a changed
option, a disabled detector or a detector added by an upgrade takes effect)
and then given back what it learned: the attributes saved under its
component name (``inventory``, ``baselines``, ``trust``, ``detector:<id>``,
``shared``...). What is configuration stays as built: the constructor's
parameters and the names a class lists in ``config_attrs`` (settings
derived from parameters). Each LRU keeps the cap the new build gave it
(a memory budget or an option may have changed it). Attributes the saved
state lacks keep the new build's defaults, so state from before a new
attribute existed loads as it is.
"""

from __future__ import annotations

import inspect
from typing import Any

from apiward.learn.sketches import LRU

__all__ = ["state_of", "restore"]

_params_cache: dict[type, frozenset[str]] = {}


def _config_names(cls: type) -> frozenset[str]:
    names = _params_cache.get(cls)
    if names is None:
        try:
            params = set(inspect.signature(cls.__init__).parameters) - {"self"}
        except (TypeError, ValueError):
            params = set()
        for c in cls.__mro__:
            params.update(getattr(c, "config_attrs", ()))
        names = _params_cache[cls] = frozenset(params)
    return names


def state_of(obj: Any, *, skip: tuple[Any, ...] = ()) -> dict[str, Any]:
    """The attributes of ``obj`` worth saving: its ``__getstate__()`` when
    that is a dict (caches dropped), else its ``__dict__``; attributes that
    are one of ``skip`` (objects saved elsewhere, like shared trackers) are
    left out."""
    get = getattr(obj, "__getstate__", None)
    st = get() if get is not None else None
    if not isinstance(st, dict):
        st = dict(vars(obj))
    if skip:
        st = {k: v for k, v in st.items() if not any(v is s for s in skip)}
    return st


def _is_part(v: Any) -> bool:
    """An apiward object with attributes of its own (a templater, a model)."""
    t = type(v)
    return t.__module__.startswith("apiward.") and hasattr(v, "__dict__") and not isinstance(v, (LRU, dict, list, set))


def restore(obj: Any, attrs: dict[str, Any] | None, _depth: int = 0) -> Any:
    """Give ``obj`` (freshly built from the configuration) the learned
    attributes in ``attrs``; returns ``obj``. A nested apiward object the
    new build made (the inventory's templater, built from the configured
    overrides) is restored in place the same way, one level down."""
    if not attrs:
        return obj
    config = _config_names(type(obj))
    d = obj.__dict__
    for k, v in attrs.items():
        if k.startswith("__"):
            continue
        cur = d.get(k)
        if _depth == 0 and _is_part(cur) and type(v) is type(cur):
            restore(cur, state_of(v), _depth + 1)
            continue
        if k in config:
            continue
        if isinstance(cur, LRU) and isinstance(v, LRU):
            v.spill = cur.spill
            v.set_cap(cur.cap)
        elif isinstance(cur, LRU) and type(v) is dict:
            cur.update(v)  # a plain table of an older state, now keyed records: same entries
            continue
        elif isinstance(cur, LRU) != isinstance(v, LRU):
            continue  # the attribute changed shape across versions: keep the new build's
        d[k] = v
    after = getattr(obj, "_after_restore", None)
    if after is not None:
        after()
    return obj
