"""Capture middleware that analyses: one line in a Python service.

ASGI (FastAPI, Starlette, Django ASGI)::

    from apiward.live.middleware import ApiwardASGIMiddleware
    app.add_middleware(ApiwardASGIMiddleware, state_dir=".apiward")
    # or: app = ApiwardASGIMiddleware(app, state_dir=".apiward")

WSGI (Flask, Django)::

    from apiward.live.middleware import ApiwardWSGIMiddleware
    app.wsgi_app = ApiwardWSGIMiddleware(app.wsgi_app, state_dir=".apiward")
    # Django wsgi.py: application = ApiwardWSGIMiddleware(get_wsgi_application(), state_dir=...)

The capture itself is :mod:`apiward.ingest.middleware`; here each exchange
goes to a :class:`~apiward.live.runner.LiveRunner`, which never blocks the
request. With ``state_dir`` a :class:`apiward.pipeline.Pipeline` analyses
the traffic in the runner's thread (in the service's process); with
``sink`` any callable taking a list of :class:`ApiCall` receives the
batches instead (e.g. :class:`apiward.ingest.forward.ServerSink`, to let a
server analyse them). Middlewares given the same ``state_dir`` in one
process share one pipeline. Run one pipeline per state directory: with
several worker processes give each its own ``state_dir``, or forward.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apiward.ingest.base import DEFAULT_BODY_CAP
from apiward.ingest.middleware import ASGICapture, WSGICapture
from apiward.live.runner import LiveRunner, pipeline_runner
from apiward.model.call import ApiCall

__all__ = ["ApiwardASGIMiddleware", "ApiwardWSGIMiddleware", "capture_backend"]

_backends: dict[str, "_Backend"] = {}
_backends_lock = threading.Lock()


class _Backend:
    """A live runner and (optionally) the pipeline it feeds."""

    def __init__(self, queue: LiveRunner, pipeline: Any = None) -> None:
        self.queue = queue
        self.pipeline = pipeline
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.queue.close()
        if self.pipeline is not None:
            self.pipeline.close()


def capture_backend(
    *,
    state_dir: str | Path | None = None,
    sink: Callable[[list[ApiCall]], Any] | None = None,
    body_cap: int = DEFAULT_BODY_CAP,
    max_queue: int = 10_000,
    batch_ms: float = 200.0,
) -> _Backend:
    """The shared backend for ``state_dir`` (created on first use), or a
    private one around ``sink``."""
    if sink is not None:
        return _Backend(LiveRunner(sink, max_queue=max_queue, batch_ms=batch_ms, body_cap=body_cap))
    if state_dir is None:
        raise ValueError("give state_dir (analyse with apiward's pipeline) or sink (a callable taking list[ApiCall])")
    key = str(Path(state_dir).resolve())
    with _backends_lock:
        b = _backends.get(key)
        if b is None or b.closed:
            from apiward.pipeline import Pipeline

            pipeline = Pipeline(Path(state_dir))
            q = pipeline_runner(pipeline, max_queue=max_queue, batch_ms=batch_ms, body_cap=body_cap)
            b = _backends[key] = _Backend(q, pipeline)
            atexit.register(b.close)
        return b


class _Live:
    """The backend part both middlewares share (first in their bases)."""

    def __init__(
        self,
        app: Any,
        *,
        state_dir: str | Path | None = None,
        sink: Callable[[list[ApiCall]], Any] | None = None,
        body_cap: int = DEFAULT_BODY_CAP,
        service: str = "",
        max_queue: int = 10_000,
        batch_ms: float = 200.0,
    ) -> None:
        self.backend = capture_backend(state_dir=state_dir, sink=sink, body_cap=body_cap, max_queue=max_queue, batch_ms=batch_ms)
        self.queue = self.backend.queue
        super().__init__(app, self.queue.submit, body_cap=body_cap, service=service)  # type: ignore[call-arg]

    def close(self) -> None:
        """Drain the queue into the sink and checkpoint the pipeline."""
        self.backend.close()


class ApiwardASGIMiddleware(_Live, ASGICapture):
    """ASGI middleware that captures and analyses every HTTP exchange
    (lifespan shutdown drains the queue and checkpoints)."""


class ApiwardWSGIMiddleware(_Live, WSGICapture):
    """WSGI middleware that captures and analyses every exchange."""
