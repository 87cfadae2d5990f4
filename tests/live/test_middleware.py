"""The ASGI and WSGI middlewares that analyse (``state_dir``) or forward
(``sink``), on tiny Starlette and Flask apps served by real servers on
loopback."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from flask import Flask, Response as FlaskResponse, request as flask_request, stream_with_context
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from werkzeug.serving import make_server

from apiward.live.middleware import ApiwardASGIMiddleware, ApiwardWSGIMiddleware
from apiward.model.call import ApiCall
from apiward.testing import ServedASGI

pytestmark = pytest.mark.timeout(60)


class Collector:
    def __init__(self) -> None:
        self.calls: list[ApiCall] = []

    def __call__(self, batch: list[ApiCall]) -> None:
        self.calls.extend(batch)

    def by_id(self) -> dict[str, ApiCall]:
        """Calls by the client's request id (kept as ``request_id``; the event
        id is apiward's own)."""
        assert len({c.id for c in self.calls}) == len(self.calls)
        return {c.request_id: c for c in self.calls}


# -- Starlette ----------------------------------------------------------------------------


async def user(request: Request):
    body = await request.body()
    return JSONResponse({"id": request.path_params["user_id"], "got": len(body), "email": "a@b.example"}, headers={"x-app": "1"})


async def feed(request: Request):
    async def gen():
        for i in range(5):
            yield f"line {i}\n".encode()

    return StreamingResponse(gen(), media_type="text/plain")


async def boom(request: Request):
    raise RuntimeError("boom")


def starlette_app() -> Starlette:
    return Starlette(routes=[
        Route("/users/{user_id}", user, methods=["GET", "POST"]),
        Route("/feed", feed),
        Route("/boom", boom),
    ])


def test_asgi_middleware_captures_without_changing_responses():
    got = Collector()
    plain = starlette_app()
    wrapped = starlette_app()
    wrapped.add_middleware(ApiwardASGIMiddleware, sink=got, body_cap=64)
    with ServedASGI(plain, lifespan="on") as a, ServedASGI(wrapped, lifespan="on") as b:
        with httpx.Client() as c:
            pairs = []
            for base in (a.url, b.url):
                r1 = c.post(f"{base}/users/42?x=1", json={"name": "bob", "pad": "y" * 200}, headers={"x-request-id": "m1"})
                with c.stream("GET", f"{base}/feed", headers={"x-request-id": "m2"}) as r2:
                    chunks = list(r2.iter_raw())
                r3 = c.get(f"{base}/boom", headers={"x-request-id": "m3"})
                pairs.append((r1, chunks, r3))
        (a1, achunks, a3), (b1, bchunks, b3) = pairs
        assert a1.content == b1.content and a1.status_code == b1.status_code
        assert {k: v for k, v in a1.headers.items() if k != "date"} == {k: v for k, v in b1.headers.items() if k != "date"}
        assert b"".join(achunks) == b"".join(bchunks) == b"".join(f"line {i}\n".encode() for i in range(5))
        assert a3.status_code == b3.status_code == 500
    # lifespan shutdown drained the queue
    assert wrapped.middleware_stack is not None
    calls = got.by_id()
    assert set(calls) >= {"m1", "m2", "m3"}
    c1 = calls["m1"]
    assert c1.source == "asgi" and c1.request.method == "POST" and c1.request.path == "/users/42"
    assert c1.request.query == [("x", "1")]
    assert c1.workload.route == "/users/{user_id}"
    assert c1.request.truncated and len(c1.request.body) == 64 and c1.request.body_size > 200
    assert c1.response.status == 200 and c1.response.json() == {"id": "42", "got": c1.request.body_size, "email": "a@b.example"}
    assert c1.src.ip == "127.0.0.1" and c1.duration_ms is not None
    assert calls["m2"].response.text() == "".join(f"line {i}\n" for i in range(5))
    assert calls["m3"].status == 500 and calls["m3"].extra["app_error"] == "RuntimeError"


# -- Flask --------------------------------------------------------------------------------


