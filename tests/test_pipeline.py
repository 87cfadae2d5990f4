"""The pipeline: stages, modes, determinism, persistence."""

from __future__ import annotations

from pathlib import Path

import duckdb

from apiward.detect.base import DetectorBase
from apiward.lake.query import connect
from apiward.model.call import dumps
from apiward.pipeline import Pipeline
from apiward.testing import make_call


class CountingDetector(DetectorBase):
    """Flags a call to an endpoint it has never learned; counts learns."""

    id = "test.unseen_endpoint"
    title = "unseen endpoint"
    owasp = "API9:2023"

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.learned = 0

    def learn_one(self, call, ctx):
        self.seen.add(ctx.endpoint.key)
        self.learned += 1

    def score_one(self, call, ctx):
        if ctx.endpoint.key in self.seen:
            return []
        return [self.finding(call, ctx, summary="first call to " + ctx.endpoint.name)]


def calls(n: int = 50, start: int = 0):
    out = []
    for i in range(start, start + n):
        user = f"user{i % 5}"
        out.append(
            make_call(
                "GET",
                f"/api/orders/{1000 + i}",
                json={"id": 1000 + i, "owner": user},
                user=user,
                ts=1_764_000_000 + i,
                id=f"t#{i}",
            )
        )
    return out


def test_score_happens_before_learn(tmp_path: Path) -> None:
    det = CountingDetector()
    pipe = Pipeline(tmp_path / "s", detectors=[det])
    found = pipe.process(calls(3))
    # Only the very first call of the endpoint is unseen when scored.
    assert len(found) == 1 and found[0].event_ids == ["t#0"]
    assert det.learned == 3
    pipe.close()


def test_modes(tmp_path: Path) -> None:
    det = CountingDetector()
    learn = Pipeline(tmp_path / "a", mode="learn", detectors=[det])
    assert learn.process(calls(5)) == []  # learn mode never scores
    assert det.learned == 5
    det2 = CountingDetector()
    detect = Pipeline(tmp_path / "b", mode="detect", detectors=[det2])
    found = detect.process(calls(5))
    assert det2.learned == 0  # frozen: nothing learned
    assert len(found) == 5  # so every call stays unseen


def test_same_input_same_output(tmp_path: Path) -> None:
    results = []
    for name in ("x", "y"):
        pipe = Pipeline(tmp_path / name, detectors=[CountingDetector()])
        pipe.process(calls(40), batch_key="b0")
        pipe.close()
        con = connect(tmp_path / name / "lake")
        rows = con.execute("select id, template, actor, status from calls order by id").fetchall()
        fids = sorted(pipe.findings)
        results.append((rows, fids))
    assert results[0] == results[1]
    assert len(results[0][0]) == 40


def test_state_survives_restart(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path / "s", detectors=[CountingDetector()])
    pipe.process(calls(10))
    pipe.close()
    again = Pipeline(tmp_path / "s", detectors=[CountingDetector()])
    assert again.inventory.endpoints.size() >= 1
    assert again.detectors[0].learned == 10  # detector state came back, by the detector's id
    # The known endpoint is not "unseen" any more after the restart.
    assert again.process(calls(3, start=10)) == []
    assert not (tmp_path / "s" / "state.pkl").exists() and (tmp_path / "s" / "state.db").exists()


def test_detectors_follow_the_configuration_at_every_start(tmp_path: Path) -> None:
    """Disabled detectors stop, options apply, and a detector the state never
    had (one an upgrade added) runs; the others keep what they learned."""
    from apiward.config import load_settings

    state = tmp_path / "s"
    pipe = Pipeline(state)
    pipe.process(calls(30))
    pipe.close()
    assert "injection.payload" in {d.id for d in pipe.detectors}
    learned = next(d for d in pipe.detectors if d.id == "bola.enumeration")._walk
    settings = load_settings(state_dir=state, disable_detectors=["injection.payload"],
                             detector_options={"bola.enumeration": {"min_ids": 40}})
    again = Pipeline(state, settings=settings)
    ids = [d.id for d in again.detectors]
    assert "injection.payload" not in ids and "bola.enumeration" in ids
    enum = next(d for d in again.detectors if d.id == "bola.enumeration")
    assert enum.min_ids == 40 and len(enum._walk) == len(learned)
    # a state whose detector component is missing (a new detector): built fresh, runs
    again.store.drop("detector:recon.scanning")
    third = Pipeline(state)
    assert next(d for d in third.detectors if d.id == "recon.scanning")._actors == {}
    assert third.process(calls(5, start=100)) is not None


