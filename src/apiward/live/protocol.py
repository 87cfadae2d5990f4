"""The pipe between a capture process and its pipeline worker.

Each message is one frame: a 4-byte big-endian length, then a MessagePack
document of one of the tagged :mod:`msgspec` Structs below, decoded into
exactly that type (never pickle: the calls carry what clients sent).

To the worker: :class:`Batch` (calls, with a sequence number and the lake
batch key) and :class:`Stop`. From the worker: :class:`Ready` (the pipeline
is open), :class:`Done` (a batch went through the pipeline),
:class:`Checkpointed` (state and lake hold every batch up to ``upto``),
:class:`Failed` (the pipeline could not be opened) and :class:`Stopped`
(closed cleanly after a ``Stop``).
"""

from __future__ import annotations

import os
import select
import struct
import time
from typing import Any

import msgspec

from apiward.model.call import ApiCall

__all__ = [
    "Batch", "Checkpointed", "Done", "Failed", "FRAME_TARGET", "RawBatch", "Ready", "Stop", "Stopped",
    "decode_from_worker", "decode_to_worker", "encode", "read_frame", "write_frame",
]

#: A batch is split into frames of about this many bytes (a few huge bodies
#: must not make one frame of gigabytes).
FRAME_TARGET = 16 << 20
_MAX_FRAME = 1 << 31
_LEN = struct.Struct(">I")


class Batch(msgspec.Struct, tag="batch", kw_only=True):
    """Calls for the pipeline. ``key`` names their lake files: a batch sent
    again after a worker died replaces what the first attempt wrote."""

    seq: int
    key: str
    calls: list[ApiCall]


class RawBatch(msgspec.Struct, tag="batch", kw_only=True):
    """The sender's form of :class:`Batch`: each call already encoded."""

    seq: int
    key: str
    calls: list[msgspec.Raw]


class Stop(msgspec.Struct, tag="stop"):
    """Process what came before, checkpoint, close the pipeline, exit."""


class Ready(msgspec.Struct, tag="ready", kw_only=True):
    pid: int


class Done(msgspec.Struct, tag="done", kw_only=True):
    seq: int
    events: int
    errors: int = 0
    last_error: str = ""


class Checkpointed(msgspec.Struct, tag="checkpointed", kw_only=True):
    """Every batch up to ``upto`` is in the state store and the lake.
    ``figures``: the pipeline's counters for metrics
    (:func:`apiward.alert.metrics.pipeline_figures`)."""

    upto: int
    figures: dict[str, Any] = {}


class Failed(msgspec.Struct, tag="failed", kw_only=True):
    message: str


class Stopped(msgspec.Struct, tag="stopped", kw_only=True):
    upto: int
    figures: dict[str, Any] = {}


_encoder = msgspec.msgpack.Encoder()
_to_worker = msgspec.msgpack.Decoder(Batch | Stop)
_from_worker = msgspec.msgpack.Decoder(Ready | Done | Checkpointed | Failed | Stopped)


def encode(msg: Any) -> bytes:
    return _encoder.encode(msg)


def decode_to_worker(data: bytes) -> Batch | Stop:
    return _to_worker.decode(data)


def decode_from_worker(data: bytes) -> Ready | Done | Checkpointed | Failed | Stopped:
    return _from_worker.decode(data)


def write_frame(fd: int, data: bytes) -> None:
    """Write one frame to a blocking descriptor (raises ``OSError``, e.g.
    ``BrokenPipeError`` when the reader is gone)."""
    os.write(fd, _LEN.pack(len(data)))
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _read_exactly(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def read_frame(fd: int, timeout: float | None = None) -> bytes | None:
    """The next frame; ``None`` at end of file. With ``timeout``, raises
    ``TimeoutError`` when no frame starts within it."""
    if timeout is not None:
        deadline = time.monotonic() + timeout
        while not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            if time.monotonic() >= deadline:
                raise TimeoutError("no frame in time")
    head = _read_exactly(fd, _LEN.size)
    if head is None:
        return None
    (n,) = _LEN.unpack(head)
    if n > _MAX_FRAME:
        raise ValueError(f"frame of {n} bytes")
    return _read_exactly(fd, n) if n else b""