def flask_app() -> Flask:
    app = Flask("tiny")

    @app.post("/orders")
    def orders():
        data = flask_request.get_json()
        return {"ok": True, "items": len(data["items"])}, 201, {"x-app": "1"}

    @app.get("/export")
    def export():
        def gen():
            for i in range(4):
                yield f"row,{i}\n"

        return FlaskResponse(stream_with_context(gen()), mimetype="text/csv")

    @app.get("/items/<int:item_id>")
    def item(item_id: int):
        return {"id": item_id, "q": flask_request.args.get("q")}

    return app


class WsgiServed:
    def __init__(self, wsgi) -> None:
        self.server = make_server("127.0.0.1", 0, wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "WsgiServed":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join(5)


def _settle(mw: ApiwardWSGIMiddleware, n: int) -> None:
    """The server thread finishes a request (and the middleware submits it)
    just after the client has the response; wait for it before closing."""
    deadline = time.time() + 10
    while mw.queue.stats.captured < n and time.time() < deadline:
        time.sleep(0.01)


def test_wsgi_middleware_on_flask():
    got = Collector()
    plain = flask_app()
    wrapped = flask_app()
    mw = ApiwardWSGIMiddleware(wrapped.wsgi_app, sink=got)
    wrapped.wsgi_app = mw
    with WsgiServed(plain) as a, WsgiServed(wrapped) as b:
        with httpx.Client() as c:
            res = []
            for base in (a.url, b.url):
                r1 = c.post(f"{base}/orders", json={"items": [1, 2, 3], "card": "4111 1111 1111 1111"}, headers={"x-request-id": "w1"})
                r2 = c.get(f"{base}/export", headers={"x-request-id": "w2"})
                r3 = c.get(f"{base}/items/7?q=a%20b", headers={"x-request-id": "w3", "authorization": "Bearer t"})
                r4 = c.post(f"{base}/orders", content=iter([b'{"items": [1]}']), headers={"x-request-id": "w4", "content-type": "application/json"})
                res.append((r1, r2, r3, r4))
    for x, y in zip(*res):
        assert x.status_code == y.status_code and x.content == y.content
    assert res[1][0].status_code == 201 and res[1][3].json() == {"ok": True, "items": 1}
    _settle(mw, 4)
    mw.close()
    calls = got.by_id()
    w1, w2, w3, w4 = calls["w1"], calls["w2"], calls["w3"], calls["w4"]
    assert w1.source == "wsgi" and w1.status == 201 and w1.request.json()["card"] == "4111 1111 1111 1111"
    assert w1.response.json() == {"ok": True, "items": 3}
    assert w2.response.text() == "".join(f"row,{i}\n" for i in range(4))
    assert w3.request.path == "/items/7" and w3.request.query == [("q", "a b")]
    assert w3.request.header("authorization") == "Bearer t"
    assert w4.request.body == b'{"items": [1]}'  # chunked request, copied as the app read it
    assert mw.queue.stats.dropped == 0


def test_middleware_needs_a_destination():
    with pytest.raises(ValueError):
        ApiwardWSGIMiddleware(flask_app().wsgi_app)


def test_wsgi_middleware_with_state_dir_feeds_the_pipeline_and_lake(tmp_path):
    from apiward.lake.query import connect

    app = flask_app()
    mw = ApiwardWSGIMiddleware(app.wsgi_app, state_dir=tmp_path / "state")
    app.wsgi_app = mw
    assert ApiwardWSGIMiddleware(flask_app().wsgi_app, state_dir=tmp_path / "state").backend is mw.backend  # shared
    with WsgiServed(app) as b, httpx.Client() as c:
        for i in range(5):
            assert c.get(f"{b.url}/items/{i}", headers={"x-request-id": f"p{i}"}).status_code == 200
    _settle(mw, 5)
    mw.close()
    con = connect(tmp_path / "state" / "lake")
    rows = con.execute("SELECT request_id, source, status FROM calls ORDER BY request_id").fetchall()
    assert rows == [(f"p{i}", "wsgi", 200) for i in range(5)]
    assert con.execute("SELECT count(DISTINCT id) FROM calls").fetchone()[0] == 5
    assert (tmp_path / "state" / "state.db").exists()
