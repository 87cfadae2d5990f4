"""Durability (issue 10, item 8): lake files reach the disk before the rename
that publishes them, and the rename before the next step; temporaries a kill
left behind (zero-byte or partial) are removed at start and the store opens."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from apiward.lake.store import Lake
from apiward.model.call import dumps
from apiward.state import StateDir
from apiward.testing import make_call

from tests.ingest.readers_support import analyze, lake_rows


def test_lake_write_fsyncs_file_then_rename_then_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace, real_open = os.fsync, os.replace, os.open
    names: dict[int, str] = {}

    def spy_open(path, flags, *a, **kw):  # noqa: ANN001 - os.open's signature
        fd = real_open(path, flags, *a, **kw)
        names[fd] = str(path)
        return fd

    def spy_fsync(fd: int) -> None:
        events.append(("fsync", names.get(fd, "?")))
        real_fsync(fd)

    def spy_replace(src, dst) -> None:  # noqa: ANN001
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "open", spy_open)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    lake = Lake(tmp_path / "lake")
    t = pa.table({"ts": pa.array([0], pa.timestamp("us", tz="UTC")), "x": [1]})
    lake.write_partitioned("calls", t, "k1")
    final = str(tmp_path / "lake" / "calls" / "date=1970-01-01" / "part-k1.parquet")
    kinds = [(k, Path(n).name if k == "fsync" else n) for k, n in events]
    assert kinds[0][0] == "fsync" and kinds[0][1].startswith(".part-k1.parquet.") and kinds[0][1].endswith(".tmp")
    assert kinds[1] == ("replace", final)
    assert kinds[2] == ("fsync", "date=1970-01-01")


def test_stale_temporaries_are_cleaned_and_the_store_opens(tmp_path: Path) -> None:
    data = tmp_path / "e.jsonl"
    data.write_bytes(b"".join(dumps(make_call("GET", f"/x/{i}", id=f"e{i}", status=200)) + b"\n" for i in range(20)))
    state = tmp_path / "state"
    analyze(state, data)
    day = next((state / "lake" / "calls").glob("date=*"))
    planted = [
        day / ".part-deadbeef-000000000.parquet.4242.tmp",  # a kill mid-write: partial
        state / "lake" / "findings" / ".findings.parquet.77.tmp",  # zero-byte
        state / ".secret.99.tmp",  # a kill while the key was written
        state / ".secret.tmp",
    ]
    planted[0].write_bytes(b"PAR1 partial")
    for p in planted[1:]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")
    data.write_bytes(data.read_bytes() + dumps(make_call("GET", "/x/new", id="new", status=200)) + b"\n")
    s = analyze(state, data)
    assert s["per_file"][str(data)]["stored"] == 1
    assert not [p for p in planted if p.exists()]
    assert len(lake_rows(state)) == 21
    store = StateDir(state).open_store(readonly=True)
    try:
        assert "run" in store.components()
    finally:
        store.close()


def test_a_zero_byte_key_is_remade_only_while_nothing_depends_on_it(tmp_path: Path) -> None:
    sd = StateDir(tmp_path / "fresh")
    (sd.root / "secret").write_bytes(b"")  # a power cut before the key reached the disk
    key = sd.secret()
    assert len(key) == 32 and (sd.root / "secret").read_text().strip() == key.hex()
    sd2 = StateDir(tmp_path / "used")
    sd2.open_store().close()
    (sd2.root / "secret").write_bytes(b"")
    from apiward.state.store import StateError

    with pytest.raises(StateError, match="empty or damaged"):
        sd2.secret()
