"""The demo world's synthetic people: deterministic, realistic-looking PII.

The demo API seeds its database from :func:`population` and the simulator
derives the same people (and their passwords) from the same seed, so benign
users can log in and attackers' leaked lists contain some real credentials.
Names come from :mod:`apiward.sim.wordlists`; SSNs follow the SSA format
rules, card numbers pass the Luhn check, e-mail domains are reserved ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from apiward.sim import wordlists as wl

__all__ = ["Person", "population", "person", "luhn_complete", "luhn_ok", "POPULATION_SEED", "ADMIN_COUNT"]

POPULATION_SEED = 7
ADMIN_COUNT = 2  # the first people of the population are administrators


@dataclass(frozen=True, slots=True)
class Person:
    """One synthetic customer (or admin) with everything the demo stores."""

    index: int
    username: str
    email: str
    password: str
    full_name: str
    phone: str
    address: str
    city: str
    state: str
    postcode: str
    dob: str
    ssn: str
    card_number: str
    card_exp: str
    role: str  # user | admin


def luhn_complete(digits: str) -> str:
    """``digits`` plus the Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return digits + str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    """Whether ``number`` (digits only) passes the Luhn check."""
    return len(number) > 1 and luhn_complete(number[:-1]) == number


def _card(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.5:
        return luhn_complete("4" + "".join(str(rng.randrange(10)) for _ in range(14)))
    if kind < 0.85:
        return luhn_complete(str(rng.randint(51, 55)) + "".join(str(rng.randrange(10)) for _ in range(13)))
    return luhn_complete(rng.choice(("34", "37")) + "".join(str(rng.randrange(10)) for _ in range(12)))


def _ssn(rng: random.Random) -> str:
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def _password(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.06:
        return rng.choice(wl.COMMON_PASSWORDS)
    if r < 0.12:
        return rng.choice(wl.SPRAY_PASSWORDS)
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#%&*?"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(10, 16)))


def person(index: int, seed: int = POPULATION_SEED, *, tag: str = "pop") -> Person:
    """The ``index``-th person of the population drawn with ``seed``.

    ``tag`` separates independent populations (``"pop"`` is seeded into the
    demo database; the simulator uses other tags for sign-ups and leaked
    combo lists of people who do not exist)."""
    rng = random.Random(f"{tag}:{seed}:{index}")
    first = rng.choice(wl.FIRST_NAMES)
    last = rng.choice(wl.LAST_NAMES)
    num = rng.randint(1, 999)
    username = f"{first.lower()}.{last.lower()}{num}"
    sep = rng.choice((".", "_", ""))
    email = f"{first.lower()}{sep}{last.lower()}{num}@{rng.choice(wl.EMAIL_DOMAINS)}"
    city, state, zip3, area = rng.choice(wl.CITIES)
    return Person(
        index=index,
        username=username,
        email=email,
        password=_password(rng),
        full_name=f"{first} {last}",
        phone=f"+1-{area}-{rng.randint(200, 999)}-{rng.randint(1000, 9999)}",
        address=f"{rng.randint(10, 9899)} {rng.choice(wl.STREETS)}",
        city=city,
        state=state,
        postcode=f"{zip3}{rng.randint(0, 99):02d}",
        dob=f"{rng.randint(1950, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        ssn=_ssn(rng),
        card_number=_card(rng),
        card_exp=f"{rng.randint(1, 12):02d}/{rng.randint(26, 31)}",
        role="admin" if tag == "pop" and index < ADMIN_COUNT else "user",
    )


def population(n: int, seed: int = POPULATION_SEED) -> list[Person]:
    """The first ``n`` people of the seeded population (user ids 1..n in the
    demo database, in this order)."""
    people: list[Person] = []
    seen: set[str] = set()
    for i in range(n):
        p = person(i, seed)
        if p.username in seen or p.email in seen:  # rare name clash: keep ids stable, make it unique
            local, _, domain = p.email.partition("@")
            p = replace(p, username=f"{p.username}x{i}", email=f"{local}x{i}@{domain}")
        seen.update((p.username, p.email))
        people.append(p)
    return people
