"""A small deterministic sample in the pipeline's schemas: insurance (five source tables), theme-park app accounts
with their visits, trips and recommendations, and the matched table that joins them.

Used by the exploration notebook and the tests when no pipeline output is at hand. James Carter has an auto
and a property record with different addresses and phone numbers: nothing links them in the raw graph, only
the match (SameAs) joins them. Names include commas and quotes to exercise CSV quoting.

Park accounts are rows of the matched table with source `park` (their id the USER_ID of the visits): Maria Lopez
(insured: an auto policy with three vehicles and a property policy) has two accounts, Priya Natarajan one and no
insurance (a match of her own). Their attractions are real ones of the shipped sigir17 parks (same ids and names).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# person: (first, last, dob, ssn, company)
PEOPLE = [
    ("James", "Carter", "1975-04-02", "123-45-6789", "Carter Logistics"),
    ("Maria", "Lopez", "1982-11-23", "234-56-7890", 'Lopez, "Best" Bakery'),
    ("Sean", "O'Neil, Jr.", "1990-01-15", "345-67-8901", "Harbor Co"),
    ("Anna", "Kowalski", "1968-07-30", "456-78-9012", "Kowalski & Sons"),
    ("James", "Whitfield", "2001-09-09", "567-89-0123", "Student"),
]
# auto policies: (policyid, person index, first-name spelling, phone, address, city, state, zip, vehicles)
AUTO = [
    (1001, 0, "James", "555-0101", "12 Elm St", "Springfield", "IL", "62701",
     [("1HGCM82633A004352", "Honda", "Accord", 2018, "blue")]),
    (1002, 1, "Maria", "555-0102", "7 Oak Ave", "Austin", "TX", "73301",
     [("2T1BURHE0JC074321", "Toyota", "Corolla", 2019, "red"), ("3FAHP0HA6AR123456", "Ford", "Fusion", 2010, "grey"),
      ("1FTFW1ET5DFC10312", "Ford", "F-150", 2013, "black")]),
    (1003, 2, "Sean", "555-0103", "99 Pier Rd", "Boston", "MA", "02110",
     [("5YJ3E1EA7KF317000", "Tesla", "Model 3", 2019, "white")]),
    (1004, 4, "James", "555-0105", "4 College Way", "Ann Arbor", "MI", "48104",
     [("JH4KA8260MC000001", "Acura", "Legend", 1991, "green")]),
]
# property policies: (customer_id, person index, first-name spelling, phone, address, city, state, zip, type, built, value)
PROPERTY = [
    (5001, 0, "Jim", "555-0901", "300 Lakeview Dr", "Madison", "WI", "53703", "house", 1998, 310000.0),
    (5002, 1, "Maria", "555-0102", "7 Oak Ave", "Austin", "TX", "73301", "house", 2005, 420000.0),
    (5003, 3, "Anna", "555-0104", "18 Birch Ln", "Dayton", "OH", "45402", "condo", 2012, 185000.5),
]


def source_tables() -> dict[str, pd.DataFrame]:
    """The five source tables (as `c360 er generate` writes them), keyed by file name."""
    auto_c, auto_a, auto_v, prop_c, prop_a = [], [], [], [], []
    for pid, i, first, phone, street, city, state, zip_, vehicles in AUTO:
        _, last, dob, ssn, company = PEOPLE[i]
        y, m, d = dob.split("-")
        auto_c.append({"policyid": pid, "fname": first, "lname": last, "gender": "U", "work": company, "dob": dob,
                       "birthdate": f"{m}/{d}/{y}", "phone": phone, "ssn": ssn, "email": f"{first.lower()}@example.com",
                       "priority": "normal", "policysince": "2015-01-01", "createddate": "2015-01-01"})
        auto_a.append({"policyid": pid, "address": street, "city": city, "state": state, "zip": zip_})
        for vin, make, model, year, color in vehicles:
            auto_v.append({"vin": vin, "policyid": pid, "make": make, "model": model, "year": year, "color": color})
    for cid, i, first, phone, street, city, state, zip_, ptype, built, value in PROPERTY:
        _, last, dob, ssn, company = PEOPLE[i]
        prop_c.append({"customer_id": cid, "first_name": first, "last_name": last, "company": company,
                       "date_of_birth": dob, "home_phone": phone, "social": ssn, "job": "", "email": "",
                       "industry": "", "city": city, "state": state, "zipcode": zip_, "netnew": "", "sales_rounded": "",
                       "sales_decimal": "", "priority": "", "industry2": ""})
        prop_a.append({"customer_id": cid, "address": street, "city": city, "state": state, "zip": zip_,
                       "property_type": ptype, "year_built": built, "insured_value": value})
    return {"source_auto_customer.csv": pd.DataFrame(auto_c), "source_auto_address.csv": pd.DataFrame(auto_a),
            "source_auto_vehicles.csv": pd.DataFrame(auto_v), "source_property_customers.csv": pd.DataFrame(prop_c),
            "source_property_addresses.csv": pd.DataFrame(prop_a)}


# theme-park app accounts: (account id = USER_ID, person: an index of PEOPLE or of PARK_PEOPLE as ("park", j),
# phone, email, zip)
PARK_PEOPLE = [("Priya", "Natarajan", "1993-05-17")]
ACCOUNTS = [
    ("acct-0000101", 1, "555-0102", "maria.lopez@example.com", "73301"),
    ("acct-0000102", 1, "555-0102", "mlopez@example.net", "73301"),
    ("acct-0000201", ("park", 0), "555-0201", "priya.n@example.org", "94110"),
]
# attractions of the shipped sigir17 parks the accounts visited or were recommended (ids and names as shipped)
PARK_ITEMS = [
    ("caliAdv:11", "California Screamin'", "caliAdv", "Roller Coaster"),
    ("caliAdv:12", "Soarin' Around the World", "caliAdv", "Ride"),
    ("caliAdv:14", "Radiator Springs Racers", "caliAdv", "Ride"),
    ("caliAdv:15", "The Twilight Zone Tower of Terror", "caliAdv", "Roller Coaster"),
    ("epcot:1", "Test Track", "epcot", "Dark"),
    ("epcot:9", "Mission: SPACE", "epcot", "Ride"),
    ("epcot:11", "Spaceship Earth", "epcot", "Dark"),
]
# trips: (account, trip number, start epoch seconds, [(item, minutes after the start, photos)])
TRIPS = [
    ("acct-0000101", 0, 1717236000, [("caliAdv:12", 0, 2), ("caliAdv:14", 60, 1)]),      # 2024-06-01
    ("acct-0000101", 1, 1723284000, [("caliAdv:12", 0, 1), ("caliAdv:15", 30, 3)]),      # 2024-08-10
    ("acct-0000101", 2, 1726394400, [("epcot:1", 0, 2)]),                                # 2024-09-15
    ("acct-0000102", 0, 1740909600, [("caliAdv:14", 0, 1), ("caliAdv:12", 40, 1)]),      # 2025-03-02
    ("acct-0000201", 0, 1737367200, [("epcot:1", 0, 1), ("epcot:11", 20, 2)]),           # 2025-01-20
]
# recommendations of the served model: (account, item, rank, score)
RECS = [
    ("acct-0000101", "epcot:11", 1, 0.9), ("acct-0000101", "caliAdv:14", 2, 0.8),
    ("acct-0000101", "caliAdv:11", 3, 0.5),
    ("acct-0000102", "caliAdv:15", 1, 0.85), ("acct-0000102", "epcot:11", 2, 0.6),
    ("acct-0000102", "epcot:9", 3, 0.55),
    ("acct-0000201", "epcot:9", 1, 0.7), ("acct-0000201", "caliAdv:12", 2, 0.4),
]


def _account_person(who) -> tuple[str, str, str, int]:
    """(first, last, date of birth, match_id) of an account's person."""
    if isinstance(who, tuple):
        first, last, dob = PARK_PEOPLE[who[1]]
        return first, last, dob, 100 + len(PEOPLE) + who[1]
    first, last, dob, _, _ = PEOPLE[who]
    return first, last, dob, 100 + who


