"""Generate the insurance source tables (schemas in `sources`, modeled on the AWS customer-360 workshop) with errors.

People hold one to four policies across the auto and property lines. Records carry the errors real data has:
typos, case changes, nicknames, SSNs with the last two digits wrong, swapped or missing fields, moved
addresses, relatives sharing surname/address/phone (twins even the birth date) and name-alike strangers.
`truth.csv` maps every merged record id to its person (and household); the matcher never reads it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from c360.entity_resolution import names as N
from c360.entity_resolution import people as P
from c360.entity_resolution import sources as S
from c360.errors import InputError
from c360.io import atomic_path

# default noise: probability per record and field
NOISE = {"first_typo": 0.04, "first_case": 0.03, "nickname": 0.05, "first_missing": 0.01, "last_typo": 0.03,
         "last_case": 0.03, "name_swap": 0.01, "dob_swap": 0.02, "dob_typo": 0.02, "dob_missing": 0.02,
         "ssn_last2": 0.03, "ssn_missing": 0.06, "phone_typo": 0.02, "phone_missing": 0.05, "moved": 0.07,
         "addr_typo": 0.03, "bad_value": 0.0005}
def _fmt_ssn(v: np.ndarray) -> np.ndarray:
    s = pd.Series(v).astype(str).str.zfill(9)
    return (s.str[:3] + "-" + s.str[3:5] + "-" + s.str[5:]).to_numpy(dtype=object)


def _records(p: pd.DataFrame, r: np.random.Generator, noise: dict) -> pd.DataFrame:
    """Explode people into policy records (1-4 each, auto or property) and inject errors."""
    k = r.choice([1, 2, 3, 4], len(p), p=[0.4, 0.3, 0.2, 0.1])
    rec = p.loc[np.repeat(p.index.to_numpy(), k)].reset_index(drop=True)
    n = len(rec)
    rec["source"] = np.where(r.random(n) < 0.55, "auto", "property")
    m = {key: r.random(n) < prob for key, prob in noise.items()}
    # the draws below happen in this order: names, SSNs, phones, moves, address typos (the seed's files depend on it)
    first, last = _noisy_names(rec, m, r)
    ds = _noisy_dobs(rec, m)
    ssn_s = _noisy_ssns(rec, m, r)
    phone_s = _noisy_phones(rec, m, r)
    street_no, street, city, state, zp = _moved(rec, m["moved"], r)
    address = (pd.Series(street_no).astype(str) + " " + pd.Series(street)).to_numpy(dtype=object)
    P.apply(address, m["addr_typo"], P.typo, r)
    _unparseable(ds, ssn_s, m["bad_value"])
    return rec.assign(first_name=first, last_name=last, date_of_birth=ds, ssn_s=ssn_s, home_phone=phone_s,
                      address=address, city=city, state=state, zip=zp)


def _noisy_names(rec: pd.DataFrame, m: dict, r: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """First and last names with nicknames, typos, case changes, swaps and missing first names."""
    first, last = rec["first"].to_numpy(dtype=object).copy(), rec["last"].to_numpy(dtype=object).copy()
    nick_idx = np.flatnonzero(m["nickname"])
    first[nick_idx] = [N.NICKNAMES.get(f, f) for f in first[nick_idx]]
    P.apply(first, m["first_typo"], P.typo, r)
    P.apply(first, m["first_case"], P.case_change, r)
    P.apply(last, m["last_typo"], P.typo, r)
    P.apply(last, m["last_case"], P.case_change, r)
    sw = m["name_swap"]
    first[sw], last[sw] = last[sw], first[sw].copy()
    first[m["first_missing"]] = None
    return first, last


def _noisy_dobs(rec: pd.DataFrame, m: dict) -> np.ndarray:
    """Birth dates as YYYY-MM-DD text, some with day and month swapped, a digit off or missing."""
    dob = pd.Series(rec["dob"].to_numpy())
    ds = dob.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    day, month = dob.dt.day.to_numpy(), dob.dt.month.to_numpy()
    swap = m["dob_swap"] & (day <= 12) & (day != month)
    ds[swap] = [f"{y}-{d:02d}-{mo:02d}" for y, d, mo in zip(dob.dt.year[swap], day[swap], month[swap], strict=True)]
    typo_d = m["dob_typo"] & ~swap
    ds[typo_d] = [s[:3] + str((int(s[3]) + 1) % 10) + s[4:] if i % 2 else s[:9] + str((int(s[9]) + 1) % 10)
                  for i, s in enumerate(ds[typo_d])]
    ds[m["dob_missing"]] = None
    return ds


def _noisy_ssns(rec: pd.DataFrame, m: dict, r: np.random.Generator) -> np.ndarray:
    """Formatted SSNs, some with the last two digits wrong, some missing."""
    ssn = rec["ssn"].to_numpy().copy()
    wrong = m["ssn_last2"]
    ssn[wrong] = (ssn[wrong] // 100) * 100 + (ssn[wrong] % 100 + r.integers(1, 99, wrong.sum())) % 100
    ssn_s = _fmt_ssn(ssn)
    ssn_s[m["ssn_missing"]] = None
    return ssn_s


def _noisy_phones(rec: pd.DataFrame, m: dict, r: np.random.Generator) -> np.ndarray:
    """Formatted phone numbers, some a few off in the last digit, some missing."""
    phone = rec["phone"].to_numpy().copy()
    pt = m["phone_typo"]
    phone[pt] = phone[pt] + r.integers(1, 9, pt.sum())
    phone_s = P.fmt_phone(phone)
    phone_s[m["phone_missing"]] = None
    return phone_s


def _moved(rec: pd.DataFrame, mv: np.ndarray, r: np.random.Generator) -> tuple[np.ndarray, ...]:
    """(street_no, street, city, state, zip): the records where `mv` is true at a new random address."""
    street_no, street = rec["street_no"].to_numpy().copy(), rec["street"].to_numpy(dtype=object).copy()
    city, state, zp = (rec[c].to_numpy(dtype=object).copy() for c in ("city", "state", "zip"))
    ci = r.integers(0, len(N.CITIES), mv.sum())
    street_no[mv] = r.integers(1, 9999, mv.sum())
    street[mv] = P.streets(mv.sum(), r)
    city[mv] = np.array([c[0] for c in N.CITIES], dtype=object)[ci]
    state[mv] = np.array([c[1] for c in N.CITIES], dtype=object)[ci]
    zp[mv] = [N.CITIES[c][2] + f"{z:03d}" for c, z in zip(ci, r.integers(0, 1000, mv.sum()), strict=True)]
    return street_no, street, city, state, zp


def _unparseable(ds: np.ndarray, ssn_s: np.ndarray, bad_value: np.ndarray) -> None:
    """A few unparseable cells, as real feeds have them: a day 32 or an X in the SSN (in place)."""
    for j, i in enumerate(np.flatnonzero(bad_value)):
        if j % 2 == 0 and ds[i]:
            ds[i] = ds[i][:8] + "32"
        elif ssn_s[i]:
            ssn_s[i] = ssn_s[i][:7] + "X" + ssn_s[i][8:]


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def generate(n_customers: int, seed: int = 0, out_dir: str | Path = "insurance", noise: dict | None = None,
             visits: str | Path | None = None, visitors: int | None = None) -> dict:
    """Write the five source tables, truth.csv and labels.csv into out_dir; return {"records", "persons", ...}.

    With `visits` (a sigir17 directory), also park accounts for its visitors (or `visitors` of them) and the visits
    keyed by account (`generate_accounts`), their rows in truth.csv; the insurance tables stay those of the seed."""
    if n_customers < 1:
        raise InputError(f"--customers must be >= 1 (got {n_customers})")
    r = np.random.default_rng(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    people = P.people(n_customers, r)
    rec = _records(people, r, {**NOISE, **(noise or {})})
    auto = rec[rec["source"] == "auto"].reset_index(drop=True)
    prop = rec[rec["source"] == "property"].reset_index(drop=True)
    auto_ids = r.permutation(len(auto)) + 100_000
    prop_ids = r.permutation(len(prop)) + 100_000
    # the draws happen in this order (the seed's files depend on it): auto tables, property tables, labels
    auto_customer, auto_address, vehicles = _auto_tables(auto, auto_ids, r)
    prop_customers, prop_addresses = _property_tables(prop, prop_ids, r)
    auto_rec, prop_rec = S.AUTO_CUSTOMER.record_ids(auto_ids), S.PROPERTY_CUSTOMERS.record_ids(prop_ids)
    truth = pd.concat([
        pd.DataFrame({"record_id": auto_rec, "person_id": auto["person_id"], "household_id": auto["household_id"]}),
        pd.DataFrame({"record_id": prop_rec, "person_id": prop["person_id"], "household_id": prop["household_id"]})],
        ignore_index=True)
    labels = _labels(pd.concat([auto.assign(id=auto_rec), prop.assign(id=prop_rec)], ignore_index=True), r)
    accounts: dict = {}
    if visits is not None:
        from c360.entity_resolution.generate_accounts import account_labels, generate_accounts

        # a stream of its own: the insurance tables of a seed do not depend on whether accounts are generated
        account_truth, merged_accounts, accounts = generate_accounts(
            people, visits, out, np.random.default_rng([seed, 1]), visitors=visitors)
        truth = pd.concat([truth, account_truth], ignore_index=True)
        labels = pd.concat([labels, account_labels(labels, truth, merged_accounts)], ignore_index=True)
    files = {S.AUTO_CUSTOMER.file: auto_customer, S.AUTO_ADDRESS.file: auto_address, S.AUTO_VEHICLES.file: vehicles,
             S.PROPERTY_CUSTOMERS.file: prop_customers, S.PROPERTY_ADDRESSES.file: prop_addresses,
             "truth.csv": truth, "labels.csv": labels}
    for name, df in files.items():
        _write_csv(df, out / name)
    return {"out_dir": str(out), "persons": n_customers, "records": len(truth), "auto": len(auto),
            "property": len(prop), "vehicles": len(vehicles), "labels": len(labels), **accounts}


def _auto_tables(auto: pd.DataFrame, ids: np.ndarray, r: np.random.Generator) -> tuple[pd.DataFrame, ...]:
    """The auto line's customer, address and vehicles tables."""
    na = len(auto)
    dob_dt = pd.to_datetime(auto["date_of_birth"], format="%Y-%m-%d", errors="coerce")
    birthdate = dob_dt.dt.strftime("%m/%d/%Y").where(dob_dt.notna(), None)
    since = np.datetime64("2005-01-01") + r.integers(0, 6900, na).astype("timedelta64[D]")
    # customer tables are built in the merged table's column names; the schema renames them to the source's
    customer = S.AUTO_CUSTOMER.frame({
        "id": ids, "first_name": auto["first_name"], "last_name": auto["last_name"], "gender": auto["gender"],
        "company": auto["company"], "date_of_birth": auto["date_of_birth"], "birthdate": birthdate,
        "home_phone": auto["home_phone"], "ssn": auto["ssn_s"], "email": P.emails(auto), "priority": r.integers(1, 6, na),
        "policysince": pd.Series(since).dt.strftime("%Y-%m-%d"),
        "createddate": pd.Series(since + r.integers(0, 30, na).astype("timedelta64[D]")).dt.strftime("%Y-%m-%d")})
    key = S.AUTO_CUSTOMER.key_column
    address = S.AUTO_ADDRESS.frame({key: ids, "address": auto["address"], "city": auto["city"],
                                    "state": auto["state"], "zip": auto["zip"]})
    return customer, address, _vehicles(ids, r)


