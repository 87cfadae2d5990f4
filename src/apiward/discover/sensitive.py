"""Sensitive data classification: which values in a call are PII, payment
data, health data, credentials or infrastructure leaks.

What it looks at: path segments, query parameters, credential-bearing headers
(``authorization``, api-key headers, cookies, ``set-cookie``), request bodies
(JSON and forms), response bodies (``error_body`` when the status is >= 400)
and plain-text bodies. JSON is walked into dotted field paths
(``user.cards[].number``).

How it decides: a value must *validate*, not just look right. Cards pass Luhn
plus issuer ranges plus length; IBANs pass mod-97 and the country length; SSNs
pass the SSA area/group/serial rules; national ids pass their stdnum check
digits; phones pass NANP rules or ``phonenumbers``. Field names are evidence
(``ssn``, ``card_number``, ``password``, ``dob``...): some classes are only
reported with it (date of birth, password, health) and bare digit strings are
only phones/SSNs/national ids with it. Field names are also negative evidence
(``order_id``, ``etag``, ``checksum``, ``version``...), which keeps order
numbers, file digests, version strings and ids out.

Cost per call: about 6-15 µs on DemoBank simulator traffic (``python
bench/sensitive.py``; ~60 µs without the memos below). Real traffic repeats
itself, so answers are memoised per classifier, all bounded and exact (the
same hits as classifying afresh): field-name evidence per (parent, key);
the ``(class, confidence, value_hash)`` answer per (value, evidence); the
hits of a whole JSON or text body per body bytes, with the leaf budget it
used; per path, per credential header value and per cookie. Dotted paths
are built only for hits. First-seen values skip the validators when one
precompiled test proves them plain (short numbers, decimals, plain words);
validators only run on candidates; free text (error messages, long strings)
gets a handful of precompiled searches. Work is bounded by ``max_fields``
leaves per call, ``max_value_chars`` per value and ``max_text_bytes`` per
text body.

The memos hold raw values and bodies (that is how they recognise a repeat)
in this process only, never on disk, within fixed bounds: ``memo_size``
values (two generations), an eighth of that in bodies of at most 16 KiB and
at most 8 MiB of body bytes per generation, and short values only (256
characters). One classifier serves one thread (as the pipeline does).

False-positive assumptions: a 16-digit number that passes Luhn and an issuer
range in a field without a negative name *is* a card (about 1 in 100 random
16-digit ids starting with 4 would pass); private IPs are ``internal_ip``
rather than personal data; masked values (``****``, ``[REDACTED]``) are not
reported.

Values are never kept: each hit carries a keyed BLAKE2b digest
(:attr:`SensitiveHit.value_hash`) of the normalised value, stable across
calls for one secret, so detectors can tell values apart.

>>> c = Classifier()
>>> c.classify_value("4111 1111 1111 1111")
[('credit_card', 0.95)]
>>> c.classify_value("1985-03-12", "user.dob")
[('date_of_birth', 0.9)]
>>> c.classify_value("1985-03-12", "created")
[]
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

import orjson
import phonenumbers
from stdnum.de import idnr as _de_idnr
from stdnum.es import dni as _es_dni
from stdnum.fr import nir as _fr_nir
from stdnum.in_ import aadhaar as _in_aadhaar
from stdnum.us import ssn as _us_ssn

from apiward.discover.compliance import COMPLIANCE
from apiward.model.call import ApiCall, body_kind
from apiward.model.context import SensitiveHit

__all__ = ["CLASSES", "COMPLIANCE", "Classifier", "field_evidence"]

CLASSES: frozenset[str] = frozenset(COMPLIANCE)

DEFAULT_SECRET = b"apiward-sensitive-v1"

# --------------------------------------------------------------------------
# field-name evidence
# --------------------------------------------------------------------------

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_GENERIC_KEYS = frozenset({"number", "num", "no", "nr", "value", "val", "code", "id", "digits", "data"})

# exact normalised names -> class
_EXACT: dict[str, str] = {}


def _add(cls: str, *names: str) -> None:
    for n in names:
        _EXACT[n] = cls


_add("password", "password", "passwd", "pwd", "pass", "pw", "passphrase", "passcode", "pin", "newpassword",
     "oldpassword", "currentpassword", "confirmpassword", "passwordconfirmation", "passwordconfirm",
     "password2", "repeatpassword", "userpassword", "loginpassword", "dbpassword", "adminpassword")
_add("password_hash", "passwordhash", "hashedpassword", "pwdhash", "pwhash", "passworddigest", "passhash",
     "encryptedpassword", "cryptedpassword", "passwordhashed", "hashpassword", "saltedhash", "passwordsalt")
_add("ssn", "ssn", "socialsecuritynumber", "socialsecurityno", "socialsecurity", "ssnumber", "usssn", "ssnlast4")
_add("credit_card", "cardnumber", "cardno", "cardnum", "ccnumber", "ccnum", "cc", "pan", "creditcard",
     "creditcardnumber", "debitcard", "debitcardnumber", "primaryaccountnumber", "card", "cardpan")
_add("card_cvv", "cvv", "cvc", "cvv2", "cvc2", "securitycode", "cardsecuritycode", "cardcvv", "cardcvc", "cid")
_add("iban", "iban", "ibancode", "ibannumber", "bankiban")
_add("national_id", "nationalid", "nationalidnumber", "nationalidentifier", "nationalidentitynumber", "nino",
     "nin", "dni", "nif", "nie", "nir", "insee", "aadhaar", "aadhar", "aadhaarnumber", "idnr", "steuerid",
     "taxid", "taxidnumber", "taxidentificationnumber", "personalid", "personalidnumber", "personnummer",
     "nationalinsurancenumber", "nationalinsuranceno", "citizenid", "identitynumber", "idcardnumber",
     "documentnumber", "passportnumber", "passportno")
_add("date_of_birth", "dob", "dateofbirth", "birthdate", "birthday", "birthdt", "bday", "dateofbirthday",
     "borndate", "birthdatetime")
_add("phone", "phone", "phonenumber", "phoneno", "tel", "telephone", "telephonenumber", "mobile", "mobilenumber",
     "mobilephone", "cell", "cellphone", "cellular", "msisdn", "fax", "faxnumber", "contactnumber",
     "homephone", "workphone", "telefon", "telefono")
_add("email", "email", "mail", "emailaddress", "emailaddr", "useremail", "contactemail", "upn", "courriel")
_add("address", "address", "streetaddress", "street", "addressline1", "addressline2", "addressline",
     "line1", "line2", "address1", "address2", "homeaddress", "postaladdress", "billingaddress",
     "shippingaddress", "mailingaddress", "residentialaddress", "strasse", "adresse", "streetline")
_add("ip_address", "ip", "ipaddress", "ipaddr", "clientip", "clientipaddress", "remoteip", "remoteaddr",
     "remoteaddress", "sourceip", "srcip", "userip", "lastloginip", "loginip", "ipv4", "ipv6", "originip",
     "peerip", "xforwardedfor", "forwardedfor", "realip", "xrealip", "publicip", "privateip", "hostip", "serverip")
_add("session_token", "session", "sessionid", "sessiontoken", "sessionkey", "sid", "sessid", "jsessionid",
     "phpsessid", "aspnetsessionid", "connectsid", "sessioncookie")
_add("api_key", "apikey", "apisecret", "apitoken", "secretkey", "secret", "accesskey", "accesskeyid",
     "secretaccesskey", "clientsecret", "privatekey", "accesstoken", "refreshtoken", "authtoken", "idtoken",
     "bearertoken", "token", "authorization", "auth", "credential", "credentials", "webhooksecret",
     "signingkey", "signingsecret", "appsecret", "appkey", "consumersecret", "xapikey", "apikeyid",
     "personalaccesstoken", "oauthtoken", "jwt", "encryptionkey", "masterkey")
_add("health", "diagnosis", "diagnoses", "diagnosiscode", "icd", "icd10", "icd9", "icdcode", "icd10code",
     "medication", "medications", "prescription", "prescriptions", "bloodtype", "bloodgroup", "patientid",
     "patientnumber", "medicalrecordnumber", "medicalrecordno", "mrn", "allergy", "allergies", "symptoms",
     "symptom", "treatment", "labresult", "labresults", "healthcondition", "medicalcondition", "conditions",
     "disease", "dosage", "vaccination", "vaccinations", "hivstatus", "healthinsuranceid", "insurancememberid",
     "medicalhistory", "clinicalnotes", "procedurecode", "cptcode", "pregnancy", "disability")

# substrings checked in this order when no exact name matched
_CONTAINS: tuple[tuple[str, str], ...] = (
    ("passwordhash", "password_hash"),
    ("hashedpassword", "password_hash"),
    ("ssn", "ssn"),
    ("socialsecurity", "ssn"),
    ("cardnumber", "credit_card"),
    ("creditcard", "credit_card"),
    ("debitcard", "credit_card"),
    ("iban", "iban"),
    ("aadhaar", "national_id"),
    ("nationalid", "national_id"),
    ("nationalinsurance", "national_id"),
    ("dateofbirth", "date_of_birth"),
    ("birthdate", "date_of_birth"),
    ("birthday", "date_of_birth"),
    ("phone", "phone"),
    ("mobile", "phone"),
    ("msisdn", "phone"),
    ("email", "email"),
    ("ipaddress", "ip_address"),
    ("diagnos", "health"),
    ("icd10", "health"),
    ("medication", "health"),
    ("prescription", "health"),
    ("bloodtype", "health"),
    ("patientid", "health"),
    ("medicalrecord", "health"),
    ("allerg", "health"),
    ("session", "session_token"),
    ("apikey", "api_key"),
    ("apisecret", "api_key"),
    ("secretkey", "api_key"),
    ("clientsecret", "api_key"),
    ("privatekey", "api_key"),
    ("accesstoken", "api_key"),
    ("refreshtoken", "api_key"),
    ("authtoken", "api_key"),
    ("secret", "api_key"),
    ("address", "address"),
    ("street", "address"),
)
# name endings that evidence a class (checked after the substrings)
_ENDS: tuple[tuple[str, str], ...] = (
    ("password", "password"),
    ("passwd", "password"),
    ("pwd", "password"),
    ("token", "api_key"),
    ("apikey", "api_key"),
)
# substrings that cancel a positive match ("password_changed_at", "token_type", "email_verified")
_NOT_VALUE = ("changed", "updated", "created", "expire", "policy", "reset", "required", "length", "strength",
              "verified", "enabled", "confirmed", "count", "type", "hint", "set", "status", "format", "optin",
              "preference", "visible", "valid", "allowed", "timeout", "ttl", "attempts", "last4", "masked",
              "country", "provider", "domain", "template", "page", "cursor", "next", "continuation", "csrf",
              "xsrf", "nonce", "version", "uri", "url", "endpoint", "scope", "sent", "mac", "wallet", "web", "contract",
              "server", "host", "node", "bind", "listen", "local", "remote", "hash")
# negative evidence: values here are ids, digests, times, versions or amounts
_NEGATIVE = ("etag", "checksum", "digest", "sha1", "sha256", "sha512", "md5", "hash", "crc", "fingerprint",
             "version", "build", "release", "orderid", "ordernumber", "orderno", "invoice", "tracking",
             "reference", "sku", "isbn", "ean", "upc", "gtin", "timestamp", "epoch", "createdat", "updatedat",
             "time", "date", "uuid", "guid", "requestid", "traceid", "spanid", "correlationid", "transactionid",
             "txnid", "nonce", "zip", "postcode", "postalcode", "price", "amount", "total", "quantity", "count",
             "size", "length", "offset", "limit", "page", "cursor", "seq", "serial", "barcode", "productid",
             "itemid", "accountid", "customerid", "userid", "objectid", "externalid", "confirmation", "coupon")
_NEGATIVE_EXACT = frozenset({"id", "ts", "ref", "ver", "v", "rev"})


def _norm(name: str) -> str:
    name = name.lower()
    if name.isalnum():
        return name
    return _NON_ALNUM.sub("", name)


def field_evidence(key: str, parent: str = "") -> tuple[str, bool]:
    """``(class, negative)`` that the field name ``key`` (under ``parent``)
    suggests: a class name or ``""``, and whether the name marks ids,
    digests, times or versions that must not be taken for personal data."""
    k = _norm(key)
    if not k:
        return "", False
    if k in _GENERIC_KEYS and parent:
        p = _norm(parent)
        if p.endswith("s") and len(p) > 3:
            p = p[:-1]
        if k != "id" and p in ("card", "creditcard", "debitcard", "paymentcard", "cc"):
            return "credit_card", False
        if k != "id":
            cls, neg = field_evidence(p + k)
            if cls:
                return cls, neg
    cls = _EXACT.get(k)
    if cls is not None:
        return cls, False
    neg = k in _NEGATIVE_EXACT or k.endswith("id") or any(s in k for s in _NEGATIVE)
    for sub, c in _CONTAINS:
        if sub in k:
            rest = k.replace(sub, "", 1)
            if rest and any(w in rest for w in _NOT_VALUE):
                break
            if neg and c not in ("password_hash", "health", "date_of_birth"):
                break
            return c, False
    else:
        for end, c in _ENDS:
            if k.endswith(end) and not (c == "api_key" and any(w in k for w in _NOT_VALUE)):
                return c, False
    return "", neg


# --------------------------------------------------------------------------
# value validators
# --------------------------------------------------------------------------

_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def _luhn(d: str) -> bool:
    total = 0
    odd = False
    for ch in reversed(d):
        x = ord(ch) - 48
        total += _LUHN_DOUBLE[x] if odd else x
        odd = not odd
    return total % 10 == 0


_MAESTRO = frozenset({5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763})


def _iin_ok(d: str, n: int) -> bool:
    """Issuer range and length of a card number (Visa, Mastercard, Amex,
    Discover, JCB, Diners, UnionPay, Maestro, Mir). Numbers starting with 1
    (epoch millis, UATP) are never cards here."""
    c0 = d[0]
    if c0 == "4":
        return n in (13, 16, 19)
    if c0 not in "2356":  # no issuer range starts with 0, 1, 7, 8 or 9
        return False
    p2 = int(d[:2])
    p4 = int(d[:4])
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16
    if p2 in (34, 37):
        return n == 15
    p3 = p4 // 10
    if p4 == 6011 or p2 == 65 or 644 <= p3 <= 649:
        return 16 <= n <= 19
    if 3528 <= p4 <= 3589:
        return 16 <= n <= 19
    if 300 <= p3 <= 305 or p2 in (36, 38, 39) or p4 == 3095:
        return 14 <= n <= 19
    if p2 == 62 or 2200 <= p4 <= 2204:
        return 16 <= n <= 19
    if p4 in _MAESTRO:
        return 13 <= n <= 19
    return False


_IBAN_LEN = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_IBAN_XLAT = {ord(c): str(ord(c) - 55) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}


def _iban_ok(v: str) -> bool:
    c = v.replace(" ", "").upper() if " " in v else v
    if _IBAN_LEN.get(c[:2]) != len(c) or not _IBAN_SHAPE.fullmatch(c):
        return False
    return int((c[4:] + c[:4]).translate(_IBAN_XLAT)) % 97 == 1


_SSN_BLOCKED = frozenset({"078051120", "219099999", "457555462"})  # python-stdnum's blacklist


def _ssn_ok(v: str) -> bool:
    """US SSN rules (area not 000/666/9xx, group not 00, serial not 0000,
    not an advertised number): ``stdnum.us.ssn.is_valid`` for the two
    shapes used here (9 ASCII digits, ``ddd-dd-dddd``) at a tenth of its
    cost; anything else goes to stdnum."""
    n = len(v)
    if n == 9 and v.isascii() and v.isdigit():
        d = v
    elif n == 11 and v[3] == "-" and v[6] == "-" and v.isascii():
        d = v[:3] + v[4:6] + v[7:]
        if not d.isdigit():
            return _us_ssn.is_valid(v)
    else:
        return _us_ssn.is_valid(v)
    if d[0] == "9" or d.startswith(("000", "666")) or d[3:5] == "00" or d[5:] == "0000":
        return False
    return d not in _SSN_BLOCKED


_NINO_BAD_PREFIX = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _nino_ok(v: str) -> bool:
    """UK National Insurance number: HMRC prefix rules and an A-D suffix
    (there is no check digit, so the shape carries the evidence)."""
    c = v.replace(" ", "").upper()
    return len(c) == 9 and _NINO.fullmatch(c) is not None and c[:2] not in _NINO_BAD_PREFIX


def _nanp_ok(d: str) -> bool:
    """Ten NANP digits: area code and exchange start 2-9, neither is N11,
    area codes N9X are unassigned, exchange 555-01XX is fiction."""
    if len(d) != 10 or d[0] < "2" or d[3] < "2":
        return False
    if d[1:3] == "11" or d[4:6] == "11" or d[1] == "9":
        return False
    return not (d[3:6] == "555" and d[6:8] == "01")


def _phone_ok(v: str, regions: tuple[str | None, ...]) -> bool:
    for region in regions:
        try:
            num = phonenumbers.parse(v, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(num):
            return True
    return False


_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


_JWT_HEADS: dict[str, bool] = {}  # header segment -> verdict; a few distinct heads per deployment


def _jwt_ok(v: str) -> bool:
    m = _JWT.fullmatch(v)
    if m is None:
        return False
    head = v[: v.index(".")]
    ok = _JWT_HEADS.get(head)
    if ok is None:
        try:
            h = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        except (ValueError, binascii.Error, orjson.JSONDecodeError):
            h = None
        ok = isinstance(h, dict) and ("alg" in h or "typ" in h)
        if len(_JWT_HEADS) >= 1024:
            _JWT_HEADS.clear()
        _JWT_HEADS[head] = ok
    return ok


def _entropy(v: str) -> float:
    n = len(v)
    counts: dict[str, int] = {}
    for ch in v:
        counts[ch] = counts.get(ch, 0) + 1
    return -sum(c / n * math.log2(c / n) for c in counts.values())


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_\-+/=.~:%]{16,}")


def _secretish(v: str) -> bool:
    """A high-entropy token: 16+ token characters mixing digits and letters."""
    if not _TOKEN_CHARS.fullmatch(v):
        return False
    has_digit = has_alpha = False
    for ch in v:
        if ch.isdigit():
            has_digit = True
        elif ch.isalpha():
            has_alpha = True
        if has_digit and has_alpha:
            break
    if not (has_digit and has_alpha):
        return False
    return _entropy(v) >= 3.0


def _masked(v: str) -> bool:
    c = v.strip("*xX•#.- ")
    return not c or v.startswith(("[REDACTED", "<redacted", "REDACTED", "***", "${", "{{"))


def _internal_ip4(v: str) -> bool | None:
    """True for RFC 1918 / loopback / link-local / CGNAT, False for other
    unicast, None for an invalid or non-host address."""
    parts = v.split(".")
    try:
        a, b, c, d = (int(p) for p in parts)
    except ValueError:
        return None
    if a > 255 or b > 255 or c > 255 or d > 255 or a == 0 or a >= 224:
        return None
    if any(len(p) > 1 and p[0] == "0" for p in parts):
        return None
    if a == 255 or (a == b == c == 255):
        return None
    return a == 10 or a == 127 or (a == 172 and 16 <= b <= 31) or (a == 192 and b == 168) or (
        a == 169 and b == 254) or (a == 100 and 64 <= b <= 127)


def _ip6_class(v: str) -> str:
    import ipaddress

    try:
        ip = ipaddress.IPv6Address(v.split("%", 1)[0])
    except ValueError:
        return ""
    if ip.ipv4_mapped is not None:
        r = _internal_ip4(str(ip.ipv4_mapped))
        return "" if r is None else ("internal_ip" if r else "ip_address")
    if ip.is_unspecified or ip.is_multicast:
        return ""
    if ip.is_loopback or ip.is_link_local or ip.is_site_local or (ip.packed[0] & 0xFE) == 0xFC:
        return "internal_ip"
    return "ip_address"


# --------------------------------------------------------------------------
# patterns
# --------------------------------------------------------------------------

_EMAIL_FULL = re.compile(r"[A-Za-z0-9._%+'-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}")
_EMAIL_IN = re.compile(r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}\b")
_SECRET_PREFIX = (
    r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"
    r"|(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}"
    r"|gh[pousr]_[0-9A-Za-z]{36}|github_pat_[0-9A-Za-z_]{40,}"
    r"|xox[baprse]-[0-9A-Za-z-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|glpat-[0-9A-Za-z_-]{20,}"
    r"|SG\.[0-9A-Za-z_-]{16,32}\.[0-9A-Za-z_-]{16,64}"
    r"|npm_[0-9A-Za-z]{36}"
    r"|shp(?:at|ss|ca|pa)_[0-9a-fA-F]{32}"
    r"|sq0(?:atp|csp)-[0-9A-Za-z_-]{22,43}"
    r"|(?:pypi-AgEIcHlwaS5vcmc|hf_)[0-9A-Za-z_-]{30,}"
    r"|sk-(?:proj-|ant-)?[0-9A-Za-z_-]{32,}"
    r"|-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY-----"
)
_SECRET_FULL = re.compile(_SECRET_PREFIX)
_SECRET_FIRST = frozenset("srAgxSnph-")  # first characters of the prefixes above
_SECRET_IN = re.compile(r"(?<![0-9A-Za-z_-])(?:" + _SECRET_PREFIX + r")")
_JWT_IN = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_HASH_PREFIX = re.compile(
    r"\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}"
    r"|\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/.=]+\$[A-Za-z0-9+/.=]+"
    r"|\$(?:1|5|6|md5|apr1|sha1|y|gy|7)\$[./A-Za-z0-9$=,]{8,}"
    r"|\$pbkdf2(?:-sha\d+)?\$\d+\$[./A-Za-z0-9+=]+\$[./A-Za-z0-9+=]+"
    r"|(?:pbkdf2_sha\d+|bcrypt_sha256|argon2|scrypt|sha1|md5)\$[^\s$]+\$[^\s]+"
    r"|\{(?:SSHA|SHA|SSHA256|SSHA512|CRYPT|PBKDF2[\w-]*)\}[A-Za-z0-9+/=.$]+"
)
_HEX_DIGEST = re.compile(r"(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{40}|[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|[0-9a-fA-F]{128})")
_SSN_FMT = re.compile(r"\d{3}-\d{2}-\d{4}")
_CARD_FMT = re.compile(r"\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1?\d{1,3})?|\d{4}([ -])\d{6}\2\d{4,5}")
_AADHAAR_FMT = re.compile(r"[2-9]\d{3}[ -]\d{4}[ -]\d{4}")
_NIR_FMT = re.compile(r"[12] \d{2} \d{2} \d{2} \d{3} \d{3}(?: \d{2})?")
_NANP_FMT = re.compile(r"(?:\+?1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}")
_IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}(?:%[\w.]+)?")
_ES_DNI = re.compile(r"\d{8}-?[A-Za-z]")
_NINO = re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]")
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(
    r"(?:(?:19|20)\d\d([-/.])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12]\d|3[01])(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?"
    r"|(?:0?[1-9]|[12]\d|3[01])([-/.])(?:0?[1-9]|1[0-2])\2(?:19|20)\d\d"
    r"|(?:0?[1-9]|1[0-2])([-/.])(?:0?[1-9]|[12]\d|3[01])\3(?:19|20)\d\d"
    r"|(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
    r"|\d{1,2} " + _MONTHS + r",? (?:19|20)\d\d"
    r"|" + _MONTHS + r" \d{1,2},? (?:19|20)\d\d)",
    re.IGNORECASE,
)
_STREET_TYPES = (
    r"street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|ter|circle|cir"
    r"|parkway|pkwy|highway|hwy|square|sq|crescent|cres|close|row|trail|trl|loop|alley|plaza|gardens|grove|mews"
)
_ADDRESS = re.compile(
    r"(?:\d{1,6}[A-Za-z]?(?:-\d{1,5})?,?\s+(?:[NSEW]\.?\s+)?(?:[A-Za-z0-9'.-]+\s+){0,4}?(?:" + _STREET_TYPES + r")\b"
    r"|\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|chemin|all[ée]e|place|impasse|quai|route|calle|via|viale|plaza|avenida)\s+\w"
    r"|[A-Za-zÄÖÜäöüß][\wäöüß.-]*(?:stra(?:ß|ss)e|str\.|weg|gasse|allee|platz|ring|damm|ufer)\s+\d{1,4}[a-z]?\b"
    r"|(?:flat|apt|apartment|suite|unit)\s+\w+,?\s+\d{1,5}\s+\w+)",
    re.IGNORECASE,
)

# leaks in free text (error bodies above all)
_STACK = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"\n]{1,300}\", line \d+, in \w"
    r"|\bat [\w$.<>/]{2,300}\((?:[\w$-]+\.(?:java|kt|scala|groovy):\d+|Native Method|Unknown Source)\)"
    r"|Exception in thread \"|\bat [\w.`<>\[\],]{2,300}\([^)\n]{0,300}\) in [^\n]{1,300}:line \d+|--- End of (?:inner exception )?stack trace"
    r"|\bat (?:async )?(?:[\w.<>$\[\] ]{1,200} )?\(?(?:/|[A-Za-z]:\\|node:|file://)[^\s)]{1,300}:\d+:\d+\)?"
    r"|goroutine \d+ \[[\w ]+\]:|\.go:\d+ \+0x[0-9a-f]+|panic: runtime error"
    r"|(?:Fatal error|Parse error|Warning|Notice): [^\n]{1,500} in \S{1,300}\.php on line \d+|#\d+ \S{1,300}\.php\(\d+\): "
    r"|\S{1,300}\.rb:\d+:in [`'][^\n']{1,200}'"
    r"|\b(?:java|javax|org\.springframework|org\.hibernate)\.[\w.$]{1,200}(?:Exception|Error)\b"
    r"|System\.[\w.]{1,200}Exception: "
)
_SQL = re.compile(
    r"You have an error in your SQL syntax|check the manual that corresponds to your (?:MySQL|MariaDB)"
    r"|SQLSTATE\[\w+\]|MySQLSyntaxErrorException|com\.mysql\.jdbc|Warning: mysqli?_"
    r"|PG::\w+Error|org\.postgresql\.util\.PSQLException|psycopg2?\.(?:errors\.)?\w+Error|syntax error at or near \""
    r"|unterminated quoted string at or near|relation \"[^\"\n]{1,200}\" does not exist|column \"[^\"\n]{1,200}\" does not exist"
    r"|sqlite3\.\w+Error|SQLITE_ERROR|near \"[^\"\n]{1,200}\": syntax error|no such (?:table|column): "
    r"|\bORA-\d{5}\b|PLS-\d{5}|quoted string not properly terminated"
    r"|Unclosed quotation mark after the character string|Incorrect syntax near|Microsoft OLE DB Provider for SQL Server"
    r"|\[Microsoft\]\[ODBC|System\.Data\.SqlClient\.SqlException|SqlException \(0x"
    r"|sqlalchemy\.exc\.\w+|java\.sql\.SQLException|SQLException:|Dynamic SQL Error|DB2 SQL error",
)
_PATH = re.compile(
    r"(?<![\w.:/])(?:/home/[\w.-]+/|/var/(?:www|lib|log|opt)/|/usr/(?:local/)?lib/(?:python|node|ruby|php|jvm)"
    r"|/usr/(?:local/)?(?:share|src)/[\w.-]+/|/opt/[\w.-]+/|/srv/[\w.-]+/|/root/|/etc/(?:passwd|shadow|nginx|apache2|httpd)"
    r"|/app/[\w.-]+/|/code/[\w.-]+/|/workspace/|/builds?/)"
    r"|[\w./-]{0,200}/(?:site-packages|dist-packages|node_modules|vendor/bundle|WEB-INF)/"
    r"|\b[A-Za-z]:\\\\?(?:Users|inetpub|Windows|Program Files|www|wwwroot|app|apps|src|projects|home|srv)\\"
    r"|root:x:0:0:"
)
_HOST_SUFFIX = r"internal|local|localdomain|lan|intranet|corp|home\.arpa|cluster\.local"
_HOST = re.compile(
    r"(?<![\w@.-])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:" + _HOST_SUFFIX + r")(?![\w.-]*\w)",
    re.IGNORECASE,
)
_HOST_FULL = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:" + _HOST_SUFFIX + r")(?::\d{1,5})?", re.IGNORECASE)
_HOST_ENDS = (".internal", ".local", ".localdomain", ".lan", ".intranet", ".corp", ".home.arpa")
_IPV4_IN = re.compile(r"(?<![\d.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d.]*\d)")
_CARD_IN = re.compile(r"(?<![\d.-])(?:\d[ -]?){12,18}\d(?![\d-])")
_SSN_IN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_PHONE_IN = re.compile(
    r"(?<![\w+])\+\d{1,3}[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}(?!\d)"
    r"|(?<![\w(])\(\d{3}\) ?\d{3}-\d{4}(?!\d)|(?<![\w.-])\d{3}([.-])\d{3}\1\d{4}(?![\w-]|\.\d)"
)

_SEP_DEL = str.maketrans("", "", " -.()/+")

# Values that _classify provably returns nothing for when the field gives no
# positive evidence (checked before classifying a value seen for the first
# time; keep in step with _classify): at most 12 or at least 20 ASCII digits
# (not a card length: bare 9-12 digit runs need field evidence), decimals
# such as epoch seconds (one dot: no IPv4, card, SSN or phone format), and
# short words of ASCII letters not starting with "A" (cloud key prefixes),
# which carry no digit for an address, IBAN or national id. Callers ensure
# fewer than 24 characters (no free-text scan) and no cut by max_value_chars.
_PLAIN = re.compile(r"[0-9]{1,12}|[0-9]{20,}|[0-9]+\.[0-9]+|[B-Za-z][A-Za-z]*(?: [A-Za-z]+)*")
_MEMO_MAX_CHARS = 256  # longer values are classified every time, never kept
_BODY_MEMO_MAX_BYTES = 16384  # larger bodies are walked every time, never kept
_BODY_MEMO_BYTES = 8 << 20  # body bytes one memo generation keeps (two generations)

_BODY_KINDS = ("json", "form", "text", "xml", "")
_AUTH_HEADERS = frozenset({"authorization", "proxy-authorization"})
_KEYISH_HEADER = re.compile(r"(?:^|[-_])(?:api[-_]?key|apikey|token|secret|auth|key|session|password|signature)(?:$|[-_])")
_SKIP_HEADERS = frozenset({"content-type", "content-length", "accept", "accept-encoding", "accept-language",
                           "user-agent", "host", "connection", "cache-control", "date", "etag", "server",
                           "vary", "content-encoding", "transfer-encoding", "if-none-match", "referer", "origin",
                           "x-request-id", "x-correlation-id", "traceparent", "tracestate", "keep-alive",
                           "sec-websocket-key", "x-xss-protection", "x-content-type-options", "pragma",
                           "last-modified", "expires", "age", "x-frame-options", "strict-transport-security",
                           "content-security-policy", "access-control-allow-origin", "location", "link",
                           "cookie", "set-cookie"})


# --------------------------------------------------------------------------
# the classifier
# --------------------------------------------------------------------------


class Classifier:
    """Finds sensitive values in calls (:meth:`classify_call`) or single
    values (:meth:`classify_value`).

    ``secret`` keys the value digests (use a per-installation secret so that
    digests cannot be brute-forced across installations); ``max_fields``
    bounds the leaves inspected per call, ``max_value_chars`` the characters
    of one value, ``max_text_bytes`` the bytes of a non-JSON body scanned,
    ``max_hits`` the hits returned per call; ``memo_size`` bounds the
    memoised value answers (see the module docs; bodies, headers and
    cookies get an eighth of it).
    """

    def __init__(
        self,
        *,
        secret: bytes = DEFAULT_SECRET,
        max_fields: int = 2000,
        max_value_chars: int = 8192,
        max_text_bytes: int = 65536,
        max_hits: int = 500,
        phone_regions: Iterable[str] = ("US", "GB", "DE", "FR", "IN"),
        memo_size: int = 32768,
    ) -> None:
        if len(secret) > 64:
            secret = hashlib.blake2b(secret).digest()
        if not secret:
            raise ValueError("secret must not be empty")
        if max_fields < 1 or max_value_chars < 16 or max_text_bytes < 16 or max_hits < 1 or memo_size < 1:
            raise ValueError("bounds must be positive")
        self.secret = secret
        self.max_fields = max_fields
        self.max_value_chars = max_value_chars
        self.max_text_bytes = max_text_bytes
        self.max_hits = max_hits
        self.phone_regions = tuple(phone_regions)
        self._blake = hashlib.blake2b(key=secret, digest_size=6)
        # _PLAIN holds for values shorter than 24 that _classify does not cut
        self._plain_below = min(24, max_value_chars + 1)
        self._ev_cache: dict[tuple[Any, Any], tuple[str, bool, str | None]] = {}
        self._memo = _Memo(memo_size)
        self._aux_memo = _Memo(memo_size // 8)
        self._body_memo = _Memo(memo_size // 8, _BODY_MEMO_BYTES, _body_weight)
        self._kinds: dict[str, str] = {}
        # the walk's view of _ev_cache: parent -> key -> entry, saving a tuple per leaf
        self._ev_by_parent: dict[Any, dict[Any, tuple[str, bool, str | None]]] = {}
        self._header_actions: dict[str, int] = {}
        self._path_memo: dict[str, tuple[int, tuple[tuple[str, str, float, str], ...]]] = {}

    # ---- digests ---------------------------------------------------------

    def value_hash(self, value: str, cls: str = "") -> str:
        """Keyed BLAKE2b digest (12 hex) of the value, normalised for its
        class so that ``4111 1111...`` and ``4111-1111...`` agree."""
        if cls in ("credit_card", "ssn", "phone", "iban", "national_id", "card_cvv"):
            value = value.translate(_SEP_DEL).upper()
        elif cls == "email":
            value = value.strip().lower()
        else:
            value = value.strip()
        h = self._blake.copy()  # the keyed state, copied: cheaper than keying anew
        h.update(value.encode("utf-8", "surrogatepass"))
        return h.hexdigest()

    # ---- single values ---------------------------------------------------

    def _evidence(self, key: str, parent: str) -> tuple[str, bool]:
        ent = self._ev_entry(key, parent)
        return ent[0], ent[1]

    def classify_value(self, value: str, field: str = "") -> list[tuple[str, float]]:
        """Classes of one value, with confidence. ``field`` is a parameter
        name or dotted path; its last segment (and the parent for generic
        names like ``number``) is evidence."""
        key, parent = _last_keys(field)
        pos, neg = self._evidence(key, parent) if key else ("", False)
        return [(c, p) for c, p, _ in self._classify(value, pos, neg)]

    def _classify(self, value: str, pos: str, neg: bool) -> list[tuple[str, float, str]]:
        """``[(class, confidence, matched text)]`` for one value."""
        if len(value) > self.max_value_chars:
            value = value[: self.max_value_chars]
        v = value.strip()
        n = len(v)
        if n == 0:
            return []
        if pos:
            r = self._by_field(v, n, pos)
            if r is not None:
                return r
        c0 = v[0]
        if "0" <= c0 <= "9" or c0 == "+" or c0 == "(":
            r = self._numeric(v, n, pos, neg)
            if r:
                return r
        elif c0 == "e":
            if v.startswith("eyJ") and _jwt_ok(v):
                return [("jwt", 0.95, v)]
        elif c0 == "$" or c0 == "{":
            if _HASH_PREFIX.fullmatch(v):
                return [("password_hash", 0.9, v)]
        elif c0 == "/" or (n > 3 and v[1] == ":" and v[2] == "\\"):
            if n < 24 or (" " not in v and "\n" not in v):
                m = _PATH.match(v)
                if m is not None:
                    return [("internal_path", 0.7, v)]
        if n < 6:
            return []
        if "@" in v and n <= 254 and _EMAIL_FULL.fullmatch(v):
            return [("email", 0.95, v)]
        if c0.isupper():
            if 15 <= n <= 42 and v[2:4].isdigit() and _iban_ok(v):
                return [("iban", 0.95, v)]
            if n <= 13 and _nino_ok(v):
                return [("national_id", 0.8 if not pos else 0.9, v)]
        if c0 in _SECRET_FIRST and _SECRET_FULL.match(v) is not None:
            return [("api_key", 0.95, v)]
        if ":" in v and n <= 50 and _IPV6.fullmatch(v) and v.count(":") >= 2:
            cls = _ip6_class(v)
            if cls and not (neg and pos != "ip_address"):
                return [(cls, 0.9, v)]
            return []
        if v.endswith(_HOST_ENDS) or (":" in v and _HOST_FULL.fullmatch(v)):
            if _HOST_FULL.fullmatch(v):
                return [("internal_hostname", 0.8, v)]
        if " " in v and 8 <= n <= 120 and not c0.isdigit() and _ADDRESS.match(v):
            return [("address", 0.7, v)]
        if n >= 24 and (" " in v or "\n" in v):
            return self._scan_text(v)
        return []

    def _by_field(self, v: str, n: int, pos: str) -> list[tuple[str, float, str]] | None:
        """Decide from the field's class; ``None`` falls back to shape tests."""
        if pos == "password":
            if _masked(v) or v.lower() in ("true", "false", "null", "none"):
                return []
            if _HASH_PREFIX.fullmatch(v) or _HEX_DIGEST.fullmatch(v):
                return [("password_hash", 0.95, v)]
            return [("password", 0.9, v)]
        if pos == "password_hash":
            if _HASH_PREFIX.fullmatch(v) or _HEX_DIGEST.fullmatch(v) or (n >= 20 and " " not in v and not _masked(v)):
                return [("password_hash", 0.95, v)]
            return []
        if pos == "health":
            if n >= 2 and not _masked(v) and v.lower() not in ("n/a", "none", "null", "unknown", "true", "false"):
                return [("health", 0.8, v)]
            return []
        if pos in ("api_key", "session_token"):
            if _masked(v):
                return []
            if v.startswith("eyJ") and _jwt_ok(v):
                return [("jwt", 0.95, v)]
            if _SECRET_FULL.match(v):
                return [("api_key", 0.95, v)]
            if " " not in v and n >= 16 and _secretish(v):
                return [(pos, 0.85, v)]
            return None
        if pos == "credit_card":
            d = v.translate(_SEP_DEL)
            if 13 <= len(d) <= 19 and d.isdigit() and d.isascii() and _luhn(d):
                return [("credit_card", 0.97, v)]
            return None
        if pos == "card_cvv":
            if 3 <= n <= 4 and v.isdigit():
                return [("card_cvv", 0.9, v)]
            return []
        if pos == "ssn":
            d = v.translate(_SEP_DEL)
            if len(d) == 9 and d.isdigit() and _ssn_ok(d):
                return [("ssn", 0.95, v)]
            return None
        if pos == "national_id":
            cls = _national_id(v, strict=False)
            return [("national_id", 0.9, v)] if cls else None
        if pos == "date_of_birth":
            if _DATE.fullmatch(v):
                return [("date_of_birth", 0.9, v)]
            return None
        if pos == "phone":
            d = v.translate(_SEP_DEL)
            if 7 <= len(d) <= 15 and d.isdigit():
                if v[0] != "+" and len(d) == 10 and _nanp_ok(d):
                    return [("phone", 0.9, v)]
                if len(d) == 11 and d[0] == "1" and _nanp_ok(d[1:]):
                    return [("phone", 0.9, v)]
                regions: tuple[str | None, ...] = (None,) if v[0] == "+" else self.phone_regions
                if _phone_ok(v, regions):
                    return [("phone", 0.9, v)]
            return None
        if pos == "address":
            if _ADDRESS.match(v):
                return [("address", 0.9, v)]
            if n >= 6 and " " in v and any(ch.isdigit() for ch in v) and any(ch.isalpha() for ch in v) and "@" not in v:
                return [("address", 0.7, v)]
            return None
        return None

    def _numeric(self, v: str, n: int, pos: str, neg: bool) -> list[tuple[str, float, str]]:
        """Values starting with a digit, '+' or '('."""
        if n <= 15 and v.count(".") == 3 and _IPV4.fullmatch(v):
            if neg and pos != "ip_address":
                return []
            r = _internal_ip4(v)
            if r is None:
                return []
            return [("internal_ip" if r else "ip_address", 0.9, v)]
        last = v[-1]
        if "a" <= last.lower() <= "z":
            if n in (9, 10) and _ES_DNI.fullmatch(v) and _es_dni.is_valid(v):
                return [("national_id", 0.85, v)]
            if " " in v and n >= 8 and _ADDRESS.match(v):
                return [("address", 0.75, v)]
            return []
        d = v.translate(_SEP_DEL)
        if not (d.isdigit() and d.isascii()):
            if " " in v and n >= 8 and _ADDRESS.match(v):
                return [("address", 0.75, v)]
            if n >= 24 and " " in v:
                return self._scan_text(v)
            return []
        nd = len(d)
        if nd < 9 or nd > 19:
            return []
        plus = v[0] == "+"
        formatted = nd != n
        if not plus:
            if 13 <= nd <= 19 and _iin_ok(d, nd) and _luhn(d):
                if formatted:
                    if _CARD_FMT.fullmatch(v):
                        return [("credit_card", 0.95, v)]
                elif not neg:
                    return [("credit_card", 0.9, v)]
            if nd == 9 and formatted and _SSN_FMT.fullmatch(v) and _ssn_ok(d):
                return [("ssn", 0.9, v)]
            if formatted and not neg:
                if nd == 12 and _AADHAAR_FMT.fullmatch(v) and _in_aadhaar.is_valid(d):
                    return [("national_id", 0.85, v)]
                if nd in (13, 15) and _NIR_FMT.fullmatch(v) and _fr_nir.is_valid(d):
                    return [("national_id", 0.85, v)]
        if neg:
            return []
        if plus:
            if nd == 11 and d[0] == "1":
                if _nanp_ok(d[1:]):
                    return [("phone", 0.9, v)]
                return []
            if 8 <= nd <= 15 and _phone_ok(v, (None,)):
                return [("phone", 0.9, v)]
            return []
        if formatted and nd in (10, 11) and _NANP_FMT.fullmatch(v):
            if _nanp_ok(d[-10:]) and (nd == 10 or d[0] == "1"):
                return [("phone", 0.8, v)]
        return []

    def _scan_text(self, text: str) -> list[tuple[str, float, str]]:
        """Free text: error leaks plus PII embedded in prose. Each search is
        gated by a substring test so prose without triggers costs a few
        ``in`` checks."""
        out: list[tuple[str, float, str]] = []
        low = text.lower()
        if ("at " in low or "rror" in low or "xception" in low or "traceback" in low or "goroutine" in low
                or ".php" in low or ".rb:" in low or "panic" in low):
            m = _STACK.search(text)
            if m is not None:
                out.append(("stack_trace", 0.9, m.group(0)))
        if ("sql" in low or "syntax" in low or "ora-" in low or "pg::" in low or "quot" in low or "does not exist" in low
                or "no such" in low or "ole db" in low or "odbc" in low or "pls-" in low):
            m = _SQL.search(text)
            if m is not None:
                out.append(("sql_error", 0.9, m.group(0)))
        if "/" in text or "\\" in text or "root:" in text:
            m = _PATH.search(text)
            if m is not None:
                out.append(("internal_path", 0.8, m.group(0)))
        if "." in text:
            for m in _HOST.finditer(text):
                out.append(("internal_hostname", 0.8, m.group(0)))
                break
            for m in _IPV4_IN.finditer(text):
                r = _internal_ip4(m.group(0))
                if r is not None:
                    out.append(("internal_hostname" if r else "ip_address", 0.7, m.group(0)))
        if "@" in text:
            for m in _EMAIL_IN.finditer(text):
                out.append(("email", 0.9, m.group(0)))
        if "eyJ" in text:
            for m in _JWT_IN.finditer(text):
                if _jwt_ok(m.group(0)):
                    out.append(("jwt", 0.9, m.group(0)))
        if "_" in text or "-" in text or "AKIA" in text or "ASIA" in text or "AIza" in text or "SG." in text:
            for m in _SECRET_IN.finditer(text):
                out.append(("api_key", 0.9, m.group(0)))
        if "$" in text:
            for m in _HASH_PREFIX.finditer(text):
                out.append(("password_hash", 0.8, m.group(0)))
        for m in _CARD_IN.finditer(text):
            s = m.group(0)
            d = s.translate(_SEP_DEL)
            if (d == s or _CARD_FMT.fullmatch(s)) and _iin_ok(d, len(d)) and _luhn(d):
                out.append(("credit_card", 0.85, s))
        if "-" in text:
            for m in _SSN_IN.finditer(text):
                s = m.group(0)
                if _ssn_ok(s):
                    out.append(("ssn", 0.8, s))
        if "+" in text or "(" in text or "-" in text or "." in text:
            for m in _PHONE_IN.finditer(text):
                s = m.group(0)
                d = s.translate(_SEP_DEL)
                if (len(d) == 10 and _nanp_ok(d)) or (len(d) == 11 and d[0] == "1" and _nanp_ok(d[1:])) or (
                    s[0] == "+" and d[0] != "1" and _phone_ok(s, (None,))):
                    out.append(("phone", 0.75, s))
        return out

    # ---- memos -----------------------------------------------------------

    def _ev_entry(self, key: Any, parent: Any) -> tuple[str, bool, str | None]:
        """``(pos, neg, tag)`` for a field, cached per (parent, key); ``tag``
        makes the value-memo key (``None``: no evidence, the value alone)."""
        ck = (parent, key)
        ent = self._ev_cache.get(ck)
        if ent is None:
            if len(self._ev_cache) > 20000:
                self._ev_cache.clear()
            pos, neg = field_evidence(str(key), str(parent)) if key != "" else ("", False)
            ent = (pos, neg, None if not pos and not neg else pos + ("!" if neg else ""))
            self._ev_cache[ck] = ent
        return ent

    def _ev_reset(self) -> dict[Any, tuple[str, bool, str | None]]:
        """Too many distinct parents (keys that are ids): start afresh."""
        self._ev_by_parent.clear()
        return {}

    def _value_miss(self, mk: Any, v: str, pos: str, neg: bool) -> tuple[tuple[str, float, str], ...]:
        """Classify ``v`` (a value-memo miss) into ``((class, conf, value_hash), ...)``
        and remember the answer when the value is short enough to keep."""
        memo = self._memo
        r = memo.old.get(mk)
        if r is None:
            if not pos and len(v) < self._plain_below and _PLAIN.fullmatch(v) is not None:
                if v[0] <= "9":
                    return ()  # numbers (times, ids) rarely repeat: keep them out of the memo
                r = ()
            else:
                vh = self.value_hash
                r = tuple([(cls, conf, vh(s, cls)) for cls, conf, s in self._classify(v, pos, neg)])
                if len(v) > _MEMO_MAX_CHARS:
                    return r
        new = memo.new
        if len(new) >= memo.size:
            memo.old = new
            memo.new = new = {}
        new[mk] = r
        return r

    def _hits_of(self, v: str, key: Any, parent: Any) -> tuple[tuple[str, float, str], ...]:
        """Memoised ``(class, conf, value_hash)`` of one value under field evidence."""
        ent = self._ev_entry(key, parent)
        mk = v if ent[2] is None else (v, ent[2])
        r = self._memo.new.get(mk)
        if r is None:
            r = self._value_miss(mk, v, ent[0], ent[1])
        return r

    def _aux(self, mk: tuple[str, ...], found: list[tuple[str, float, str]]) -> tuple[tuple[str, float, str], ...]:
        """Hash and remember header / cookie results under ``mk``."""
        vh = self.value_hash
        r = tuple([(cls, conf, vh(s, cls)) for cls, conf, s in found])
        if len(mk[-1]) <= _MEMO_MAX_CHARS:
            self._aux_memo.put(mk, r)
        return r

    # ---- whole calls -----------------------------------------------------

    def classify_call(self, call: ApiCall) -> list[SensitiveHit]:
        """Every sensitive value in ``call``, at most one hit per
        (location, field, class, value)."""
        st = _CallState(self.max_fields, self.max_hits)
        add = st.add
        req = call.request
        # path segments: memoised per path (no budget checks, fixed cost)
        path = req.path
        if len(path) > 6:
            ent = self._path_memo.get(path)
            if ent is None:
                ent = self._path_hits(path)
            st.budget -= ent[0]
            if ent[1]:
                st.add_all("path", ent[1])
        for k, val in req.query:
            if st.budget <= 0:
                break
            st.budget -= 1
            for cls, conf, h in self._hits_of(val, k, ""):
                add("query", k, cls, conf, h)
        todo, cookies = self._header_scan(req.headers, 4)
        if todo:
            self._headers(todo, st)
        if req.cookies:
            for k, val in req.cookies.items():
                self._cookie(k, val, st)
        elif cookies:
            for raw in cookies:
                for part in raw.split(";"):
                    k, sep, val = part.strip().partition("=")
                    if sep:
                        self._cookie(k, val, st)
        self._body(req, "request_body", st)
        resp = call.response
        if resp is not None:
            todo, cookies = self._header_scan(resp.headers, 5)
            if cookies:
                for raw in cookies:
                    k, sep, rest = raw.partition("=")
                    if sep:
                        self._cookie(k.strip(), rest.split(";", 1)[0], st)
            if todo:
                self._headers(todo, st)
            self._body(resp, "error_body" if resp.status >= 400 else "response_body", st)
        return st.hits

    def _path_hits(self, path: str) -> tuple[int, tuple[tuple[str, str, float, str], ...]]:
        """``(leaves used, ((field, class, conf, value_hash), ...))`` of the
        path segments of 6+ characters."""
        used = 0
        found = []
        for i, seg in enumerate(path.split("/")):
            if len(seg) < 6:
                continue
            if "%" in seg:
                seg = unquote(seg)
            used += 1
            for cls, conf, h in self._hits_of(seg, "", ""):
                found.append((f"path[{i}]", cls, conf, h))
        ent = (used, tuple(found))
        if len(self._path_memo) >= 4096:
            self._path_memo.clear()
        self._path_memo[path] = ent
        return ent

    def _header_scan(self, headers: list[tuple[str, str]], cookie_act: int) -> tuple[list[tuple[int, str, str]], list[str]]:
        """One pass over the headers: ``(action, name, value)`` of those worth
        a look, and the raw values of ``cookie`` (``cookie_act`` 4) or
        ``set-cookie`` (5)."""
        actions = self._header_actions
        todo: list[tuple[int, str, str]] = []
        cookies: list[str] = []
        for name, val in headers:
            act = actions.get(name)
            if act is None:
                act = _header_action(name)
                if len(actions) > 4096:
                    actions.clear()
                actions[name] = act
            if act == 0:
                continue
            if act < 4:
                if val:
                    todo.append((act, name, val))
            elif act == cookie_act:
                cookies.append(val)
        return todo, cookies

    def _headers(self, todo: list[tuple[int, str, str]], st: _CallState) -> None:
        for act, name, val in todo:
            if act == 1:
                mk: tuple[str, ...] = ("a", val)
                r = self._aux_memo.get(mk)
                if r is None:
                    r = self._aux(mk, _authorization(val))
            elif act == 2:
                mk = ("k", name, val)
                r = self._aux_memo.get(mk)
                if r is None:
                    r = self._aux(mk, _keyish_header(name, val))
            elif len(val) >= 8:
                st.budget -= 1
                r = self._hits_of(val, name, "")
            else:
                continue
            for cls, conf, h in r:
                st.add("header", name, cls, conf, h)

    def _cookie(self, name: str, val: str, st: _CallState) -> None:
        if not val or st.budget <= 0:
            return
        st.budget -= 1
        mk = ("c", name, val)
        r = self._aux_memo.get(mk)
        if r is None:
            r = self._aux(mk, self._cookie_found(name, val))
        for cls, conf, h in r:
            st.add("cookie", name, cls, conf, h)

    def _cookie_found(self, name: str, val: str) -> list[tuple[str, float, str]]:
        if val.startswith("eyJ") and _jwt_ok(val):
            return [("jwt", 0.95, val)]
        pos, neg = self._evidence(name, "")
        low = name.lower()
        if pos == "session_token" or low.endswith(("sess", "_sid", ".sid", "sessionid")):
            if len(val) >= 8 and not _masked(val):
                return [("session_token", 0.9, val)]
            return []
        if pos in ("", "api_key") and len(val) >= 16 and _secretish(unquote(val)):
            if pos == "api_key" or "auth" in low or "token" in low:
                # a credential carried in a cookie is a session credential
                return [("session_token", 0.8, val)]
        if "%" in val:
            val = unquote(val)
        return self._classify(val, pos, neg)

    def _body(self, msg: Any, location: str, st: _CallState) -> None:
        """One body: JSON walked, forms per field, text scanned. JSON and
        text results are memoised per body bytes (with the budget they used),
        so a repeated body costs one dict look-up."""
        body = msg.body
        if not body or st.budget <= 0:
            return
        kind = self._kinds.get(msg.content_type)
        if kind is None:
            kind = body_kind(msg.content_type)
            if len(self._kinds) < 256:
                self._kinds[msg.content_type] = kind
        if not kind:
            kind = msg.kind  # sniffed from the bytes
        bkey = None
        if len(body) <= _BODY_MEMO_MAX_BYTES and kind != "form":
            bkey = (body, kind, msg.truncated)
            ent = self._body_memo.get(bkey)
            if ent is not None and st.budget > ent[0]:
                st.budget -= ent[0]
                st.add_all(location, ent[1])
                return
        found: list[tuple[str, str, float, str]] = []
        before = st.budget
        complete = True
        if kind == "json":
            doc = msg.json()
            if doc is not None:
                complete = self._walk(doc, st, found)
                self._apply(found, location, st, bkey if complete else None, before)
                return
        elif kind == "form":
            for k, val in msg.form():
                if st.budget <= 0:
                    break
                st.budget -= 1
                for cls, conf, h in self._hits_of(val, k, ""):
                    st.add(location, k, cls, conf, h)
            return
        if kind not in _BODY_KINDS:
            return
        text = body[: self.max_text_bytes].decode("utf-8", "replace")
        st.budget -= 1
        vh = self.value_hash
        found = [("", cls, conf, vh(s, cls)) for cls, conf, s in self._scan_text(text)]
        self._apply(found, location, st, bkey, before)

    def _apply(self, found: list[tuple[str, str, float, str]], location: str, st: _CallState, bkey: Any,
               before: int) -> None:
        st.add_all(location, found)
        if bkey is not None:
            self._body_memo.put(bkey, (before - st.budget, tuple(found)))

    def _walk(self, doc: Any, st: _CallState, found: list[tuple[str, str, float, str]]) -> bool:
        """Depth-first walk of a JSON document with dotted paths, appending
        ``(field, class, conf, value_hash)`` to ``found``; stops when the
        budget of leaves runs out and then returns False. Dotted paths are
        only built for hits; field evidence and value answers come from the
        memos."""
        evn = self._ev_by_parent
        ev_entry = self._ev_entry
        mget = self._memo.new.get
        miss = self._value_miss
        out = found.append
        budget = st.budget
        stack: list[tuple[Any, str, Any, Any]] = [(doc, "", "", "")]
        while stack:
            if budget <= 0:
                st.budget = budget
                return False
            node, path, key, parent = stack.pop()
            tn = type(node)
            if tn is dict:
                pev = evn.get(key)
                if pev is None or len(pev) > 512:
                    pev = evn[key] = {} if len(evn) < 4096 else self._ev_reset()
                for k, v in node.items():
                    tv = type(v)
                    if tv is str:
                        budget -= 1
                        if budget < 0:
                            st.budget = budget
                            return False
                        if not v:
                            continue
                        ent = pev.get(k)
                        if ent is None:
                            ent = pev[k] = ev_entry(k, key)
                        if ent[0] == "" and len(v) < 6:
                            continue
                        mk = v if ent[2] is None else (v, ent[2])
                        r = mget(mk)
                        if r is None:
                            r = miss(mk, v, ent[0], ent[1])
                        if r:
                            p = f"{path}.{k}" if path else k
                            for cls, conf, h in r:
                                out((p, cls, conf, h))
                    elif tv is dict or tv is list:
                        stack.append((v, f"{path}.{k}" if path else k, k, key))
                    elif tv is int:
                        budget -= 1
                        ent = pev.get(k)
                        if ent is None:
                            ent = pev[k] = ev_entry(k, key)
                        if ent[0] or v >= 1_000_000_000_000:
                            s = str(v)
                            mk = s if ent[2] is None else (s, ent[2])
                            r = mget(mk)
                            if r is None:
                                r = miss(mk, s, ent[0], ent[1])
                            if r:
                                p = f"{path}.{k}" if path else k
                                for cls, conf, h in r:
                                    out((p, cls, conf, h))
            elif tn is list:
                p = path + "[]"
                ent = None
                for v in node:
                    tv = type(v)
                    if tv is str:
                        budget -= 1
                        if budget < 0:
                            st.budget = budget
                            return False
                        if not v:
                            continue
                        if ent is None:
                            ent = ev_entry(key, parent)
                        if ent[0] == "" and len(v) < 6:
                            continue
                    elif tv is dict or tv is list:
                        stack.append((v, p, key, parent))
                        continue
                    elif tv is int and v >= 1_000_000_000_000:
                        budget -= 1
                        if ent is None:
                            ent = ev_entry(key, parent)
                        v = str(v)
                    else:
                        continue
                    mk = v if ent[2] is None else (v, ent[2])
                    r = mget(mk)
                    if r is None:
                        r = miss(mk, v, ent[0], ent[1])
                    for cls, conf, h in r:
                        out((p, cls, conf, h))
            elif tn is str:
                budget -= 1
                r = mget(node)
                if r is None:
                    r = miss(node, node, "", False)
                for cls, conf, h in r:
                    out((path, cls, conf, h))
        st.budget = budget
        return True


