"""The nightly validation names the file and column of every bad input."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from c360.errors import InputError
from c360.jobs.validate import validate_insurance, validate_visits, visits_format


def _broken(tmp_path, insurance, name, change):
    d = tmp_path / "ins"
    shutil.copytree(insurance, d)
    df = pd.read_csv(d / name, dtype=str)
    change(df).to_csv(d / name, index=False)
    return d


def test_validate_insurance(spark, tmp_path, insurance):
    rows = validate_insurance(insurance, spark)
    assert set(rows) == {"auto_customer", "auto_address", "auto_vehicles", "property_customers", "property_addresses"}
    assert all(n > 0 for n in rows.values())

    dup = _broken(tmp_path / "a", insurance, "source_auto_customer.csv", lambda df: pd.concat([df, df.head(1)]))
    with pytest.raises(InputError, match=r"source_auto_customer.csv: column policyid has duplicate values: \d+"):
        validate_insurance(dup, spark)
    year = _broken(tmp_path / "b", insurance, "source_auto_vehicles.csv", lambda df: df.assign(year="nineteen"))
    with pytest.raises(InputError, match="source_auto_vehicles.csv: column year has non-numeric values: 'nineteen'"):
        validate_insurance(year, spark)
    empty_id = _broken(tmp_path / "c", insurance, "source_property_customers.csv",
                       lambda df: df.assign(customer_id=[None] + list(df["customer_id"][1:])))
    with pytest.raises(InputError, match="source_property_customers.csv: column customer_id has 1 empty value"):
        validate_insurance(empty_id, spark)
    header_only = _broken(tmp_path / "d", insurance, "source_auto_address.csv", lambda df: df.head(0))
    with pytest.raises(InputError, match="source_auto_address.csv: table has no rows"):
        validate_insurance(header_only, spark)
    (header_only / "source_auto_vehicles.csv").unlink()
    with pytest.raises(InputError, match="not found"):
        validate_insurance(tmp_path / "nowhere", spark)


def test_validate_accounts_like_the_other_sources(spark, tmp_path, insurance):
    """An accounts table (the generator's, or a user's by configuration) is checked like the insurance tables."""
    from c360.entity_resolution.sources import PARK_ACCOUNTS, AccountTable

    d = tmp_path / "with_accounts"
    shutil.copytree(insurance, d)
    accounts = pd.DataFrame({"account_id": ["acct-1", "acct-2"], "first_name": ["Ann", "Bo"], "last_name": ["Lee", "Ng"],
                             "birth_date": ["1980-01-02", None], "email": ["a@x.org", None], "phone": [None, None],
                             "zip": ["98101", "97201"]})
    accounts.to_csv(d / PARK_ACCOUNTS.file, index=False)
    assert validate_insurance(d, spark, accounts=PARK_ACCOUNTS)["park_accounts"] == 2
    accounts.assign(account_id="acct-1").to_csv(d / PARK_ACCOUNTS.file, index=False)
    with pytest.raises(InputError, match="park_accounts.csv: column account_id has duplicate values: acct-1"):
        validate_insurance(d, spark, accounts=PARK_ACCOUNTS)
    mine = AccountTable.configured(str(d / "app_users.csv"), {"id": "uid", "first_name": "given"})
    pd.DataFrame({"uid": ["u1"], "name": ["Ann"]}).to_csv(d / "app_users.csv", index=False)
    with pytest.raises(InputError, match="app_users.csv: missing column.*given"):
        validate_insurance(d, spark, accounts=mine)


def test_validate_visits(tmp_path, epcot_visits):
    rows = validate_visits(epcot_visits, "sigir17", None)
    assert rows["visit_events"] > 0 and rows["items"] > 0
    assert visits_format(None, None) == "sigir17" and visits_format(str(epcot_visits), None) == "sigir17"
    events = tmp_path / "events.csv"
    events.write_text("USER_ID,ITEM_ID,TIMESTAMP\nu1,a,1\n")
    items = tmp_path / "items.csv"
    items.write_text("ITEM_ID,NAME\nb,B\n")
    assert visits_format(str(events), None) == "personalize"
    with pytest.raises(InputError, match="ITEM_ID.*not in the item table: a"):
        validate_visits(events, "personalize", items)
    with pytest.raises(InputError, match="visits_format"):
        visits_format(None, "csv")
