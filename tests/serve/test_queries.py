"""The server's read side: queries over the lake while a pipeline writes it."""

from __future__ import annotations

from pathlib import Path

from apiward.hunt.session import HuntError, HuntSession
from apiward.serve.queries import StateReader
from apiward.serve.triage import TriageStore


def test_an_internal_query_is_run_again_on_a_fresh_session_when_it_fails_once(tmp_path: Path, monkeypatch) -> None:
    """A checkpoint can replace a lake file between a session's glob and its
    read; the query is answered from a session over the lake as it is now."""
    (tmp_path / "lake").mkdir()
    reader = StateReader(tmp_path, TriageStore(tmp_path))
    real = HuntSession.query
    calls = {"n": 0}

    def flaky(self, sql, params=None, **kw):
        calls["n"] += 1
        if calls["n"] == 1:
            raise HuntError("IO Error: No files found that match the pattern")
        return real(self, sql, params, **kw)

    monkeypatch.setattr(HuntSession, "query", flaky)
    assert reader.run("SELECT 42 AS x").dicts() == [{"x": 42}]
    assert calls["n"] == 2
    # a query that keeps failing is answered with its error, once retried
    monkeypatch.setattr(HuntSession, "query", lambda self, sql, params=None, **kw: (_ for _ in ()).throw(HuntError("bad")))
    try:
        reader.run("SELECT 1")
    except HuntError as exc:
        assert "bad" in str(exc)
    else:
        raise AssertionError("the error was swallowed")