def account_rows() -> list[dict]:
    """The park accounts as rows of the matched table (source `park`; no ssn, address, city, state, company)."""
    rows = []
    for uid, who, phone, email, zip_ in ACCOUNTS:
        first, last, dob, mid = _account_person(who)
        rows.append({"id": uid, "first_name": first, "last_name": last, "company": None, "date_of_birth": dob,
                     "home_phone": phone, "ssn": None, "source": "park", "address": None, "city": None,
                     "state": None, "zip": zip_, "match_id": mid, "email": email})
    return rows


def park_items() -> pd.DataFrame:
    """ITEM_ID, NAME, PARK, THEME of the accounts' attractions."""
    return pd.DataFrame(PARK_ITEMS, columns=["ITEM_ID", "NAME", "PARK", "THEME"])


def park_events() -> pd.DataFrame:
    """The accounts' visits, one row per attraction of a trip: USER_ID, ITEM_ID, TIMESTAMP, EVENT_VALUE (photos),
    SESSION_ID (`<account>#<n>`)."""
    rows = [{"USER_ID": uid, "ITEM_ID": item, "TIMESTAMP": start + 60 * minutes, "EVENT_VALUE": photos,
             "SESSION_ID": f"{uid}#{n}"}
            for uid, n, start, stops in TRIPS for item, minutes, photos in stops]
    return pd.DataFrame(rows)