def _vehicles(ids: np.ndarray, r: np.random.Generator) -> pd.DataFrame:
    """One to three vehicles per auto policy, random VINs (a repeated VIN is dropped)."""
    nveh = r.choice([1, 2, 3], len(ids), p=[0.6, 0.3, 0.1])
    vpol = np.repeat(ids, nveh)
    mm = r.integers(0, len(N.MAKES_MODELS), len(vpol))
    vin_chars = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"))
    vins = ["".join(row) for row in vin_chars[r.integers(0, len(vin_chars), (len(vpol), 17))]]
    return S.AUTO_VEHICLES.frame({
        "vin": vins, S.AUTO_CUSTOMER.key_column: vpol, "make": [N.MAKES_MODELS[i][0] for i in mm],
        "model": [N.MAKES_MODELS[i][1] for i in mm], "year": r.integers(1998, 2026, len(vpol)),
        "color": r.choice(np.array(N.COLORS), len(vpol))}).drop_duplicates("vin")


def _property_tables(prop: pd.DataFrame, ids: np.ndarray, r: np.random.Generator) -> tuple[pd.DataFrame, ...]:
    """The property line's customers and addresses tables."""
    npr = len(prop)
    sales = r.gamma(2.0, 40_000, npr)
    customers = S.PROPERTY_CUSTOMERS.frame({
        "id": ids, "first_name": prop["first_name"], "last_name": prop["last_name"],
        "company": prop["company"], "date_of_birth": prop["date_of_birth"], "home_phone": prop["home_phone"],
        "ssn": prop["ssn_s"], "job": prop["job"], "email": P.emails(prop), "industry": prop["industry"],
        "city": prop["city"], "state": prop["state"], "zipcode": prop["zip"],
        "netnew": np.where(r.random(npr) < 0.2, "Y", "N"), "sales_rounded": np.round(sales, -3).astype(int),
        "sales_decimal": np.round(sales, 2), "priority": r.integers(1, 6, npr), "industry2": prop["industry"]})
    addresses = S.PROPERTY_ADDRESSES.frame({
        S.PROPERTY_CUSTOMERS.key_column: ids, "address": prop["address"], "city": prop["city"],
        "state": prop["state"], "zip": prop["zip"], "property_type": r.choice(np.array(N.PROPERTY_TYPES), npr),
        "year_built": r.integers(1900, 2025, npr), "insured_value": np.round(r.gamma(3.0, 120_000, npr), -2)})
    return customers, addresses


def _labels(rec: pd.DataFrame, r: np.random.Generator, n_sets: int = 300) -> pd.DataFrame:
    """Simulated reviewer labels, FindMatches format: a labeling set = a household's or a surname's records."""
    # the records carry the formatted SSN as ssn_s ("ssn" is the person's true number)
    cols = [c if c != "ssn" else "ssn_s" for c in S.MERGED_COLUMNS]
    groups = rec.groupby("household_id").indices
    keys = np.array(list(groups.keys()))
    pick = r.choice(keys, min(n_sets, len(keys)), replace=False)
    parts = []
    for s, h in enumerate(pick):
        g = rec.iloc[groups[h]]
        parts.append(g[cols].assign(labeling_set_id=f"set{s:05d}",
                                    label="p" + g["person_id"].astype(str)))
    out = pd.concat(parts, ignore_index=True).rename(columns={"ssn_s": "ssn"})
    return out[["labeling_set_id", "label", *S.MERGED_COLUMNS]]
