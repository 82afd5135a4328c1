"""The insurance source tables (modeled on the AWS customer-360 workshop) and the merged table, declared once.

The generator writes these tables, the nightly validation checks them, the Spark merge job and the graph export turn
the two customer tables into `merged_auto_property` — all from the declarations here. A new source table is one
more declaration below (plus the generator's data for it).

A customer table's transformation into merged rows is data (renames, drops, id suffix, address join); `to_merged_spark`
(the merge job) and `to_merged_pandas` (the graph export) are its two interpreters, so no rename is spelled twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from c360.io import require_columns

ADDRESS_COLUMNS = ("address", "city", "state", "zip")
# merged_auto_property: these first (in this order), then every other kept column
MERGED_FIRST = ("id", "first_name", "last_name", "company", "date_of_birth", "home_phone", "ssn", "source")
MERGED_COLUMNS = MERGED_FIRST + ADDRESS_COLUMNS
# merged columns every customer table must provide: the matcher's key roles (checked by the nightly validation)
MATCH_COLUMNS = ("first_name", "last_name", "date_of_birth", "ssn")


@dataclass(frozen=True, kw_only=True)
class SourceTable:
    """One source CSV: file name, every column in file order, the columns the pipeline needs, checks."""

    name: str                      # the table in validation counts and graph inputs ("auto_address")
    file: str
    columns: tuple[str, ...]
    required: tuple[str, ...] = ()
    unique: str | None = None      # a column that must be non-empty and unique
    numeric: tuple[str, ...] = ()  # columns whose values must parse as numbers

    def frame(self, data: Mapping) -> pd.DataFrame:
        """A DataFrame of exactly the declared columns, in file order (for writers of the table)."""
        if set(data) != set(self.columns):
            raise ValueError(f"{self.file}: columns {sorted(data)} are not the declared {list(self.columns)}")
        return pd.DataFrame({c: data[c] for c in self.columns})


@dataclass(frozen=True, kw_only=True)
class CustomerTable(SourceTable):
    """A line's customer table and how its rows become merged rows.

    Columns are renamed (source name → merged name; one of them becomes `id`), dropped, the id gets `-<line>`,
    `source` is the line, and the address table (same key column) supplies ADDRESS_COLUMNS.
    """

    line: str
    renames: Mapping[str, str] = field(hash=False)
    drops: tuple[str, ...]
    address: SourceTable

    def __post_init__(self):
        if not self.required:  # what the merge reads, and what matching needs (MATCH_COLUMNS)
            reads = self.merge_reads
            extra = tuple(c for c in self.source_names(MATCH_COLUMNS) if c not in reads)
            object.__setattr__(self, "required", reads + extra)
        if self.key_column not in self.address.columns:  # the address join relies on one key name in both
            raise ValueError(f"{self.address.file}: lacks the key column {self.key_column} of {self.file}")

    @property
    def key_column(self) -> str:
        """The source column that becomes `id` (and joins the address table)."""
        return self.source_names(["id"])[0]

    @property
    def merge_reads(self) -> tuple[str, ...]:
        """The columns the merge job renames or drops (it requires them)."""
        return (*self.renames, *self.drops)

    @property
    def suffix(self) -> str:
        return f"-{self.line}"

    def source_names(self, merged: list[str] | tuple[str, ...]) -> list[str]:
        """The source column behind each merged column name."""
        back = {new: old for old, new in self.renames.items()}
        return [back.get(c, c) for c in merged]

    def record_ids(self, keys) -> pd.Series:
        """Merged record ids (`<key>-<line>`) of source key values."""
        return pd.Series(keys).astype(str) + self.suffix

    def frame(self, data: Mapping) -> pd.DataFrame:
        """The table from columns named as in the merged table where renamed (writers never spell source names)."""
        return super().frame(dict(zip(self.source_names(list(data)), data.values(), strict=True)))


AUTO_ADDRESS = SourceTable(
    name="auto_address", file="source_auto_address.csv", columns=("policyid", *ADDRESS_COLUMNS),
    required=("policyid", *ADDRESS_COLUMNS), unique="policyid")
AUTO_VEHICLES = SourceTable(
    name="auto_vehicles", file="source_auto_vehicles.csv",
    columns=("vin", "policyid", "make", "model", "year", "color"),
    required=("vin", "policyid", "make", "model", "year"), unique="vin", numeric=("year",))
AUTO_CUSTOMER = CustomerTable(
    name="auto_customer", file="source_auto_customer.csv", line="auto", address=AUTO_ADDRESS,
    columns=("policyid", "fname", "lname", "gender", "work", "dob", "birthdate", "phone", "ssn", "email", "priority",
             "policysince", "createddate"),
    renames={"policyid": "id", "fname": "first_name", "lname": "last_name", "work": "company",
             "dob": "date_of_birth", "phone": "home_phone"},
    drops=("birthdate", "priority", "policysince", "createddate"), unique="policyid")
PROPERTY_ADDRESSES = SourceTable(
    name="property_addresses", file="source_property_addresses.csv",
    columns=("customer_id", *ADDRESS_COLUMNS, "property_type", "year_built", "insured_value"),
    required=("customer_id", *ADDRESS_COLUMNS))
PROPERTY_CUSTOMERS = CustomerTable(
    name="property_customers", file="source_property_customers.csv", line="property", address=PROPERTY_ADDRESSES,
    columns=("customer_id", "first_name", "last_name", "company", "date_of_birth", "home_phone", "social", "job",
             "email", "industry", "city", "state", "zipcode", "netnew", "sales_rounded", "sales_decimal", "priority",
             "industry2"),
    renames={"customer_id": "id", "social": "ssn"},
    drops=("job", "email", "industry", "city", "state", "zipcode", "netnew", "sales_rounded", "sales_decimal",
           "priority", "industry2"), unique="customer_id")



@dataclass(frozen=True, kw_only=True)
class AccountTable(SourceTable):
    """A table of accounts of another system (theme-park app accounts): records of a person like the customer
    tables' rows, without a policy or an address table. Its rows become merged rows by `renames` (source name →
    merged name; one of them becomes `id`) and `source` = `line`; the id is kept as it is, so it stays the key other
    data uses (the visits' USER_ID). A user's own table is configuration: a file and its columns' merged names."""

    line: str
    renames: Mapping[str, str] = field(hash=False)

    def __post_init__(self):
        if "id" not in self.renames.values():
            raise ValueError(f"{self.file}: no column is mapped to id")
        if not self.required:
            object.__setattr__(self, "required", tuple(self.renames))
        if not self.unique:
            object.__setattr__(self, "unique", self.key_column)

    @property
    def key_column(self) -> str:
        return next(old for old, new in self.renames.items() if new == "id")

    def frame(self, data: Mapping) -> pd.DataFrame:
        """The table from columns named as in the merged table (writers never spell source names)."""
        back = {new: old for old, new in self.renames.items()}
        return super().frame({back.get(k, k): v for k, v in data.items()})

    @classmethod
    def configured(cls, file: str, columns: Mapping[str, str]) -> "AccountTable":
        """A user's accounts table: `columns` maps merged names (id, first_name, last_name, date_of_birth, email,
        home_phone, zip, ...) to the file's columns; InputError naming the setting for a bad mapping. Its rows are of
        the park accounts' line (PARK_ACCOUNTS.line), the one the match, the graph and the recommenders know."""
        from c360.errors import InputError

        unknown = sorted(set(columns) - set(ACCOUNT_COLUMNS))
        if unknown or "id" not in columns:
            raise InputError(f"nightly.accounts.columns: {'unknown name(s) ' + ', '.join(unknown) if unknown else 'no id'}"
                             f" (merged names: {', '.join(ACCOUNT_COLUMNS)})")
        renames = {str(src): name for name, src in columns.items()}
        return cls(name="accounts", file=str(file), columns=tuple(renames), line=PARK_ACCOUNTS.line, renames=renames)

    def to_merged_pandas(self, accounts: pd.DataFrame) -> pd.DataFrame:
        """pandas: the accounts as merged rows (renamed, only the mapped columns, `source` = the line)."""
        require_columns(accounts, list(self.renames), self.file)
        df = accounts[list(self.renames)].rename(columns=dict(self.renames))
        return df.assign(id=df["id"].astype(str), source=self.line)

    def to_merged_spark(self, accounts):
        """Spark: the same as `to_merged_pandas`."""
        from pyspark.sql import functions as F

        cols = [F.col(f"`{old}`").cast("string").alias(new) for old, new in self.renames.items()]
        return accounts.select(*cols).withColumn("source", F.lit(self.line))


# the merged names an accounts table may map its columns to
ACCOUNT_COLUMNS = ("id", "first_name", "last_name", "date_of_birth", "email", "home_phone", "zip", "city", "state",
                   "address")
PARK_ACCOUNTS = AccountTable(
    name="park_accounts", file="park_accounts.csv", line="park",
    columns=("account_id", "first_name", "last_name", "birth_date", "email", "phone", "zip"),
    renames={"account_id": "id", "first_name": "first_name", "last_name": "last_name",
             "birth_date": "date_of_birth", "email": "email", "phone": "home_phone", "zip": "zip"})

# every source table, in validation order; the customer tables, in merge (union) order
SOURCE_TABLES: tuple[SourceTable, ...] = (AUTO_CUSTOMER, AUTO_ADDRESS, AUTO_VEHICLES, PROPERTY_CUSTOMERS,
                                          PROPERTY_ADDRESSES)
CUSTOMER_TABLES: tuple[CustomerTable, ...] = (AUTO_CUSTOMER, PROPERTY_CUSTOMERS)


def merged_order(columns) -> list[str]:
    """Merged columns in the merged table's order: MERGED_COLUMNS first (those present), then the rest."""
    cols = list(columns)
    return [c for c in MERGED_COLUMNS if c in cols] + [c for c in cols if c not in MERGED_COLUMNS]


def to_merged_spark(t: CustomerTable, customers, addresses):
    """Spark: one line's customer rows as merged rows (renamed, dropped, `-<line>` ids, `source`, address)."""
    from pyspark.sql import functions as F

    for old, new in t.renames.items():
        customers = customers.withColumnRenamed(old, new)
    customers = (customers.drop(*t.drops).withColumn("id", F.concat(F.col("id").cast("string"), F.lit(t.suffix)))
                 .withColumn("source", F.lit(t.line)))
    addresses = addresses.select(F.concat(F.col(t.key_column).cast("string"), F.lit(t.suffix)).alias("id"),
                                 *ADDRESS_COLUMNS).dropDuplicates(["id"])
    return customers.join(addresses, "id", "left")


def to_merged_pandas(t: CustomerTable, customers: pd.DataFrame, addresses: pd.DataFrame | None) -> pd.DataFrame:
    """pandas: the same transformation as `to_merged_spark`; without an address table the address is missing."""
    df = customers.rename(columns=dict(t.renames)).drop(columns=list(t.drops), errors="ignore")
    df = df.assign(id=df["id"].astype(str) + t.suffix, source=t.line)
    if addresses is not None:
        require_columns(addresses, (t.key_column, *ADDRESS_COLUMNS), t.address.file)
        addr = addresses[[t.key_column, *ADDRESS_COLUMNS]]
        addr = addr.assign(id=addr[t.key_column].astype(str) + t.suffix)[["id", *ADDRESS_COLUMNS]]
        df = df.merge(addr.drop_duplicates("id"), on="id", how="left")
    return df



def merged_frame(sources_dir, accounts: AccountTable | None = None) -> pd.DataFrame:
    """pandas: the merge job's output for a local sources directory (its customer tables with their addresses, and
    the accounts table: the given one, else park_accounts.csv when the directory has it), for single-machine
    benchmarks and tests; the nightly merges with Spark (`merge.merge`)."""
    from pathlib import Path

    d = Path(sources_dir)

    def read(file: str) -> pd.DataFrame:
        path = d / file
        if not path.is_file():
            from c360.errors import InputError

            raise InputError(f"{path}: file not found")
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])

    parts = [to_merged_pandas(t, read(t.file), read(t.address.file)) for t in CUSTOMER_TABLES]
    table = accounts or (PARK_ACCOUNTS if (d / PARK_ACCOUNTS.file).is_file() else None)
    if table is not None:
        parts.append(table.to_merged_pandas(read(table.file)))
    merged = pd.concat(parts, ignore_index=True)
    return merged[merged_order(merged.columns)]
