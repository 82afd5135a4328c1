"""Generate park accounts for the visitors of a sigir17 visit directory, and those visits keyed by account.

Each visitor of the visits is a person. A share of them are insurance customers (the same people as the generated
insurance tables, with the errors real data has between systems); the others are new people, among them relatives
of insured people (sharing surname, phone, address, twins even the birth date) and name-alike strangers. A person's
first trip opens an account; each later trip opens a new one with probability `new_account_p` (at most
`max_accounts`), else it stays on the latest. Every account has its own errors: nicknames, typos, another e-mail,
a missing phone or birth date, a ZIP from an older address.

What is written: `park_accounts.csv` (declared in `sources.PARK_ACCOUNTS`), the visits in the sigir17 layout with
the account id in place of the visitor's (`visits/`), and the accounts' rows of `truth.csv` (the matcher never reads
it; neither do the recommenders).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from c360.entity_resolution import names as N
from c360.entity_resolution import people as P
from c360.entity_resolution import sources as S
from c360.errors import InputError
from c360.io import atomic_path

# probability per account and field
ACCOUNT_NOISE = {"nickname": 0.15, "first_typo": 0.04, "first_case": 0.05, "last_typo": 0.03, "last_case": 0.05,
                 "other_email": 0.3, "email_missing": 0.05, "phone_missing": 0.3, "phone_typo": 0.02,
                 "dob_missing": 0.2, "dob_typo": 0.02, "old_zip": 0.1}
INSURED_SHARE = 0.25        # visitors who are also insurance customers (at most all of them)
RELATIVE_SHARE = 0.05       # new people who join an insured person's household
ALIKE_SHARE = 0.03          # new people with an insured person's first and last name
NEW_ACCOUNT_P = 0.4
MAX_ACCOUNTS = 3
VISITS_DIR = "visits"
SUBDIRS = ("userVisits-sigir17", "poiList-sigir17", "costProf-sigir17")
MAIL_DOMAINS = np.array(["example.com", "example.net", "example.org", "mail.example"])


def _raw_visits(visits_dir: Path) -> dict[str, pd.DataFrame]:
    """The visit files of a sigir17 directory as read (every column kept), by file name."""
    folder = visits_dir / SUBDIRS[0]
    files = sorted(folder.glob("userVisits-*-allPOI.csv")) if folder.is_dir() else []
    if not files:
        raise InputError(f"{visits_dir}: no {SUBDIRS[0]}/userVisits-*-allPOI.csv files (a sigir17 directory)")
    out = {}
    for f in files:
        df = pd.read_csv(f, sep=";", dtype={"nsid": str, "poiTheme": str})
        for col in ("nsid", "takenUnix", "seqID"):
            if col not in df.columns:
                raise InputError(f"{f}: missing column {col}")
        out[f.name] = df
    return out


def _trips(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per trip: file, nsid, seqID, start (trips are numbered per park, i.e. per file)."""
    parts = [df.groupby(["nsid", "seqID"], as_index=False)["takenUnix"].min().assign(file=name)
             for name, df in raw.items()]
    return pd.concat(parts, ignore_index=True).rename(columns={"takenUnix": "start"})


def _persons(visitors: np.ndarray, people: pd.DataFrame, r: np.random.Generator,
             insured_share: float) -> pd.DataFrame:
    """One person per visitor: insured people (rows of `people`) for a share, new people for the rest, some of
    them relatives or name-alikes of insured people."""
    n = len(visitors)
    n_insured = min(int(round(insured_share * n)), len(people))
    order = r.permutation(n)
    insured = people.iloc[r.choice(len(people), n_insured, replace=False)].reset_index(drop=True)
    fresh = P.people(n - n_insured, r)
    fresh["person_id"] += len(people)
    fresh["household_id"] += len(people)
    # relatives of insured people: their surname, phone and address (twins: the birth date too)
    rel = np.flatnonzero(r.random(len(fresh)) < RELATIVE_SHARE)
    kin = people.iloc[r.integers(0, len(people), len(rel))].reset_index(drop=True)
    for col in ("household_id", "last", "phone", "street_no", "street", "city", "state", "zip"):
        fresh.loc[rel, col] = kin[col].to_numpy()
    twins = r.random(len(rel)) < 0.12
    fresh.loc[rel[twins], "dob"] = kin.loc[twins, "dob"].to_numpy()
    alike = np.flatnonzero(r.random(len(fresh)) < ALIKE_SHARE)
    twin_of = people.iloc[r.integers(0, len(people), len(alike))]
    fresh.loc[alike, "first"], fresh.loc[alike, "last"] = twin_of["first"].to_numpy(), twin_of["last"].to_numpy()
    persons = pd.concat([insured, fresh], ignore_index=True).iloc[np.argsort(order)].reset_index(drop=True)
    return persons.assign(nsid=visitors)


