"""Decoding ingestion batches into events, all or nothing.

``telemetry``: APIClarity's ``POST /api/telemetry`` body (one object, an
array, or JSON lines) through :class:`apiward.ingest.apiclarity.ApiClarityReader`;
``events``: apiward's own JSONL (:class:`apiward.ingest.jsonl.JsonlReader`).
A batch with any bad record is refused whole, with every bad record named
(index and reason), so a collector never believes a dropped event was kept.
Events without their own id get a fresh unique one.
"""

from __future__ import annotations

import io
import secrets

from apiward.ingest.apiclarity import ApiClarityReader
from apiward.ingest.base import Bad, ReadOptions
from apiward.ingest.jsonl import JsonlReader
from apiward.model.call import ApiCall

__all__ = ["MAX_BODY", "MAX_EVENTS", "BadBatch", "decode_batch"]

MAX_BODY = 32 * 1024 * 1024
MAX_EVENTS = 10_000
_READERS = {"telemetry": ApiClarityReader(), "events": JsonlReader()}


class BadBatch(ValueError):
    """A batch refused whole; ``errors`` names each bad record."""

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


def decode_batch(fmt: str, body: bytes) -> list[ApiCall]:
    """The events of one request body in format ``fmt`` (telemetry | events)."""
    if not body.strip():
        raise BadBatch("empty body: send at least one event")
    if len(body) > MAX_BODY:
        raise BadBatch(f"body is {len(body)} bytes; at most {MAX_BODY} per request")
    tag = secrets.token_hex(6)
    source = f"{fmt}-{tag}"
    calls: list[ApiCall] = []
    errors: list[dict[str, object]] = []
    for index, item in _READERS[fmt].read(io.BytesIO(body), ReadOptions(source_name=source)):
        if isinstance(item, Bad):
            errors.append({"record": index, "reason": item.reason})
            if len(errors) >= 20:
                break
            continue
        if not item.id or item.id.startswith(source):
            item.id = f"{fmt}-{tag}-{index}"
        item.source = item.source or fmt
        calls.append(item)
        if len(calls) > MAX_EVENTS:
            raise BadBatch(f"more than {MAX_EVENTS} events in one request; split the batch")
    if errors:
        raise BadBatch(f"{len(errors)} bad record(s); nothing from this batch was accepted", errors)
    if not calls:
        raise BadBatch("no events in the body")
    return calls