def _header_action(name: str) -> int:
    """What a header name calls for: 0 nothing, 1 credentials in
    ``authorization``, 2 a key-ish header, 3 a value worth classifying,
    4 ``cookie``, 5 ``set-cookie``."""
    if name == "cookie":
        return 4
    if name == "set-cookie":
        return 5
    if name in _SKIP_HEADERS:
        return 0
    if name in _AUTH_HEADERS:
        return 1
    if _KEYISH_HEADER.search(name) and "csrf" not in name and "xsrf" not in name:
        return 2
    if name in ("x-forwarded-for", "x-real-ip", "forwarded", "true-client-ip", "cf-connecting-ip"):
        return 0  # the client address is the actor, not a leak
    if name.startswith("x-") or name in ("via", "x-backend-server"):
        return 3
    return 0


def _keyish_header(name: str, val: str) -> list[tuple[str, float, str]]:
    if val.startswith("eyJ") and _jwt_ok(val):
        return [("jwt", 0.95, val)]
    if len(val) >= 12 and not _masked(val):
        m = _SECRET_FULL.match(val)
        if m is not None or _secretish(val) or "key" in name or "token" in name:
            cls = "session_token" if "session" in name else "api_key"
            return [(cls, 0.9 if m is not None else 0.8, val)]
    return []


