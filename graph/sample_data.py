"""A small deterministic insurance sample in the pipeline's schemas (five source tables + matched table).

Used by the exploration notebook and the tests when no pipeline output is at hand. James Carter has an auto
and a property record with different addresses and phone numbers: nothing links them in the raw graph, only
the match (SameAs) joins them. Names include commas and quotes to exercise CSV quoting.
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


def matched_table() -> pd.DataFrame:
    """The merged rows + match_id as the matcher would give them (records of one person share a match_id)."""
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
    df = pd.DataFrame(rows)
    df["match_id"] = df["match_id"].astype("int64")
    return df


def write_sample(out_dir: str | Path) -> dict[str, Path]:
    """Write sources/<five tables>.csv and matched.parquet under out_dir; return their paths."""
    from c360.io import write_table

    out = Path(out_dir)
    src = out / "sources"
    for name, df in source_tables().items():
        write_table(df, src / name)
    return {"sources": src, "matched": write_table(matched_table(), out / "matched.parquet")}
