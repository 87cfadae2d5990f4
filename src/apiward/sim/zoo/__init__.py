"""The zoo: real open-source APIs driven through ``apiward proxy``.

One module per application (its start command, its route table, its
scenario of benign users and attacks written against its own authorization
model); :mod:`~apiward.sim.zoo.harness` runs one, :mod:`~apiward.sim.zoo.score`
scores what the CLI reported. The applications are the optional ``zoo``
extra (``pip install 'apiward[zoo]'``).
"""

from __future__ import annotations

import importlib.util

from apiward.sim.zoo.harness import ZooApp
from apiward.sim.zoo.jupyter import JupyterServer
from apiward.sim.zoo.kinto import Kinto
from apiward.sim.zoo.pypiserver import PypiServer
from apiward.sim.zoo.radicale import Radicale

__all__ = ["APPS", "available"]

APPS: dict[str, ZooApp] = {a.name: a for a in (Kinto(), PypiServer(), Radicale(), JupyterServer())}


def available(name: str) -> bool:
    """Whether the app's package is installed."""
    return importlib.util.find_spec(APPS[name].package) is not None
