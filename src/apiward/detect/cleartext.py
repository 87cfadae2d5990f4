"""``auth.cleartext_credentials``: credentials sent over plain HTTP.

Looks at: the scheme and the presence of an Authorization header, an API key
header, a session cookie or a password field. Cost: a few dictionary look-ups
per call. False-positive assumptions: loopback and in-cluster hops behind a
TLS-terminating proxy also travel as http; they are skipped when the peer
address is loopback. Stateless. Its findings are exposures: about the host
that accepts credentials in cleartext, never about who sends them.
"""

from __future__ import annotations

from apiward.detect.base import DetectorBase
from apiward.model.call import ApiCall
from apiward.model.context import Context
from apiward.model.finding import Finding

_PASSWORD_FIELDS = frozenset({"password", "passwd", "pwd", "pass"})
_LOOPBACK = ("127.", "::1", "localhost")


class CleartextCredentials(DetectorBase):
    id = "auth.cleartext_credentials"
    title = "Credentials sent over plain HTTP"
    severity = "medium"
    owasp = "API2:2023"
    attack = "T1040"
    tactic = "credential-access"
    cwe = "CWE-319"
    kind = "exposure"  # the API takes credentials in cleartext; the callers are not suspects

    def score_one(self, call: ApiCall, ctx: Context) -> list[Finding]:
        req = call.request
        if req.scheme != "http":
            return []
        host = req.host
        if host.startswith(_LOOPBACK) or call.dst.ip.startswith(_LOOPBACK):
            return []
        what = ""
        if req.header("authorization"):
            what = "Authorization header"
        elif call.actor.auth_scheme == "apikey":
            what = "API key"
        elif req.method in ("POST", "PUT", "PATCH") and _PASSWORD_FIELDS & {k.lower() for k in req.params()}:
            what = "password field"
        if not what:
            return []
        return [
            self.finding(
                call,
                ctx,
                summary=f"{what} sent over plain HTTP to {host}",
                evidence={"credential": what, "scheme": req.scheme, "host": host},
                confidence=0.9,
                key=f"{self.id}|{host}|{what}",
            )
        ]
