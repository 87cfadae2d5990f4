"""A labelled corpus of realistic API bodies for measuring sensitive data
classification.

Documents look like what APIs return (user lists, profiles, orders,
payments, patient records, login exchanges, config dumps, error bodies) and
every leaf value carries a label: a class name from
:mod:`apiward.discover.sensitive` or ``""`` for benign values and decoys.
PII values validate (Luhn, mod-97, SSA rules, Verhoeff, stdnum check digits,
``phonenumbers``); decoys are the look-alikes that trip naive detectors:
order numbers failing Luhn, UUIDs, epoch millis, versions, prices, file
digests in ``etag``/``checksum``, random ids, zip codes, tracking numbers.

>>> docs = generate(20, seed=1)
>>> len(docs), all(d.values for d in docs)
(20, True)
"""

from __future__ import annotations

import base64
import hashlib
import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
import phonenumbers
from stdnum import verhoeff
from stdnum.iso7064 import mod_11_10
from stdnum.us import ssn as us_ssn

__all__ = ["Doc", "Labeled", "generate", "PiiFactory"]


@dataclass(frozen=True)
class Labeled:
    """One leaf: dotted path (arrays as ``[]``), the value as text, its class
    (``""`` for benign), whether it is a deliberate look-alike, and other
    classes that are also true of it (a stack trace that shows a path)."""

    field: str
    value: str
    cls: str
    decoy: bool = False
    also: tuple[str, ...] = ()


@dataclass
class Doc:
    """One body: ``location`` is ``response_body``, ``request_body`` or
    ``error_body``; ``body`` is JSON-able, or ``str`` for a text body."""

    kind: str
    status: int
    location: str
    body: Any
    values: list[Labeled] = field(default_factory=list)

    def body_bytes(self) -> bytes:
        if isinstance(self.body, str):
            return self.body.encode()
        return orjson.dumps(self.body)

    @property
    def content_type(self) -> str:
        return "text/plain" if isinstance(self.body, str) else "application/json"


FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "Wei", "Priya", "Mohammed", "Sofia", "Lukas", "Chloé", "Hiroshi", "Amara", "Mateo", "Aisha", "Olga", "Noah"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Garcia", "Müller", "Dubois", "Rossi", "Kumar", "Nguyen",
        "Okafor", "Tanaka", "Kowalski", "Silva", "Hansen", "O'Brien", "Schmidt", "Martin", "Patel", "Lee"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.org", "acme-corp.com", "proton.me", "web.de",
           "company.co.uk", "mail.ru", "fastmail.fm", "uni-hamburg.de", "startup.io"]
CITIES = ["Springfield", "Berlin", "Paris", "London", "Austin", "Madrid", "Mumbai", "Toronto", "Lyon", "Seattle"]
STREETS = ["Main", "Oak", "Elm", "Maple", "Cedar", "Pine", "Washington", "Lake", "Hill", "Park", "Sunset", "River"]
ST_TYPES = ["Street", "St", "Avenue", "Ave", "Road", "Rd", "Boulevard", "Blvd", "Lane", "Drive", "Way", "Court"]
PRODUCTS = ["Wireless Mouse", "USB-C Cable 2m", "Standing Desk", "Noise Cancelling Headphones", "Coffee Beans 1kg",
            "Running Shoes", "Yoga Mat", "4K Monitor 27\"", "Mechanical Keyboard", "Water Bottle"]
DIAGNOSES = [("Type 2 diabetes mellitus without complications", "E11.9"), ("Essential (primary) hypertension", "I10"),
             ("Major depressive disorder, single episode", "F32.9"), ("Asthma, uncomplicated", "J45.909"),
             ("Hyperlipidemia, unspecified", "E78.5"), ("Migraine without aura", "G43.009"),
             ("Chronic kidney disease, stage 3", "N18.30"), ("Acute bronchitis", "J20.9")]
MEDS = ["Metformin 500mg", "Lisinopril 10mg", "Atorvastatin 20mg", "Sertraline 50mg", "Albuterol inhaler",
        "Levothyroxine 75mcg", "Omeprazole 20mg", "Amlodipine 5mg"]
STATUSES = ["active", "pending", "shipped", "delivered", "cancelled", "refunded", "processing"]
B64URL = string.ascii_letters + string.digits + "-_"
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"


