"""Per-call facts: what several detectors (and the baselines) need to know
about one call, computed at most once, lazily, and shared through the
call's :class:`~apiward.model.context.Context`.

``facts(call, ctx)`` returns the call's :class:`Facts` (made on first use
and kept on ``ctx.facts``). Each property computes its value the first time
it is read; nothing depends on which detectors ran or in which order. The
pipeline also records two verdicts here after scoring: ``flagged`` (an
attack finding rests on this call) and ``trusted`` (the actor is an
established principal no detector flagged), which decide what learners may
learn from the call (see :mod:`apiward.learn.trust`).

Cost: one attribute test per read after the first; the first read costs
what the underlying helper costs (:mod:`apiward.detect.objects`,
:mod:`apiward.learn.parameters`).
"""

from __future__ import annotations

from typing import Any

from apiward.learn.parameters import Param, call_params, profiled_params
from apiward.model.call import ApiCall
from apiward.model.context import Context

__all__ = ["Facts", "facts"]

_UNSET: Any = object()


class Facts:
    """Lazily computed facts of one call (see the module docstring)."""

    __slots__ = (
        "call", "ctx", "_ep_key", "_kind_key", "_path_refs", "_refs", "_issues_token", "_privileged",
        "_login", "_login_user", "_sensitive", "_params", "_all_params", "odd", "flagged", "trusted",
    )

    def __init__(self, call: ApiCall, ctx: Context) -> None:
        self.call = call
        self.ctx = ctx
        self._ep_key: str | None = None
        self._kind_key: str | None = None
        self._path_refs: Any = _UNSET
        self._refs: Any = _UNSET
        self._issues_token: Any = _UNSET
        self._privileged: Any = _UNSET
        self._login: Any = _UNSET
        self._login_user: Any = _UNSET
        self._sensitive: Any = _UNSET
        self._params: Any = _UNSET
        self._all_params: Any = _UNSET
        #: Parameters the baselines found not normal when scoring this call
        #: (``(location, name)``); ``None`` until scored.
        self.odd: list[tuple[str, str]] | None = None
        #: Set by the pipeline after scoring: an attack finding rests on this call.
        self.flagged = False
        #: Set by the pipeline: the actor is established and unflagged.
        self.trusted = True

    # -- endpoint ---------------------------------------------------------------
    @property
    def ep_key(self) -> str:
        """``ctx.endpoint.key``: the partition key of per-endpoint state."""
        k = self._ep_key
        if k is None:
            k = self._ep_key = self.ctx.endpoint.key
        return k

    @property
    def kind_key(self) -> str:
        """``host|noun`` of the kind of object the endpoint serves."""
        k = self._kind_key
        if k is None:
            from apiward.detect.objects import kind_key_of

            k = self._kind_key = kind_key_of(self.ctx.endpoint, self.ep_key)
        return k

    # -- parameters -------------------------------------------------------------------
    @property
    def params(self) -> list[Param]:
        """Parameters other than headers (what per-parameter profiles judge)."""
        p = self._params
        if p is _UNSET:
            p = self._params = profiled_params(self.call, self.ctx.endpoint.path_params)
        return p  # type: ignore[no-any-return]

    @property
    def all_params(self) -> list[Param]:
        """:attr:`params` plus the user-controlled value headers."""
        p = self._all_params
        if p is _UNSET:
            p = self._all_params = call_params(self.call, self.ctx.endpoint.path_params, base=self.params)
        return p  # type: ignore[no-any-return]

    # -- objects and identities -------------------------------------------------------
    @property
    def path_refs(self) -> list[tuple[str, str]]:
        """``(noun, value)`` of each id-like path parameter."""
        r = self._path_refs
        if r is _UNSET:
            from apiward.detect.objects import path_refs_of

            r = self._path_refs = path_refs_of(self.ctx.endpoint)
        return r  # type: ignore[no-any-return]

    @property
    def request_refs(self) -> list[tuple[str, str, str]]:
        """``(location, noun, value)`` of each object reference of the request."""
        r = self._refs
        if r is _UNSET:
            from apiward.detect.objects import request_refs_of

            r = self._refs = request_refs_of(self.call, self.ctx, self.path_refs)
        return r  # type: ignore[no-any-return]

    @property
    def issues_token(self) -> bool:
        """Whether the response hands out a credential."""
        r = self._issues_token
        if r is _UNSET:
            from apiward.detect.objects import has_token

            r = self._issues_token = has_token(self.call)
        return r  # type: ignore[no-any-return]

    @property
    def caller_privileged(self) -> bool | None:
        """Admin-ish role in the caller's JWT claims (``None``: no roles)."""
        r = self._privileged
        if r is _UNSET:
            from apiward.detect.objects import privileged_of

            r = self._privileged = privileged_of(self.call.actor)
        return r  # type: ignore[no-any-return]

    @property
    def login_form(self) -> tuple[str, str, str] | None:
        """``(username, password, username field)`` of a credential form."""
        r = self._login
        if r is _UNSET:
            from apiward.detect.objects import login_fields

            req = self.call.request
            r = self._login = login_fields(req.params()) if req.body and req.method != "GET" else None
        return r  # type: ignore[no-any-return]

    @property
    def login_user(self) -> tuple[str, str] | None:
        """(username, its digest) of a credential form answered 2xx."""
        r = self._login_user
        if r is _UNSET:
            from apiward.detect.objects import digest

            r = None
            resp = self.call.response
            if resp is not None and 200 <= resp.status < 300 and self.call.request.body:
                lf = self.login_form
                if lf is not None:
                    r = (lf[0], digest(lf[0].strip().lower()))
            self._login_user = r
        return r  # type: ignore[no-any-return]

    @property
    def sensitive(self) -> tuple[list[Any], set[str], set[str], list[Any], set[str], list[str]]:
        """One pass over the sensitive hits: (response hits, their classes,
        personal value digests in the response, owned-class response hits,
        value digests the request sent, owned-class digests the request sent)."""
        r = self._sensitive
        if r is _UNSET:
            from apiward.detect.objects import split_sensitive

            r = self._sensitive = split_sensitive(self.ctx.sensitive)
        return r  # type: ignore[no-any-return]


def facts(call: ApiCall, ctx: Context) -> Facts:
    """The call's facts, made on first use and kept on ``ctx``."""
    f = ctx.facts
    if f is None or f.call is not call:
        f = ctx.facts = Facts(call, ctx)
    return f  # type: ignore[no-any-return]
