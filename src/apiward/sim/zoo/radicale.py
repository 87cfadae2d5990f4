"""Radicale (a CalDAV/CardDAV server) in the zoo.

Authorization model: htpasswd accounts (HTTP Basic) and ``rights.type =
owner_only``: each user reads and writes only the collections under its
own principal ``/<user>/``; everything else is refused (403).

Ground-truth routes: Radicale has no route table; it dispatches on the
method (its ``Application.do_<METHOD>`` handlers, introspected here) over
the storage hierarchy its documentation defines: ``/``, the principal
``/{user}/``, a collection ``/{user}/{collection}/`` and an item
``/{user}/{collection}/{item}``. Items are named by the client; here, as
CalDAV clients do, ``<uid>.ics``, so an item template is
``/{user}/{collection}/{item}.ics``.
"""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from pathlib import Path

from apiward.sim import wordlists
from apiward.sim.zoo.harness import Driver, ZooActor

__all__ = ["Radicale"]

_MKCAL = """<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop><D:displayname>{name}</D:displayname></D:prop></D:set>
</C:mkcalendar>"""
_PROPFIND = """<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:displayname/><D:resourcetype/><D:getetag/></D:prop></D:propfind>"""
_REPORT = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/></D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/></C:comp-filter></C:filter>
</C:calendar-query>"""


def _event(uid: str, summary: str, day: int) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//zoo//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:202601{day:02d}T090000Z\r\n"
        f"DTEND:202601{day:02d}T100000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


class Radicale:
    name = "radicale"
    package = "radicale"

    def __init__(self) -> None:
        self._pw: dict[str, str] = {}

    def start(self, workdir: Path, port: int) -> subprocess.Popen[bytes]:
        rng = random.Random(port)
        users = [n.lower() for n in wordlists.FIRST_NAMES[:24]]
        self._pw = {u: f"{u}-{rng.randrange(10**6)}" for u in users}
        ht = workdir / "users"
        ht.write_text("".join(f"{u}:{p}\n" for u, p in self._pw.items()))  # plain htpasswd: a loopback test server
        log = open(workdir / f"{self.name}.log", "wb")  # noqa: SIM115 - the process owns it
        return subprocess.Popen(
            [sys.executable, "-m", "radicale", "--server-hosts", f"127.0.0.1:{port}",
             "--storage-filesystem-folder", str(workdir / "collections"), "--auth-type", "htpasswd",
             "--auth-htpasswd-filename", str(ht), "--auth-htpasswd-encryption", "plain", "--rights-type", "owner_only",
             # Radicale slows every failed login down (1 s by default); a short delay keeps the run short
             "--auth-delay", "0.05",
             "--logging-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
        )

    def ready_path(self) -> str:
        return "/.web/"

    def routes(self, upstream: str, workdir: Path) -> list[tuple[str, str]]:
        from radicale.app import Application

        methods = sorted(m[3:] for m in dir(Application) if m.startswith("do_"))
        out = []
        for m in methods:
            for t in ("/", "/{user}/", "/{user}/{collection}/", "/{user}/{collection}/{item}.ics"):
                out.append((m, t))
        out += [("GET", "/.web/")]
        return out

    # -- the scenario ---------------------------------------------------------------

    def drive(self, d: Driver, *, quick: bool, seed: int) -> None:
        rng = random.Random(seed)
        names = sorted(self._pw)
        users = [_Cal(d.actor(n, benign=True, user=n), self._pw[n]) for n in names[: 6 if quick else 12]]
        mallory = _Cal(d.actor("atk-mallory", benign=False, user=names[20]), self._pw[names[20]])
        trudy = _Cal(d.actor("atk-trudy", benign=False, user=names[21]), self._pw[names[21]])
        for u in [*users, mallory, trudy]:
            u.setup(d, rng, 3 if quick else 5)
        for _ in range(2 if quick else 4):
            for u in [*users, mallory, trudy]:
                u.session(d, rng)
        at = d.attack("radicale-bola-read", "bola_read", "API1", mallory.actor)
        for v in users:
            for href in v.items[:2]:
                d.request(mallory.actor, "GET", href, auth=mallory.auth, attack=at)
        at = d.attack("radicale-bola-write", "bola_write", "API1", trudy.actor)
        for v in users:
            href = v.items[-1]
            d.request(trudy.actor, "PUT", href, content=_event(href.rsplit("/", 1)[1][:-4], "cancelled", 9),
                      headers={"content-type": "text/calendar"}, auth=trudy.auth, attack=at)
            if not quick:
                d.request(trudy.actor, "DELETE", v.items[0], auth=trudy.auth, attack=at)
        bruno = d.actor("atk-bruno", benign=False)
        at = d.attack("radicale-brute-force", "brute_force", "API2", bruno)
        target = users[0].actor.user
        for pw in wordlists.COMMON_PASSWORDS[: 20 if quick else 36]:
            d.request(bruno, "PROPFIND", f"/{target}/", content=_PROPFIND, headers={"depth": "1", "content-type": "application/xml"},
                      auth=(target, pw), attack=at)
        pete = d.actor("atk-pete", benign=False)
        at = d.attack("radicale-probing", "probing", "API9", pete)
        for p in wordlists.RECON_PATHS[: 30 if quick else 50]:
            d.request(pete, "GET", p, attack=at)
        for u in users:
            u.session(d, rng)


class _Cal:
    """One Radicale user and its calendars."""

    def __init__(self, actor: ZooActor, password: str) -> None:
        self.actor = actor
        self.password = password
        self.cals: list[str] = []
        self.items: list[str] = []

    @property
    def auth(self) -> tuple[str, str]:
        return (self.actor.user, self.password)

    def setup(self, d: Driver, rng: random.Random, n_items: int) -> None:
        a = self.actor
        d.request(a, "PROPFIND", f"/{a.user}/", content=_PROPFIND, headers={"depth": "0", "content-type": "application/xml"}, auth=self.auth)
        for name in rng.sample(("work", "home", "family", "sport", "travel", "school"), 2):
            # CalDAV clients (Thunderbird, DAVx5, Apple) name new collections by a fresh UUID
            cal = f"/{a.user}/{uuid.UUID(int=rng.getrandbits(128))}/"
            r = d.request(a, "MKCALENDAR", cal, content=_MKCAL.format(name=name), headers={"content-type": "application/xml"}, auth=self.auth)
            if r.status_code >= 400:
                raise RuntimeError(f"MKCALENDAR {cal}: {r.status_code} {r.text[:200]}")
            self.cals.append(cal)
            for _ in range(n_items):
                self.add(d, rng, cal)

    def add(self, d: Driver, rng: random.Random, cal: str) -> None:
        uid = str(uuid.UUID(int=rng.getrandbits(128)))
        href = f"{cal}{uid}.ics"
        r = d.request(self.actor, "PUT", href, content=_event(uid, rng.choice(wordlists.SEARCH_TERMS), rng.randrange(1, 28)),
                      headers={"content-type": "text/calendar"}, auth=self.auth)
        if r.status_code >= 400:
            raise RuntimeError(f"PUT {href}: {r.status_code} {r.text[:200]}")
        self.items.append(href)

    def session(self, d: Driver, rng: random.Random) -> None:
        """A calendar client's sync: list, query, read a few, change one."""
        a, auth = self.actor, self.auth
        d.request(a, "PROPFIND", f"/{a.user}/", content=_PROPFIND, headers={"depth": "1", "content-type": "application/xml"}, auth=auth)
        for cal in self.cals:
            d.request(a, "REPORT", cal, content=_REPORT, headers={"depth": "1", "content-type": "application/xml"}, auth=auth)
        for href in rng.sample(self.items, min(3, len(self.items))):
            d.request(a, "GET", href, auth=auth)
        self.add(d, rng, rng.choice(self.cals))
        if len(self.items) > 4 and rng.random() < 0.5:
            href = self.items.pop(rng.randrange(len(self.items)))
            d.request(a, "DELETE", href, auth=auth)
