"""recs.csv has one schema every reader states (c360.io's CSV dialect, recsys.recs.REC_TYPES): a user id holding
quotes and commas, as an older API accepted, is read back as itself by the served table (DuckDB), recs_counts (Arrow),
read_recs (pandas) and the graph's read_recs (Spark), from the driver's file and from Spark's parts alike."""

from __future__ import annotations

import stat

import pandas as pd
import pytest

from c360.errors import InputError
from c360.recsys.recs import REC_COLUMNS, read_recs, recs_counts, write_recs
from c360.recsys.served_table import build_served_table

EVIL = '=HYPERLINK("http://evil/","x")'
RECS = pd.DataFrame({"USER_ID": [EVIL, EVIL, "a,b", 'q"u,o"te', "007"],
                     "ITEM_ID": ["epcot:11", "epcot:2", "epcot:11", "epcot:3", "epcot:2"],
                     "RANK": [1, 2, 1, 1, 1], "SCORE": [0.5, 0.25, 1.0, 2.0, 0.75]})


def _expected() -> dict[str, list[str]]:
    return {u: g.sort_values("RANK")["ITEM_ID"].tolist() for u, g in RECS.groupby("USER_ID")}


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["USER_ID", "RANK"], ignore_index=True)


def _check_readers(recs, tmp_path):
    table = build_served_table(recs, None, tmp_path / "served")
    from c360.recsys.served_table import ServedTable

    served = ServedTable.open(table)
    assert {u: [i["item_id"] for i in served[u]] for u in served} == _expected()
    assert recs_counts(recs) == {"rows": len(RECS), "users": RECS["USER_ID"].nunique()}
    pd.testing.assert_frame_equal(_sorted(read_recs(recs)), _sorted(RECS))  # pandas (the graph's local export)


def test_a_quoted_user_id_with_commas_reads_back_as_itself(tmp_path):
    recs = tmp_path / "recs.csv"
    RECS.to_csv(recs, index=False)  # as write_recs' driver path writes it
    _check_readers(recs, tmp_path)


def test_a_recs_file_in_another_shape_is_refused_naming_it(tmp_path):
    recs = tmp_path / "recs.csv"
    RECS[["ITEM_ID", "USER_ID", "RANK", "SCORE"]].to_csv(recs, index=False)
    with pytest.raises(InputError, match=r"recs\.csv: columns in another order"):
        recs_counts(recs)
    with pytest.raises(InputError, match=r"recs\.csv: columns in another order"):
        build_served_table(recs, None, tmp_path / "served")
    with pytest.raises(InputError, match=r"recs\.csv: columns in another order"):
        read_recs(recs)


class _SparkRanked:
    """A model whose recs Spark ranks and writes (write_recs' path for a Spark model trained in this process)."""

    def __init__(self, frame):
        self.frame = frame

    def spark_recommendations(self, k):
        return self.frame


@pytest.mark.slow
def test_spark_parts_and_the_spark_reader_keep_the_quoted_ids(spark, tmp_path):
    from c360.graph.spark_graph import read_recs as spark_read_recs

    # Spark's CSV writer escapes a quote with a backslash unless told otherwise: Arrow then read 5 columns
    parts = write_recs(_SparkRanked(spark.createDataFrame(RECS).repartition(2)), tmp_path / "recs.csv")
    assert parts.is_dir()
    # Spark's files are the owner's only (c360.spark sets Hadoop's umask), whatever this process's umask
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in parts.iterdir()} == {"0o600"}
    assert stat.S_IMODE(parts.stat().st_mode) == 0o700
    _check_readers(parts, tmp_path)
    for path in (parts, tmp_path / "driver.csv"):
        RECS.to_csv(tmp_path / "driver.csv", index=False)
        df = spark_read_recs(spark, path).toPandas()
        assert list(df.columns) == REC_COLUMNS and str(df["RANK"].dtype) == "int64"
        pd.testing.assert_frame_equal(_sorted(df), _sorted(RECS))
