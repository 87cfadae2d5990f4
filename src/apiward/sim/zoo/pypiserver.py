"""pypiserver (a private Python package index) in the zoo.

Authorization model: ``-a update`` with an htpasswd file: uploading and
removing packages (``POST /``) needs HTTP Basic credentials of a listed
maintainer; reading the index, the JSON API and downloading are open to
anyone. There is no per-package ownership (any maintainer may replace or
remove any package, by design), so no BOLA is planted here.

Ground-truth routes: the Bottle router of ``pypiserver.app(...)``.
"""

from __future__ import annotations

import io
import random
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from apiward.sim import wordlists
from apiward.sim.zoo.harness import Driver, ZooActor

__all__ = ["PypiServer"]

_BOTTLE_PARAM = re.compile(r":(\w+)(#[^#]*#)?|<(\w+)(:[^>]*)?>")


def _sdist(name: str, version: str) -> bytes:
    """A minimal source distribution: a tar.gz holding PKG-INFO."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: zoo package\n".encode()
        info = tarfile.TarInfo(f"{name}-{version}/PKG-INFO")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class PypiServer:
    name = "pypiserver"
    package = "pypiserver"

    def __init__(self) -> None:
        self._users: dict[str, str] = {}

    def _htpasswd(self, workdir: Path, rng: random.Random) -> Path:
        from passlib.apache import HtpasswdFile  # a pypiserver dependency (passlib / libpass)

        path = workdir / "htpasswd"
        ht = HtpasswdFile(str(path), new=True, default_scheme="apr_md5_crypt")
        for n in ("alice", "bob", "carol", "dave", "erin", "mallory"):
            self._users[n] = f"{n}-{rng.randrange(10**6)}-pw"
            ht.set_password(n, self._users[n])
        ht.save()
        return path

    def start(self, workdir: Path, port: int) -> subprocess.Popen[bytes]:
        pw = self._htpasswd(workdir, random.Random(port))
        root = workdir / "packages"
        root.mkdir(exist_ok=True)
        log = open(workdir / f"{self.name}.log", "wb")  # noqa: SIM115 - the process owns it
        return subprocess.Popen(
            [sys.executable, "-m", "pypiserver", "run", "-p", str(port), "-i", "127.0.0.1", "-a", "update", "-P", str(pw),
             "--hash-algo", "sha256", str(root)],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
        )

    def ready_path(self) -> str:
        return "/health"

    def routes(self, upstream: str, workdir: Path) -> list[tuple[str, str]]:
        """The Bottle router's rules (``:project`` -> ``{project}``)."""
        import pypiserver

        app = pypiserver.app(roots=[str(workdir / "packages")], authenticate=["update"], password_file=str(workdir / "htpasswd"))
        return [(r.method, _BOTTLE_PARAM.sub(lambda m: "{" + (m.group(1) or m.group(3)) + "}", r.rule)) for r in app.routes]

    # -- the scenario ---------------------------------------------------------------

    def drive(self, d: Driver, *, quick: bool, seed: int) -> None:
        rng = random.Random(seed)
        maint = {n: d.actor(n, benign=True, user=n) for n in ("alice", "bob", "carol", "dave", "erin")}
        clients = [d.actor(f"pip-{i}", benign=True) for i in range(4 if quick else 8)]
        nouns = [w.lower().replace(" ", "-") for w, _ in wordlists.PRODUCT_NOUNS]
        projects: dict[str, list[str]] = {}  # project -> versions
        owner: dict[str, str] = {}

        def upload(who: ZooActor, project: str, version: str) -> None:
            fn = f"{project.replace('-', '_')}-{version}.tar.gz"
            r = d.request(who, "POST", "/", data={":action": "file_upload", "name": project, "version": version},
                          files={"content": (fn, _sdist(project, version), "application/gzip")},
                          auth=(who.user, self._users[who.user]))
            r.raise_for_status()
            projects.setdefault(project, []).append(version)

        for n, a in maint.items():
            for noun in rng.sample(nouns, 2 if quick else 3):
                p = f"{n}-{noun}"
                owner[p] = n
                upload(a, p, "0.1.0")
        rounds = 2 if quick else 4
        for r in range(rounds):
            for c in clients:
                self._install(d, c, rng, projects)
            for n, a in maint.items():
                mine = [p for p, o in owner.items() if o == n]
                p = rng.choice(mine)
                upload(a, p, f"0.{r + 2}.0")
                d.request(a, "GET", f"/{p}/json")
                d.request(a, "GET", "/simple/")
        # attacks
        bruno = d.actor("atk-bruno", benign=False)
        at = d.attack("pypiserver-brute-force", "brute_force", "API2", bruno)
        for pw in wordlists.COMMON_PASSWORDS[: 20 if quick else 36]:
            d.request(bruno, "POST", "/", data={":action": "remove_pkg", "name": "alice-x", "version": "0.1.0"},
                      auth=("alice", pw), attack=at)
        pete = d.actor("atk-pete", benign=False)
        at = d.attack("pypiserver-probing", "probing", "API9", pete)
        for p in wordlists.RECON_PATHS[: 30 if quick else 50]:
            d.request(pete, "GET", p, attack=at)
        ivan = d.actor("atk-ivan", benign=False)
        at = d.attack("pypiserver-injection", "injection", "API8", ivan)
        for p in ("../../etc/passwd", "..%2f..%2f..%2fetc%2fshadow", "....//....//etc/hosts", "%2e%2e/%2e%2e/proc/self/environ",
                  "x' OR '1'='1.tar.gz", "<script>alert(1)</script>.tar.gz")[: 4 if quick else 6]:
            d.request(ivan, "GET", f"/packages/{p}", attack=at)
        for payload in wordlists.SQLI_PAYLOADS[: 4 if quick else 8]:
            d.request(ivan, "GET", "/simple/", params={"q": payload}, attack=at)
        if not quick:
            sam = d.actor("atk-sam", benign=False)
            at = d.attack("pypiserver-scraping", "scraping", "API6", sam)
            d.request(sam, "GET", "/simple/", attack=at)
            for p, vs in projects.items():
                d.request(sam, "GET", f"/simple/{p}/", attack=at)
                d.request(sam, "GET", f"/{p}/json", attack=at)
                for v in vs:
                    d.request(sam, "GET", f"/packages/{p.replace('-', '_')}-{v}.tar.gz", attack=at)
        for c in clients:
            self._install(d, c, rng, projects)

    def _install(self, d: Driver, c: ZooActor, rng: random.Random, projects: dict[str, list[str]]) -> None:
        """What ``pip install`` does: the project page, then one file."""
        for p in rng.sample(sorted(projects), 2):
            d.request(c, "GET", f"/simple/{p}/", headers={"user-agent": "pip/24.0"})
            v = projects[p][-1]
            d.request(c, "GET", f"/packages/{p.replace('-', '_')}-{v}.tar.gz", headers={"user-agent": "pip/24.0"})
        if rng.random() < 0.3:
            d.request(c, "GET", "/simple/", headers={"user-agent": "pip/24.0"})
