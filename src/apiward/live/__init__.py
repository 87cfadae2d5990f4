"""Live analysis: captured calls into the pipeline, above it.

Capture (``ingest/``: the proxy, the middleware) produces calls; it never
runs stages. This package runs them:

- :mod:`~apiward.live.runner`: :class:`LiveRunner`, a bounded queue with
  counted drops and one consumer thread that converts exchanges into calls
  and hands batches to a sink (a pipeline in this process, the worker
  process, or a server), checkpointing on a timer;
- :mod:`~apiward.live.supervisor` + :mod:`~apiward.live.worker` +
  :mod:`~apiward.live.protocol`: the pipeline in its own process (the
  default of ``apiward proxy``), fed over a pipe with msgspec frames,
  restarted when it dies;
- :mod:`~apiward.live.middleware`: the ASGI/WSGI middlewares with their
  pipeline (``state_dir``) or sink.
"""

from apiward.live.runner import CaptureStats, LiveRunner, pipeline_runner

__all__ = ["CaptureStats", "LiveRunner", "pipeline_runner"]