def test_trackers_detectors_share_are_shared_again_after_a_restart(tmp_path: Path) -> None:
    """Stuffing and account takeover read one login history; the store keeps
    it as one ``shared`` component, so after a checkpoint and a restart both
    detectors adopt the same tracker again at their first call, with what
    it learned."""
    state = tmp_path / "s"
    pipe = Pipeline(state)
    pipe.process([make_call("POST", "/login", req_json={"username": f"victim{i}@example.com", "password": "x"},
                            json={"error": "invalid credentials"}, status=401, ip="192.0.2.66",
                            ts=1_764_000_000 + i, id=f"l{i}") for i in range(12)])
    pipe.close()

    def logins(p: Pipeline) -> tuple:
        by_id = {d.id: d for d in p.detectors}
        return by_id["credentials.stuffing"].logins, by_id["credentials.account_takeover"].logins

    a, b = logins(pipe)
    assert a is b and a.seen > 0
    again = Pipeline(state)
    again.process([make_call("POST", "/login", req_json={"username": "someone@example.com", "password": "x"},
                             json={"error": "invalid credentials"}, status=401, ip="192.0.2.67", ts=1_764_000_100, id="l-after")])
    a2, b2 = logins(again)
    again.close()
    assert a2 is b2 and a2 is not a and a2.seen == a.seen + 1


def test_findings_and_incidents_reach_the_lake(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path / "s", detectors=[CountingDetector()])
    pipe.process(calls(4))
    pipe.close()
    con = connect(tmp_path / "s" / "lake")
    row = con.execute("select detector, owasp, endpoint, event_ids, incident from findings").fetchone()
    assert row[0] == "test.unseen_endpoint" and row[1] == "API9:2023"
    assert row[3] == ["t#0"]
    assert row[4].startswith("I-")
    inc = con.execute("select actor, finding_ids from incidents").fetchone()
    assert inc[0] == "user:user0"


def test_run_files_resumes_without_duplicates(tmp_path: Path) -> None:
    f = tmp_path / "events.jsonl"
    f.write_bytes(b"\n".join(dumps(c) for c in calls(25)) + b"\n")
    from apiward.config import load_settings

    s = load_settings(batch_size=10)
    pipe = Pipeline(tmp_path / "s", settings=s, detectors=[])
    first = pipe.run_files([str(f)])
    assert first.events == 25
    second = Pipeline(tmp_path / "s", settings=s, detectors=[]).run_files([str(f)])
    assert second.events == 0 and second.skipped_already_ingested == 25
    n = connect(tmp_path / "s" / "lake").execute("select count(*), count(distinct id) from calls").fetchone()
    assert n == (25, 25)


def test_empty_lake_views_exist(tmp_path: Path) -> None:
    con = connect(tmp_path / "nothing")
    assert con.execute("select count(*) from calls").fetchone() == (0,)
    assert con.execute("select count(*) from findings").fetchone() == (0,)
    try:
        con.execute("select nope from calls")
    except duckdb.Error:
        pass
    else:
        raise AssertionError("unknown column must fail")


def test_api_changes_reach_the_lake(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path / "s", detectors=[])
    t = 1_764_000_000
    warm = [make_call("GET", f"/api/items/{i % 50}", json={"id": i % 50}, user=f"u{i % 20}", ts=t + i * 4, id=f"w{i}") for i in range(1100)]
    pipe.process(warm)
    t2 = t + 1100 * 4
    new = [make_call("GET", f"/api/reports/{i}", json={"id": i, "total": 3}, user=f"u{i % 8}", ts=t2 + i, id=f"n{i}") for i in range(40)]
    pipe.process(new)
    pipe.close()
    rows = connect(tmp_path / "s" / "lake").execute("select kind, endpoint, detail from changes").fetchall()
    assert any(k == "new_endpoint" and "/api/reports/" in e for k, e, _ in rows), rows


def test_loopback_peer_forwarded_for_is_trusted_by_default(tmp_path: Path) -> None:
    from apiward.model.call import Actor, Peer
    import msgspec

    c = make_call("GET", "/x", headers={"x-forwarded-for": "198.51.100.20"})
    c = msgspec.structs.replace(c, actor=Actor(), src=Peer(ip="127.0.0.1", port=5000))
    spoof = msgspec.structs.replace(make_call("GET", "/x", headers={"x-forwarded-for": "198.51.100.20"}), actor=Actor(), src=Peer(ip="203.0.113.5", port=5000))
    pipe = Pipeline(tmp_path / "s", detectors=[])
    pipe.discover([c, spoof])
    assert c.actor.ip == "198.51.100.20"
    assert spoof.actor.ip == "203.0.113.5"  # an untrusted peer cannot spoof its address


def test_flush_pending_asks_deferring_detectors_and_records(tmp_path: Path) -> None:
    class Deferring(CountingDetector):
        id = "test.deferring"

        def __init__(self) -> None:
            super().__init__()
            self.held: list = []

        def score_one(self, call, ctx):
            self.held.append((call, ctx))
            return []

        def flush(self, baselines):
            return [self.finding(c, x, summary="judged at the end") for c, x in self.held[:1]]

    pipe = Pipeline(tmp_path / "s", detectors=[Deferring()])
    pipe.process(calls(3))
    assert pipe.findings == {}
    found = pipe.flush_pending()
    assert [f.summary for f in found] == ["judged at the end"] and len(pipe.findings) == 1


