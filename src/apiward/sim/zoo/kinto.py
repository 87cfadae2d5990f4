"""Kinto (Mozilla's JSON storage service) in the zoo.

Authorization model: accounts plugin (HTTP Basic with an account id and a
password; anyone may sign up; ``account:admin`` manages every account).
Every authenticated account may create buckets; an object's creator gets
``write`` on it and nobody else sees it unless its permissions say so. The
admin keeps a shared ``catalog`` bucket that every authenticated account
may read and only the admin writes.

Ground-truth routes: Kinto's own OpenAPI document (``/v1/__api__``).
"""

from __future__ import annotations

import random
import secrets
import subprocess
import sys
from pathlib import Path

import httpx

from apiward.sim import wordlists
from apiward.sim.zoo.harness import Attack, Driver, ZooActor

__all__ = ["Kinto"]

_INI = """\
[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = {port}
threads = 4

[app:main]
use = egg:kinto
kinto.includes = kinto.plugins.accounts
kinto.storage_backend = kinto.core.storage.memory
kinto.storage_url =
kinto.cache_backend = kinto.core.cache.memory
kinto.cache_url =
kinto.permission_backend = kinto.core.permission.memory
kinto.permission_url =
kinto.userid_hmac_secret = {secret}
multiauth.policies = account
multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy
kinto.account_create_principals = system.Everyone
kinto.account_write_principals = account:admin
kinto.bucket_create_principals = system.Authenticated
kinto.account_cache_ttl_seconds = 3600
kinto.user-data_delete_principals = account:admin

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = plain

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = plain

[formatter_plain]
format = %(levelname)s %(name)s %(message)s
"""

_J = {"content-type": "application/json"}


