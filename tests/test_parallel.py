"""``apiward analyze --workers N`` (apiward.parallel), end to end in
subprocesses: partitions by host, one lake, the actor stage's merged
findings and incidents, what the read commands see, resume and kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from apiward.model.call import dumps
from apiward.state.partitions import load_partitioner
from apiward.testing import make_call

CLI = [sys.executable, "-m", "apiward"]
HOSTS = [f"h{i}.example.com" for i in range(8)]


def run(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def write_traffic(path: Path, n: int, *, bad: bool = True) -> None:
    """``n`` calls over eight hosts and 13 users (users read each other's
    items: cross-owner findings), SQL injection probes on every host, and
    one bad line."""
    with open(path, "wb") as f:
        for i in range(n):
            method = ("GET", "POST", "PUT", "DELETE")[i % 4]
            probe = "?q=1%27%20UNION%20SELECT%20password%20FROM%20users--" if i % 101 == 0 else ""
            c = make_call(method, f"/api/items/{i % 97}{probe}", json={"id": i % 97, "name": "x" * (i % 50)}, user=f"u{i % 13}",
                          ts=1_764_000_000 + i, id=f"ev-{i}", host=HOSTS[i % len(HOSTS)])
            f.write(dumps(c) + b"\n")
            if bad and i == n // 2:
                f.write(b"{not json\n")


def query(state: Path, sql: str) -> list[dict]:
    r = run("query", sql, "--format", "json", "--state", str(state))
    assert r.returncode == 0, r.stderr
    return orjson.loads(r.stdout)


def by_detector(state: Path) -> dict[str, int]:
    return {r["detector"]: r["n"] for r in query(state, "select detector, count(*) as n from findings group by 1")}


def test_two_workers_store_every_call_once_and_the_read_side_sees_all_partitions(tmp_path: Path) -> None:
    data = tmp_path / "traffic.jsonl"
    n = 2400
    write_traffic(data, n)
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = run("analyze", str(data), "--state", str(one), "--json", "--quiet")
    assert r1.returncode == 0, r1.stderr
    r2 = run("analyze", str(data), "--state", str(two), "--json", "--quiet", "--workers", "2")
    assert r2.returncode == 0, r2.stderr
    s1, s2 = orjson.loads(r1.stdout), orjson.loads(r2.stdout)
    # the summary adds up across workers; the bad record is quarantined and counted once
    assert s2["events"] == n and s2["quarantined"] == 1 and s2["quarantine_reasons"] == s1["quarantine_reasons"]
    fc = s2["per_file"][str(data)]
    assert fc["read"] == n + 1 == fc["stored"] + fc["quarantined"] + fc["duplicates"] and fc["quarantined"] == 1
    assert len((two / "quarantine" / "traffic.jsonl.bad.jsonl").read_text().splitlines()) == 1
    workers = s2["workers"]
    assert [w["partition"] for w in workers] == [0, 1] and all(w["events"] > 0 for w in workers)
    assert sum(w["events"] for w in workers) == n
    part = load_partitioner(two)
    assert set(part.hosts) == set(HOSTS)  # placed by their calls in the first input
    expected = [sum(1 for i in range(n) if part(HOSTS[i % len(HOSTS)]) == p) for p in (0, 1)]
    assert [w["events"] for w in workers] == expected  # each call in the partition of its host
    # each host's calls in one partition's lake files
    per_host = query(two, "select host, count(distinct regexp_extract(filename, '-p([0-9]+)[.]parquet$', 1)) as parts "
                          "from read_parquet('" + str(two / "lake" / "calls" / "*" / "*.parquet") + "', filename = true) group by 1")
    assert {r["host"] for r in per_host} == set(HOSTS) and {r["parts"] for r in per_host} == {1}
    assert s2["stage_errors"] == {} and s2["endpoints"] == s1["endpoints"]
    # one lake: every call once
    assert query(two, "select count(*) as n, count(distinct id) as d from calls") == [{"n": n, "d": n}]
    assert sorted((two / "partitions").iterdir()) == [two / "partitions" / "p0", two / "partitions" / "p1"]
    # findings (read from the lake): the same as one pipeline's here (all state is per host)
    assert by_detector(two) == by_detector(one) and s2["findings"] == s1["findings"] > 0
    r = run("findings", "--state", str(two), "--format", "json")
    assert r.returncode == 0, r.stderr
    found = orjson.loads(r.stdout)
    assert len(found) == s2["findings"] and {part(f["host"]) for f in found} == {0, 1}
    # incidents group an actor's findings across partitions (the actor stage)
    inc = query(two, "select actor, len(finding_ids) as n from incidents order by actor")
    assert inc == query(one, "select actor, len(finding_ids) as n from incidents order by actor") and inc
    # the inventory merges the partitions' endpoint records
    r = run("inventory", "--state", str(two), "--format", "json")
    assert r.returncode == 0, r.stderr
    inv2 = {(e["host"], e["method"], e["template"]) for e in orjson.loads(r.stdout)}
    r = run("inventory", "--state", str(one), "--format", "json")
    assert inv2 == {(e["host"], e["method"], e["template"]) for e in orjson.loads(r.stdout)} and len(inv2) == s2["endpoints"]
    r = run("actors", "--state", str(two), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout)
    # a second run reads nothing again and stores no duplicates
    r = run("analyze", str(data), "--state", str(two), "--json", "--quiet", "--workers", "2")
    assert r.returncode == 0, r.stderr
    again = orjson.loads(r.stdout)
    assert again["events"] == 0 and again["skipped_already_ingested"] == n + 1 and again["new_findings"] == 0
    assert again["findings"] == s2["findings"]
    # a file that grew continues from each partition's mark
    more = tmp_path / "more.jsonl"
    write_traffic(more, n + 400, bad=False)
    lines = more.read_bytes().splitlines(keepends=True)
    data.write_bytes(data.read_bytes() + b"".join(lines[n:]))
    r = run("analyze", str(data), "--state", str(two), "--json", "--quiet", "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout)["events"] == 400
    assert query(two, "select count(*) as n, count(distinct id) as d from calls") == [{"n": n + 400, "d": n + 400}]


def test_a_state_made_with_other_workers_is_refused_naming_the_option(tmp_path: Path) -> None:
    data = tmp_path / "traffic.jsonl"
    write_traffic(data, 50)
    one, two = tmp_path / "one", tmp_path / "two"
    assert run("analyze", str(data), "--state", str(one), "--quiet").returncode == 0
    assert run("analyze", str(data), "--state", str(two), "--quiet", "--workers", "2").returncode == 0
    r = run("analyze", str(data), "--state", str(one), "--quiet", "--workers", "2")
    assert r.returncode == 2 and "--workers 1" in r.stderr and "Traceback" not in r.stderr
    r = run("analyze", str(data), "--state", str(two), "--quiet")
    assert r.returncode == 2 and "--workers 2" in r.stderr and "Traceback" not in r.stderr
    r = run("analyze", str(data), "--state", str(two), "--quiet", "--workers", "3")
    assert r.returncode == 2 and "--workers 2" in r.stderr
    r = run("analyze", str(data), "--state", str(two), "--quiet", "--workers", "0")
    assert r.returncode == 2 and "--workers" in r.stderr


def _analyzers(state: Path, parent: int | None = None) -> list[int]:
    """Live processes analysing into ``state`` (the parent and its forked
    workers share its command line; multiprocessing's helpers do not), or
    only the children of ``parent``."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().split(b"\0")
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if str(state).encode() in cmd and b"analyze" in cmd and fields[0] != "Z" and parent in (None, int(fields[1])):
                pids.append(int(p.name))
    return pids


def _start(tmp_path: Path, n: int, ready: Any) -> tuple[Path, Path, subprocess.Popen]:
    """``analyze --workers 2`` of ``n`` calls started (batches of 500, a
    checkpoint after each), returned once ``ready(lake)`` holds."""
    data = tmp_path / "big.jsonl"
    write_traffic(data, n, bad=False)
    state = tmp_path / "state"
    env = {**os.environ, "APIWARD_BATCH_SIZE": "500", "APIWARD_CHECKPOINT_SECONDS": "0"}
    proc = subprocess.Popen([*CLI, "analyze", str(data), "--state", str(state), "--quiet", "--workers", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while time.time() < deadline and not ready(state / "lake"):
        time.sleep(0.02)
    return data, state, proc


@pytest.mark.slow
def test_kill_9_mid_run_with_two_workers_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    n = 20_000
    # the actor stage publishes merged findings while the workers run
    data, state, proc = _start(tmp_path, n, lambda lake: len(list((lake / "calls").rglob("*.parquet"))) >= 6
                               and list((lake / "findings").rglob("*.parquet")))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the workers die with the parent
    deadline = time.time() + 10
    while _analyzers(state) and time.time() < deadline:
        time.sleep(0.05)
    assert _analyzers(state) == []
    partial = query(state, "select count(*) as n from calls")[0]["n"]
    assert 0 < partial < n
    assert query(state, "select count(*) as n from findings")[0]["n"] > 0
    r = run("analyze", str(data), "--state", str(state), "--json", "--quiet", "--workers", "2", env={"APIWARD_BATCH_SIZE": "500"})
    assert r.returncode == 0, r.stderr
    assert query(state, "select count(*) as n, count(distinct id) as d from calls") == [{"n": n, "d": n}]
    # findings and their events: as one uninterrupted run has them
    clean = tmp_path / "clean"
    r = run("analyze", str(data), "--state", str(clean), "--json", "--quiet", "--workers", "2", env={"APIWARD_BATCH_SIZE": "500"})
    assert r.returncode == 0, r.stderr
    assert by_detector(state) == by_detector(clean)
    sql = "select count(*) as n, count(distinct finding_id || event_id) as d from finding_events"
    got = query(state, sql)[0]
    assert got["n"] == got["d"] == query(clean, sql)[0]["d"]  # each event linked once, none lost
    events = "select detector, sum(events) as e from findings group by 1 order by 1"
    assert query(state, events) == query(clean, events)


def _har(n: int, creator: str) -> bytes:
    entries = [{
        "startedDateTime": f"2025-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
        "time": 5,
        "request": {"method": "GET", "url": f"https://x{i % 5}.test/items/{i % 40}?page={i}", "headers": [{"name": "Accept", "value": "*/*"}]},
        "response": {"status": 200, "headers": [{"name": "Content-Type", "value": "application/json"}], "content": {"size": 9, "text": f'{{"n":{i}}}'}},
    } for i in range(n)]
    return orjson.dumps({"log": {"version": "1.2", "creator": {"name": creator, "version": "1"}, "entries": entries}})


def test_a_re_exported_har_is_stored_once_across_partitions(tmp_path: Path) -> None:
    """Entries without ids are stored once by content: the same entry is to
    the same host, so the partition that owns it remembers it."""
    har = tmp_path / "session.har"
    har.write_bytes(_har(300, "browser 1"))
    state = tmp_path / "state"
    r = run("analyze", str(har), "--state", str(state), "--json", "--quiet", "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert orjson.loads(r.stdout)["events"] == 300
    har.write_bytes(_har(450, "browser 2 (re-export)"))
    r = run("analyze", str(har), "--state", str(state), "--json", "--quiet", "--workers", "2")
    assert r.returncode == 0, r.stderr
    fc = orjson.loads(r.stdout)["per_file"][str(har)]
    assert (fc["read"], fc["stored"], fc["duplicates"]) == (450, 150, 300)
    assert query(state, "select count(*) as n from calls") == [{"n": 450}]


@pytest.mark.slow
def test_a_worker_killed_fails_the_run_naming_its_partition_and_a_rerun_completes(tmp_path: Path) -> None:
    n = 12_000
    data, state, proc = _start(tmp_path, n, lambda lake: len(list((lake / "calls").rglob("*-p1.parquet"))) >= 2)
    workers = _analyzers(state, parent=proc.pid)
    assert workers
    os.kill(max(workers), signal.SIGKILL)  # as the OOM killer would: one worker only
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "partition" in err and "died" in err, err
    r = run("analyze", str(data), "--state", str(state), "--json", "--quiet", "--workers", "2", env={"APIWARD_BATCH_SIZE": "500"})
    assert r.returncode == 0, r.stderr
    assert query(state, "select count(*) as n, count(distinct id) as d from calls") == [{"n": n, "d": n}]