class ExplodingDetector(DetectorBase):
    """Raises on every third call, in score and in learn."""

    id = "test.exploding"
    title = "explodes"

    def __init__(self) -> None:
        self.n = 0

    def score_one(self, call, ctx):
        self.n += 1
        if self.n % 3 == 0:
            return {}.get("x").boom  # AttributeError, like a real bug
        return []

    def learn_one(self, call, ctx):
        if self.n % 3 == 1:
            raise ValueError("learn blew up")


def test_a_detector_that_raises_is_isolated_per_call(tmp_path: Path) -> None:
    good = CountingDetector()
    pipe = Pipeline(tmp_path / "s", detectors=[ExplodingDetector(), good])
    msgs: list[str] = []
    pipe.errors.on_error = msgs.append
    found = pipe.process(calls(30))
    # The other detector saw and learned every call; the run went on.
    assert good.learned == 30 and len(found) == 1
    assert pipe.errors.counts["detector:test.exploding"] == 20  # 10 score + 10 learn failures
    # Reported once per distinct error (two distinct: score and learn), with an event id.
    assert len(msgs) == 2 and all("test.exploding" in m and "t#" in m for m in msgs)
    pipe.checkpoint()
    con = connect(tmp_path / "s" / "lake")
    assert con.execute("SELECT count(*) FROM calls").fetchone()[0] == 30


def test_file_run_counts_stage_errors_and_processes_each_batch_once(tmp_path: Path) -> None:
    src = tmp_path / "t.jsonl"
    src.write_bytes(b"".join(dumps(c) + b"\n" for c in calls(25)))
    good = CountingDetector()
    pipe = Pipeline(tmp_path / "s", detectors=[ExplodingDetector(), good])
    pipe.settings.batch_size = 10
    summary = pipe.run_files([str(src)])
    assert summary.events == 25 and summary.quarantined == 0  # a stage error is not a read error
    assert good.learned == 25  # each call learned once: no batch re-run
    assert summary.stage_errors == {"detector:test.exploding": pipe.errors.counts["detector:test.exploding"]}
    assert summary.error_messages and "event" in summary.error_messages[0]


class EveryCall(DetectorBase):
    id = "test.every"
    title = "every call"

    def score_one(self, call, ctx):
        # a sliding window of recent events, as window detectors emit
        return [self.finding(call, ctx, summary="x", key="one", event_ids=[f"t#{max(0, int(call.id[2:]) - 1)}", call.id])]


def test_finding_events_link_every_event_beyond_the_kept_sample(tmp_path: Path) -> None:
    from apiward.model.finding import MAX_EVENT_IDS

    pipe = Pipeline(tmp_path / "s", detectors=[EveryCall()])
    n = MAX_EVENT_IDS + 50
    pipe.process(calls(n))
    pipe.checkpoint()
    (f,) = pipe.findings.values()
    assert f.events == n and len(f.event_ids) == MAX_EVENT_IDS
    con = connect(tmp_path / "s" / "lake")
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM finding_events").fetchone() == (n, n)
    assert con.execute("SELECT events, kind FROM findings").fetchone() == (n, "attack")


def test_detect_mode_freezes_templates_and_inventory(tmp_path: Path) -> None:
    pipe = Pipeline(tmp_path / "s", detectors=[])
    pipe.process(calls(40))
    pipe.checkpoint()
    before = {k: r.calls for k, r in pipe.inventory.endpoints.each()}
    frozen = Pipeline(tmp_path / "s", mode="detect", detectors=[])
    probes = [make_call("GET", f"/admin/backup-{i}.zip", status=404, ts=1_764_000_100 + i, id=f"p#{i}") for i in range(30)]
    ctxs = frozen.discover(probes + calls(5, start=100))
    assert {k: r.calls for k, r in frozen.inventory.endpoints.each()} == before
    assert all(c.new_endpoint for c in ctxs[:30]) and not any(c.new_endpoint for c in ctxs[30:])
    assert ctxs[-1].endpoint.template == next(iter(before))[2]


def test_a_processed_batch_leaves_no_reference_cycles_behind(tmp_path: Path) -> None:
    """Per-call objects are freed by reference counting (the pipeline
    collects cycles rarely): a call's facts pointed back at its context,
    13 objects per call that only a full collection freed."""
    import gc

    pipe = Pipeline(tmp_path / "s")
    calls = [make_call("GET", f"/api/items/{i}?q=x{i}", json={"id": i, "owner": f"u{i % 5}"}, user=f"u{i % 5}",
                       ts=1_764_000_000 + i, id=f"c#{i}") for i in range(200)]
    pipe.process(calls[:20])  # warm caches and lazily built parts
    gc.collect()
    gc.disable()
    try:
        pipe.process(calls[20:])
        cyclic = gc.collect()
    finally:
        gc.enable()
    assert cyclic < 180, f"{cyclic} objects in reference cycles after 180 calls"
    pipe.close()
