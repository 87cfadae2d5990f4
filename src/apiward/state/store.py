"""The state store: everything apiward learned, as keyed records in SQLite.

One SQLite database (``<state>/state.db``, WAL mode, owner-only file
permissions) holds a **component** per stateful part (the inventory, the
baselines, each detector by its id, the trackers detectors share, actor
trust, findings, per-file progress). A component is its root record (the
object's attributes, see :mod:`apiward.state.codec`) plus one record per
entry of each :class:`~apiward.learn.sketches.LRU` among its attributes
(the keyed state: per endpoint, per actor, per object). A checkpoint writes,
in one transaction, only the entries touched since the last one, the
entries that left, and the roots whose bytes changed: its cost follows the
traffic, not the size of what was learned.

Records carry a keyed MAC (the install's secret): a record changed outside
apiward is refused at load, with its component and key named. Nothing in a
record can run code (no pickle; see the codec).

Spilling: an LRU created with ``spill=True`` that grows past its cap (its
share of the memory budget) writes its oldest entries here instead of
forgetting them, and reads one back when it is used again.

Schema: ``meta(key, value)`` (``schema``: :data:`SCHEMA`, ``apiward``
version), ``roots(component, value, mac)``, ``entries(component, tbl, key,
value, mac)``. A state from a newer schema is refused; older schemas are
migrated by :data:`MIGRATIONS`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
from collections import OrderedDict
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from apiward.learn.sketches import LRU
from apiward.model.keyed import NO_CAP
from apiward.state import codec

__all__ = ["StateStore", "StateError", "SCHEMA"]

#: spilled values held in memory before they go to the ``spill`` table
SPILL_FLUSH_BYTES = 8 << 20
SCHEMA = 4  # 1 was the pickle snapshot (state.pkl); 3: profiles' features as flat scalar lists; 4: slotted objects positional


def _records_read_as_they_are(db: sqlite3.Connection) -> None:
    """2 -> 3: nothing to rewrite (profiles read both forms of their
    features); the version says that an older apiward cannot read what
    this one writes."""


#: schema version -> function(connection) upgrading it by one version
#: (3 -> 4: records of schema 3 decode as they are; new records write
#: slotted objects positionally, which an apiward reading schema 3 cannot)
MIGRATIONS: dict[int, Any] = {2: _records_read_as_they_are, 3: _records_read_as_they_are}


class StateError(RuntimeError):
    """A state directory apiward cannot use (newer schema, tampered record...)."""


_keyed: dict[bytes, Any] = {}


def _mac(secret: bytes, *parts: bytes) -> bytes:
    """HMAC-BLAKE2b of ``parts`` (each length-prefixed), first 16 bytes.
    The keyed state is made once per secret and copied per record."""
    base = _keyed.get(secret)
    if base is None:
        base = _keyed[secret] = hmac.new(secret, digestmod=hashlib.blake2b)
    h = base.copy()
    for p in parts:
        h.update(len(p).to_bytes(4, "little"))
        h.update(p)
    return h.digest()[:16]


class _Backing:
    """Where one spilling LRU keeps the entries over its cap: the keys (in
    memory) and the encoded values (in the store, or pending until the next
    checkpoint)."""

    __slots__ = ("store", "component", "tbl", "keys", "pending")

    def __init__(self, store: StateStore, component: str, tbl: str) -> None:
        self.store = store
        self.component = component
        self.tbl = tbl
        self.keys: set[Any] = set()
        self.pending: dict[Any, bytes] = {}

    def has(self, key: Any) -> bool:
        return key in self.keys

    def spill(self, key: Any, value: Any) -> None:
        self.keys.add(key)
        raw = self.pending[key] = codec.dumps(value)
        store = self.store
        store._pending_bytes += len(raw)
        if store._pending_bytes >= SPILL_FLUSH_BYTES and not store.readonly:
            store._flush_spills()  # memory stays bounded between checkpoints

    def peek(self, key: Any) -> Any:
        """A spilled entry's value, read without taking it back (a copy)."""
        raw = self.pending.get(key)
        if raw is None:
            raw = self.store._read_entry(self.component, self.tbl, key, spilled=True)
        return codec.loads(raw) if raw is not None else None

    def take(self, key: Any) -> Any:
        """Read a spilled entry back (it returns to memory)."""
        self.keys.discard(key)
        raw = self.pending.pop(key, None)
        if raw is None:
            raw = self.store._read_entry(self.component, self.tbl, key, spilled=True)
        return codec.loads(raw) if raw is not None else None

    def clear(self) -> set[Any]:
        gone, self.keys, self.pending = self.keys, set(), {}
        return gone


