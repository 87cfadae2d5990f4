"""Where a file run resumes: files are recognised by their first bytes, not
by name or size, so a file that grew continues where the last run stopped
and a rotated or replaced file is read from the start.

A file's mark is ``(head length, head digest, next record, file id)``: the
digest of its first ``HEAD`` bytes (fewer while the file is smaller) as they
were when the mark was written. A file matches a mark when its first
``head length`` bytes still hash the same: appended data leaves them alone,
a rewrite (log rotation, a new export) does not. Marks are kept by file name
and, once a file has ``HEAD`` bytes, by that digest too (a renamed file is
still found). ``file id`` names the file's lake batches and never changes,
so a batch re-run after a crash replaces its own lake file.

Records of formats without their own ids (HAR) also get a content
fingerprint (:func:`content_fingerprint`): a re-exported, longer HAR, whose
head changed, stores each entry it shares with the earlier export once.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import MutableMapping
from typing import Any

import msgspec

from apiward.model.call import ApiCall

__all__ = ["HEAD", "Mark", "content_fingerprint", "find_mark", "head_of", "put_mark"]

HEAD = 4096  # raw (compressed, for .gz) bytes that identify a file

Mark = tuple[int, str, int, str]  # (head length, head digest, next record, file id)


def head_of(path: str) -> bytes:
    """The first :data:`HEAD` bytes of the file as stored (a ``.gz`` is not
    decompressed: appending a gzip member leaves its head alone)."""
    with open(path, "rb") as f:
        return f.read(HEAD)


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


def find_mark(progress: MutableMapping[str, Any], name: str, head: bytes) -> tuple[str, int]:
    """``(file id, first record to read)`` for a file named ``name`` whose
    first bytes are ``head``: where its mark says, else a new id and 0."""
    candidates = [progress.get(f"name:{name}")]
    if len(head) >= HEAD:
        candidates.append(progress.get(f"head:{_digest(head)}"))
    for mark in candidates:
        if not mark:
            continue
        n, digest, next_index, file_id = mark
        if len(head) >= n and _digest(head[:n]) == digest:
            return file_id, next_index
    file_id = _digest(name.encode() + b"\0" + head)[:16]
    return file_id, 0


def put_mark(progress: MutableMapping[str, Any], name: str, head: bytes, file_id: str, next_index: int) -> None:
    """Record that the file ``file_id`` (named ``name``, first bytes
    ``head``) was read up to ``next_index``."""
    mark: Mark = (len(head), _digest(head), next_index, file_id)
    progress[f"name:{name}"] = mark
    if len(head) >= HEAD:
        progress[f"head:{mark[1]}"] = mark


_encode = msgspec.msgpack.Encoder().encode


def content_fingerprint(call: ApiCall) -> str:
    """A digest of what a call is (time, request, response; not its id or
    position in a file): equal for the same entry exported twice."""
    rq = call.request
    rs = call.response
    parts: tuple[Any, ...] = (
        call.ts, call.duration_ms, rq.method, rq.scheme, rq.host, rq.path, rq.query, rq.headers, rq.body, rq.body_size,
        call.dst.ip, call.dst.port,
    )
    if rs is not None:
        parts += (rs.status, rs.headers, rs.body, rs.body_size, rs.body_sha256)
    return hashlib.blake2b(_encode(parts), digest_size=12).hexdigest()


def stat_key(path: str) -> str:
    """Kept for states written before marks: the old fingerprint (name,
    size and first 64 KiB) under which their progress was stored."""
    st = os.stat(path)
    h = hashlib.blake2b(digest_size=8)
    h.update(os.path.basename(path).encode())
    h.update(str(st.st_size).encode())
    with open(path, "rb") as f:
        h.update(f.read(65536))
    return h.hexdigest()
