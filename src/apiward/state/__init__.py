"""The state directory: everything apiward learned, on disk.

Layout::

    <state>/apiward.toml      optional config
    <state>/secret            key of the keyed digests (0600; never in the lake)
    <state>/state.pkl         snapshot: inventory, detector state, findings, progress
    <state>/lake/             the event lake (see apiward.lake.store)
    <state>/quarantine/       malformed input records: <file name>.bad.jsonl per source file

The snapshot is written to a temporary file and renamed, so a crash (even
kill -9) leaves either the old or the new snapshot, never half of one. It is
a pickle of apiward's own objects, written and read only by apiward; nothing
from inspected traffic is ever unpickled (traffic is data inside it).
"""

from __future__ import annotations

import os
import pickle
import secrets
from pathlib import Path
from typing import Any

__all__ = ["StateDir", "SNAPSHOT_VERSION"]

SNAPSHOT_VERSION = 1


class StateDir:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def quarantine(self) -> Path:
        p = self.root / "quarantine"
        p.mkdir(exist_ok=True)
        return p

    @property
    def snapshot_path(self) -> Path:
        return self.root / "state.pkl"

    def secret(self) -> bytes:
        """The per-installation key for keyed digests, created on first use."""
        p = self.root / "secret"
        try:
            return bytes.fromhex(p.read_text().strip())
        except FileNotFoundError:
            key = secrets.token_bytes(32)
            tmp = p.with_name(".secret.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(key.hex())
            try:
                os.link(tmp, p)  # atomic create-if-absent: two processes agree on one key
            except FileExistsError:
                pass
            tmp.unlink(missing_ok=True)
            return bytes.fromhex(p.read_text().strip())

    def load(self) -> dict[str, Any] | None:
        try:
            with open(self.snapshot_path, "rb") as f:
                snap = pickle.load(f)
        except FileNotFoundError:
            return None
        if not isinstance(snap, dict) or snap.get("version") != SNAPSHOT_VERSION:
            raise RuntimeError(f"{self.snapshot_path}: unsupported state snapshot; remove it to start afresh")
        return snap

    def save(self, snap: dict[str, Any]) -> None:
        snap = dict(snap, version=SNAPSHOT_VERSION)
        tmp = self.snapshot_path.with_name(f".state.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(snap, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.snapshot_path)