def _accounts_of_trips(trips: pd.DataFrame, r: np.random.Generator, new_account_p: float,
                       max_accounts: int) -> pd.DataFrame:
    """trips + `account_no` (0-based within the visitor): a later trip opens a new account with `new_account_p`."""
    trips = trips.sort_values(["nsid", "start", "file", "seqID"], ignore_index=True)
    first = ~trips["nsid"].duplicated()
    opens = (r.random(len(trips)) < new_account_p) | first.to_numpy()
    opened = pd.Series(opens.astype(int)).groupby(trips["nsid"]).cumsum() - 1
    return trips.assign(account_no=np.minimum(opened.to_numpy(), max_accounts - 1))


def _account_rows(persons: pd.DataFrame, accounts: pd.DataFrame, r: np.random.Generator,
                  noise: dict) -> pd.DataFrame:
    """The accounts' fields: the person's, with each account's own errors."""
    a = accounts.merge(persons, on="nsid", how="left")
    n = len(a)
    m = {key: r.random(n) < p for key, p in noise.items()}
    first = a["first"].to_numpy(dtype=object).copy()
    nick = np.flatnonzero(m["nickname"])
    first[nick] = [N.NICKNAMES.get(f, f) for f in first[nick]]
    P.apply(first, m["first_typo"], P.typo, r)
    P.apply(first, m["first_case"], P.case_change, r)
    last = a["last"].to_numpy(dtype=object).copy()
    P.apply(last, m["last_typo"], P.typo, r)
    P.apply(last, m["last_case"], P.case_change, r)
    email = P.emails(a).to_numpy(dtype=object)
    other = np.flatnonzero(m["other_email"])
    email[other] = [f"{str(f)[:1].lower()}{str(s).lower()}{k}@{d}" for f, s, k, d in zip(
        a["first"].to_numpy()[other], a["last"].to_numpy()[other], r.integers(1, 999, len(other)),
        r.choice(MAIL_DOMAINS, len(other)), strict=True)]
    email[m["email_missing"]] = None
    phone = a["phone"].to_numpy().copy()
    phone[m["phone_typo"]] += r.integers(1, 9, int(m["phone_typo"].sum()))
    phone_s = P.fmt_phone(phone)
    phone_s[m["phone_missing"]] = None
    dob = pd.Series(a["dob"].to_numpy()).dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    typo_d = np.flatnonzero(m["dob_typo"])
    dob[typo_d] = [s[:9] + str((int(s[9]) + 1) % 10) for s in dob[typo_d]]
    dob[m["dob_missing"]] = None
    zp = a["zip"].to_numpy(dtype=object).copy()
    old = np.flatnonzero(m["old_zip"])
    zp[old] = [N.CITIES[c][2] + f"{z:03d}" for c, z in
               zip(r.integers(0, len(N.CITIES), len(old)), r.integers(0, 1000, len(old)), strict=True)]
    return a.assign(first_name=first, last_name=last, email=email, home_phone=phone_s, date_of_birth=dob, zip=zp)


