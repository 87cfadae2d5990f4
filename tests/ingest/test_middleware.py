"""The capture-only middlewares: exchanges to ``submit``, nothing run.
(The middlewares that analyse are tested in ``tests/live``.)"""

from __future__ import annotations

import asyncio
import io

import pytest

from apiward.ingest.capture import Exchange, to_call
from apiward.ingest.middleware import ASGICapture, WSGICapture


async def _app(scope, receive, send):
    body = (await receive())["body"]
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"got": %d}' % len(body)})


def test_asgi_capture_hands_exchanges_to_submit():
    got: list[Exchange] = []
    mw = ASGICapture(_app, got.append, service="svc")
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b'{"a": 1}', "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/x", "raw_path": b"/x", "query_string": b"q=1",
             "headers": [(b"x-request-id", b"r1")], "client": ("10.0.0.1", 5000), "server": ("10.0.0.2", 80)}
    asyncio.run(mw(scope, receive, send))
    assert sent[0]["status"] == 201  # the app's answer, unchanged
    call = to_call(got[0])
    assert (call.request.method, call.request.path, call.request.query, call.status) == ("POST", "/x", [("q", "1")], 201)
    assert call.request.body == b'{"a": 1}' and call.request_id == "r1" and call.workload.service == "svc"


def test_wsgi_capture_hands_exchanges_to_submit():
    got: list[Exchange] = []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hi"]

    mw = WSGICapture(app, got.append)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/w", "wsgi.input": io.BytesIO(b""), "SERVER_NAME": "h", "SERVER_PORT": "80"}
    result = mw(environ, lambda status, headers, exc_info=None: None)
    assert b"".join(result) == b"hi"
    result.close()
    assert [to_call(ex).status for ex in got] == [200]


def test_the_analysing_middlewares_moved_to_live():
    with pytest.raises(ImportError, match="apiward.live.middleware"):
        from apiward.ingest.middleware import ApiwardASGIMiddleware  # noqa: F401
