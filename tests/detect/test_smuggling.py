"""protocol.request_smuggling: the proxy's refusals, and ambiguous framings
seen in captured calls from other sources."""

from __future__ import annotations

import msgspec

from apiward.detect.smuggling import RequestSmuggling
from apiward.model.context import Context, EndpointRef
from apiward.testing import make_call


def _score(call) -> list:
    ctx = Context(endpoint=EndpointRef(host=call.request.host, method=call.request.method, template=call.request.path))
    return RequestSmuggling().score_one(call, ctx)


def test_proxy_refusal_is_an_attack_finding() -> None:
    call = make_call("POST", "/api/pay", status=400)
    call = msgspec.structs.replace(
        call, extra={"proxy_rejected": "request_smuggling", "proxy_error": "both Content-Length and Transfer-Encoding"}
    )
    (f,) = _score(call)
    assert f.kind == "attack" and f.cwe == "CWE-444" and f.owasp == "API8:2023" and f.severity == "high"
    assert f.confidence >= 0.9 and "both Content-Length" in f.summary and f.event_ids == [call.id]


def test_ambiguous_headers_in_a_log_are_found_with_less_confidence() -> None:
    call = make_call("POST", "/api/pay", headers={"content-length": "4", "transfer-encoding": "chunked"})
    (f,) = _score(call)
    assert f.confidence < 0.9 and f.evidence["framing_headers"] == {"content-length": "4", "transfer-encoding": "chunked"}
    assert len(_score(make_call("POST", "/api/pay", headers={"transfer-encoding": "xchunked"}))) == 1


def test_ordinary_framing_and_other_refusals_are_quiet() -> None:
    assert _score(make_call("POST", "/api/pay", headers={"content-length": "12"})) == []
    assert _score(make_call("POST", "/api/pay", headers={"transfer-encoding": "chunked"})) == []
    assert _score(make_call("GET", "/api/pay")) == []
    other = msgspec.structs.replace(make_call("GET", "/x", status=400), extra={"proxy_error": "malformed request line"})
    assert _score(other) == []
