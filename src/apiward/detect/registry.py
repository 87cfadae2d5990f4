"""Detector registry: an explicit id -> class list, plus third-party
detectors registered under the ``apiward.detectors`` entry point group.

Adding a detector: write ``detect/<area>.py`` (or ``detect/<area>_<thing>.py``)
with a class following :class:`apiward.detect.base.Detector` and add one line
below.
"""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import entry_points
from typing import Any

from apiward.detect.base import Detector

__all__ = ["DETECTORS", "detector_ids", "build_detectors", "detector_class"]

DETECTORS: dict[str, str] = {
    "auth.cleartext_credentials": "apiward.detect.cleartext:CleartextCredentials",
    "recon.scanning": "apiward.detect.recon:Scanning",
    "auth.broken_authentication": "apiward.detect.broken_auth:BrokenAuthentication",
    "abuse.resource": "apiward.detect.resource_abuse:ResourceAbuse",
    "anomaly.behaviour": "apiward.detect.anomaly:BehaviourAnomaly",
    "bola.cross_owner_access": "apiward.detect.bola:CrossOwnerAccess",
    "bola.enumeration": "apiward.detect.bola:Enumeration",
    "bfla.admin_function": "apiward.detect.bfla:AdminFunction",
    "mass_assignment.readonly_write": "apiward.detect.mass_assignment:ReadonlyWrite",
    "data_exposure.sensitive_response": "apiward.detect.data_exposure:SensitiveResponse",
    "credentials.stuffing": "apiward.detect.credentials:Stuffing",
    "credentials.account_takeover": "apiward.detect.credentials:AccountTakeover",
    "credentials.code_guessing": "apiward.detect.guessing:CodeGuessing",
    "scraping.enumeration": "apiward.detect.scraping:ScrapingEnumeration",
    "fake_accounts.signup_burst": "apiward.detect.fake_accounts:SignupBurst",
    "injection.payload": "apiward.detect.injection:InjectionPayload",
    "protocol.request_smuggling": "apiward.detect.smuggling:RequestSmuggling",
}


@functools.lru_cache(maxsize=1)
def _specs() -> dict[str, str]:
    specs = dict(DETECTORS)
    for ep in entry_points(group="apiward.detectors"):
        specs.setdefault(ep.name, ep.value)
    return specs


def detector_ids() -> list[str]:
    return list(_specs())


def detector_class(det_id: str) -> type:
    specs = _specs()
    if det_id not in specs:
        raise KeyError(f"unknown detector {det_id!r}; known: {', '.join(specs)}")
    mod, _, cls = specs[det_id].partition(":")
    return getattr(importlib.import_module(mod), cls)


def build_detectors(
    enabled: list[str] | None = None,
    disabled: list[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> list[Detector]:
    """Instantiate detectors. ``options[id]`` become constructor arguments; a
    bad option fails here, at start, naming the detector."""
    options = options or {}
    ids = enabled or detector_ids()
    unknown = set(options) - set(detector_ids())
    if unknown:
        raise ValueError(f"options for unknown detectors: {', '.join(sorted(unknown))}")
    out = []
    for det_id in ids:
        if disabled and det_id in disabled:
            continue
        cls = detector_class(det_id)
        try:
            out.append(cls(**options.get(det_id, {})))
        except TypeError as exc:
            raise ValueError(f"detector {det_id}: bad option: {exc}") from None
    return out
