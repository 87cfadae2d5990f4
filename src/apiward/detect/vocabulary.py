"""The names detectors share: which actors are identified principals, which
fields carry credentials, user names, roles and tokens, which parameters
page. One place, so that two detectors never disagree about what a
``password`` field or an admin role is.

Everything here is data (frozen sets, tuples, compiled patterns) plus
one-line predicates; no detector state.
"""

from __future__ import annotations

import re

__all__ = [
    "IDENTIFIED",
    "PASSWORD_NAMES",
    "NEW_PASSWORD",
    "USER_NAMES",
    "ROLE_CLAIMS",
    "ADMIN_WORD",
    "admin_word",
    "TOKEN_KEYS",
    "UID_CLAIMS",
    "PAGE_PARAMS",
    "ID_HEADERS",
]

#: Actor kinds that name a principal (a user, an API key, a session, basic
#: auth) rather than only an address.
IDENTIFIED = frozenset({"user", "apikey", "session", "basic"})

#: Field names that carry a password (lower-cased).
PASSWORD_NAMES = frozenset({"password", "passwd", "pwd", "pass", "passphrase", "passcode", "userpassword", "user_password", "pin"})
#: A form with one of these beside a password changes a password, it does not log in.
NEW_PASSWORD = re.compile(r"new|old|current|confirm|repeat|verify|retype|again", re.IGNORECASE)
#: Field names that carry the user of a credential pair, in preference order.
USER_NAMES = (
    "username", "user_name", "user", "login", "email", "mail", "emailaddress", "email_address",
    "userid", "user_id", "account", "identifier", "phone", "name", "handle", "uid",
)

#: JWT claims that carry roles.
ROLE_CLAIMS = ("role", "roles", "scope", "scp", "groups", "group", "is_admin", "admin", "realm_access", "permissions", "authorities")
#: Role words that mean a privileged principal.
ADMIN_WORD = re.compile(r"admin|root|superuser|super_user|staff|operator|support|moderator|\bops\b|:write:all|all:", re.IGNORECASE)


def admin_word(role: str) -> bool:
    """Whether a role token names a privileged role (``admin``, ``staff``...)."""
    return ADMIN_WORD.search(role) is not None


#: Response fields that hand out a credential.
TOKEN_KEYS = frozenset(
    {"token", "access_token", "accesstoken", "accessToken", "id_token", "idToken", "jwt", "auth_token", "authToken",
     "session", "session_id", "sessionId", "sessiontoken", "sessionToken", "refresh_token", "refreshToken", "bearer"}
)
#: JWT claims that carry the caller's own user id.
UID_CLAIMS = ("uid", "user_id", "userId", "id", "uuid")

#: Query parameters that page through a listing.
PAGE_PARAMS = frozenset(
    {"page", "p", "pg", "offset", "skip", "start", "from", "cursor", "after", "before", "page_number", "pagenumber",
     "pageNumber", "page[number]", "page[offset]", "page[cursor]", "since_id", "max_id", "starting_after", "next", "pageToken", "page_token", "continuation"}
)

#: Request headers that name an object (tenant, account, user).
ID_HEADERS = frozenset(
    {"x-user-id", "x-account-id", "x-customer-id", "x-tenant-id", "x-org-id", "x-organization-id", "x-owner-id", "x-member-id"}
)

#: A versioned release archive as a file name (``name-1.2.0.tar.gz``,
#: ``pkg_x-0.3.zip``): what package indexes and download pages serve, not a
#: backup or a secret (``backup.tar.gz`` and ``site-2024.zip`` do not match).
RELEASE_ARCHIVE = re.compile(
    r"[A-Za-z][\w.+-]*?[-_]v?\d+(?:\.\d+)+[\w.+-]*\.(?:tar\.gz|tgz|tar\.bz2|tar\.xz|zip|whl|gz)$", re.IGNORECASE
)
