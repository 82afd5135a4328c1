"""The people the generators make and the errors their records get: names, birth dates, SSNs, phones and
addresses, households of relatives (twins even share the birth date) and name-alike strangers; typos, case changes.

Shared by the insurance generator (`generate`) and the park accounts' (`generate_accounts`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from c360.entity_resolution import names as N

LETTERS = np.array(list("abcdefghijklmnopqrstuvwxyz"))


def typo(s: str, r: np.random.Generator) -> str:
    if len(s) < 3:
        return s
    i = int(r.integers(1, len(s) - 1))
    op = int(r.integers(0, 4))
    if op == 0:
        return s[:i] + s[i + 1:]                         # deletion
    if op == 1:
        return s[:i] + s[i + 1] + s[i] + s[i + 2:]       # transposition
    c = str(LETTERS[r.integers(0, 26)])
    return s[:i] + c + s[i + 1:] if op == 2 else s[:i] + c + s[i:]


def case_change(s: str, r: np.random.Generator) -> str:
    # "James" -> "JamE" / "JAMES" / "james"
    k = int(r.integers(0, 3))
    if k == 0:
        return s.upper()
    if k == 1:
        return s.lower()
    return "".join(ch.upper() if j % 3 == 2 else ch for j, ch in enumerate(s[:-1])) + s[-1:].upper()


def apply(values: np.ndarray, mask: np.ndarray, fn, r: np.random.Generator) -> None:
    idx = np.flatnonzero(mask)
    values[idx] = [fn(str(v), r) if isinstance(v, str) else v for v in values[idx]]


def streets(n: int, r: np.random.Generator) -> np.ndarray:
    """`n` random street names ("Oak Ave")."""
    return np.char.add(np.char.add(r.choice(np.array(N.STREETS), n), " "), r.choice(np.array(N.STREET_TYPES), n))


def people(n: int, r: np.random.Generator) -> pd.DataFrame:
    """One row per person; ~30% live in households with relatives, some are twins, some share a stranger's name."""
    male = r.random(n) < 0.5
    fm, ff = np.array(N.FIRST_NAMES_M), np.array(N.FIRST_NAMES_F)
    # Zipf-ish popularity so common names repeat among strangers
    pm = 1 / np.arange(1, len(fm) + 1) ** 0.7
    pf = 1 / np.arange(1, len(ff) + 1) ** 0.7
    pl = 1 / np.arange(1, len(N.LAST_NAMES) + 1) ** 0.6
    first = np.where(male, r.choice(fm, n, p=pm / pm.sum()), r.choice(ff, n, p=pf / pf.sum())).astype(object)
    last = r.choice(np.array(N.LAST_NAMES), n, p=pl / pl.sum()).astype(object)
    dob = np.datetime64("1940-01-01") + r.integers(0, 365 * 63, n).astype("timedelta64[D]")
    ssn_num = np.unique(r.integers(1_000_000, 899_999_999, int(n * 1.05) + 10))[:n]
    r.shuffle(ssn_num)
    city_i = r.integers(0, len(N.CITIES), n)
    street_no = r.integers(1, 9999, n)
    street = streets(n, r)
    zip_tail = r.integers(0, 1000, n)
    phone = r.integers(201, 989, n) * 10_000_000 + r.integers(2_000_000, 9_999_999, n)
    household = np.arange(n)
    # households: person i joins household of i-1 (a chain of 2-4 relatives)
    joins = r.random(n) < 0.18
    joins[0] = False
    for i in np.flatnonzero(joins):  # sequential on purpose: chains of relatives
        household[i] = household[i - 1]
    rel = household != np.arange(n)
    src = household[rel]
    last[rel] = last[src]
    street_no[rel], street[rel], city_i[rel], zip_tail[rel] = street_no[src], street[src], city_i[src], zip_tail[src]
    phone[rel] = phone[src]
    twins = rel & (r.random(n) < 0.12)
    dob[twins] = dob[household[twins]]
    # name-alike strangers: copy first and last name of a random other person (different everything else)
    alike = (~rel) & (r.random(n) < 0.03)
    other = r.integers(0, n, alike.sum())
    first[alike], last[alike] = first[other], last[other]
    male[alike] = male[other]
    cities = np.array([c[0] for c in N.CITIES], dtype=object)
    states = np.array([c[1] for c in N.CITIES], dtype=object)
    zp = np.array([c[2] for c in N.CITIES])
    return pd.DataFrame({
        "person_id": np.arange(n), "household_id": household, "first": first, "last": last,
        "gender": np.where(male, "M", "F"), "dob": dob, "ssn": ssn_num, "phone": phone,
        "street_no": street_no, "street": street.astype(object), "city": cities[city_i], "state": states[city_i],
        "zip": np.char.add(zp[city_i], np.char.zfill(zip_tail.astype(str), 3)),
        "company": r.choice(np.array(N.COMPANIES, dtype=object), n), "job": r.choice(np.array(N.JOBS), n),
        "industry": r.choice(np.array(N.INDUSTRIES), n),
    })


def fmt_phone(v: np.ndarray) -> np.ndarray:
    s = pd.Series(v).astype(str)
    return (s.str[:3] + "-" + s.str[3:6] + "-" + s.str[6:]).to_numpy(dtype=object)


def emails(d: pd.DataFrame) -> pd.Series:
    """first.last<person_id mod 97>@example.com (one person's records share the address)."""
    return d["first"].str.lower() + "." + d["last"].str.lower() + (d["person_id"] % 97).astype(str) + "@example.com"
