"""``protocol.request_smuggling``: a request whose framing two HTTP parsers
could read differently (CWE-444).

Looks at: the capture proxy's refusal marker
(``extra["proxy_rejected"] == "request_smuggling"``, set only by the proxy,
which answered 400 and forwarded nothing) and, for calls from other sources
(logs, HAR), the same framing rules applied to the recorded headers: both
Content-Length and Transfer-Encoding, an unknown or repeated coding, an
invalid or repeated Content-Length. Cost: two dictionary look-ups per call,
a header scan when the call carries a framing header. False-positive
assumptions: a client sending ``Transfer-Encoding: gzip, chunked`` is
refused and reported although RFC 9112 allows it; no ordinary client sends
it to an API. Stateless. Its findings are attacks by the caller.
"""

from __future__ import annotations

from apiward.detect.base import DetectorBase
from apiward.ingest.http1 import HeadError, request_framing
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

_FRAMING = frozenset({"content-length", "transfer-encoding"})


class RequestSmuggling(DetectorBase):
    id = "protocol.request_smuggling"
    title = "HTTP request smuggling attempt"
    severity = "high"
    owasp = "API8:2023"
    attack = "T1190"
    tactic = "initial-access"
    cwe = "CWE-444"
    kind = "attack"

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        req = call.request
        extra = call.extra or {}
        if extra.get("proxy_rejected") == "request_smuggling":
            reason = extra.get("proxy_error", "ambiguous framing")
            confidence, where = 0.95, "refused by the apiward proxy"
        else:
            headers = req.headers
            if not any(k.lower() in _FRAMING for k, _ in headers):
                return []
            try:
                request_framing([(k.lower(), v) for k, v in headers], req.http_version or "HTTP/1.1")
                return []
            except HeadError as exc:
                if not exc.smuggling:
                    return []
                reason = str(exc)
            confidence, where = 0.6, "seen in the capture; whether the upstream was desynchronised is unknown"
        framing = {k.lower(): v[:80] for k, v in req.headers if k.lower() in _FRAMING}
        return [
            self.finding(
                call,
                ctx,
                summary=f"{req.method} {req.path}: {reason} ({where})",
                evidence={"reason": reason, "framing_headers": framing, "source": call.source},
                confidence=confidence,
            )
        ]