def _luhn_digit(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        x = int(ch)
        if i % 2 == 0:
            x *= 2
            if x > 9:
                x -= 9
        total += x
    return str((10 - total % 10) % 10)


class PiiFactory:
    """Realistic values, one method per class or decoy kind."""

    def __init__(self, rng: random.Random) -> None:
        self.r = rng

    def _digits(self, n: int) -> str:
        return "".join(self.r.choice(string.digits) for _ in range(n))

    def _chars(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    # --- personal data ---------------------------------------------------

    def name(self) -> tuple[str, str]:
        return self.r.choice(FIRST), self.r.choice(LAST)

    def email(self, first: str = "", last: str = "") -> str:
        r = self.r
        first = (first or r.choice(FIRST)).lower().replace("é", "e")
        last = (last or r.choice(LAST)).lower().replace("ü", "u").replace("'", "")
        local = r.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}{r.randint(1, 99)}",
                          f"{first}_{last}", f"{last}.{first}+shop"])
        return f"{local}@{r.choice(DOMAINS)}"

    def phone(self) -> str:
        r = self.r
        while True:
            kind = r.random()
            if kind < 0.5:
                area = r.choice(["212", "310", "415", "646", "617", "312", "206", "512", "702", "305", "404", "503"])
                ex, sub = f"{r.randint(2, 9)}{self._digits(2)}", self._digits(4)
                if ex[1:] == "11":
                    continue
                return r.choice([f"+1 {area}-{ex}-{sub}", f"+1{area}{ex}{sub}", f"({area}) {ex}-{sub}",
                                 f"{area}-{ex}-{sub}", f"+1 ({area}) {ex}-{sub}", f"{area}.{ex}.{sub}"])
            if kind < 0.65:
                s = f"+44 7{r.randint(400, 999)} {self._digits(6)}"
            elif kind < 0.8:
                s = r.choice([f"+49 30 {self._digits(8)}", f"+49 15{r.randint(1, 9)} {self._digits(8)}"])
            elif kind < 0.9:
                s = f"+33 6 {self._digits(2)} {self._digits(2)} {self._digits(2)} {self._digits(2)}"
            else:
                s = f"+91 9{self._digits(4)} {self._digits(5)}"
            if phonenumbers.is_valid_number(phonenumbers.parse(s, None)):
                return s

    def card(self) -> str:
        r = self.r
        brand = r.choice(["visa", "visa", "mc", "mc2", "amex", "discover", "jcb", "diners"])
        prefix, length = {
            "visa": ("4", 16), "mc": (str(r.randint(51, 55)), 16), "mc2": (str(r.randint(2221, 2720)), 16),
            "amex": (r.choice(["34", "37"]), 15), "discover": ("6011", 16), "jcb": (str(r.randint(3528, 3589)), 16),
            "diners": ("36", 14),
        }[brand]
        body = prefix + self._digits(length - len(prefix) - 1)
        num = body + _luhn_digit(body)
        fmt = r.random()
        if fmt < 0.6 or length == 14:
            return num
        sep = " " if fmt < 0.85 else "-"
        if length == 15:
            return sep.join([num[:4], num[4:10], num[10:]])
        return sep.join(num[i : i + 4] for i in range(0, length, 4))

    def iban(self) -> str:
        r = self.r
        cc = r.choice(["DE", "GB", "FR", "ES", "NL", "IT"])
        if cc == "DE":
            bban = self._digits(18)
        elif cc == "GB":
            bban = r.choice(["NWBK", "BARC", "HBUK", "LOYD"]) + self._digits(14)
        elif cc == "FR":
            bban = self._digits(10) + self._chars(string.ascii_uppercase + string.digits, 11) + self._digits(2)
        elif cc == "ES":
            bban = self._digits(20)
        elif cc == "NL":
            bban = r.choice(["ABNA", "INGB", "RABO"]) + self._digits(10)
        else:
            bban = r.choice(string.ascii_uppercase) + self._digits(10) + self._chars(string.ascii_uppercase + string.digits, 12)
        num = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
        iban = f"{cc}{98 - num % 97:02d}{bban}"
        if r.random() < 0.3:
            return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
        return iban

    def ssn(self, formatted: bool = True) -> str:
        r = self.r
        while True:
            area = r.choice([r.randint(1, 665), r.randint(667, 899)])
            s = f"{area:03d}{r.randint(1, 99):02d}{r.randint(1, 9999):04d}"
            if us_ssn.is_valid(s):
                return f"{s[:3]}-{s[3:5]}-{s[5:]}" if formatted else s

    def aadhaar(self) -> str:
        body = str(self.r.randint(2, 9)) + self._digits(10)
        num = body + verhoeff.calc_check_digit(body)
        return f"{num[:4]} {num[4:8]} {num[8:]}" if self.r.random() < 0.6 else num

    def dni(self) -> str:
        n = self.r.randint(10_000_000, 99_999_999)
        return f"{n}{'TRWAGMYFPDXBNJZSQVHLCKE'[n % 23]}"

    def nir(self) -> str:
        r = self.r
        body = f"{r.randint(1, 2)}{r.randint(40, 99):02d}{r.randint(1, 12):02d}{r.randint(1, 95):02d}{r.randint(1, 999):03d}{r.randint(1, 999):03d}"
        key = 97 - int(body) % 97
        return f"{body[0]} {body[1:3]} {body[3:5]} {body[5:7]} {body[7:10]} {body[10:13]} {key:02d}"

    def idnr(self) -> str:
        r = self.r
        while True:
            digits = r.sample("0123456789", 9)
            if digits[0] == "0":
                continue
            pos = r.randint(1, 9)
            digits.insert(pos, digits[r.randint(0, pos - 1)])
            body = "".join(digits)
            return body + mod_11_10.calc_check_digit(body)

    def nino(self) -> str:
        r = self.r
        a = r.choice("ABCEGHJKLMNOPRSTWXYZ")
        b = r.choice("ABCEGHJKLMNPRSTWXYZ")
        if a + b in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ"):
            a, b = "A", "B"
        d = self._digits(6)
        return r.choice([f"{a}{b}{d}{r.choice('ABCD')}", f"{a}{b} {d[:2]} {d[2:4]} {d[4:]} {r.choice('ABCD')}"])

    def dob(self) -> str:
        r = self.r
        y, m, d = r.randint(1940, 2006), r.randint(1, 12), r.randint(1, 28)
        return r.choice([f"{y}-{m:02d}-{d:02d}", f"{m:02d}/{d:02d}/{y}", f"{d:02d}.{m:02d}.{y}"])

    def street(self) -> str:
        r = self.r
        k = r.random()
        if k < 0.7:
            return f"{r.randint(1, 9999)} {r.choice(STREETS)} {r.choice(ST_TYPES)}" + r.choice(["", "", f", Apt {r.randint(1, 40)}"])
        if k < 0.85:
            return f"{r.choice(['Haupt', 'Linden', 'Berliner ', 'Goethe', 'Schiller'])}{r.choice(['straße', 'strasse', 'weg'])} {r.randint(1, 120)}"
        return f"{r.randint(1, 200)} rue {r.choice(['de Rivoli', 'Victor Hugo', 'des Lilas', 'Pasteur'])}"

    def public_ip(self) -> str:
        r = self.r
        while True:
            a = r.randint(1, 223)
            if a in (10, 100, 127, 169, 172, 192, 198, 203):
                continue
            return f"{a}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def private_ip(self) -> str:
        r = self.r
        return r.choice([f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
                         f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}",
                         f"172.{r.randint(16, 31)}.{r.randint(0, 255)}.{r.randint(1, 254)}"])

    def ipv6(self) -> str:
        return "2a01:" + ":".join(f"{self.r.randint(0, 0xFFFF):x}" for _ in range(7))

    # --- secrets -----------------------------------------------------------

    def jwt(self) -> str:
        def b64(obj: Any) -> str:
            return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()

        r = self.r
        head = b64({"alg": r.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"})
        body = b64({"sub": str(uuid.UUID(int=r.getrandbits(128))), "iat": 1764000000, "exp": 1764003600,
                    "scope": "read write", "email": self.email()})
        return f"{head}.{body}.{self._chars(B64URL, 43)}"

    def api_key(self) -> str:
        r = self.r
        return r.choice([
            "sk_live_" + self._chars(ALNUM, 24), "sk_test_" + self._chars(ALNUM, 24),
            "AKIA" + self._chars(string.ascii_uppercase + "234567", 16), "ghp_" + self._chars(ALNUM, 36),
            "xoxb-" + self._digits(12) + "-" + self._digits(12) + "-" + self._chars(ALNUM, 24),
            "AIza" + self._chars(ALNUM + "-_", 35), "glpat-" + self._chars(ALNUM + "-_", 20),
            "SG." + self._chars(ALNUM, 22) + "." + self._chars(ALNUM + "-_", 43),
        ])

    def random_secret(self) -> str:
        return self._chars(ALNUM, self.r.choice([32, 40, 48]))

    def password(self) -> str:
        r = self.r
        return r.choice(["hunter2", "Summer2024!", "correct horse battery staple", "P@ssw0rd",
                         self._chars(ALNUM + "!@#$%", r.randint(10, 18)), "qwerty123", "letmein"])

    def password_hash(self) -> str:
        r = self.r
        k = r.random()
        salt = self._chars(ALNUM, 16)
        if k < 0.4:
            return f"$2b$12${self._chars(ALNUM + './', 53)}"
        if k < 0.6:
            return f"$argon2id$v=19$m=65536,t=3,p=4${self._chars(ALNUM + '+/', 22)}${self._chars(ALNUM + '+/', 43)}"
        if k < 0.75:
            return f"pbkdf2_sha256$600000${salt}${self._chars(ALNUM + '+/', 43)}="
        if k < 0.9:
            return f"$6$rounds=5000${salt}${self._chars(ALNUM + './', 86)}"
        return hashlib.sha1(salt.encode()).hexdigest()

    def session_id(self) -> str:
        return self._chars(HEX, 32) if self.r.random() < 0.5 else self._chars(ALNUM + "-_", 43)

    # --- leaks -------------------------------------------------------------

    def stack_trace(self) -> str:
        r = self.r
        return r.choice([
            'Traceback (most recent call last):\n  File "/usr/local/lib/python3.11/site-packages/flask/app.py", line 1473, in wsgi_app\n'
            '    response = self.full_dispatch_request()\n  File "/srv/app/orders/views.py", line 88, in get_order\n'
            "    return jsonify(order.to_dict())\nAttributeError: 'NoneType' object has no attribute 'to_dict'",
            "java.lang.NullPointerException: Cannot invoke \"com.acme.Order.getId()\" because \"order\" is null\n"
            "\tat com.acme.orders.OrderService.find(OrderService.java:142)\n\tat com.acme.orders.OrderController.get(OrderController.java:57)",
            "System.InvalidOperationException: Sequence contains no elements\n   at System.Linq.ThrowHelper.ThrowNoElementsException()\n"
            "   at Acme.Api.Controllers.UsersController.Get(Int32 id) in C:\\src\\Acme.Api\\Controllers\\UsersController.cs:line 42",
            "TypeError: Cannot read properties of undefined (reading 'email')\n    at getUser (/app/src/routes/users.js:27:31)\n"
            "    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)",
            "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation]\n\n"
            "goroutine 42 [running]:\nmain.(*Server).handleOrder(0xc000122000)\n\t/go/src/acme/server.go:118 +0x1a4",
            "PHP Fatal error:  Uncaught Error: Call to a member function fetch() on bool in /var/www/html/api/orders.php:31\n"
            "Stack trace:\n#0 /var/www/html/index.php(12): require()\n#1 {main}\n  thrown in /var/www/html/api/orders.php on line 31",
            "NoMethodError (undefined method `email' for nil:NilClass):\n  app/controllers/users_controller.rb:14:in `show'",
        ])

    def sql_error(self) -> str:
        return self.r.choice([
            "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ''1'' at line 1",
            'ERROR: syntax error at or near "OR"\nLINE 1: SELECT * FROM users WHERE id = 1 OR 1=1--',
            "sqlite3.OperationalError: near \"'\": syntax error",
            "ORA-00933: SQL command not properly ended",
            "Unclosed quotation mark after the character string ''. Incorrect syntax near 'admin'.",
            "SQLSTATE[42S22]: Column not found: 1054 Unknown column 'passwd' in 'field list'",
            'PG::UndefinedTable: ERROR:  relation "user_accounts" does not exist',
        ])

    def internal_host(self) -> str:
        r = self.r
        return r.choice([f"orders-db-{r.randint(1, 9)}.prod.svc.cluster.local", f"redis-{r.randint(1, 5)}.internal",
                         f"ip-10-0-{r.randint(0, 255)}-{r.randint(1, 254)}.ec2.internal", "billing.corp.local",
                         f"pg-primary.{r.choice(['eu-west-1', 'us-east-1'])}.internal"])

    def internal_path(self) -> str:
        return self.r.choice(["/home/deploy/app/config/settings.py", "/var/www/html/wp-config.php",
                              "/usr/lib/python3/dist-packages/requests/sessions.py", "C:\\inetpub\\wwwroot\\web.config",
                              "/opt/acme/current/lib/billing.rb", "/srv/api/.env"])

    # --- decoys ------------------------------------------------------------

    def luhn_failing(self) -> str:
        body = self.r.choice(["4", "5", "3"]) + self._digits(14)
        good = _luhn_digit(body)
        bad = str((int(good) + self.r.randint(1, 9)) % 10)
        return body + bad

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def epoch_ms(self) -> int:
        return self.r.randint(1_600_000_000_000, 1_800_000_000_000)

    def iso_ts(self) -> str:
        r = self.r
        return f"20{r.randint(18, 25)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z"

    def version(self) -> str:
        r = self.r
        return r.choice([f"{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 99)}",
                         f"{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}",
                         f"10.0.{r.randint(17000, 22631)}.{r.randint(1, 999)}"])

    def price(self) -> str:
        return f"{self.r.randint(1, 2000)}.{self.r.randint(0, 99):02d}"

    def sha256(self) -> str:
        return hashlib.sha256(self._chars(ALNUM, 20).encode()).hexdigest()

    def random_id(self) -> str:
        r = self.r
        return r.choice([self._chars(HEX, 24), "ord_" + self._chars(ALNUM, 14), "cus_" + self._chars(ALNUM, 14),
                         self._digits(r.randint(6, 12)), f"ORD-{r.randint(2019, 2025)}-{self._digits(6)}"])

    def zip(self) -> str:
        return self.r.choice([self._digits(5), f"{self._digits(5)}-{self._digits(4)}", self._digits(5)])

    def tracking(self) -> str:
        return self.r.choice(["1Z" + self._chars(string.ascii_uppercase + string.digits, 16), self._digits(22),
                              self._digits(12)])

    def phone_like_count(self) -> str:
        return self._digits(self.r.choice([9, 10, 11]))


class _Builder:
    """Puts values into a JSON document and records their labels."""

    def __init__(self) -> None:
        self.values: list[Labeled] = []

    def put(self, obj: dict[str, Any], path: str, key: str, value: Any, cls: str = "", decoy: bool = False,
            also: tuple[str, ...] = ()) -> None:
        obj[key] = value
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            self.values.append(Labeled(f"{path}.{key}" if path else key, str(value), cls, decoy, also))


def _user(f: PiiFactory, b: _Builder, path: str) -> dict[str, Any]:
    r = f.r
    u: dict[str, Any] = {}
    first, last = f.name()
    b.put(u, path, "id", f.uuid(), decoy=True)
    b.put(u, path, "first_name", first)
    b.put(u, path, "last_name", last)
    b.put(u, path, r.choice(["email", "emailAddress", "contact_email"]), f.email(first, last), "email")
    if r.random() < 0.7:
        b.put(u, path, r.choice(["phone", "mobile", "phone_number", "phoneNumber"]), f.phone(), "phone")
    b.put(u, path, "created_at", f.iso_ts(), decoy=True)
    b.put(u, path, "status", r.choice(STATUSES))
    if r.random() < 0.5:
        ip = f.public_ip() if r.random() < 0.8 else f.ipv6()
        b.put(u, path, r.choice(["last_login_ip", "ip", "client_ip"]), ip, "ip_address")
    if r.random() < 0.3:
        b.put(u, path, "avatar_url", f"https://cdn.example.com/avatars/{f.random_id()}.png")
    return u


def _doc_users(f: PiiFactory) -> Doc:
    b = _Builder()
    users = [_user(f, b, "data[]") for _ in range(f.r.randint(2, 6))]
    body: dict[str, Any] = {"data": users}
    b.put(body, "", "next_page_token", f._chars(ALNUM, 24), decoy=True)
    b.put(body, "", "total", f.r.randint(10, 5000))
    return Doc("users", 200, "response_body", body, b.values)


def _doc_profile(f: PiiFactory) -> Doc:
    r = f.r
    b = _Builder()
    u = _user(f, b, "user")
    b.put(u, "user", r.choice(["dob", "date_of_birth", "birthDate"]), f.dob(), "date_of_birth")
    ids = r.random()
    if ids < 0.35:
        b.put(u, "user", r.choice(["ssn", "social_security_number"]), f.ssn(r.random() < 0.7), "ssn")
    elif ids < 0.5:
        b.put(u, "user", r.choice(["aadhaar", "national_id"]), f.aadhaar(), "national_id")
    elif ids < 0.6:
        b.put(u, "user", r.choice(["dni", "national_id"]), f.dni(), "national_id")
    elif ids < 0.7:
        b.put(u, "user", r.choice(["nir", "national_id"]), f.nir(), "national_id")
    elif ids < 0.8:
        b.put(u, "user", r.choice(["nino", "national_insurance_number"]), f.nino(), "national_id")
    elif ids < 0.9:
        b.put(u, "user", r.choice(["steuer_id", "tax_id"]), f.idnr(), "national_id")
    addr: dict[str, Any] = {}
    b.put(addr, "user.home_address", r.choice(["line1", "street"]), f.street(), "address")
    b.put(addr, "user.home_address", "city", r.choice(CITIES))
    b.put(addr, "user.home_address", r.choice(["zip", "postcode", "postal_code"]), f.zip(), decoy=True)
    b.put(addr, "user.home_address", "country", r.choice(["US", "DE", "FR", "GB", "IN", "ES"]))
    u["home_address"] = addr
    b.put(u, "user", "updated_at", f.epoch_ms(), decoy=True)
    if r.random() < 0.3:
        b.put(u, "user", "bio", f"Reach me at {f.email()} or on weekends.", "email")
    if r.random() < 0.2:
        b.put(u, "user", "notes", f"Prefers a call on {f.phone()} after 5pm", "phone")
    return Doc("profile", 200, "response_body", {"user": u}, b.values)


def _doc_order(f: PiiFactory) -> Doc:
    r = f.r
    b = _Builder()
    body: dict[str, Any] = {}
    b.put(body, "", r.choice(["order_id", "order_number", "reference", "confirmation"]), f.luhn_failing(), decoy=True)
    b.put(body, "", "id", f.random_id(), decoy=True)
    items = []
    for _ in range(r.randint(1, 4)):
        it: dict[str, Any] = {}
        b.put(it, "items[]", "sku", f"SKU-{f._digits(8)}", decoy=True)
        b.put(it, "items[]", "name", r.choice(PRODUCTS))
        b.put(it, "items[]", "price", f.price(), decoy=True)
        b.put(it, "items[]", "quantity", r.randint(1, 5))
        items.append(it)
    body["items"] = items
    ship: dict[str, Any] = {}
    b.put(ship, "shipping_address", "name", " ".join(f.name()))
    b.put(ship, "shipping_address", "street", f.street(), "address")
    b.put(ship, "shipping_address", "zip", f.zip(), decoy=True)
    body["shipping_address"] = ship
    b.put(body, "", "customer_email", f.email(), "email")
    b.put(body, "", "tracking_number", f.tracking(), decoy=True)
    b.put(body, "", "etag", f.sha256(), decoy=True)
    b.put(body, "", "created", f.epoch_ms(), decoy=True)
    b.put(body, "", "status", r.choice(STATUSES))
    b.put(body, "", "total", f.price(), decoy=True)
    b.put(body, "", "api_version", f.version(), decoy=True)
    return Doc("order", 200, "response_body", body, b.values)


def _doc_payment(f: PiiFactory) -> Doc:
    r = f.r
    b = _Builder()
    pay: dict[str, Any] = {}
    b.put(pay, "payment", "id", "pay_" + f._chars(ALNUM, 20), decoy=True)
    card: dict[str, Any] = {}
    if r.random() < 0.8:
        b.put(card, "payment.card", r.choice(["number", "pan", "card_number"]), f.card(), "credit_card")
    else:
        b.put(card, "payment.card", "number", "**** **** **** " + f._digits(4), decoy=True)
    b.put(card, "payment.card", "brand", r.choice(["visa", "mastercard", "amex"]))
    b.put(card, "payment.card", "exp", f"{r.randint(1, 12):02d}/{r.randint(26, 31)}")
    if r.random() < 0.3:
        b.put(card, "payment.card", "cvv", f._digits(3), "card_cvv")
    pay["card"] = card
    if r.random() < 0.6:
        b.put(pay, "payment", r.choice(["iban", "bank_account_iban", "payout_iban"]), f.iban(), "iban")
    b.put(pay, "payment", "amount", f.price(), decoy=True)
    b.put(pay, "payment", "currency", r.choice(["USD", "EUR", "GBP"]))
    b.put(pay, "payment", "idempotency_key", f.uuid(), decoy=True)
    b.put(pay, "payment", "checksum", f.sha256(), decoy=True)
    bill: dict[str, Any] = {}
    b.put(bill, "payment.billing", "phone", f.phone(), "phone")
    b.put(bill, "payment.billing", "address", f.street(), "address")
    pay["billing"] = bill
    if r.random() < 0.3:
        b.put(pay, "payment", "description", f"Refund to card {f.card()} approved", "credit_card")
    return Doc("payment", 200, "response_body", {"payment": pay}, b.values)


def _doc_patient(f: PiiFactory) -> Doc:
    r = f.r
    b = _Builder()
    p: dict[str, Any] = {}
    b.put(p, "", "patient_id", f"P-{f._digits(7)}", "health")
    first, last = f.name()
    b.put(p, "", "name", f"{first} {last}")
    b.put(p, "", "dob", f.dob(), "date_of_birth")
    diag, code = r.choice(DIAGNOSES)
    b.put(p, "", "diagnosis", diag, "health")
    b.put(p, "", "icd10", code, "health")
    meds = []
    for _ in range(r.randint(1, 3)):
        m = r.choice(MEDS)
        meds.append(m)
        b.values.append(Labeled("medications[]", m, "health"))
    p["medications"] = meds
    b.put(p, "", "blood_type", r.choice(["A+", "A-", "B+", "O+", "O-", "AB+"]), "health")
    b.put(p, "", "visit_date", f.iso_ts(), decoy=True)
    b.put(p, "", "email", f.email(first, last), "email")
    return Doc("patient", 200, "response_body", p, b.values)


def _doc_login(f: PiiFactory) -> Doc:
    r = f.r
    b = _Builder()
    if r.random() < 0.5:
        body: dict[str, Any] = {}
        b.put(body, "", r.choice(["username", "email"]), f.email(), "email")
        pw = f.password() if r.random() < 0.9 else "********"
        b.put(body, "", r.choice(["password", "pwd", "new_password"]), pw, "password" if "*" not in pw else "", "*" in pw)
        b.put(body, "", "remember_me", "true")
        return Doc("login", 200, "request_body", body, b.values)
    body = {}
    b.put(body, "", "access_token", f.jwt(), "jwt")
    b.put(body, "", "refresh_token", f.random_secret(), "api_key")
    b.put(body, "", "token_type", "Bearer")
    b.put(body, "", "expires_in", 3600)
    b.put(body, "", "session_id", f.session_id(), "session_token")
    b.put(body, "", "request_id", f.uuid(), decoy=True)
    return Doc("token", 200, "response_body", body, b.values)


def _doc_admin_export(f: PiiFactory) -> Doc:
    b = _Builder()
    rows = []
    for _ in range(f.r.randint(2, 4)):
        u: dict[str, Any] = {}
        b.put(u, "users[]", "email", f.email(), "email")
        b.put(u, "users[]", "password_hash", f.password_hash(), "password_hash")
        b.put(u, "users[]", "api_key", f.api_key() if f.r.random() < 0.7 else f.random_secret(), "api_key")
        b.put(u, "users[]", "file_sha256", f.sha256(), decoy=True)
        rows.append(u)
    return Doc("admin_export", 200, "response_body", {"users": rows}, b.values)


def _doc_config(f: PiiFactory) -> Doc:
    r = f.r
    b = _Builder()
    c: dict[str, Any] = {}
    b.put(c, "", "db_host", f.internal_host(), "internal_hostname")
    b.put(c, "", "backend_ip", f.private_ip(), "internal_ip")
    b.put(c, "", r.choice(["aws_access_key_id", "github_token", "stripe_key", "slack_token"]), f.api_key(), "api_key")
    b.put(c, "", "client_secret", f.random_secret(), "api_key")
    b.put(c, "", "log_path", f.internal_path(), "internal_path")
    b.put(c, "", "version", f.version(), decoy=True)
    b.put(c, "", "build", f.sha256()[:12], decoy=True)
    b.put(c, "", "feature_flags", "checkout_v2,new_search")
    return Doc("config", 200, "response_body", c, b.values)


_TRACE_ALSO = ("internal_path",)  # traces show file paths


def _doc_error(f: PiiFactory) -> Doc:
    r = f.r
    b = _Builder()
    k = r.random()
    if k < 0.15:
        text = f.stack_trace()
        return Doc("error_text", 500, "error_body", text, [Labeled("", text, "stack_trace", also=_TRACE_ALSO)])
    body: dict[str, Any] = {}
    b.put(body, "", "error", r.choice(["Internal Server Error", "Bad Request", "Not Found"]))
    if k < 0.5:
        b.put(body, "", "message", f.stack_trace(), "stack_trace", also=_TRACE_ALSO)
    elif k < 0.8:
        b.put(body, "", "detail", f.sql_error(), "sql_error")
    elif k < 0.9:
        b.put(body, "", "detail", f"could not connect to server: Connection refused. Is the server running on host \"{f.internal_host()}\" and accepting TCP/IP connections on port 5432?", "internal_hostname")
    else:
        b.put(body, "", "detail", f"FileNotFoundError: [Errno 2] No such file or directory: '{f.internal_path()}'", "internal_path")
    b.put(body, "", "trace_id", f._chars(HEX, 32), decoy=True)
    b.put(body, "", "timestamp", f.epoch_ms(), decoy=True)
    return Doc("error", r.choice([400, 500, 500, 502]), "error_body", body, b.values)


def _doc_decoys(f: PiiFactory) -> Doc:
    r = f.r
    b = _Builder()
    d: dict[str, Any] = {}
    b.put(d, "", "file_id", f.uuid(), decoy=True)
    b.put(d, "", "checksum", f.sha256(), decoy=True)
    b.put(d, "", "version", f.version(), decoy=True)
    b.put(d, "", "uploaded_at", f.epoch_ms(), decoy=True)
    b.put(d, "", "size_bytes", f.phone_like_count(), decoy=True)
    b.put(d, "", "invoice_number", f.luhn_failing(), decoy=True)
    b.put(d, "", "reference", f.random_id(), decoy=True)
    b.put(d, "", "zip", f.zip(), decoy=True)
    b.put(d, "", "price", f.price(), decoy=True)
    b.put(d, "", "isbn", "978" + f._digits(10), decoy=True)
    b.put(d, "", "title", r.choice(PRODUCTS))
    b.put(d, "", "description", "Ships in 2-3 business days. Model 2024-07, part no. 4410-22-118.", decoy=True)
    b.put(d, "", "mime", "application/pdf")
    return Doc("decoys", 200, "response_body", d, b.values)


_KINDS = [
    (_doc_users, 3), (_doc_profile, 3), (_doc_order, 3), (_doc_payment, 2), (_doc_patient, 1),
    (_doc_login, 2), (_doc_admin_export, 1), (_doc_config, 1), (_doc_error, 2), (_doc_decoys, 2),
]


def generate(n: int, seed: int = 0) -> list[Doc]:
    """``n`` documents drawn from the kinds above (weighted), deterministic
    for a given ``seed``."""
    rng = random.Random(seed)
    f = PiiFactory(rng)
    makers = [m for m, w in _KINDS for _ in range(w)]
    return [rng.choice(makers)(f) for _ in range(n)]