def park_trips() -> pd.DataFrame:
    """The accounts' trips as the nightly keeps them (recsys.trips: SESSION_ID, USER_ID, ITEM_ID, TIMESTAMP, ...)."""
    from c360.recsys.trips import trips

    return trips(park_events())


def park_recs() -> pd.DataFrame:
    """USER_ID, ITEM_ID, RANK, SCORE of the accounts."""
    return pd.DataFrame(RECS, columns=["USER_ID", "ITEM_ID", "RANK", "SCORE"])


def matched_table() -> pd.DataFrame:
    """The merged rows + match_id as the matcher would give them (records of one person share a match_id), the
    park accounts' rows included (source `park`)."""
    rows = []
    for pid, i, first, phone, street, city, state, zip_, _ in AUTO:
        _, last, dob, ssn, company = PEOPLE[i]
        rows.append({"id": f"{pid}-auto", "first_name": first, "last_name": last, "company": company,
                     "date_of_birth": dob, "home_phone": phone, "ssn": ssn, "source": "auto", "address": street,
                     "city": city, "state": state, "zip": zip_, "match_id": 100 + i})
    for cid, i, first, phone, street, city, state, zip_, *_ in PROPERTY:
        _, last, dob, ssn, company = PEOPLE[i]
        rows.append({"id": f"{cid}-property", "first_name": first, "last_name": last, "company": company,
                     "date_of_birth": dob, "home_phone": phone, "ssn": ssn, "source": "property", "address": street,
                     "city": city, "state": state, "zip": zip_, "match_id": 100 + i})
    rows = [{**r, "email": None} for r in rows] + account_rows()
    df = pd.DataFrame(rows)
    df["match_id"] = df["match_id"].astype("int64")
    return df


def id_changes_table() -> pd.DataFrame:
    """What the sample's match made of a previous run's ids (c360.entity_resolution.id_changes): two ids merged
    into Sean O'Neil's match, one into James Carter's, one retired, one split, the others kept."""
    rows = [(100, "kept", [], 2, 2), (101, "kept", [], 4, 4), (102, "kept", [], 1, 1), (103, "split", [104], 3, 2),
            (104, "new", [], 0, 1), (105, "kept", [], 1, 1), (7, "merged", [102], 1, 0),
            (12, "merged", [102, 100], 3, 0), (9, "merged", [100], 1, 0), (20, "retired", [], 2, 0)]
    return pd.DataFrame(rows, columns=["match_id", "change", "into", "records_before", "records_after"])


def write_id_changes(changes: pd.DataFrame, path: str | Path) -> Path:
    """An id changes table as the match writes it (match_id, records_before, records_after int64; into a list of
    int64)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("match_id", pa.int64()), ("change", pa.string()), ("into", pa.list_(pa.int64())),
                        ("records_before", pa.int64()), ("records_after", pa.int64())])
    pq.write_table(pa.Table.from_pandas(changes, schema=schema, preserve_index=False), path)
    return Path(path)


def write_sample(out_dir: str | Path) -> dict[str, Path]:
    """Write sources/<five tables>.csv, matched.parquet (and the id changes beside it), and the park accounts'
    interactions.csv, trips.parquet, items.csv and recs.csv under out_dir; return their paths."""
    from c360.io import write_table
    from c360.layout import MatchOutput

    out = Path(out_dir)
    src = out / "sources"
    for name, df in source_tables().items():
        write_table(df, src / name)
    events = park_events()
    matched = write_table(matched_table(), out / "matched.parquet")
    write_id_changes(id_changes_table(), MatchOutput(matched).id_changes)
    return {"sources": src, "matched": matched,
            "interactions": write_table(events[["USER_ID", "ITEM_ID", "TIMESTAMP", "EVENT_VALUE"]],
                                        out / "interactions.csv"),
            "trips": write_table(park_trips(), out / "trips.parquet"),
            "items": write_table(park_items(), out / "items.csv"),
            "recs": write_table(park_recs(), out / "recs.csv")}
