"""Shared fixtures: the demo API served by uvicorn on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from apiward.sim.demoapp import create_app
from apiward.sim.server import ServerThread

SEED_USERS = 60


def _serve(tmp_path_factory: pytest.TempPathFactory, vulnerable: bool) -> Iterator[tuple[ServerThread, httpx.Client]]:
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    app = create_app(str(db), vulnerable=vulnerable, seed_users=SEED_USERS)
    with ServerThread(app) as srv:
        with httpx.Client(base_url=srv.base_url, timeout=10.0, trust_env=False) as client:
            yield srv, client
    app.state.store.close()


@pytest.fixture(scope="module")
def vuln(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, httpx.Client]]:
    yield from _serve(tmp_path_factory, True)


@pytest.fixture(scope="module")
def fixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, httpx.Client]]:
    yield from _serve(tmp_path_factory, False)
