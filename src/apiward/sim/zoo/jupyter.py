"""Jupyter Server (the REST backend of JupyterLab) in the zoo.

Authorization model: one user holding the server's token (``Authorization:
token ...``); every API call without it is refused (403). The owner works
from two devices; attackers only have the network.

Ground-truth routes: the server's own OpenAPI document (``/api/spec.yaml``),
plus ``/api/contents`` (the handler's path pattern allows an empty path:
the root directory).
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from apiward.sim import wordlists
from apiward.sim.zoo.harness import Driver, ZooActor

__all__ = ["JupyterServer"]


class JupyterServer:
    name = "jupyter-server"
    package = "jupyter_server"

    def __init__(self) -> None:
        self.token = secrets.token_hex(24)

    def start(self, workdir: Path, port: int) -> subprocess.Popen[bytes]:
        root = workdir / "notebooks"
        root.mkdir(exist_ok=True)
        env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"), "JUPYTER_DATA_DIR": str(workdir / "data"),
               "JUPYTER_CONFIG_DIR": str(workdir / "config")}
        log = open(workdir / f"{self.name}.log", "wb")  # noqa: SIM115 - the process owns it
        return subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--port", str(port), "--ip", "127.0.0.1", "--allow-root",
             f"--ServerApp.token={self.token}", "--ServerApp.open_browser=False", f"--ServerApp.root_dir={root}",
             "--ServerApp.port_retries=0"],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env,
        )

    def ready_path(self) -> str:
        return "/api/status"

    def routes(self, upstream: str, workdir: Path) -> list[tuple[str, str]]:
        doc = yaml.safe_load(httpx.get(upstream + "/api/spec.yaml", headers=self._h(), timeout=30).text)
        base = str(doc.get("basePath") or "").rstrip("/")
        out = [(m.upper(), base + p) for p, ops in doc["paths"].items() for m in ops
               if m.lower() in ("get", "put", "post", "patch", "delete")]
        out += [(m, "/api/contents") for m in ("GET", "POST")]
        return out

    def _h(self, token: str | None = None) -> dict[str, str]:
        return {"authorization": f"token {token or self.token}"}

    # -- the scenario ---------------------------------------------------------------

    def drive(self, d: Driver, *, quick: bool, seed: int) -> None:
        rng = random.Random(seed)
        laptop = d.actor("owner-laptop", benign=True)
        desktop = d.actor("owner-desktop", benign=True)
        files: list[str] = []
        for dev in (laptop, desktop):
            d.request(dev, "GET", "/api/me", headers=self._h())
            d.request(dev, "GET", "/api/kernelspecs", headers=self._h())
        for i in range(8 if quick else 20):
            name = f"{rng.choice(wordlists.SEARCH_TERMS).replace(' ', '-')}-{i}.ipynb"
            self._save(d, laptop if i % 2 else desktop, name, rng)
            files.append(name)
        for _ in range(2 if quick else 4):
            for dev in (laptop, desktop):
                self._session(d, dev, rng, files)
        bruno = d.actor("atk-bruno", benign=False)
        at = d.attack("jupyter-token-guessing", "brute_force", "API2", bruno)
        for _ in range(20 if quick else 40):
            d.request(bruno, "GET", "/api/contents", headers=self._h(secrets.token_hex(24)), attack=at)
        pete = d.actor("atk-pete", benign=False)
        at = d.attack("jupyter-probing", "probing", "API9", pete)
        for p in wordlists.RECON_PATHS[: 30 if quick else 50]:
            d.request(pete, "GET", p, attack=at)
        for dev in (laptop, desktop):
            self._session(d, dev, rng, files)

    def _save(self, d: Driver, dev: ZooActor, name: str, rng: random.Random) -> None:
        nb = {"cells": [{"cell_type": "code", "source": f"x = {rng.randrange(100)}", "metadata": {}, "outputs": [],
                         "execution_count": None}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        r = d.request(dev, "PUT", f"/api/contents/{name}", json={"type": "notebook", "format": "json", "content": nb}, headers=self._h())
        r.raise_for_status()

    def _session(self, d: Driver, dev: ZooActor, rng: random.Random, files: list[str]) -> None:
        d.request(dev, "GET", "/api/contents", params={"content": 1}, headers=self._h())
        for f in rng.sample(files, 3):
            d.request(dev, "GET", f"/api/contents/{f}", params={"content": 1}, headers=self._h())
        f = rng.choice(files)
        self._save(d, dev, f, rng)
        d.request(dev, "POST", f"/api/contents/{f}/checkpoints", headers=self._h())
        d.request(dev, "GET", f"/api/contents/{f}/checkpoints", headers=self._h())
        if rng.random() < 0.5:
            d.request(dev, "GET", "/api/status", headers=self._h())