def _write_visits(raw: dict[str, pd.DataFrame], trips: pd.DataFrame, visits_dir: Path, out: Path) -> None:
    """The sigir17 directory again, each visit's visitor replaced by its trip's account."""
    target = out / VISITS_DIR
    if target.exists():
        shutil.rmtree(target)
    for sub in SUBDIRS[1:]:
        if (visits_dir / sub).is_dir():
            shutil.copytree(visits_dir / sub, target / sub)
    (target / SUBDIRS[0]).mkdir(parents=True)
    for name, df in raw.items():
        keys = trips[trips["file"] == name].set_index(["nsid", "seqID"])["account_id"]
        account = keys.reindex(pd.MultiIndex.from_frame(df[["nsid", "seqID"]])).to_numpy()
        kept = pd.notna(account)
        with atomic_path(target / SUBDIRS[0] / name) as tmp:
            df.loc[kept].assign(nsid=account[kept]).to_csv(tmp, sep=";", index=False)


def generate_accounts(people: pd.DataFrame, visits_dir: str | Path, out_dir: str | Path, r: np.random.Generator,
                      visitors: int | None = None, insured_share: float = INSURED_SHARE,
                      new_account_p: float = NEW_ACCOUNT_P, max_accounts: int = MAX_ACCOUNTS,
                      noise: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Write park_accounts.csv and visits/ into out_dir for the visitors of `visits_dir` (or `visitors` of them,
    drawn at random); return (the accounts' truth rows: record_id, person_id, household_id; the accounts as merged
    rows; counts)."""
    visits_dir, out = Path(visits_dir), Path(out_dir)
    raw = _raw_visits(visits_dir)
    trips = _trips(raw)
    names = np.array(sorted(trips["nsid"].unique()), dtype=object)
    if visitors is not None:
        if visitors < 1:
            raise InputError(f"--visitors must be >= 1 (got {visitors})")
        names = np.sort(r.choice(names, min(visitors, len(names)), replace=False))
        trips = trips[trips["nsid"].isin(set(names))]
    persons = _persons(names, people, r, insured_share)
    trips = _accounts_of_trips(trips, r, new_account_p, max_accounts)
    accounts = trips[["nsid", "account_no"]].drop_duplicates().sort_values(["nsid", "account_no"], ignore_index=True)
    numbers = r.permutation(len(accounts)) + 1
    accounts["account_id"] = [f"acct-{k:07d}" for k in numbers]
    trips = trips.merge(accounts, on=["nsid", "account_no"])
    rows = _account_rows(persons, accounts, r, {**ACCOUNT_NOISE, **(noise or {})})
    table = S.PARK_ACCOUNTS.frame({"id": rows["account_id"], "first_name": rows["first_name"],
                                   "last_name": rows["last_name"], "date_of_birth": rows["date_of_birth"],
                                   "email": rows["email"], "home_phone": rows["home_phone"], "zip": rows["zip"]})
    with atomic_path(out / S.PARK_ACCOUNTS.file) as tmp:
        table.sort_values(S.PARK_ACCOUNTS.key_column).to_csv(tmp, index=False)
    _write_visits(raw, trips, visits_dir, out)
    truth = pd.DataFrame({"record_id": rows["account_id"], "person_id": rows["person_id"],
                          "household_id": rows["household_id"]})
    insured = int((persons["person_id"] < len(people)).sum())
    return truth, S.PARK_ACCOUNTS.to_merged_pandas(table), {"visitors": len(names), "accounts": len(accounts), "insured_visitors": insured,
                   "trips": len(trips)}


def account_labels(labels: pd.DataFrame, truth: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """The simulated reviewer's labels for the accounts: each labelled household's accounts join its labeling set
    (label = the person), so labels judge account pairs as well as policy records (the labels' columns)."""
    t = truth.assign(record_id=truth["record_id"].astype(str))
    sets = labels[["labeling_set_id", "id"]].merge(t, left_on="id", right_on="record_id")
    sets = sets.drop_duplicates("household_id")[["labeling_set_id", "household_id"]]
    rows = t.merge(sets, on="household_id").merge(accounts, left_on="record_id", right_on="id")
    rows = rows.assign(label="p" + rows["person_id"].astype(str))
    return rows.reindex(columns=labels.columns)