def _authorization(val: str) -> list[tuple[str, float, str]]:
    scheme, _, cred = val.strip().partition(" ")
    s = scheme.lower()
    cred = cred.strip()
    if s == "bearer" and cred:
        if cred.startswith("eyJ") and _jwt_ok(cred):
            return [("jwt", 0.99, cred)]
        if _SECRET_FULL.match(cred):
            return [("api_key", 0.95, cred)]
        return [("bearer_token", 0.9, cred)]
    if s == "basic" and cred:
        try:
            dec = base64.b64decode(cred, validate=True).decode("utf-8", "replace")
        except (ValueError, binascii.Error):
            dec = ""
        return [("basic_auth", 0.99, cred)] if ":" in dec else []
    if not cred:
        if val.startswith("eyJ") and _jwt_ok(val):
            return [("jwt", 0.95, val)]
        if len(val) >= 12:
            return [("api_key" if _SECRET_FULL.match(val) else "bearer_token", 0.8, val)]
        return []
    m = _SECRET_IN.search(cred)
    return [("api_key" if m is not None else "bearer_token", 0.85, m.group(0) if m else cred)]


def _last_keys(field: str) -> tuple[str, str]:
    if not field:
        return "", ""
    parts = field.replace("[]", "").rsplit(".", 2)
    key = parts[-1]
    parent = parts[-2] if len(parts) > 1 else ""
    return key, parent