class StateStore:
    """The SQLite store of one state directory (see the module docstring)."""

    def __init__(self, path: Path | str, secret: bytes, *, version: str = "", readonly: bool = False) -> None:
        self.path = Path(path)
        self.secret = secret
        self._root_macs: dict[str, bytes] = {}
        self._tables: dict[tuple[str, str], LRU[Any, Any]] = {}
        self._backings: dict[tuple[str, str], _Backing] = {}
        self._pending_bytes = 0  # encoded spilled values held in memory
        self._spilled = False  # rows in the spill table since the last checkpoint
        self.readonly = readonly  # a reader: what its tables evict stays in memory (pending), never written
        if readonly:
            # a reader beside a running writer (WAL: readers never block it)
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
            schema = self.meta("schema")
            if schema is not None and int(schema) > SCHEMA:
                raise StateError(f"{self.path}: state written by a newer apiward (schema {schema}); upgrade apiward")
            return
        new = not self.path.exists()
        if new:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        else:
            os.chmod(self.path, 0o600)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS roots (component TEXT PRIMARY KEY, value BLOB, mac BLOB)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS entries (component TEXT, tbl TEXT, key BLOB, value BLOB, mac BLOB, "
            "PRIMARY KEY (component, tbl, key)) WITHOUT ROWID"
        )
        # entries spilled since the last checkpoint (moved into ``entries`` by
        # the next one); what a crashed run spilled is dropped: the committed
        # entries stand, and the batches after them are re-run
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS spill (component TEXT, tbl TEXT, key BLOB, value BLOB, mac BLOB, "
            "PRIMARY KEY (component, tbl, key)) WITHOUT ROWID"
        )
        self.db.execute("DELETE FROM spill")
        for p in (self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")):
            if p.exists():
                os.chmod(p, 0o600)
        schema = self.meta("schema")
        if schema is None:
            self.set_meta("schema", str(SCHEMA))
            self.set_meta("apiward", version)
        else:
            v = int(schema)
            if v > SCHEMA:
                raise StateError(
                    f"{self.path}: state written by a newer apiward ({self.meta('apiward') or 'unknown'}, schema {v}); "
                    f"this apiward reads schema {SCHEMA} and older. Upgrade apiward or start a new state directory."
                )
            while v < SCHEMA:
                step = MIGRATIONS.get(v)
                if step is None:
                    raise StateError(f"{self.path}: no migration from state schema {v} to {SCHEMA}; start a new state directory")
                step(self.db)
                v += 1
                self.set_meta("schema", str(v))

    # -- meta -------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def components(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT component FROM roots ORDER BY component")]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction: every read inside it sees the same commit
        (a root record and its table entries from one checkpoint, even while
        a pipeline writes beside the reader)."""
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.db.execute("ROLLBACK")

    def close(self) -> None:
        self.db.close()

    # -- reading ------------------------------------------------------------------------
    def _check(self, raw: bytes, mac: bytes, *parts: bytes, where: str) -> None:
        if not hmac.compare_digest(_mac(self.secret, *parts, raw), bytes(mac or b"")):
            raise StateError(
                f"{self.path}: state record {where} fails its integrity check (changed outside apiward, or the "
                f"secret file was replaced); refusing to load it. Restore the state directory from a backup or start a new one."
            )

    def _read_entry(self, component: str, tbl: str, key: Any, *, spilled: bool = False) -> bytes | None:
        kb = codec.dumps(key)
        row = None
        if spilled and self._spilled:
            row = self.db.execute("SELECT value, mac FROM spill WHERE component = ? AND tbl = ? AND key = ?", (component, tbl, kb)).fetchone()
        if row is None:
            row = self.db.execute("SELECT value, mac FROM entries WHERE component = ? AND tbl = ? AND key = ?", (component, tbl, kb)).fetchone()
        if row is None:
            return None
        self._check(row[0], row[1], component.encode(), tbl.encode(), kb, where=f"{component}/{tbl}")
        return bytes(row[0])

    def load(self, component: str, *, whole: bool = False) -> dict[str, Any] | None:
        """The component's attributes (its root), with each LRU filled from
        its entries (the most recently written up to its cap; a spilling
        LRU keeps the rest in the store), or None when it was never saved.
        ``whole``: every entry in memory, spilling LRUs too (a read model
        that outlives this store, e.g. what ``apiward inventory`` shows)."""
        row = self.db.execute("SELECT value, mac FROM roots WHERE component = ?", (component,)).fetchone()
        if row is None:
            return None
        raw = bytes(row[0])
        self._check(raw, row[1], component.encode(), where=component)
        self._root_macs[component] = bytes(row[1])
        try:
            attrs = codec.loads(raw)
        except codec.CodecError as exc:
            raise StateError(f"{self.path}: state record {component}: {exc}") from None
        if not isinstance(attrs, dict):
            raise StateError(f"{self.path}: state record {component} is not a set of attributes")
        for name, value in list(attrs.items()):
            for tbl, lru in _tables_in(name, value):
                if whole:
                    lru.spill, lru.cap = False, NO_CAP
                self._fill(component, tbl, lru)
        return attrs

    def _fill(self, component: str, tbl: str, lru: LRU[Any, Any]) -> None:
        """Give a loaded LRU its entries: all of them, or for a spilling LRU
        only their keys (values are read when used: a start costs what the
        keys cost, and state nobody touches again stays on disk)."""
        if lru.spill:
            b = self._backing(component, tbl)
            for (kb,) in self.db.execute("SELECT key FROM entries WHERE component = ? AND tbl = ?", (component, tbl)):
                try:
                    b.keys.add(codec.loads(bytes(kb)))
                except codec.CodecError as exc:
                    raise StateError(f"{self.path}: state record {component}/{tbl}: {exc}") from None
            lru.backing = b
        else:
            rows = self.db.execute("SELECT key, value, mac FROM entries WHERE component = ? AND tbl = ?", (component, tbl)).fetchall()
            for kb, vb, mac in rows:
                kb, vb = bytes(kb), bytes(vb)
                self._check(vb, mac, component.encode(), tbl.encode(), kb, where=f"{component}/{tbl}")
                try:
                    OrderedDict.__setitem__(lru, codec.loads(kb), codec.loads(vb))
                except codec.CodecError as exc:
                    raise StateError(f"{self.path}: state record {component}/{tbl}: {exc}") from None
            while len(lru) > lru.cap:
                OrderedDict.popitem(lru, last=False)  # a smaller cap than when saved (a budget): the rest is forgotten
        lru.dirty.clear()
        lru.gone.clear()
        self._tables[(component, tbl)] = lru

    def _backing(self, component: str, tbl: str) -> _Backing:
        b = self._backings.get((component, tbl))
        if b is None:
            b = self._backings[(component, tbl)] = _Backing(self, component, tbl)
        return b

    def attach(self, components: dict[str, dict[str, Any]]) -> None:
        """Give the spilling tables of a new build their place in the store
        before they learn: what one evicts before the first checkpoint is
        then spilled, not forgotten (the inventory never forgets an
        endpoint). Tables already loaded from the store have theirs."""
        for component, attrs in components.items():
            for name, value in attrs.items():
                for tbl, lru in _tables_in(name, value):
                    if not lru.spill or lru.backing is not None or (component, tbl) in self._tables:
                        continue
                    if self.db.execute("SELECT 1 FROM entries WHERE component = ? AND tbl = ? LIMIT 1", (component, tbl)).fetchone():
                        continue  # saved entries this table does not hold: the first save replaces them
                    self._tables[(component, tbl)] = lru
                    lru.backing = self._backing(component, tbl)

    # -- writing --------------------------------------------------------------------------
    def save(self, components: dict[str, dict[str, Any]], *, meta: dict[str, str] | None = None) -> dict[str, int]:
        """Write what changed in ``components`` (name -> attributes) and
        ``meta`` in one transaction. Returns the counts of entries written
        and deleted and of roots rewritten."""
        db = self.db
        secret = self.secret
        written = deleted = roots = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            if self._spilled:
                # spills first: what is in memory (dirty) is newer and overwrites them below
                db.execute("INSERT OR REPLACE INTO entries SELECT * FROM spill")
                db.execute("DELETE FROM spill")
            for component, attrs in components.items():
                cb = component.encode()
                shells: set[int] = set()
                for name, value in attrs.items():
                    for tbl, lru in _tables_in(name, value):
                        shells.add(id(lru))
                        w, d = self._save_table(component, cb, tbl, lru)
                        written += w
                        deleted += d
                raw = codec.dumps(attrs, frozenset(shells))
                mac = _mac(secret, cb, raw)
                if self._root_macs.get(component) != mac:
                    db.execute("INSERT OR REPLACE INTO roots VALUES (?, ?, ?)", (component, raw, mac))
                    self._root_macs[component] = mac
                    roots += 1
            for k, v in (meta or {}).items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, v))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._spilled = False
        self._pending_bytes = 0
        return {"entries_written": written, "entries_deleted": deleted, "roots_written": roots}

    def _save_table(self, component: str, cb: bytes, tbl: str, lru: LRU[Any, Any]) -> tuple[int, int]:
        db = self.db
        secret = self.secret
        key = (component, tbl)
        if self._tables.get(key) is not lru:
            # a table this store has not seen (new state, or the object was replaced): all of it
            self._tables[key] = lru
            db.execute("DELETE FROM entries WHERE component = ? AND tbl = ?", (component, tbl))
            dirty: Any = list(OrderedDict.keys(lru))
            b = self._backings.get(key)
            if b is not None and lru.backing is not b:
                b.clear()
        else:
            dirty = lru.dirty
        if lru.spill and lru.backing is None:
            lru.backing = self._backing(component, tbl)
        tb = tbl.encode()
        rows = []
        get = OrderedDict.get
        for k in dirty:
            v = get(lru, k, _NONE)
            if v is _NONE:
                continue
            kb = codec.dumps(k)
            vb = codec.dumps(v)
            rows.append((component, tbl, kb, vb, _mac(secret, cb, tb, kb, vb)))
        b = self._backings.get(key)
        if b is not None and b.pending:
            for k, vb in b.pending.items():
                kb = codec.dumps(k)
                rows.append((component, tbl, kb, vb, _mac(secret, cb, tb, kb, vb)))
            b.pending.clear()
        if rows:
            db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)", rows)
        gone = lru.gone
        if gone:
            db.executemany("DELETE FROM entries WHERE component = ? AND tbl = ? AND key = ?",
                           [(component, tbl, codec.dumps(k)) for k in gone])
        n_gone = len(gone)
        lru.dirty = set()
        lru.gone = set()
        return len(rows), n_gone

    def _flush_spills(self) -> None:
        """Write pending spilled values to the ``spill`` table (its own
        transaction; the next checkpoint moves them into ``entries``)."""
        secret = self.secret
        rows = []
        for (component, tbl), b in self._backings.items():
            if not b.pending:
                continue
            cb, tb = component.encode(), tbl.encode()
            for k, vb in b.pending.items():
                kb = codec.dumps(k)
                rows.append((component, tbl, kb, vb, _mac(secret, cb, tb, kb, vb)))
            b.pending.clear()
        if rows:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO spill VALUES (?, ?, ?, ?, ?)", rows)
            self.db.execute("COMMIT")
            self._spilled = True
        self._pending_bytes = 0

    def drop(self, component: str) -> None:
        """Forget a component (a detector that was removed)."""
        self.db.execute("DELETE FROM roots WHERE component = ?", (component,))
        self.db.execute("DELETE FROM entries WHERE component = ?", (component,))
        self._root_macs.pop(component, None)

    def size(self) -> dict[str, int]:
        """Entries per component, for reports and benchmarks."""
        return dict(self.db.execute("SELECT component, count(*) FROM entries GROUP BY component").fetchall())


_NONE: Any = object()


def _tables_in(name: str, value: Any) -> Iterator[tuple[str, LRU[Any, Any]]]:
    """The LRUs kept as tables: a component's attributes, and the
    attributes of apiward objects held directly in them (one level down:
    a detector's tracker, the inventory's templater)."""
    if isinstance(value, LRU):
        yield name, value
        return
    t = type(value)
    if not t.__module__.startswith("apiward.") or isinstance(value, (dict, list, tuple, set)):
        return
    get_state = getattr(value, "__getstate__", None)
    st = get_state() if get_state is not None else None
    if isinstance(st, tuple) and len(st) == 2 and isinstance(st[1], dict):
        st = st[1]  # (None, slots) from object.__getstate__
    if isinstance(st, dict):
        for k, v in st.items():
            if isinstance(v, LRU):
                yield f"{name}.{k}", v
