"""The workshop's merge job on Spark: rename, drop, suffix ids, join addresses, union → merged_auto_property."""

from __future__ import annotations

from pathlib import Path

from c360.errors import InputError
from c360.io import atomic_path

AUTO_RENAMES = {"policyid": "id", "fname": "first_name", "lname": "last_name", "work": "company",
                "dob": "date_of_birth", "phone": "home_phone"}
AUTO_DROPS = ["birthdate", "priority", "policysince", "createddate"]
PROPERTY_RENAMES = {"customer_id": "id", "social": "ssn"}
PROPERTY_DROPS = ["job", "email", "industry", "city", "state", "zipcode", "netnew", "sales_rounded",
                  "sales_decimal", "priority", "industry2"]
SOURCES = {"auto_customer": "source_auto_customer.csv", "auto_address": "source_auto_address.csv",
           "property_customers": "source_property_customers.csv",
           "property_addresses": "source_property_addresses.csv"}
ADDRESS_COLUMNS = ["address", "city", "state", "zip"]


def read_source(spark, path: Path, required: list[str]):
    """A source CSV as a Spark DataFrame of strings; InputError naming the file for a missing file, an empty
    file, missing columns or no rows."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    df = spark.read.csv(str(path), header=True, inferSchema=False)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    if df.limit(1).count() == 0:
        raise InputError(f"{path}: table has no rows")
    return df


def merge(sources_dir: str | Path, out_path: str | Path, spark=None) -> dict:
    """Merge the auto and property source tables in sources_dir into one Parquet file at out_path.

    Returns {"out", "rows", "auto", "property"}. The output is a single Parquet file written atomically.
    """
    from pyspark.sql import functions as F

    from c360.spark import get_spark

    spark = spark or get_spark(app_name="c360-er-merge")
    d = Path(sources_dir)
    auto = read_source(spark, d / SOURCES["auto_customer"], list(AUTO_RENAMES) + AUTO_DROPS)
    auto_addr = read_source(spark, d / SOURCES["auto_address"], ["policyid"] + ADDRESS_COLUMNS)
    prop = read_source(spark, d / SOURCES["property_customers"], list(PROPERTY_RENAMES) + PROPERTY_DROPS)
    prop_addr = read_source(spark, d / SOURCES["property_addresses"], ["customer_id"] + ADDRESS_COLUMNS)
    for df, path, key in ((auto, SOURCES["auto_customer"], "policyid"),
                          (prop, SOURCES["property_customers"], "customer_id")):
        dup = df.groupBy(key).count().where("count > 1").limit(5).collect()
        if dup:
            raise InputError(f"{d / path}: duplicate {key} values: {', '.join(str(r[key]) for r in dup)}")
    for old, new in AUTO_RENAMES.items():
        auto = auto.withColumnRenamed(old, new)
    auto = (auto.drop(*AUTO_DROPS).withColumn("id", F.concat(F.col("id").cast("string"), F.lit("-auto")))
            .withColumn("source", F.lit("auto")))
    auto_addr = auto_addr.select(F.concat(F.col("policyid").cast("string"), F.lit("-auto")).alias("id"),
                                 *ADDRESS_COLUMNS).dropDuplicates(["id"])
    for old, new in PROPERTY_RENAMES.items():
        prop = prop.withColumnRenamed(old, new)
    prop = (prop.drop(*PROPERTY_DROPS).withColumn("id", F.concat(F.col("id").cast("string"), F.lit("-property")))
            .withColumn("source", F.lit("property")))
    prop_addr = prop_addr.select(F.concat(F.col("customer_id").cast("string"), F.lit("-property")).alias("id"),
                                 *ADDRESS_COLUMNS).dropDuplicates(["id"])
    merged = (auto.join(auto_addr, "id", "left")
              .unionByName(prop.join(prop_addr, "id", "left"), allowMissingColumns=True))
    first = ["id", "first_name", "last_name", "company", "date_of_birth", "home_phone", "ssn", "source"]
    merged = merged.select(*first, *ADDRESS_COLUMNS,
                           *[c for c in merged.columns if c not in first + ADDRESS_COLUMNS])
    pdf = merged.toPandas()
    with atomic_path(out_path) as tmp:
        pdf.to_parquet(tmp, index=False)
    return {"out": str(out_path), "rows": len(pdf), "auto": int((pdf["source"] == "auto").sum()),
            "property": int((pdf["source"] == "property").sum())}