def _national_id(v: str, strict: bool) -> str:
    d = v.translate(_SEP_DEL)
    nd = len(d)
    if d.isdigit():
        if nd == 12 and _in_aadhaar.is_valid(d):
            return "in.aadhaar"
        if nd in (13, 15) and _fr_nir.is_valid(d):
            return "fr.nir"
        if nd == 11 and _de_idnr.is_valid(d):
            return "de.idnr"
        if nd == 9 and _ssn_ok(d):
            return "us.ssn"
        return ""
    if nd == 9 and _es_dni.is_valid(d):
        return "es.dni"
    if _nino_ok(v):
        return "gb.nino"
    return ""


def _body_weight(key: tuple[bytes, str, bool]) -> int:
    return len(key[0])


class _Memo:
    """A bounded two-generation memo (an approximate LRU at dict speed):
    look-ups go to the young generation, then the old one (promoting the
    entry); when the young one is full it becomes the old one."""

    __slots__ = ("new", "old", "size", "max_weight", "weight", "weigh")

    def __init__(self, size: int, max_weight: int = 0, weigh: Callable[[Any], int] | None = None) -> None:
        self.size = max(1, size)
        self.max_weight = max_weight  # with ``weigh``: bound on the summed weight of the young keys
        self.weigh = weigh
        self.weight = 0
        self.new: dict[Any, Any] = {}
        self.old: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        r = self.new.get(key)
        if r is None:
            r = self.old.get(key)
            if r is not None:
                self.put(key, r)
        return r

    def put(self, key: Any, value: Any) -> None:
        w = self.weigh(key) if self.weigh is not None else 0
        if len(self.new) >= self.size or (w and self.weight + w > self.max_weight):
            self.old = self.new
            self.new = {}
            self.weight = 0
        self.new[key] = value
        self.weight += w

    def __len__(self) -> int:
        return len(self.new) + len(self.old)


class _CallState:
    """Per-call accumulation: hits, dedupe set and the remaining budget."""

    __slots__ = ("hits", "seen", "budget", "max_hits")

    def __init__(self, budget: int, max_hits: int) -> None:
        self.hits: list[SensitiveHit] = []
        self.seen: set[tuple[str, str, str, str]] = set()
        self.budget = budget
        self.max_hits = max_hits

    def add(self, location: str, field: str, cls: str, conf: float, h: str) -> None:
        if len(self.hits) >= self.max_hits:
            return
        key = (location, field, cls, h)
        if key in self.seen:
            return
        self.seen.add(key)
        self.hits.append(SensitiveHit(location=location, field=field, cls=cls, value_hash=h, confidence=conf))

    def add_all(self, location: str, found: Iterable[tuple[str, str, float, str]]) -> None:
        """:meth:`add` for each ``(field, class, conf, value_hash)``."""
        hits = self.hits
        seen = self.seen
        room = self.max_hits
        for field, cls, conf, h in found:
            if len(hits) >= room:
                return
            key = (location, field, cls, h)
            if key not in seen:
                seen.add(key)
                hits.append(SensitiveHit(location=location, field=field, cls=cls, value_hash=h, confidence=conf))
