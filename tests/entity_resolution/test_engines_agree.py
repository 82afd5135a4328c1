"""The two engines standardize as the Python reference does (the rules of rules.py as SQL per dialect, and per
record as the online matcher standardizes). That they cluster alike is
checked by the suite's one Spark match, in test_hadoop_paths.py."""

from __future__ import annotations

import math

import duckdb
import pandas as pd
import pytest

from c360.entity_resolution import rules
from c360.entity_resolution import standardize as S
from c360.entity_resolution import standardize_sql as Q
from c360.entity_resolution.config import parse_config
from c360.entity_resolution.standardize import standardize

CFG = parse_config({
    "id": "id",
    "roles": {"first_name": "fn", "last_name": "ln", "date_of_birth": "dob", "ssn": "ssn", "home_phone": "ph",
              "zip": "zip", "email": "em"},
    "columns": {"score": "numeric", "dmy": {"type": "date", "date_format": "%d/%m/%Y"},
                "compact": {"type": "date", "date_format": "%Y%m%d"}, "code": {"type": "identifier", "pad": 6}},
    "formats": {"ssn": {"pattern": r"\d{9}"}, "home_phone": {"pattern": r"1?(\d{10})"},
                "zip": {"pattern": r"(\d{5})\d{0,4}", "pad": 5}}})

# edge cases of every field type: blanks, whitespace, case, separators, floats' '.0', nicknames, bad dates,
# day/month swaps, pandas' date range, patterns with a group, padding, emails without a user, numbers with spaces
EDGES = pd.DataFrame({
    "id": ["1", "2", "3", "4", "5", "6", "7", "8"],
    "fn": [" Jim ", "ROBERT\t", None, "", "  ", "pat", "Chris  Smith", "12.0"],
    "ln": ["O'Neil", "smith", "a\nb", "x", None, "Lee", " ", "-3.0"],
    "dob": ["1980-01-05", "1980-13-01", "1980-1-5", " 2001-12-31 ", "1500-01-01", "19800105", None, "1990-02-30"],
    "ssn": ["123-45-6789", "12345678", "123 45 6789a", "1234567890", None, "000000001", "123.45.6789", "123456789.0"],
    "ph": ["+1 (206) 555-0100", "206-555-0100", "555-0100", "12065550100", None, "abc", "1-206-555-01001", ""],
    "zip": ["2134", "02134-1234", "98101", "981011234", "9810", "abcde", None, "98101.0"],
    "em": ["A@B.com", "a b@c.com", "no-at", "x@y@z", None, " Foo@Bar.ORG ", "@x", "u@"],
    "score": ["1.5", "x", None, "3", " 4 ", "1e3", "", "-2"],
    "dmy": ["05/01/1980", "5/1/1980", "31/12/2001", "32/01/2000", None, "01/13/2000", "1/1/2000", "12/12/2012"],
    "compact": ["19800105", "19801305", "1980 0105", "20001231", None, "2000-12-31", "19991212", "19990230.0"],
    "code": ["12", "ab-12", "1234567", "12.0", None, "x_y", "007", " 9 "],
})


def _values(df: pd.DataFrame) -> dict[str, list]:
    def clean(x):
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else x
    return {c: [clean(x) for x in df[c].tolist()] for c in df.columns}


def _reference():
    ref, bad = standardize(EDGES, CFG, "input0")
    return _values(ref), bad


def test_duckdb_sql_standardizes_as_pandas():
    ref, _ = _reference()
    con = duckdb.connect()
    con.register("raw", EDGES)
    types = {r[0]: r[1] for r in con.sql("DESCRIBE raw").fetchall()}
    got = _values(con.sql(Q.standardize_query(CFG, Q.DUCKDB, "raw", types, "input0")).df())
    assert got == ref


def test_spark_sql_standardizes_as_pandas(spark):
    ref, _ = _reference()
    sdf = spark.createDataFrame(EDGES.astype(object).where(EDGES.notna(), None))
    sdf.createOrReplaceTempView("er_edges_raw")
    types = {f.name: f.dataType.simpleString() for f in sdf.schema.fields}
    saved = spark.conf.get("spark.sql.legacy.timeParserPolicy")
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    try:
        rows = spark.sql(Q.standardize_query(CFG, Q.SPARK, "er_edges_raw", types, "input0")).collect()
    finally:
        spark.conf.set("spark.sql.legacy.timeParserPolicy", saved)
    got = _values(pd.DataFrame([r.asDict() for r in rows]))
    assert got == ref


def test_float_columns_read_as_pandas_prints_them():
    """An integer-valued float column (a CSV read by pandas with gaps) is the integer's text in both engines."""
    raw = pd.DataFrame({"id": ["1", "2", "3"], "ssn": [123456789.0, float("nan"), 12.5]})
    cfg = parse_config({"id": "id", "roles": {"ssn": "ssn"}})
    ref, _ = standardize(raw, cfg, "input0")
    con = duckdb.connect()
    con.register("raw", raw)
    types = {r[0]: r[1] for r in con.sql("DESCRIBE raw").fetchall()}
    got = con.sql(Q.standardize_query(cfg, Q.DUCKDB, "raw", types, "input0")).df()
    assert _values(got)["ssn"] == _values(ref)["ssn"] == ["123456789", None, "125"]


@pytest.mark.parametrize("fmt, java", [("%Y-%m-%d", "yyyy-M-d"), ("%Y%m%d", "yyyyMMdd"), ("%d/%m/%Y", "d/M/yyyy"),
                                       ("%d.%m.%y", "d.M.yy")])
def test_java_date_formats(fmt, java):
    assert Q.java_date_format(fmt) == java


def test_every_operation_is_interpreted_in_python_and_sql():
    assert set(rules.OPERATIONS) == set(S.PYTHON) == set(Q.SQL)


def test_one_record_standardizes_as_the_frame():
    ref, bad = standardize(EDGES, CFG, "input0")
    unreadable: dict[str, int] = {}
    for rec, expected in zip(EDGES.to_dict("records"), ref.to_dict("records"), strict=True):
        mine, columns = S.standardize_record(rec, CFG)
        assert mine == {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in expected.items()}
        for c in columns:
            unreadable[c] = unreadable.get(c, 0) + 1
    assert unreadable == bad