class Kinto:
    name = "kinto"
    package = "kinto"

    def start(self, workdir: Path, port: int) -> subprocess.Popen[bytes]:
        ini = workdir / "kinto.ini"
        ini.write_text(_INI.format(port=port, secret=secrets.token_hex(16)))
        log = open(workdir / f"{self.name}.log", "wb")  # noqa: SIM115 - the process owns it
        return subprocess.Popen([sys.executable, "-c", "import sys; from kinto.__main__ import main; sys.exit(main())", "start", "--ini", str(ini), "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, cwd=workdir)

    def ready_path(self) -> str:
        return "/v1/__heartbeat__"

    def routes(self, upstream: str, workdir: Path) -> list[tuple[str, str]]:
        """Every (method, path) of Kinto's served OpenAPI document."""
        doc = httpx.get(upstream + "/v1/__api__", timeout=30).json()
        base = str(doc.get("basePath") or "").rstrip("/")
        out = []
        for path, ops in doc["paths"].items():
            for m in ops:
                if m.lower() in ("get", "put", "post", "patch", "delete", "head", "options"):
                    out.append((m.upper(), base + path))
        return out

    # -- the scenario ---------------------------------------------------------------

    def drive(self, d: Driver, *, quick: bool, seed: int) -> None:
        rng = random.Random(seed)
        n_users = 5 if quick else 10
        names = rng.sample([n.lower() for n in wordlists.FIRST_NAMES], n_users + 8)
        users = [_User(d.actor(n, benign=True, user=n), f"{n}-{rng.randrange(10**6)}-pw") for n in names[:n_users]]
        admin = _User(d.actor("admin", benign=True, user="admin"), "admin-" + secrets.token_hex(6))
        # attackers that hold accounts of their own (signed up like anyone)
        atk_names = names[n_users:]
        mallory, trudy, eve, oscar, sam, ivan = (
            _User(d.actor(f"atk-{n}", benign=False, user=n), f"{n}-pw-{rng.randrange(999)}") for n in atk_names[:6]
        )
        bruno = d.actor("atk-bruno", benign=False)  # anonymous: guesses passwords
        pete = d.actor("atk-pete", benign=False)  # anonymous: probes a wordlist

        for u in [admin, *users, mallory, trudy, eve, oscar, sam, ivan]:
            u.signup(d)
        products = admin.setup_catalog(d, rng, 24 if quick else 60)
        for u in [*users, mallory, trudy, eve, oscar, sam, ivan]:
            u.setup_own(d, rng, 2 if quick else 3)
        rounds = 2 if quick else 4
        for r in range(rounds):  # ordinary use, learnt before any attack
            for u in users:
                u.session(d, rng, products)
            for u in (mallory, trudy, eve, oscar, sam, ivan):
                u.session(d, rng, products)
            admin.admin_session(d, rng, products, users, r)

        victims = [u for u in users]
        at = d.attack("kinto-bola-read", "bola_read", "API1", mallory.actor)
        for v in victims:
            for rid in v.records[:2]:
                d.request(mallory.actor, "GET", rid, auth=mallory.auth, attack=at)
        # the admin-only function: purging a user's data (user-data_delete_principals)
        at = d.attack("kinto-bfla", "bfla", "API5", eve.actor)
        for v in victims[:3]:
            d.request(eve.actor, "DELETE", f"/v1/__user_data__/account:{v.actor.user}", auth=eve.auth, attack=at)
        at = d.attack("kinto-brute-force", "brute_force", "API2", bruno)
        target = users[0].actor.user
        for pw in wordlists.COMMON_PASSWORDS[: 20 if quick else 36]:
            d.request(bruno, "GET", f"/v1/accounts/{target}", auth=(target, pw), attack=at)
        at = d.attack("kinto-injection", "injection", "API8", ivan.actor)
        coll = ivan.collections[0]
        for p in wordlists.SQLI_PAYLOADS[: 8 if quick else 16]:
            d.request(ivan.actor, "GET", f"{coll}/records", params={"title": p}, auth=ivan.auth, attack=at)
        at = d.attack("kinto-probing", "probing", "API9", pete)
        for p in wordlists.RECON_PATHS[: 30 if quick else 50]:
            d.request(pete, "GET", p, attack=at)
        if not quick:
            # writes to other accounts' records and to the admin's catalogue (Kinto's permissions are per object)
            at = d.attack("kinto-bola-write", "bola_write", "API1", trudy.actor)
            for v in victims:
                rid = v.records[-1]
                d.request(trudy.actor, "PATCH", rid, json={"data": {"done": True, "title": "pwned"}}, auth=trudy.auth, attack=at)
                d.request(trudy.actor, "DELETE", v.records[0], auth=trudy.auth, attack=at)
            for pid in rng.sample(products, 4):
                d.request(trudy.actor, "PATCH", pid, json={"data": {"price": 0}}, auth=trudy.auth, attack=at)
            at = d.attack("kinto-mass-assignment", "mass_assignment", "API3", oscar.actor)
            d.request(oscar.actor, "PATCH", f"/v1/accounts/{oscar.actor.user}", json={"data": {"is_admin": True, "role": "admin"}},
                      auth=oscar.auth, attack=at)
            d.request(oscar.actor, "GET", f"/v1/accounts/{oscar.actor.user}", auth=oscar.auth, attack=at)
            at = d.attack("kinto-scraping", "scraping", "API6", sam.actor)
            for pid in products:
                d.request(sam.actor, "GET", pid, auth=sam.auth, attack=at)
        for u in users:  # ordinary use goes on after the attacks
            u.session(d, rng, products)


class _User:
    """One Kinto account and what it owns."""

    def __init__(self, actor: ZooActor, password: str) -> None:
        self.actor = actor
        self.password = password
        self.buckets: list[str] = []
        self.collections: list[str] = []
        self.records: list[str] = []

    @property
    def auth(self) -> tuple[str, str]:
        return (self.actor.user, self.password)

    def signup(self, d: Driver) -> None:
        r = d.request(self.actor, "PUT", f"/v1/accounts/{self.actor.user}", json={"data": {"password": self.password}})
        r.raise_for_status()

    def setup_own(self, d: Driver, rng: random.Random, n_records: int) -> None:
        b = f"/v1/buckets/{self.actor.user}-{rng.choice(('notes', 'home', 'work'))}"
        d.request(self.actor, "PUT", b, json={"data": {}}, auth=self.auth).raise_for_status()
        self.buckets.append(b)
        for name in rng.sample(("todo", "journal", "recipes", "links", "books"), 2):
            c = f"{b}/collections/{name}"
            d.request(self.actor, "PUT", c, json={"data": {"title": name}}, auth=self.auth).raise_for_status()
            self.collections.append(c)
            for _ in range(n_records):
                self.add_record(d, rng, c)
        group = f"{b}/groups/{rng.choice(('friends', 'family', 'team', 'club', 'neighbours', 'colleagues'))}"
        d.request(self.actor, "PUT", group, json={"data": {"members": [f"account:{self.actor.user}"]}},
                  auth=self.auth).raise_for_status()

    def add_record(self, d: Driver, rng: random.Random, coll: str) -> None:
        body = {"data": {"title": " ".join(rng.sample(wordlists.SEARCH_TERMS, 2)), "done": False, "rank": rng.randrange(100)}}
        r = d.request(self.actor, "POST", f"{coll}/records", json=body, auth=self.auth)
        r.raise_for_status()
        self.records.append(f"{coll}/records/{r.json()['data']['id']}")

    def session(self, d: Driver, rng: random.Random, products: list[str]) -> None:
        """A visit: look at own things, change a few, glance at the catalog."""
        a, auth = self.actor, self.auth
        d.request(a, "GET", "/v1/", auth=auth)
        d.request(a, "GET", "/v1/buckets", auth=auth)
        if rng.random() < 0.3:
            d.request(a, "GET", f"/v1/accounts/{a.user}", auth=auth)
        for c in rng.sample(self.collections, min(2, len(self.collections))):
            d.request(a, "GET", f"{c}/records", params={"_sort": "-last_modified", "_limit": 10}, auth=auth)
            if rng.random() < 0.5:
                self.add_record(d, rng, c)
        if self.buckets and rng.random() < 0.5:
            d.request(a, "GET", f"{self.buckets[0]}/collections", auth=auth)
        for rid in rng.sample(self.records, min(3, len(self.records))):
            d.request(a, "GET", rid, auth=auth)
        if self.records:
            rid = rng.choice(self.records)
            d.request(a, "PATCH", rid, json={"data": {"done": True}}, auth=auth)
        if len(self.records) > 4 and rng.random() < 0.4:
            rid = self.records.pop(rng.randrange(len(self.records)))
            d.request(a, "DELETE", rid, auth=auth)
        d.request(a, "GET", "/v1/buckets/catalog/collections/products/records", params={"_limit": 20}, auth=auth)
        for pid in rng.sample(products, 3):
            d.request(a, "GET", pid, auth=auth)

    def setup_catalog(self, d: Driver, rng: random.Random, n: int) -> list[str]:
        """The admin's shared catalogue: readable by every account, written by the admin."""
        auth = self.auth
        perms = {"read": ["system.Authenticated"]}
        d.request(self.actor, "PUT", "/v1/buckets/catalog", json={"data": {}, "permissions": perms}, auth=auth).raise_for_status()
        c = "/v1/buckets/catalog/collections/products"
        d.request(self.actor, "PUT", c, json={"data": {}}, auth=auth).raise_for_status()
        out = []
        for i in range(n):
            adj, (noun, _cat) = rng.choice(wordlists.PRODUCT_ADJECTIVES), rng.choice(wordlists.PRODUCT_NOUNS)
            r = d.request(self.actor, "POST", f"{c}/records", json={"data": {"name": f"{adj} {noun}", "price": rng.randrange(5, 500)}}, auth=auth)
            r.raise_for_status()
            out.append(f"{c}/records/{r.json()['data']['id']}")
        return out

    def admin_session(self, d: Driver, rng: random.Random, products: list[str], users: list[_User], rnd: int) -> None:
        """The admin's work: accounts overview, catalogue upkeep, leavers removed."""
        a, auth = self.actor, self.auth
        d.request(a, "GET", "/v1/accounts", auth=auth)
        for pid in rng.sample(products, 2):
            d.request(a, "PATCH", pid, json={"data": {"price": rng.randrange(5, 500)}}, auth=auth)
        d.request(a, "GET", "/v1/buckets/catalog/collections/products/records", auth=auth)
        # short-lived accounts that the admin removes with their data (leavers)
        for k in range(3):
            tmp = _User(d.actor(f"temp{rnd}.{k}", benign=True, user=f"temp{rnd}{k}-{rng.randrange(1000)}"), secrets.token_hex(6))
            tmp.signup(d)
            d.request(tmp.actor, "GET", f"/v1/accounts/{tmp.actor.user}", auth=tmp.auth)
            d.request(a, "DELETE", f"/v1/__user_data__/account:{tmp.actor.user}", auth=auth)  # the account goes too
        _ = users
