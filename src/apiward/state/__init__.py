"""The state directory: everything apiward learned, on disk.

Layout::

    <state>/apiward.toml      optional config
    <state>/secret            key of the keyed digests (0600; never in the lake)
    <state>/state.db          the state store (SQLite): inventory, baselines, detectors, findings, progress
    <state>/lake/             the event lake (see apiward.lake.store)
    <state>/quarantine/       malformed input records: <file name>.bad.jsonl per source file

The store (:mod:`apiward.state.store`) writes keyed records in SQLite
transactions, so a crash (even kill -9) leaves the last checkpoint whole;
records are encoded without pickle (:mod:`apiward.state.codec`) and carry
a MAC keyed with ``secret``.
"""

from __future__ import annotations

import os
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

    def clean_temp(self) -> int:
        """Remove temporaries a kill left in the state directory (``.*.tmp``,
        zero-byte or partial; the lake cleans its own); returns how many."""
        n = 0
        for p in self.root.glob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
        return n

    def secret(self) -> bytes:
        """The per-installation key for keyed digests, created on first use
        (written and fsynced under a temporary name, then linked into place)."""
        p = self.root / "secret"
        try:
            text = p.read_text().strip()
        except FileNotFoundError:
            text = None
        if text is not None:
            try:
                key = bytes.fromhex(text)
            except ValueError:
                key = b""
            if len(key) >= 16:
                return key
            if self.store_path.exists():
                from apiward.state.store import StateError

                raise StateError(f"{p}: the key file is empty or damaged, and {self.store_path.name} was sealed with it; restore it from a backup")
            p.unlink(missing_ok=True)  # a kill before the key reached the disk, and nothing uses it yet
        key = secrets.token_bytes(32)
        tmp = p.with_name(f".secret.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.hex())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, p)  # atomic create-if-absent: two processes agree on one key
        except FileExistsError:
            pass
        tmp.unlink(missing_ok=True)
        dfd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return bytes.fromhex(p.read_text().strip())

    @property
    def store_path(self) -> Path:
        return self.root / "state.db"

    def open_store(self, *, readonly: bool = False) -> Any:
        """The state store (:class:`apiward.state.store.StateStore`). A
        snapshot from an apiward before the store (``state.pkl``) is refused
        with a clear message: loading it would mean unpickling."""
        from apiward import __version__
        from apiward.state.store import StateError, StateStore

        if self.snapshot_path.exists() and not self.store_path.exists():
            raise StateError(
                f"{self.snapshot_path}: a state snapshot from an older apiward (pickle). apiward no longer loads pickles, "
                f"which could run code planted in a state directory. Move {self.snapshot_path.name} away (apiward then "
                "starts learning afresh; the lake and findings on disk stay) or use a new state directory."
            )
        store = StateStore(self.store_path, self.secret(), version=__version__, readonly=readonly)
        if not readonly and type(self) is StateDir:
            from apiward.state.partitions import layout_of

            made = layout_of(store)
            if made > 1:
                store.close()
                raise StateError(
                    f"{self.root}: this state directory was made by `apiward analyze --workers {made}` and its state is "
                    f"partitioned; one pipeline cannot continue it. Run `apiward analyze --workers {made}`, or use a new --state."
                )
        return store

    def load(self) -> dict[str, Any] | None:
        """What the commands that only read state need (inventory, findings),
        rebuilt from the store without running anything; None when there is
        no state."""
        if not self.store_path.exists():
            if self.snapshot_path.exists():
                self.open_store()  # raises the clear message
            return None
        from apiward.discover.inventory import Inventory
        from apiward.discover.templating import Templater
        from apiward.learn.sketches import LRU
        from apiward.model.keyed import NO_CAP
        from apiward.state.parts import restore

        store = self.open_store(readonly=True)
        try:
            from apiward.state.partitions import layout_of

            if layout_of(store) > 1:
                return self._load_partitions()
            with store.snapshot():
                inv = restore(Inventory(templater=Templater(), max_endpoints=NO_CAP), store.load("inventory", whole=True))
                run = store.load("run") or {}
        finally:
            store.close()
        return {"inventory": inv, "findings": run.get("findings") or LRU(1), "progress": run.get("progress") or {}}

    def _load_partitions(self) -> dict[str, Any]:
        """:meth:`load` of a partitioned directory (``--workers N``): every
        partition's inventory and findings, merged for reading."""
        from apiward import __version__
        from apiward.discover.inventory import Inventory
        from apiward.discover.templating import Templater
        from apiward.learn.sketches import LRU
        from apiward.model.keyed import NO_CAP
        from apiward.state.parts import restore
        from apiward.state.partitions import merge_findings, merge_inventory, partition_stores
        from apiward.state.store import StateStore

        inv = Inventory(templater=Templater(), max_endpoints=NO_CAP)
        parts = []
        for path in partition_stores(self.root):
            store = StateStore(path, self.secret(), version=__version__, readonly=True)
            try:
                with store.snapshot():
                    merge_inventory(inv, restore(Inventory(templater=Templater(), max_endpoints=NO_CAP), store.load("inventory", whole=True)))
                    parts.append((store.load("run") or {}).get("findings") or {})
            finally:
                store.close()
        findings: LRU[str, Any] = LRU(10_000_000)
        findings.update(merge_findings(p.values() for p in parts))
        return {"inventory": inv, "findings": findings, "progress": {}}
